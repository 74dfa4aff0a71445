"""Speaker adaptation for users: how much a voice model gains from a few unlabelled clips of the same speaker.

A shipped model meets a clip of a speaker it never heard. Trained on globally normalised features, it reads that
clip with its training clips' statistics (``voice_shipping_selection``: about 50 % UA on the inner fold, against
63 % for the same recipe normalised per speaker in cross-validation). A user can give more than one clip, though.
This experiment trains each :data:`~emotion_lib.experiments.voice_shipping.COMPARED` recipe twice per seed on the
inner fold of outer fold 0's training actors (SAVEE's clips in every training side, as the shipped models train):

- ``global``: frames (and functionals) normalised with the training clips' global statistics, as shipped today;
  its test clips get those statistics (``training_statistics``);
- ``speaker``: every training and validation speaker normalised with their own clips' statistics; each test clip
  is then scored under every condition of :data:`CONDITIONS`: the training statistics (a user who gives nothing
  else), the clip's own frames (``own_clip``), ``enrolled_<k>`` (the statistics of ``k`` other clips of the same
  speaker, drawn at random :data:`DRAWS` times; the clip itself is never among them), ``enrolled_<k>_mean`` (the
  mean of those clips with the training clips' standard deviations: a few clips give a noisy spread) and
  ``all_clips`` (every clip of the speaker, the cross-validation's protocol).

No label of a test clip is used by any normalisation. Rule, fixed before the run: the shipped ``voice`` model is
retrained with per-speaker normalisation (and ``predict`` offers enrolment) only if, for the shipped recipe,
``speaker/enrolled_8`` beats ``global/training_statistics`` by at least 3 points mean UA and
``speaker/training_statistics`` is at most 3 points below it (a user without enrolment clips loses little).
Outcome (2026-12-02): eGeMAPS 51.9 % shipped, 53.8 % with 8 enrolment clips, 39.1 % without: not met, nothing shipped.

Run with ``python -m emotion_lib evaluate --only voice_speaker_adaptation``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator

import numpy as np

from emotion_lib.evaluation.baselines import CVResult
from emotion_lib.evaluation.metrics import classification_metrics
from emotion_lib.evaluation.neural_cv import normalise_sequences, train_early_stopped, validation_fold
from emotion_lib.experiments.common import Context, neural_seeds, record_result
from emotion_lib.experiments.ravdess_voice_neural import (
    SELECTION_INNER_FOLDS,
    inner_fold_data,
    inner_fold_protocol,
    quick_config,
)
from emotion_lib.experiments.voice_shipping import ADDED_CORPORA, COMPARED
from emotion_lib.features.normalise import Normaliser, normalise_utterances
from emotion_lib.labels import EMOTIONS
from emotion_lib.models.config import ModelConfig
from emotion_lib.sequences.data import SequenceData
from emotion_lib.training.processes import pin_tensorflow_threads, run_in_processes
from emotion_lib.training.trainer import predict_data
from emotion_lib.utils import default_workers

LOG = logging.getLogger(__name__)

GROUP = "voice_speaker_adaptation"
ENROLMENT_SIZES = (2, 4, 8, 16)
"""How many other clips of the test speaker give the statistics in the ``enrolled_<k>`` conditions."""
DRAWS = 5
"""Random draws of the enrolment clips per size (seeded by draw and size, the same for every model)."""
CONDITIONS = (
    "training_statistics",
    "own_clip",
    *(f"enrolled_{k}" for k in ENROLMENT_SIZES),
    *(f"enrolled_{k}_mean" for k in ENROLMENT_SIZES),
    "all_clips",
)
"""How a per-speaker trained model's test clips are normalised (module docstring)."""
TRAINING_MODES = {"global": ("training_statistics",), "speaker": CONDITIONS}
"""Training normalisation -> the test conditions scored for it."""

_DATA: dict = {}


@dataclasses.dataclass(frozen=True)
class Variant:
    """Normalised test inputs of one condition and draw: frames per test clip and the utterance rows (or None)."""

    frames: list[np.ndarray]
    utterance: np.ndarray | None


def _statistics_of(rows: list[np.ndarray], spread_of: Normaliser | None = None) -> Normaliser:
    """A global :class:`Normaliser` fitted on ``rows``; with ``spread_of``, only its mean: the standard deviations
    are ``spread_of``'s (a few clips give a noisy spread; mainly a speaker's level shifts)."""
    fitted = Normaliser("global").fit(rows)
    if spread_of is not None:
        fitted.std_ = spread_of.std_
    return fitted


