"""openSMILE in process, lean: a feature set's config pruned to what is read, and one engine reused across clips.

``opensmile.Smile`` builds a new openSMILE engine for every signal (parsing the config again) and runs every
component its config declares: asking eGeMAPSv02 for low-level descriptors still computes all the functionals'
inputs. :func:`lean_config` inlines a config's includes and keeps only the components the sink's levels depend
on; :class:`SmileEngine` initialises openSMILE once and resets it between signals. The features are identical to
``opensmile.Smile``'s (``tests/test_features_smile.py``); on RAVDESS clips this is about a fifth faster.

openSMILE hands each frame to a Python callback, and an exception raised there (a Ctrl-C landing in it) is printed
and dropped by ctypes: the run goes on one frame short. The engine therefore holds Ctrl-C while openSMILE runs
(:func:`deferred_interrupt`) and refuses a run whose row count differs from the one its framers give
(:class:`FrameGeometry`).
"""

from __future__ import annotations

import hashlib
import re
import signal
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np
import opensmile
from opensmile.core.lib import OpenSMILE

from emotion_lib.features.events import emit
from emotion_lib.utils import atomic_write_bytes

CONFIG_ROOT = Path(opensmile.__file__).parent / "core" / "config"
SOURCE_COMPONENT, SINK_COMPONENT = "extsource", "extsink"
ENGINE_OPTIONS = {
    "source": CONFIG_ROOT / "shared" / "standard_external_wave_input.conf.inc",
    "sink": CONFIG_ROOT / "shared" / "standard_external_data_output_single.conf.inc",
    "bufferModeRbConf": CONFIG_ROOT / "shared" / "BufferModeRb.conf.inc",
    "frameModeFunctionalsConf": CONFIG_ROOT / "shared" / "FrameModeFunctionals.conf.inc",
}
"""The engine options ``opensmile.Smile`` passes (external int16 audio in, external sink out)."""
KEPT_INCLUDES = ("source", "sink")
"""Includes left to the engine options: the external audio source and sink."""

_INCLUDE = re.compile(r"\\\{(?:\\cm\[(\w+)(?:\{([^}]*)\})?[^\]]*\]|([^}]*))\}")
"""``\\{file}`` or ``\\{\\cm[option{default}:description]}`` (an include whose path is an option)."""
_SECTION = re.compile(r"^\s*\[(\w+):\w+\]")
_INSTANCE = re.compile(r"^\s*instance\[(\w+)\]\.type\s*=\s*(\w+)", re.M)
_READER = re.compile(r"^\s*\w*reader\d*\.dmLevel\s*=\s*([^\r\n]+)")
_WRITER = re.compile(r"^\s*writer\.dmLevel\s*=\s*(\S+)")
_OPTION = re.compile(r"^\s*([\w.]+)\s*=\s*([^;#%\r\n]*?)\s*(?:(?://|;|#|%).*)?$")


