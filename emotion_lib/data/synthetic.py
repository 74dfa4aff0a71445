"""The embedded default corpus: generated voices and drawn faces in the CREMA-D layout.

This corpus exists so that every notebook runs end to end on a machine without the real CREMA-D. It is
**synthetic**: its "emotions" are hand-written rules, so no number measured on it says anything about
recognising human emotion. It is built to exercise the pipeline honestly:

* every actor has its own voice (pitch, vocal-tract length, rate, loudness) and face (shape, skin, eye
  spacing), plus an idiosyncratic way of expressing each emotion, so that actor-disjoint splits matter;
* the voice mostly carries *arousal* (pitch, loudness, rate, brightness) and the face mostly carries
  *valence* (mouth curvature, brows, eyes), with overlaps, so neither modality alone separates all six
  classes and fusion can beat both;
* expressions rise and fall within a clip, some video frames are occluded (no face to detect), and every
  clip has background noise.

Layout written (read back by :func:`emotion_lib.corpora.load_crema_d`)::

    out_dir/AudioWAV/AAAA_SSS_EEE_LL.wav   16 kHz mono PCM
    out_dir/VideoMP4/AAAA_SSS_EEE_LL.mp4   224x224, 15 fps, mp4v
    out_dir/README.txt                     says what this is and how it was made
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import soundfile as sf
from scipy.signal import lfilter
from tqdm.auto import tqdm

from emotion_lib.labels import EMOTIONS

SAMPLE_RATE = 16_000
FPS = 15
FRAME_SIZE = 224
SENTENCES = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI")
EMOTION_CODES = {
    "anger": "ANG",
    "disgust": "DIS",
    "fear": "FEA",
    "happiness": "HAP",
    "neutral": "NEU",
    "sadness": "SAD",
}
LEVELS = {"LO": 0.6, "MD": 0.8, "HI": 1.0, "XX": 1.0}

# Voice cues per emotion: pitch shift (semitones), pitch range (semitones), speaking rate (x),
# loudness (dB), spectral brightness (0 dark .. 1 bright), jitter (relative).
VOICE_CUES = {
    "anger": dict(pitch=3.0, range=4.0, rate=1.20, loudness=6.0, brightness=0.9, jitter=0.020),
    "disgust": dict(pitch=-1.0, range=2.5, rate=0.85, loudness=1.0, brightness=0.5, jitter=0.015),
    "fear": dict(pitch=5.0, range=2.0, rate=1.25, loudness=2.0, brightness=0.7, jitter=0.035),
    "happiness": dict(pitch=3.5, range=5.0, rate=1.10, loudness=4.0, brightness=0.8, jitter=0.010),
    "neutral": dict(pitch=0.0, range=1.5, rate=1.00, loudness=0.0, brightness=0.5, jitter=0.010),
    "sadness": dict(pitch=-2.0, range=1.0, rate=0.80, loudness=-4.0, brightness=0.3, jitter=0.020),
}
# Face cues per emotion: mouth curvature (+ smile), mouth opening, brow height, brow tilt (+ frown: inner ends
# down), eye opening (1 = relaxed).
FACE_CUES = {
    "anger": dict(smile=-0.4, mouth_open=0.35, brow_height=-1.0, brow_tilt=1.0, eye_open=1.15),
    "disgust": dict(smile=-0.8, mouth_open=0.25, brow_height=-0.5, brow_tilt=0.6, eye_open=0.65),
    "fear": dict(smile=-0.3, mouth_open=0.80, brow_height=1.0, brow_tilt=-0.6, eye_open=1.45),
    "happiness": dict(smile=1.0, mouth_open=0.50, brow_height=0.2, brow_tilt=0.0, eye_open=0.80),
    "neutral": dict(smile=0.0, mouth_open=0.15, brow_height=0.0, brow_tilt=0.0, eye_open=1.00),
    "sadness": dict(smile=-0.7, mouth_open=0.10, brow_height=0.3, brow_tilt=-1.0, eye_open=0.70),
}
FACE_CUE_SCALE = 0.5
"""Drawn expressions are shrunk towards neutral by this factor: at full size the face alone nearly solves the task."""
VOWEL_FORMANTS = np.array(
    [[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480], [570, 840, 2410]], dtype=float
)  # /a/ /i/ /u/ /e/ /o/ (adult male, Hz)


@dataclass(frozen=True)
class Actor:
    """One generated speaker: voice, face and a personal expression style."""

    actor_id: str
    female: bool
    base_pitch_hz: float
    tract_scale: float
    rate: float
    loudness_db: float
    skin_bgr: tuple[int, int, int]
    face_width: float
    face_height: float
    eye_spacing: float
    expressiveness: float
    voice_bias: dict
    face_bias: dict


def make_actors(n_actors: int, seed: int) -> list[Actor]:
    """Draw ``n_actors`` actors (ids 1001, 1002, ...) from ``seed``."""
    rng = np.random.default_rng(seed)
    actors = []
    for index in range(n_actors):
        female = bool(index % 2)
        skin = rng.uniform([90, 120, 160], [180, 200, 240])
        actors.append(
            Actor(
                actor_id=str(1001 + index),
                female=female,
                base_pitch_hz=float((205 if female else 115) * rng.uniform(0.85, 1.15)),
                tract_scale=float((1.15 if female else 1.0) * rng.uniform(0.93, 1.07)),
                rate=float(rng.uniform(0.85, 1.15)),
                loudness_db=float(rng.normal(0, 2)),
                skin_bgr=tuple(int(v) for v in skin),
                face_width=float(rng.uniform(54, 66)),
                face_height=float(rng.uniform(72, 84)),
                eye_spacing=float(rng.uniform(21, 28)),
                expressiveness=float(rng.uniform(0.55, 1.15)),
                # each actor shows some emotions in their own, partly misleading, way
                voice_bias={
                    e: {k: float(rng.normal(0, 0.3)) for k in ("pitch", "loudness", "rate", "brightness")}
                    for e in EMOTIONS
                },
                face_bias={
                    e: {k: float(rng.normal(0, 0.5)) for k in ("smile", "brow_height", "brow_tilt", "eye_open")}
                    for e in EMOTIONS
                },
            )
        )
    return actors


def _envelope(n: int, rng: np.random.Generator) -> np.ndarray:
    """Expression intensity over a clip: mostly neutral onset, a peak somewhere in the middle, then decay."""
    t = np.linspace(0, 1, n)
    peak, width = rng.uniform(0.35, 0.7), rng.uniform(0.18, 0.35)
    return 0.25 + 0.75 * np.exp(-0.5 * ((t - peak) / width) ** 2)


def synthesize_voice(
    actor: Actor, emotion: str, sentence: str, level: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(waveform, syllable_envelope_at_fps)`` for one utterance."""
    cue = VOICE_CUES[emotion]
    bias = actor.voice_bias[emotion]
    strength = level * actor.expressiveness
    n_syllables = 5 + SENTENCES.index(sentence) % 4
    rate = actor.rate * (1 + (cue["rate"] - 1 + 0.08 * bias["rate"]) * strength)
    syllable_s = 0.22 / rate
    duration = n_syllables * syllable_s + 0.5
    n = int(duration * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    intensity = np.interp(t, np.linspace(0, duration, 64), _envelope(64, rng))

    semitones = (cue["pitch"] + 1.5 * bias["pitch"]) * strength * intensity
    contour = cue["range"] * strength * np.sin(2 * np.pi * t / duration * rng.uniform(0.8, 1.6) + rng.uniform(0, 6))
    declination = -2.0 * t / duration
    f0 = actor.base_pitch_hz * 2 ** ((semitones + contour + declination) / 12)
    f0 *= 1 + cue["jitter"] * rng.standard_normal(n).cumsum() / np.sqrt(np.arange(1, n + 1))
    phase = np.cumsum(f0 / SAMPLE_RATE)
    source = (phase % 1.0) * 2 - 1  # sawtooth glottal source
    brightness = np.clip(cue["brightness"] + 0.15 * bias["brightness"], 0.05, 0.98) * strength + 0.5 * (1 - strength)
    source = lfilter([1.0], [1.0, -(0.97 - 0.5 * brightness)], source)  # spectral tilt: darker = steeper

    voice = np.zeros(n)
    syllable_env = np.zeros(n)
    sentence_rng = np.random.default_rng(SENTENCES.index(sentence))
    vowels = sentence_rng.integers(0, len(VOWEL_FORMANTS), n_syllables)
    for index, vowel in enumerate(vowels):
        start = int((0.25 + index * syllable_s) * SAMPLE_RATE)
        stop = min(n, start + int(syllable_s * 0.85 * SAMPLE_RATE))
        segment = source[start:stop]
        for formant in VOWEL_FORMANTS[vowel] * actor.tract_scale:
            radius = np.exp(-np.pi * 90 / SAMPLE_RATE)
            theta = 2 * np.pi * formant / SAMPLE_RATE
            segment = lfilter([1 - radius], [1, -2 * radius * np.cos(theta), radius**2], segment)
        window = np.hanning(stop - start) ** 0.5
        voice[start:stop] += segment * window
        syllable_env[start:stop] = np.maximum(syllable_env[start:stop], window)
    voice /= np.max(np.abs(voice)) + 1e-9
    gain_db = actor.loudness_db + (cue["loudness"] + 1.5 * bias["loudness"]) * strength * intensity - 12
    voice *= 10 ** (gain_db / 20)
    voice += 10 ** (rng.uniform(-52, -42) / 20) * rng.standard_normal(n)  # room noise
    voice = np.clip(voice, -0.99, 0.99).astype(np.float32)
    frame_times = np.arange(int(duration * FPS)) / FPS
    return voice, np.interp(frame_times, t, syllable_env)


def draw_face(actor: Actor, expression: dict, talk: float, head: tuple[float, float, float]) -> np.ndarray:
    """Draw one 224x224 BGR frame of ``actor`` with ``expression`` cue values, mouth opened by ``talk``."""
    frame = np.full((FRAME_SIZE, FRAME_SIZE, 3), (70, 64, 58), np.uint8)
    dx, dy, angle = head
    cx, cy = FRAME_SIZE / 2 + dx, FRAME_SIZE / 2 + 8 + dy
    canvas = frame
    cv2.ellipse(
        canvas,
        (int(cx), int(cy)),
        (int(actor.face_width), int(actor.face_height)),
        0,
        0,
        360,
        actor.skin_bgr,
        -1,
        cv2.LINE_AA,
    )
    shade = tuple(int(c * 0.78) for c in actor.skin_bgr)
    eye_y = cy - 18
    for side in (-1, 1):
        ex = cx + side * actor.eye_spacing
        eye_h = max(2.0, 7 * expression["eye_open"])
        cv2.ellipse(canvas, (int(ex), int(eye_y)), (12, int(eye_h)), 0, 0, 360, (245, 245, 245), -1, cv2.LINE_AA)
        cv2.circle(canvas, (int(ex), int(eye_y)), int(min(5, eye_h)), (45, 35, 25), -1, cv2.LINE_AA)
        brow_y = eye_y - 16 - 6 * expression["brow_height"]
        inner, outer = ex - side * 13, ex + side * 13
        tilt = 6 * expression["brow_tilt"]
        cv2.line(
            canvas, (int(inner), int(brow_y + tilt)), (int(outer), int(brow_y - tilt)), (40, 40, 55), 4, cv2.LINE_AA
        )
    cv2.line(canvas, (int(cx), int(eye_y + 4)), (int(cx - 6), int(cy + 14)), shade, 3, cv2.LINE_AA)
    cv2.line(canvas, (int(cx - 6), int(cy + 14)), (int(cx + 6), int(cy + 14)), shade, 3, cv2.LINE_AA)
    mouth_y = cy + 38
    xs = np.arange(-22, 23, 2, dtype=float)
    curve = -expression["smile"] * 12 * (xs / 22) ** 2 + expression["smile"] * 5
    opening = 2 + 14 * np.clip(expression["mouth_open"] * 0.5 + talk * 0.6, 0, 1.2) * (1 - (xs / 22) ** 2)
    upper = np.stack([cx + xs, mouth_y + curve - opening / 2], axis=1)
    lower = np.stack([cx + xs[::-1], (mouth_y + curve + opening / 2)[::-1]], axis=1)
    cv2.fillPoly(canvas, [np.vstack([upper, lower]).astype(np.int32)], (60, 50, 140), cv2.LINE_AA)
    rotation = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
    frame = cv2.warpAffine(canvas, rotation, (FRAME_SIZE, FRAME_SIZE), borderMode=cv2.BORDER_REPLICATE)
    return cv2.GaussianBlur(frame, (3, 3), 0)


def render_face_video(
    actor: Actor, emotion: str, level: float, talk: np.ndarray, rng: np.random.Generator
) -> list[np.ndarray]:
    """Frames of one clip: the expression rises and falls, the mouth follows the voice, the head moves."""
    cue = FACE_CUES[emotion]
    bias = actor.face_bias[emotion]
    neutral = FACE_CUES["neutral"]
    strength = level * actor.expressiveness
    intensity = _envelope(len(talk), rng)
    drift = rng.normal(0, 1.0, (len(talk), 3)).cumsum(axis=0) * [0.8, 0.8, 0.6]
    occluded = rng.random(len(talk)) < 0.05
    frames = []
    for index, (amount, speaking) in enumerate(zip(intensity, talk)):
        expression = {
            key: neutral[key]
            + (FACE_CUE_SCALE * (cue[key] - neutral[key]) + 0.6 * bias.get(key, 0.0)) * strength * amount
            + rng.normal(0, 0.1)
            for key in cue
        }
        frame = draw_face(actor, expression, float(speaking), tuple(np.clip(drift[index], -8, 8)))
        if occluded[index]:  # a hand or a turn of the head: nothing to detect in this frame
            frame[:] = cv2.GaussianBlur(frame, (0, 0), 25)
        frames.append(frame)
    return frames


def _write_clip(args: tuple) -> str:
    out_dir, actor, emotion, sentence, level_code, clip_seed = args
    rng = np.random.default_rng(clip_seed)
    clip_id = f"{actor.actor_id}_{sentence}_{EMOTION_CODES[emotion]}_{level_code}"
    voice, talk = synthesize_voice(actor, emotion, sentence, LEVELS[level_code], rng)
    frames = render_face_video(actor, emotion, LEVELS[level_code], talk, rng)
    sf.write(out_dir / "AudioWAV" / f"{clip_id}.wav", voice, SAMPLE_RATE, subtype="PCM_16")
    writer = cv2.VideoWriter(
        str(out_dir / "VideoMP4" / f"{clip_id}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (FRAME_SIZE, FRAME_SIZE)
    )
    for frame in frames:
        writer.write(frame)
    writer.release()
    return clip_id


CREMA_D_PLAN = tuple(
    (emotion, sentence, level)
    for sentence in SENTENCES
    for emotion in EMOTIONS
    for level in (("LO", "MD", "HI") if sentence == "IEO" and emotion != "neutral" else ("XX",))
)
"""CREMA-D's recording plan per actor, ``(emotion, sentence, level code)``: 12 sentences x 6 emotions, sentence IEO
at LO, MD and HI in every emotion but neutral; 82 clips (x 91 actors = 7,462; the published corpus has 7,442)."""


def _clip_plan(actors: list[Actor], clips_per_emotion: int, layout: str, rng: np.random.Generator) -> Iterator[tuple]:
    """``(actor, emotion, sentence, level code)`` of every clip, in generation order (lazy: the level draws of the
    per-emotion layout interleave with the caller's clip seeds, as they always have)."""
    if layout == "crema-d":
        n = len(CREMA_D_PLAN)  # actor i's j-th clip is the plan's (i + j)-th: every prefix mixes the emotions
        yield from ((actor, *CREMA_D_PLAN[(i + j) % n]) for j in range(n) for i, actor in enumerate(actors))
        return
    for actor in actors:
        for emotion in EMOTIONS:
            for repeat in range(clips_per_emotion):
                sentence = SENTENCES[(repeat * 5 + EMOTIONS.index(emotion) + int(actor.actor_id)) % len(SENTENCES)]
                level = "XX" if emotion == "neutral" else ("LO", "MD", "HI")[int(rng.integers(0, 3))]
                yield actor, emotion, sentence, level


def generate_corpus(
    out_dir: Path | str,
    seed: int = 0,
    n_actors: int = 24,
    clips_per_emotion: int = 3,
    workers: int = 2,
    progress: bool = True,
    force: bool = False,
    layout: str = "per-emotion",
    max_clips: int | None = None,
) -> Path:
    """Write the synthetic corpus (``n_actors x 6 x clips_per_emotion`` clips) to ``out_dir``; return it.

    Deterministic: the same arguments give byte-identical WAV files and the same video frames. The clips carry real
    CREMA-D names, so a folder that holds anything the generator did not write is refused (``force`` overrides):
    generating into a real corpus would overwrite recordings.

    Args:
        layout: ``'per-emotion'`` (``clips_per_emotion`` sentences per actor and emotion, actor by actor) or
            ``'crema-d'`` (:data:`CREMA_D_PLAN` for every actor; ``clips_per_emotion`` unused), taken round-robin
            over the actors so that any prefix spreads over all of them. 91 actors, ``max_clips=7442``: CREMA-D.
        max_clips: keep the first ``max_clips`` clips of that order; each clip's seed is drawn in that order, so
            a smaller corpus is exactly the first clips of a larger one.

    Raises:
        FileExistsError: ``out_dir`` is a file, or a non-empty folder without the generator's mark.
    """
    if n_actors < 3 or clips_per_emotion < 1:
        raise ValueError("need at least 3 actors (train/validation/test) and 1 clip per emotion")
    if layout not in ("per-emotion", "crema-d") or (max_clips is not None and max_clips < 1):
        raise ValueError(f"layout must be 'per-emotion' or 'crema-d' and max_clips >= 1, got {layout!r}, {max_clips}")
    out_dir = Path(out_dir)
    _claim_folder(out_dir, force)
    for folder in ("AudioWAV", "VideoMP4"):
        (out_dir / folder).mkdir(parents=True, exist_ok=True)
    actors = make_actors(n_actors, seed)
    rng = np.random.default_rng(seed + 1)
    jobs = [
        (out_dir, actor, emotion, sentence, level, int(rng.integers(0, 2**31)))
        for actor, emotion, sentence, level in _clip_plan(actors, clips_per_emotion, layout, rng)
    ][:max_clips]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            list(
                tqdm(
                    pool.map(_write_clip, jobs, chunksize=8),
                    total=len(jobs),
                    disable=not progress,
                    desc="synthetic clips",
                    unit="clip",
                )
            )
    else:
        for job in tqdm(jobs, disable=not progress, desc="synthetic clips", unit="clip"):
            _write_clip(job)
    settings = dict(seed=seed, n_actors=n_actors, clips_per_emotion=clips_per_emotion)
    if layout != "per-emotion" or max_clips is not None:
        settings.update(layout=layout, max_clips=max_clips, clips=len(jobs))
    _write_readme(out_dir, settings, actors)
    return out_dir


def _write_readme(out_dir: Path, settings: dict, actors: list[Actor]) -> None:
    """The corpus' README (written last: its presence marks a complete corpus), with the settings and actors."""
    settings = {**settings, "sample_rate": SAMPLE_RATE, "fps": FPS, "frame_size": FRAME_SIZE}
    (out_dir / "README.txt").write_text(
        "SYNTHETIC corpus generated by emotion_lib.synthetic (not real emotion data).\n"
        "Voices and faces follow hand-written rules; numbers measured on it test the pipeline only and are\n"
        "never emotion-recognition accuracy.\n\nSettings: "
        + json.dumps(settings)
        + "\n\nActors:\n"
        + "\n".join(json.dumps({k: v for k, v in asdict(a).items() if not k.endswith("_bias")}) for a in actors)
        + "\n"
    )


GENERATOR_MARK = ".synthetic-corpus"
"""File the generator writes first into its output folder: a folder with it (or with the generator's README, which
it writes last) may be written again."""


def _claim_folder(out_dir: Path, force: bool) -> None:
    """Refuse to write into a user's folder; mark an empty (or new) one as the generator's."""
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} is a file, not a folder for the synthetic corpus")
    readme = out_dir / "README.txt"
    ours = (out_dir / GENERATOR_MARK).exists() or (readme.is_file() and readme.read_text().startswith("SYNTHETIC"))
    if out_dir.exists() and any(out_dir.iterdir()) and not ours and not force:
        raise FileExistsError(
            f"{out_dir} is not empty and was not written by the synthetic generator: its clips carry real CREMA-D "
            "names and could overwrite recordings. Choose an empty folder (or pass --force / force=True)."
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / GENERATOR_MARK).write_text("written by emotion_lib.data.synthetic.generate_corpus\n")


def ensure_corpus(out_dir: Path | str, seed: int = 0, **settings) -> Path:
    """Generate the synthetic corpus into ``out_dir`` unless a complete one is already there."""
    out_dir = Path(out_dir)
    if (out_dir / "README.txt").exists():
        return out_dir
    return generate_corpus(out_dir, seed=seed, **settings)
