"""Hand-crafted texture descriptors of 48x48 grey face images: HOG and uniform-LBP histograms (CK+ stills and the
``expression`` backend's chips)."""

from __future__ import annotations

import numpy as np


def hog_lbp_features(images: np.ndarray, grid: int = 4, cell: int = 8) -> np.ndarray:
    """HOG (``cell`` x ``cell`` cells, 2x2-cell blocks, 9 bins) + square-rooted uniform-LBP histograms on a
    ``grid`` x ``grid`` layout, of 48x48 grey images: 900 + 944 values with the defaults, 324 + 531 with
    ``cell=12, grid=3``."""
    import cv2

    if 48 % cell:
        raise ValueError(f"HOG cell must divide 48, got {cell}")
    hog = cv2.HOGDescriptor((48, 48), (2 * cell, 2 * cell), (cell, cell), (cell, cell), 9)
    rows = []
    for image in images:
        codes = _uniform_lbp(image)
        size = image.shape[0] // grid
        histograms = [
            np.bincount(codes[r : r + size, c : c + size].ravel(), minlength=59) / size**2
            for r in range(0, grid * size, size)
            for c in range(0, grid * size, size)
        ]
        rows.append(np.concatenate([hog.compute(image).ravel(), np.sqrt(np.concatenate(histograms))]))
    return np.asarray(rows, dtype=np.float32)


def _uniform_lbp(image: np.ndarray) -> np.ndarray:
    """8-neighbour LBP codes mapped to the 59 uniform patterns (58 uniform + 1 for all others)."""
    padded = np.pad(image.astype(np.int16), 1, mode="edge")
    centre = padded[1:-1, 1:-1]
    offsets = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)]
    codes = np.zeros(image.shape, dtype=np.int32)
    for bit, (dr, dc) in enumerate(offsets):
        neighbour = padded[1 + dr : padded.shape[0] - 1 + dr, 1 + dc : padded.shape[1] - 1 + dc]
        codes |= (neighbour >= centre).astype(np.int32) << bit
    return _UNIFORM_MAP[codes]


def _uniform_map() -> np.ndarray:
    mapping = np.full(256, 58, dtype=np.int32)
    label = 0
    for code in range(256):
        bits = [(code >> i) & 1 for i in range(8)]
        if sum(bits[i] != bits[(i + 1) % 8] for i in range(8)) <= 2:
            mapping[code] = label
            label += 1
    return mapping


_UNIFORM_MAP = _uniform_map()