def enrolled_variant(
    frames: list[np.ndarray],
    vectors: np.ndarray | None,
    speakers: np.ndarray,
    k: int,
    rng: np.random.Generator,
    spread_of: tuple[Normaliser, Normaliser | None] | None = None,
) -> Variant:
    """Each clip normalised with the statistics of ``k`` other clips of its speaker drawn by ``rng`` (all the
    others when the speaker has fewer); ``vectors`` (functionals) likewise, across those clips. ``spread_of``: the
    training normalisers of frames and functionals, whose standard deviations are kept (the mean alone adapts)."""
    frame_spread, vector_spread = spread_of or (None, None)
    out_frames, out_vectors = [], []
    for i, speaker in enumerate(speakers):
        others = np.flatnonzero((speakers == speaker) & (np.arange(len(speakers)) != i))
        chosen = rng.choice(others, size=min(k, len(others)), replace=False)
        out_frames.append(_statistics_of([frames[j] for j in chosen], frame_spread).transform(frames[i]))
        if vectors is not None:
            out_vectors.append(_statistics_of([vectors[chosen]], vector_spread).transform(vectors[i][None])[0])
    return Variant(out_frames, None if vectors is None else np.vstack(out_vectors))


def condition_inputs(
    frames: list[np.ndarray],
    vectors: np.ndarray | None,
    speakers: np.ndarray,
    train_rows: np.ndarray,
    test_rows: np.ndarray,
    conditions: tuple[str, ...],
    draws: int = DRAWS,
) -> Iterator[tuple[str, Variant]]:
    """``(condition, the test clips' inputs under it)``, one per draw (``draws`` for each enrolment condition, one for
    the others), made one at a time (a draw of ComParE frames for the test clips is tens of megabytes)."""
    test = np.flatnonzero(test_rows)
    training = _statistics_of([frames[i] for i in np.flatnonzero(train_rows)])
    training_vectors = None if vectors is None else _statistics_of([vectors[train_rows]])

    def with_training_vectors(test_frames: list[np.ndarray]) -> Variant:
        return Variant(test_frames, None if vectors is None else training_vectors.transform(vectors[test]))

    for condition in conditions:
        if condition == "training_statistics":
            yield condition, with_training_vectors([training.transform(frames[i]) for i in test])
        elif condition == "own_clip":  # one clip's functionals have no spread: they keep the training statistics
            yield condition, with_training_vectors([_statistics_of([frames[i]]).transform(frames[i]) for i in test])
        elif condition == "all_clips":
            normalised = normalise_sequences(frames, speakers, train_rows, "speaker")
            utterance = None if vectors is None else normalise_utterances(vectors, speakers, train_rows, "speaker")
            yield condition, Variant([normalised[i] for i in test], None if vectors is None else utterance[test])
        else:
            size, _, mean_only = condition.removeprefix("enrolled_").partition("_")
            k, spread = int(size), (training, training_vectors) if mean_only else None
            own = None if vectors is None else vectors[test]
            for draw in range(draws):
                rng = np.random.default_rng([draw, k])
                yield condition, enrolled_variant([frames[i] for i in test], own, speakers[test], k, rng, spread)


def condition_text(condition: str) -> str:
    """What a condition of :data:`CONDITIONS` normalises a test clip with, in words."""
    fixed = {
        "training_statistics": "the training clips' statistics (no other clip of the speaker)",
        "own_clip": "its own frames' statistics (functionals: the training statistics)",
        "all_clips": "the statistics of every clip of its speaker, itself included (the cross-validation's protocol)",
    }
    if condition in fixed:
        return fixed[condition]
    size, _, mean_only = condition.removeprefix("enrolled_").partition("_")
    what = "the mean of" if mean_only else "the mean and spread of"
    spread = " and the training clips' spread" if mean_only else ""
    return f"{what} {size} other clips of its speaker{spread} ({DRAWS} random draws)"


def _keep_data(data: dict) -> None:
    pin_tensorflow_threads()
    _DATA.update(data)


