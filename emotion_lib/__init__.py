"""emotion_lib: multimodal (voice + face) emotion recognition for the research compendium.

Importing the package loads openSMILE before anything can load TensorFlow: the two libraries export the
same FFT symbols and the other order crashes on the first openSMILE call (see CONTRIBUTING.md).

``emotion_lib.predict`` (what emotion is in a file?) is :func:`emotion_lib.inference.predict`, loaded on first
use, so ``import emotion_lib`` stays light (no TensorFlow). It is the one name the package root takes from a higher
layer (``tests/test_architecture.py`` allows exactly this lazy import).
"""

try:  # import-order guard, see module docstring
    import opensmile as _opensmile  # noqa: F401
except ImportError:  # pragma: no cover - opensmile is a core dependency
    pass

from emotion_lib.labels import EMOTION_COLOURS, EMOTIONS

__version__ = "0.1.0"
__all__ = ["EMOTIONS", "EMOTION_COLOURS", "__version__", "predict"]
_LAZY = ("predict",)


def __getattr__(name: str):
    """``emotion_lib.predict``, imported from :mod:`emotion_lib.inference` on first use."""
    if name in _LAZY:
        from emotion_lib import inference

        return getattr(inference, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