class SmileError(RuntimeError):
    """openSMILE returned something other than the features of the whole signal."""


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) while the block runs, then hand it to the handler that was installed (by default,
    raise :class:`KeyboardInterrupt`), even when the block raised.

    For code that an interrupt must not cut in the middle: a ctypes callback drops the exception, and a cleanup
    should finish. Outside the main thread (which receives no signal) or when SIGINT is ignored, nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):
        yield
        return
    received: list[int] = []
    signal.signal(signal.SIGINT, lambda number, frame: received.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            previous(signal.SIGINT, None)


class Component(NamedTuple):
    """An openSMILE component instance: its type, the data-memory levels it reads and the level it writes."""

    type: str
    reads: frozenset[str]
    writes: str | None


def expand_includes(path: Path, options: dict[str, str] | None = None) -> str:
    """The text of config ``path`` with its includes inlined (recursively), except the source and sink includes.

    An option include without a default (``\\{\\cm[bufferModeRbConf]}``) takes the path given at the option's
    first mention, or in ``options``.
    """
    path, options = Path(path), {} if options is None else options
    if not path.is_file():
        raise FileNotFoundError(f"openSMILE config not found: {path}")

    def inline(match: re.Match) -> str:
        option, default, plain = match.groups()
        if option in KEPT_INCLUDES:
            return match.group(0)
        if option is not None:
            if default is not None:
                options.setdefault(option, str((path.parent / default).resolve()))
            if option not in options:
                raise ValueError(f"{path}: include option {option!r} has no default path")
            target = Path(options[option])
        else:
            target = path.parent / plain.strip()
        return expand_includes(target.resolve(), options)

    return _INCLUDE.sub(inline, path.read_text())


def section_options(config: str, name: str) -> dict[str, str]:
    """The ``option = value`` lines of section ``[name:...]`` of a config text (comments removed)."""
    options: dict[str, str] = {}
    inside = False
    for line in config.splitlines():
        if match := _SECTION.match(line):
            inside = match.group(1) == name
        elif inside and (match := _OPTION.match(line)):
            options[match.group(1)] = match.group(2)
    return options


class FrameGeometry(NamedTuple):
    """How many rows openSMILE gives for a signal: the window and hop (samples) of the config's longest framer,
    and whether the sink gets one row per signal (functionals of the whole input)."""

    size: int
    step: int
    whole_signal: bool

    @classmethod
    def of(cls, config: str, sample_rate: int) -> FrameGeometry | None:
        """The geometry of an expanded (pruned) config text; ``None`` when it has no framer with a size and step."""
        instances = components(config)
        frames = []
        for name, component in instances.items():
            options = section_options(config, name)
            if component.type == "cFramer" and "frameSize" in options and "frameStep" in options:
                frames.append((float(options["frameSize"]), float(options["frameStep"])))
        if not frames:
            return None
        size, step = max(frames)
        whole = any(
            component.type == "cFunctionals" and section_options(config, name).get("frameMode") == "full"
            for name, component in instances.items()
        )
        return cls(round(size * sample_rate), round(step * sample_rate), whole)

    def rows(self, samples: int) -> int:
        """Rows for a signal of ``samples``: none below one window; else one for whole-signal functionals, or one
        per complete window plus the padded last frame openSMILE emits at the end of the input."""
        if samples < self.size:
            return 0
        return 1 if self.whole_signal else (samples - self.size) // self.step + 2


def components(config: str) -> dict[str, Component]:
    """The component instances of an expanded config text, by name."""
    reads: dict[str, set[str]] = {}
    writes: dict[str, str] = {}
    section = None
    for line in config.splitlines():
        if match := _SECTION.match(line):
            section = match.group(1)
        elif section and (match := _READER.match(line)):
            levels = match.group(1).split("//")[0]
            reads.setdefault(section, set()).update(level.strip() for level in levels.split(";") if level.strip())
        elif section and (match := _WRITER.match(line)):
            writes[section] = match.group(1)
    return {
        name: Component(kind, frozenset(reads.get(name, ())), writes.get(name))
        for name, kind in _INSTANCE.findall(config)
    }


def prune(config: str, sink_levels: Sequence[str]) -> str:
    """``config`` without the component instances that none of ``sink_levels`` depends on.

    The unused instance declarations are commented out; their sections stay (openSMILE ignores a section
    without an instance).
    """
    instances = components(config)
    writers: dict[str, list[str]] = {}
    for name, component in instances.items():
        if component.writes:
            writers.setdefault(component.writes, []).append(name)
    missing = [level for level in sink_levels if level not in writers]
    if missing:
        raise ValueError(f"no component of the config writes the level(s) {', '.join(missing)}")
    needed: set[str] = set()
    pending = list(sink_levels)
    while pending:
        for name in writers.get(pending.pop(), ()):
            if name not in needed:
                needed.add(name)
                pending.extend(instances[name].reads)
    unused = {name for name, component in instances.items() if name not in needed and component.writes}

    def comment(match: re.Match) -> str:
        return f";pruned {match.group(0).strip()}" if match.group(1) in unused else match.group(0)

    return _INSTANCE.sub(comment, config)


def lean_config(config_path: Path | str, sink_levels: Sequence[str]) -> Path:
    """Path of ``config_path`` expanded and pruned to ``sink_levels``, written once (atomically) to the temp dir."""
    text = prune(expand_includes(Path(config_path), {k: str(v) for k, v in ENGINE_OPTIONS.items()}), sink_levels)
    data = text.encode()
    path = (
        Path(tempfile.gettempdir()) / f"emotion_lib_{Path(config_path).stem}_{hashlib.sha1(data).hexdigest()[:12]}.conf"
    )
    if not path.is_file():
        atomic_write_bytes(path, data)
    return path


class SmileEngine:
    """One openSMILE engine for a config, reused for every signal: ``engine(signal)`` is a ``(frames, features)``
    float32 array, one row per sink frame (openSMILE reads the sink levels side by side).

    The signal is given to openSMILE as 16-bit samples like ``opensmile.Smile`` does, clipped to full scale
    (``opensmile.Smile`` wraps a sample of +1.0 around to -1.0).
    """

    def __init__(self, config_path: Path | str, sink_levels: Sequence[str], sample_rate: int = 16000) -> None:
        self.config_path, self.sink_levels, self.sample_rate = Path(config_path), tuple(sink_levels), sample_rate
        self.geometry = FrameGeometry.of(self.config_path.read_text(), sample_rate)
        self._engine: OpenSMILE | None = None
        self._used = False
        engine = self._ready()
        count = engine.external_sink_get_num_elements(SINK_COMPONENT)
        self.feature_names = [engine.external_sink_get_element_name(SINK_COMPONENT, i) for i in range(count)]

    def _ready(self) -> OpenSMILE:
        """The engine, initialised on first use and reset after a run."""
        if self._engine is None:
            options = {
                **ENGINE_OPTIONS,
                "sinkLevel": ";".join(self.sink_levels),
                "sampleRate": self.sample_rate,
                "nBits": 16,
            }
            engine = OpenSMILE()
            engine.initialize(str(self.config_path), options, loglevel=0)
            self._engine, self._used = engine, False  # only an initialised engine is kept
        elif self._used:
            self._engine.reset()  # drops the sink callback: __call__ registers a new one
            self._engine._callbacks.clear()  # opensmile's wrapper would keep every old callback alive
            self._used = False
        return self._engine

    def __call__(self, signal: np.ndarray, name: str = "signal") -> np.ndarray:
        """Features of a mono float signal at ``sample_rate`` (no rows when it is shorter than one frame).

        Raises:
            SmileError: openSMILE gave another number of rows than the signal's length implies (a frame was lost
                in the callback); the message names ``name``.
        """
        samples = np.clip(np.asarray(signal, dtype=np.float32) * 32768, -32768, 32767).astype(np.int16)
        rows: list[np.ndarray] = []
        try:
            with deferred_interrupt():  # the reset of the previous run included: Ctrl-C there broke every later run
                engine = self._ready()
                engine.external_sink_set_callback(SINK_COMPONENT, lambda row: self._on_frame(rows, row, name))
                engine.external_audio_source_write_data(SOURCE_COMPONENT, samples.tobytes())
                engine.external_audio_source_set_eoi(SOURCE_COMPONENT)
                self._used = True
                engine.run()
        except BaseException:
            self.close()  # a failed or interrupted run leaves the engine in an unknown state: start afresh next time
            raise
        expected = None if self.geometry is None else self.geometry.rows(len(samples))
        if expected is not None and len(rows) != expected:
            raise SmileError(
                f"{name}: openSMILE gave {len(rows)} frame(s) where {len(samples)} samples give {expected} "
                "(a frame was lost, e.g. to an interrupt in its callback); the features are refused"
            )
        if not rows:
            return np.zeros((0, len(self.feature_names)), dtype=np.float32)
        return np.stack(rows).astype(np.float32, copy=False)

    def _on_frame(self, rows: list[np.ndarray], row: np.ndarray, name: str) -> None:
        """The sink callback. The first frame of a signal emits the ``smile-frame`` event of
        :mod:`emotion_lib.features.events` (a test's way into the callback)."""
        if not rows:
            emit("smile-frame", name)
        self._on_row(rows, row)

    @staticmethod
    def _on_row(rows: list[np.ndarray], row: np.ndarray) -> None:
        """Keep a copy of one frame (openSMILE reuses the buffer)."""
        rows.append(row.copy())

    def close(self) -> None:
        """Free openSMILE's memory (a later call initialises a new engine)."""
        engine, self._engine = self._engine, None  # forgotten first: an interrupt in free() leaves none half-freed
        if engine is not None:
            engine.free()

    def __del__(self) -> None:
        self.close()
