"""Out of corpus: trained on RAVDESS voices, tested on SAVEE speakers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emotion_lib.data.clips import ravdess_speech_clips
from emotion_lib.data.corpora import load_corpus
from emotion_lib.evaluation.baselines import BASELINES, grouped_cross_validation, speaker_normalise, svm_rbf
from emotion_lib.experiments.common import NORMALISATIONS, Context, audio_functionals, over_seeds, record_result
from emotion_lib.labels import EMOTIONS


def run_ravdess_to_savee(ctx: Context) -> list[dict]:
    """Train on RAVDESS actors 01-18, test on the four SAVEE speakers (per-speaker and global normalisation).

    Metrics are per SAVEE speaker (mean and standard deviation over the 4 speakers and the seeds).
    """
    train_clips = ravdess_speech_clips(ctx.data_dir, subset=8 if ctx.quick else 0)
    test_clips, _ = load_corpus("savee", Path(ctx.data_dir) / "savee")
    protocol = (
        "train on RAVDESS actors 01-18, test on SAVEE speakers (out of corpus); model selection by "
        f"inner {ctx.inner_folds}-fold actor-grouped CV on RAVDESS only"
    )
    out = []
    for feature_set, factory in [("eGeMAPSv02", svm_rbf), ("ComParE_2016", BASELINES["compare_linear"][1])]:
        x_train, train_kept = audio_functionals(train_clips, feature_set, ctx.cache_dir)
        x_test, test_kept = audio_functionals(test_clips, feature_set, ctx.cache_dir)
        features = np.vstack([x_train, x_test])
        speakers = np.concatenate(
            [("ravdess:" + train_kept["actor"]).to_numpy(), ("savee:" + test_kept["actor"]).to_numpy()]
        )
        labels = np.concatenate([train_kept["emotion"].to_numpy(), test_kept["emotion"].to_numpy()])
        test_speakers = sorted(set(speakers[len(x_train) :]))
        for norm in NORMALISATIONS:
            x = speaker_normalise(features, speakers) if norm == "speaker" else features
            result = over_seeds(
                lambda seed: grouped_cross_validation(
                    factory(seed), x, labels, speakers, [test_speakers], ctx.inner_folds, EMOTIONS, per_speaker=True
                ),
                ctx.seeds,
            )
            out.append(
                record_result(
                    ctx,
                    f"ravdess_to_savee/{feature_set}/{norm}",
                    "ravdess_to_savee",
                    "ravdess->savee",
                    protocol,
                    [test_speakers],
                    result,
                    f"{feature_set} functionals, {factory(0).name}, {norm} normalisation",
                    {"normalisation": norm, "feature_set": feature_set},
                )
            )
    return out
