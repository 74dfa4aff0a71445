"""Extraction events for tests: where a run is, written to a file, and an optional pause at one of them.

Off unless the environment sets ``EMOTION_EXTRACTION_EVENTS`` to a file path. Then every process of an extraction
run (the parent and its workers, which inherit the environment) appends one line per event to that file:

- ``clip-start <clip_id>``: a worker (or the serial runner) starts a clip;
- ``smile-frame <file>``: openSMILE handed the first frame of a signal to its Python callback (the run is inside
  openSMILE);
- ``clip-stored <clip_id>``: the clip's entry is in the cache.

``EMOTION_EXTRACTION_PAUSE=<event>:<n>`` (``n`` defaults to 1) makes a process that emits its ``n``-th event of
that kind (counted per process and events file) wait, right after writing the line, until the file holds a line
``resume`` (or :data:`PAUSE_SECONDS` have passed). A test reads the file to learn that the run reached a moment
and can signal the run there, e.g. Ctrl-C while openSMILE is inside its frame callback, instead of guessing the
moment with a sleep. Signals reach the paused process as usual (the wait is a loop of short sleeps in Python).
"""

from __future__ import annotations

import os
import time
from collections import Counter

EVENTS_VARIABLE, PAUSE_VARIABLE = "EMOTION_EXTRACTION_EVENTS", "EMOTION_EXTRACTION_PAUSE"
RESUME = "resume"
"""The line that ends every pause."""
PAUSE_SECONDS = 30.0
"""Longest pause (a test that never writes ``resume`` does not hang the run for ever)."""

_counts: Counter[tuple[str, str]] = Counter()
"""Events emitted by this process, per events file and kind."""


def emit(event: str, subject: str) -> None:
    """Append ``<event> <subject>`` to the events file when ``EMOTION_EXTRACTION_EVENTS`` names one (else do
    nothing), then pause if ``EMOTION_EXTRACTION_PAUSE`` asks for this occurrence of ``event``."""
    path = os.environ.get(EVENTS_VARIABLE)
    if not path:
        return
    with open(path, "a") as events:  # one short append per line: lines of several processes do not interleave
        events.write(f"{event} {subject}\n")
    _counts[path, event] += 1
    name, _, count = os.environ.get(PAUSE_VARIABLE, "").partition(":")
    if name == event and _counts[path, event] == int(count or 1):
        _wait_for_resume(path)


def _wait_for_resume(path: str) -> None:
    deadline = time.monotonic() + PAUSE_SECONDS
    while time.monotonic() < deadline:
        with open(path) as events:
            if RESUME in events.read().split("\n"):
                return
        time.sleep(0.01)
