"""Progress messages of the library (the ``logging`` module) made visible in notebooks.

The library reports long work (training epochs, ablation runs, cross-validation folds, experiments) through
``logging`` at level INFO under the ``emotion_lib`` logger. Nothing shows until a handler is configured: the
command line does it with :func:`logging.basicConfig`, notebooks call :func:`show_progress` in their import cell.
Logging never draws random numbers, so switching it on or off changes no result.
"""

from __future__ import annotations

import logging
import sys

LOGGER_NAME = "emotion_lib"
FORMAT = "%(asctime)s %(message)s"
DATE_FORMAT = "%H:%M:%S"


class StdoutHandler(logging.StreamHandler):
    """A handler writing to whatever ``sys.stdout`` is when a record arrives.

    Jupyter (and pytest's ``capsys``) replace ``sys.stdout`` after import; a plain ``StreamHandler`` would keep
    writing to the stream it was created with, which a notebook does not show.
    """

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:  # the base class assigns a stream; the current sys.stdout is used instead
        pass


def show_progress(level: int = logging.INFO) -> None:
    """Print the library's log records at ``level`` and above on standard output (a notebook cell's output).

    Calling it again changes the level and adds no second handler; :func:`hide_progress` removes it.
    """
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    handler = next((h for h in logger.handlers if isinstance(h, StdoutHandler)), None)
    if handler is None:
        handler = StdoutHandler()
        handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
        logger.addHandler(handler)
    handler.setLevel(level)


def hide_progress() -> None:
    """Undo :func:`show_progress`: remove its handler and reset the ``emotion_lib`` logger's level."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in [h for h in logger.handlers if isinstance(h, StdoutHandler)]:
        logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)
