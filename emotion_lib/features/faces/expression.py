"""The ``expression`` face backend: expression (not identity) features of one aligned face chip, early-fused.

From the 64x64 chip the ``fer`` backend already finds and aligns it returns, side by side, fer's 128-d FER2013
penultimate features and a compact HOG + uniform-LBP descriptor of the same chip (grey, resized to 48x48, the size
of the CK+ crops). The defaults (12x12 HOG cells, a 3x3 LBP grid) keep the vector at 128 + 324 + 531 = 983 values,
half the 1972 of the CK+ still-image descriptor (8x8 cells, 4x4 grid), since the video branch reads it per frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from emotion_lib.features.faces.descriptors import hog_lbp_features
from emotion_lib.features.faces.fer import FerBackend

HOG_CELLS = (8, 12, 16, 24)
"""HOG cell sizes (pixels of the 48x48 chip) that tile it exactly."""


def descriptor_dim(hog_cell: int, lbp_grid: int) -> int:
    """Length of the HOG + LBP part: 9 bins x 4 cells per block x blocks, plus 59 LBP bins per grid cell."""
    blocks = 48 // hog_cell - 1
    return 36 * blocks**2 + 59 * lbp_grid**2


class ExpressionBackend(FerBackend):
    """fer's 128-d FER2013 features + HOG + LBP of the same aligned chip (``128 + descriptor_dim`` values).

    ``hog_cell`` is the HOG cell size in pixels of the 48x48 grey chip (one of :data:`HOG_CELLS`), ``lbp_grid``
    the number of LBP histogram cells per side (1 to 6). TensorFlow is imported by the fer model, after openSMILE.
    """

    name = "expression"
    FER_DIM = FerBackend.OUTPUTS["features"]

    def __init__(
        self,
        hog_cell: int = 12,
        lbp_grid: int = 3,
        detect_width: int = 320,
        upsample: int = 1,
        coarse_first: bool = True,
    ) -> None:
        self.check(hog_cell=hog_cell, lbp_grid=lbp_grid)
        super().__init__("features", detect_width, upsample, coarse_first)
        self.hog_cell, self.lbp_grid = hog_cell, lbp_grid
        self.dim = self.FER_DIM + descriptor_dim(hog_cell, lbp_grid)

    @classmethod
    def check(cls, hog_cell: int = 12, lbp_grid: int = 3, **_) -> None:
        if hog_cell not in HOG_CELLS:
            raise ValueError(f"expression hog_cell must be one of {HOG_CELLS}, got {hog_cell!r}")
        if isinstance(lbp_grid, bool) or not isinstance(lbp_grid, int) or not 1 <= lbp_grid <= 6:
            raise ValueError(f"expression lbp_grid must be an integer from 1 to 6, got {lbp_grid!r}")
        super().check(output="features")

    def _model_config(self) -> dict:
        return {
            **super()._model_config(),
            "descriptor": "hog+lbp of the 48x48 grey chip",
            "hog_cell": self.hog_cell,
            "lbp_grid": self.lbp_grid,
        }

    def _embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
        grey = [cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY) for chip in chips]
        grey = np.stack([cv2.resize(image, (48, 48), interpolation=cv2.INTER_AREA) for image in grey])
        descriptor = hog_lbp_features(grey, self.lbp_grid, self.hog_cell)
        return np.hstack([super()._embed_chips(chips), descriptor]).astype(np.float32)
