"""Argument types for the command lines: a number that argparse refuses with a message saying what it expected."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def _number(text: str, kind: type, what: str, accept: Callable[[float], bool]) -> int | float:
    """``text`` as a ``kind`` that ``accept`` takes, else an argparse error saying what is expected."""
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not accept(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An option value of 1 or more."""
    return _number(text, int, "a positive integer", lambda value: value >= 1)


def non_negative_int(text: str) -> int:
    """An option value of 0 or more."""
    return _number(text, int, "an integer of 0 or more", lambda value: value >= 0)


def positive_float(text: str) -> float:
    """A finite option value above 0."""
    return _number(text, float, "a positive number", lambda value: 0 < value < float("inf"))