def train_and_score(recipe: str, mode: str, seed: int, smoke: bool = False) -> dict[str, list[np.ndarray]]:
    """Train ``recipe``'s model with ``mode`` normalisation and ``seed`` on the inner fold (data kept by the worker
    process); condition -> test probabilities per draw. A ``smoke`` run scores one draw of 2 enrolment clips only (each
    prediction runs the BiLSTM step by step: tens of them dominate a smoke run's time)."""
    frames, labels, speakers, vectors, folds, config = _DATA[recipe]
    test_rows = np.isin(speakers, folds[SELECTION_INNER_FOLDS[0]])
    validation_rows = np.isin(speakers, folds[validation_fold(len(folds), SELECTION_INNER_FOLDS[0], seed)])
    train_rows = ~(test_rows | validation_rows)
    data = SequenceData(
        normalise_sequences(frames, speakers, train_rows, mode),
        np.array([EMOTIONS.index(label) for label in labels]),
        [f"{speaker}/{i}" for i, speaker in enumerate(speakers)],
        utterance=None if vectors is None else normalise_utterances(vectors, speakers, train_rows, mode),
    )
    train_side, validation_side = data.subset(np.flatnonzero(train_rows)), data.subset(np.flatnonzero(validation_rows))
    model, info, _ = train_early_stopped(config.replace(seed=seed), train_side, validation_side)
    LOG.info(
        "%s, %s normalisation, seed %d: best epoch %d of %d", recipe, mode, seed, info["best_epoch"], info["epochs_run"]
    )
    test = data.subset(np.flatnonzero(test_rows))
    probabilities: dict[str, list[np.ndarray]] = {}
    conditions = TRAINING_MODES[mode]
    if smoke:
        conditions = tuple(c for c in conditions if not c.startswith("enrolled_") or c.split("_")[1] == "2")
    scored = condition_inputs(frames, vectors, speakers, train_rows, test_rows, conditions, 1 if smoke else DRAWS)
    for condition, variant in scored:
        inputs = dataclasses.replace(test, audio=variant.frames, utterance=variant.utterance)
        probabilities.setdefault(condition, []).append(predict_data(model, inputs))
    return probabilities


def _result(name: str, truth: np.ndarray, per_seed: dict[int, list[np.ndarray]]) -> CVResult:
    """One row's result: a fold metric per seed and draw; pooled predictions of the first seed's first draw."""
    names = np.asarray(EMOTIONS)
    metrics = [
        classification_metrics(truth, names[p.argmax(1)], EMOTIONS) for draws in per_seed.values() for p in draws
    ]
    first = next(iter(per_seed.values()))[0]
    chosen = [{"seed": seed, "draw": draw} for seed, draws in per_seed.items() for draw in range(len(draws))]
    return CVResult(
        name, list(EMOTIONS), truth, names[first.argmax(1)], first, np.zeros(len(truth), int), metrics, chosen
    )


def run_voice_speaker_adaptation(ctx: Context) -> list[dict]:
    """Train the recipes of :data:`COMPARED` with global and per-speaker normalisation (3 seeds, side by side in
    spawned processes) and record the test UA of every condition."""
    ctx = dataclasses.replace(ctx, seeds=neural_seeds(ctx))
    data, truths, protocols = {}, {}, {}
    compared = dict(list(COMPARED.items())[:1]) if ctx.quick else COMPARED  # a smoke run: the shipped recipe only
    for name, recipe in compared.items():
        frame_set = recipe.extraction.audio_feature_set
        (frames, labels, speakers, vectors), inner = inner_fold_data(ctx, recipe.config, frame_set, ADDED_CORPORA)
        speakers, labels = np.asarray(speakers).astype(str), np.asarray(labels).astype(str)
        config: ModelConfig = quick_config(recipe.config, ctx).replace(
            n_classes=len(EMOTIONS), audio_dim=int(frames[0].shape[1])
        )
        if vectors is not None:
            config = config.replace(utterance_dim=int(vectors.shape[1]))
        data[name] = (frames, labels, speakers, vectors, inner, config)
        truths[name] = labels[np.isin(speakers, inner[SELECTION_INNER_FOLDS[0]])]
        protocols[name] = inner_fold_protocol(inner, SELECTION_INNER_FOLDS[:1]) + (
            f"; {', '.join(ADDED_CORPORA)} clips added to every training side; per condition, how the test clips are "
            f"normalised (no test label used); enrolled_<k>: {DRAWS} random draws of k other clips of the speaker"
        )
    calls = [(name, mode, seed, ctx.quick) for name in compared for mode in TRAINING_MODES for seed in ctx.seeds]
    outcomes: dict[tuple[str, str], dict[int, dict]] = {}
    for index, scores in run_in_processes(train_and_score, calls, default_workers(), _keep_data, (data,)):
        name, mode, seed, _ = calls[index]
        outcomes.setdefault((name, mode), {})[seed] = scores
    rows = []
    for (name, mode), per_seed in sorted(outcomes.items()):
        for condition in per_seed[min(per_seed)]:  # the conditions scored (fewer in a smoke run)
            row = f"{GROUP}/{name}/{mode}/{condition}"
            result = _result(row, truths[name], {seed: per_seed[seed][condition] for seed in sorted(per_seed)})
            description = (
                f"shipped voice candidate {name!r} trained with {mode} normalisation; each test clip normalised with "
                + condition_text(condition)
            )
            extra = {"role": "selection", "candidate": name, "training_normalisation": mode, "condition": condition}
            folds = data[name][4]
            rows.append(record_result(ctx, row, GROUP, "ravdess", protocols[name], folds, result, description, extra))
    return rows
