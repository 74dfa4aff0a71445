"""Corpus loaders: one table of clips per corpus, in the six shared classes.

Every loader returns ``(clips, report)``. ``clips`` is a :class:`pandas.DataFrame` with the columns in
:data:`CLIP_COLUMNS`; ``report`` is a :class:`LoadReport` that counts what was loaded and lists every file that
was skipped and why (a name that does not parse, an unknown emotion code, an empty file, a known-broken clip,
a class outside the six). Loaders look at names and sizes only; decoding happens in feature extraction.
:data:`CORPORA` names every corpus :func:`load_corpus` knows, with its actors and split settings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from emotion_lib.data.load_report import CorpusError, LoadReport, require_dir, usable_file
from emotion_lib.labels import EMOTIONS

CLIP_COLUMNS = ["clip_id", "corpus", "actor", "sentence", "emotion", "intensity", "audio_path", "video_path"]
"""Columns of every clip table. ``video_path`` is ``None`` for audio-only clips; ``audio_path`` may point at a
video file whose audio track holds the voice."""

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3")
VIDEO_SUFFIXES = (".flv", ".mp4")

CREMA_D_BROKEN = frozenset({"1076_MTI_NEU_XX", "1076_MTI_SAD_XX", "1064_TIE_SAD_XX", "1064_IEO_DIS_MD"})
"""CREMA-D clips known to be empty or corrupt in the official release."""

CREMA_D_EMOTIONS = {
    "ANG": "anger",
    "DIS": "disgust",
    "FEA": "fear",
    "HAP": "happiness",
    "NEU": "neutral",
    "SAD": "sadness",
}
CREMA_D_INTENSITIES = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
CREMA_D_VOTES = {"A": "anger", "D": "disgust", "F": "fear", "H": "happiness", "N": "neutral", "S": "sadness"}
RAVDESS_EMOTIONS = {
    "01": "neutral",
    "02": "calm",
    "03": "happiness",
    "04": "sadness",
    "05": "anger",
    "06": "fear",
    "07": "disgust",
    "08": "surprised",
}
RAVDESS_INTENSITIES = {"01": "normal", "02": "strong"}
SAVEE_EMOTIONS = {
    "a": "anger",
    "d": "disgust",
    "f": "fear",
    "h": "happiness",
    "n": "neutral",
    "sa": "sadness",
    "su": "surprised",
}
CKPLUS_EMOTIONS = {
    "anger": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happiness",
    "sadness": "sadness",
    "contempt": "contempt",
    "surprise": "surprised",
}

_CREMA_D_NAME = re.compile(r"^(?P<actor>\d{4})_(?P<sentence>[A-Z]{3})_(?P<emotion>[A-Z]{3})_(?P<level>[A-Z]{2})$")
_RAVDESS_NAME = re.compile(
    r"^(?P<modality>\d{2})-(?P<tail>(?P<channel>\d{2})-(?P<emotion>\d{2})-(?P<intensity>\d{2})"
    r"-(?P<statement>\d{2})-(?P<repetition>\d{2})-(?P<actor>\d{2}))$"
)
_SAVEE_NAME = re.compile(r"^(?:(?P<speaker>[A-Z]{2})_)?(?P<emotion>[a-z]{1,2})(?P<number>\d{2})$")
_CKPLUS_NAME = re.compile(r"^(?P<subject>S\d{3})_(?P<sequence>\d{3})_(?P<frame>\d{8})$")


def _keep_class(emotion: str, path: Path, report: LoadReport) -> bool:
    if emotion in EMOTIONS:
        return True
    report.dropped_classes[emotion] += 1
    return False


def _finish(rows: list[dict], report: LoadReport, layout_hint: str) -> tuple[pd.DataFrame, LoadReport]:
    if not rows and not report.dropped_classes and not report.skipped:
        raise CorpusError(f"no {report.corpus} clips found under {report.root} (expected {layout_hint})")
    clips = pd.DataFrame(rows, columns=CLIP_COLUMNS).sort_values("clip_id", kind="stable").reset_index(drop=True)
    clips["intensity"] = clips["intensity"].astype("string")
    report.loaded = len(clips)
    return clips, report


def load_crema_d(root: Path | str, perceived_labels: bool = False) -> tuple[pd.DataFrame, LoadReport]:
    """Load CREMA-D in its official layout (``AudioWAV``, ``AudioMP3``, ``VideoFlash``, ``VideoMP4``).

    Audio comes from WAV, else MP3, else the video file's own audio track. With ``perceived_labels`` the
    crowd votes of ``summaryTable.csv`` (searched in ``root``) are added as ``perceived_voice``,
    ``perceived_face`` and ``perceived_audiovisual`` (``None`` where the vote is tied or absent).
    """
    root = require_dir(root, "CREMA-D")
    report = LoadReport("CREMA-D", root)
    found: dict[str, dict[str, Path]] = {}
    for folder in ("AudioWAV", "AudioMP3", "VideoFlash", "VideoMP4"):
        for path in sorted((root / folder).glob("*")) if (root / folder).is_dir() else []:
            if path.suffix.lower() not in AUDIO_SUFFIXES + VIDEO_SUFFIXES:
                continue
            match = _CREMA_D_NAME.match(path.stem)
            if match is None:
                report.skip(path, "name does not parse as AAAA_SSS_EEE_LL")
            elif match["emotion"] not in CREMA_D_EMOTIONS:
                report.skip(path, f"unknown emotion code {match['emotion']!r}")
            elif match["level"] not in CREMA_D_INTENSITIES:
                report.skip(path, f"unknown intensity code {match['level']!r}")
            elif path.stem in CREMA_D_BROKEN:
                report.skip(path, "known broken clip in the CREMA-D release")
            elif usable_file(path, report):
                found.setdefault(path.stem, {}).setdefault(path.suffix.lower(), path)
    rows = []
    for clip_id, files in found.items():
        match = _CREMA_D_NAME.match(clip_id)
        video = files.get(".flv") or files.get(".mp4")
        audio = files.get(".wav") or files.get(".mp3") or video
        rows.append(
            dict(
                clip_id=clip_id,
                corpus="crema-d",
                actor=match["actor"],
                sentence=match["sentence"],
                emotion=CREMA_D_EMOTIONS[match["emotion"]],
                intensity=CREMA_D_INTENSITIES[match["level"]],
                audio_path=str(audio),
                video_path=str(video) if video else None,
            )
        )
    clips, report = _finish(rows, report, "AudioWAV/, AudioMP3/, VideoFlash/ or VideoMP4/ with AAAA_SSS_EEE_LL files")
    if perceived_labels:
        clips = _add_perceived_labels(clips, root)
    return clips, report


def _add_perceived_labels(clips: pd.DataFrame, root: Path) -> pd.DataFrame:
    table_path = root / "summaryTable.csv"
    if not table_path.exists():
        raise CorpusError(f"perceived labels requested but {table_path} does not exist")
    table = pd.read_csv(table_path).set_index("FileName")
    columns = {"VoiceVote": "perceived_voice", "FaceVote": "perceived_face", "MultiModalVote": "perceived_audiovisual"}
    for source, target in columns.items():
        votes = table[source].reindex(clips["clip_id"]).to_numpy()
        clips[target] = [CREMA_D_VOTES.get(vote) if isinstance(vote, str) else None for vote in votes]
    return clips


def load_ravdess(root: Path | str) -> tuple[pd.DataFrame, LoadReport]:
    """Load RAVDESS speech (``Actor_NN/MM-VC-EE-II-SS-RR-AA.{wav,flac,mp4}``).

    The audio-only (``03-``) and audio-video (``01-``) files of one recording share their tail and become one
    clip; video-only (``02-``) files give the video of a clip. Song recordings (vocal channel 02) are skipped.
    """
    root = require_dir(root, "RAVDESS")
    report = LoadReport("RAVDESS", root)
    found: dict[str, dict[str, Path]] = {}
    for path in sorted(root.glob("Actor_*/*")):
        if path.suffix.lower() not in AUDIO_SUFFIXES + VIDEO_SUFFIXES:
            continue
        match = _RAVDESS_NAME.match(path.stem)
        if match is None:
            report.skip(path, "name does not parse as MM-VC-EE-II-SS-RR-AA")
        elif match["channel"] != "01":
            report.skip(path, "song recording (vocal channel 02), only speech is used")
        elif match["emotion"] not in RAVDESS_EMOTIONS:
            report.skip(path, f"unknown emotion code {match['emotion']!r}")
        elif match["modality"] not in ("01", "02", "03"):
            report.skip(path, f"unknown modality code {match['modality']!r}")
        elif usable_file(path, report):
            found.setdefault(match["tail"], {})[match["modality"]] = path
    rows = []
    for tail, files in found.items():
        match = _RAVDESS_NAME.match(f"00-{tail}")
        emotion = RAVDESS_EMOTIONS[match["emotion"]]
        if not _keep_class(emotion, files[min(files)], report):
            continue
        video = files.get("01") or files.get("02")
        audio = files.get("03") or files.get("01")
        if audio is None:
            report.skip(video, "video-only recording without its audio")
            continue
        rows.append(
            dict(
                clip_id=tail,
                corpus="ravdess",
                actor=match["actor"],
                sentence=match["statement"],
                emotion=emotion,
                intensity=RAVDESS_INTENSITIES.get(match["intensity"], match["intensity"]),
                audio_path=str(audio),
                video_path=str(video) if video else None,
            )
        )
    return _finish(rows, report, "Actor_NN/MM-VC-EE-II-SS-RR-AA.{wav,flac,mp4} files")


def load_savee(root: Path | str) -> tuple[pd.DataFrame, LoadReport]:
    """Load SAVEE audio: flat ``XX_cNN.{wav,flac}`` files or the original ``AudioData/XX/cNN.wav`` layout."""
    root = require_dir(root, "SAVEE")
    report = LoadReport("SAVEE", root)
    rows = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
        match = _SAVEE_NAME.match(path.stem)
        speaker = match and (
            match["speaker"] or (path.parent.name if re.fullmatch(r"[A-Z]{2}", path.parent.name) else None)
        )
        if match is None or speaker is None:
            report.skip(path, "name does not parse as XX_cNN (or AudioData/XX/cNN)")
        elif match["emotion"] not in SAVEE_EMOTIONS:
            report.skip(path, f"unknown emotion code {match['emotion']!r}")
        elif _keep_class(SAVEE_EMOTIONS[match["emotion"]], path, report) and usable_file(path, report):
            rows.append(
                dict(
                    clip_id=f"{speaker}_{match['emotion']}{match['number']}",
                    corpus="savee",
                    actor=speaker,
                    sentence=match["number"],
                    emotion=SAVEE_EMOTIONS[match["emotion"]],
                    intensity=None,
                    audio_path=str(path),
                    video_path=None,
                )
            )
    return _finish(rows, report, "XX_cNN.wav/.flac files")


def load_ckplus48(root: Path | str) -> tuple[pd.DataFrame, LoadReport]:
    """Load the 48x48 CK+ face crops (``<emotion>/SNNN_QQQ_FFFFFFFF.png``), one row per sequence.

    Columns: ``sequence_id``, ``corpus``, ``actor`` (the subject), ``emotion`` and ``image_paths`` (the
    sequence's frames in order). CK+ has no neutral class; contempt and surprise are dropped.
    """
    root = require_dir(root, "CK+")
    report = LoadReport("CK+", root)
    sequences: dict[tuple[str, str], list[Path]] = {}
    for path in sorted(root.glob("*/*.png")):
        match = _CKPLUS_NAME.match(path.stem)
        folder = path.parent.name
        if match is None:
            report.skip(path, "name does not parse as SNNN_QQQ_FFFFFFFF")
        elif folder not in CKPLUS_EMOTIONS:
            report.skip(path, f"unknown emotion folder {folder!r}")
        elif usable_file(path, report):
            sequences.setdefault((folder, f"{match['subject']}_{match['sequence']}"), []).append(path)
    rows = []
    for (folder, sequence_id), paths in sorted(sequences.items()):
        emotion = CKPLUS_EMOTIONS[folder]
        if _keep_class(emotion, paths[0], report):
            rows.append(
                dict(
                    sequence_id=sequence_id,
                    corpus="ckplus",
                    actor=sequence_id.split("_")[0],
                    emotion=emotion,
                    image_paths=tuple(str(p) for p in sorted(paths)),
                )
            )
    if not rows and not report.dropped_classes and not report.skipped:
        raise CorpusError(f"no CK+ images found under {root} (expected <emotion>/SNNN_QQQ_FFFFFFFF.png)")
    report.loaded = len(rows)
    return pd.DataFrame(rows, columns=["sequence_id", "corpus", "actor", "emotion", "image_paths"]), report


def load_synthetic(root: Path | str) -> tuple[pd.DataFrame, LoadReport]:
    """Load the synthetic default corpus (written in the CREMA-D layout), tagged as generated."""
    clips, report = load_crema_d(root)
    clips["corpus"] = "synthetic"
    report.corpus = "synthetic (generated, not real emotion data)"
    return clips, report


def one_stratum(actors: list[str]) -> list[list[str]]:
    """No strata: the actors are dealt to folds in one seeded shuffle."""
    return [list(actors)]


def ravdess_strata(actors: list[str]) -> list[list[str]]:
    """RAVDESS: odd actor numbers are male; actors 01-18 (the shared ones) are dealt first."""
    return [
        [a for a in actors if (int(a) <= 18) == first and int(a) % 2 == odd]
        for first in (True, False)
        for odd in (1, 0)
    ]


def alternating_sex_strata(actors: list[str]) -> list[list[str]]:
    """Numbered actors whose sex alternates (odd numbers, then even ones), as the synthetic generator makes them."""
    return [[a for a in actors if int(a) % 2 == odd] for odd in (1, 0)]


@dataclass(frozen=True)
class CorpusSpec:
    """One corpus: its loader, all its actors, the number of folds of its split, and how its actors are stratified
    so folds are balanced (see :mod:`emotion_lib.data.splits`)."""

    loader: Callable[[Path | str], tuple[pd.DataFrame, LoadReport]]
    actors: tuple[str, ...]
    n_folds: int
    strata: Callable[[list[str]], list[list[str]]] = one_stratum


CORPORA: dict[str, CorpusSpec] = {
    "crema-d": CorpusSpec(load_crema_d, tuple(str(actor) for actor in range(1001, 1092)), 5),
    "ravdess": CorpusSpec(load_ravdess, tuple(f"{actor:02d}" for actor in range(1, 25)), 6, ravdess_strata),
    "savee": CorpusSpec(load_savee, ("DC", "JE", "JK", "KL"), 4),
    "synthetic": CorpusSpec(load_synthetic, tuple(str(1001 + index) for index in range(24)), 6, alternating_sex_strata),
}
"""The corpora by name: adding one is one entry here (its split CSVs come from ``write_splits``)."""


def corpus_spec(name: str) -> CorpusSpec:
    """The registry entry of corpus ``name``; an unknown name raises :class:`CorpusError` listing the known ones."""
    if name not in CORPORA:
        raise CorpusError(f"unknown corpus {name!r}; expected one of {', '.join(CORPORA)}")
    return CORPORA[name]


def load_corpus(name: str, root: Path | str) -> tuple[pd.DataFrame, LoadReport]:
    """Load the corpus ``name`` (one of :data:`CORPORA`) from ``root``."""
    return corpus_spec(name).loader(root)


def speaker_groups(clips: pd.DataFrame) -> pd.Series:
    """Corpus-qualified speaker ids (``ravdess:01``), the grouping key for speaker-independent splits."""
    return clips["corpus"].astype(str) + ":" + clips["actor"].astype(str)
