"""emotion_lib: multimodal (voice + face) emotion recognition for the research compendium.

Importing the package loads openSMILE before anything can load TensorFlow: the two libraries export the
same FFT symbols and the other order crashes on the first openSMILE call (see CONTRIBUTING.md).
"""

try:  # import-order guard, see module docstring
    import opensmile as _opensmile  # noqa: F401
except ImportError:  # pragma: no cover - opensmile is a core dependency
    pass

from emotion_lib.labels import EMOTION_COLOURS, EMOTIONS

__version__ = "0.1.0"
__all__ = ["EMOTIONS", "EMOTION_COLOURS", "__version__"]
