"""dlib's 128-d face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) rebuilt in Keras.

dlib-bin is built without BLAS, so its own forward pass costs ~80 ms per face; the same network under
TensorFlow (oneDNN) takes ~10 ms per face in batches. The ``.dat`` file is dlib's binary serialization of
``anet_type`` from dlib's ``examples/dnn_face_recognition_ex.cpp``::

    loss_metric<fc_no_bias<128, avg_pool_everything<alevel0<alevel1<alevel2<alevel3<alevel4<
        max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>>>>>>>

It is parsed here following dlib's ``serialize.h`` (integers: a control byte holding the byte count, 0x80
for negative, then little-endian bytes; floats: ``float_details`` mantissa and exponent as two such integers;
bools: ASCII ``'0'``/``'1'``; strings: length then bytes) and ``dnn/tensor.h`` (tensor version 2: ``n, k, nr,
nc`` then little-endian float32), accepting the serialization versions this file uses (``add_layer`` 2 and 3,
``con_4``, ``affine_``, ``fc_2``, ``max_pool_2``, ``avg_pool_2``). Layers nest outermost first: each
``add_layer`` writes its version, its whole subnetwork, then its own details, so the parser walks the known
type structure exactly as dlib does and checks every layer name, shape, stride and padding against it. The
converted weights are cached as an ``.npz`` keyed by the ``.dat`` file's hash. Every ``affine`` (dlib's
inference-time batch norm) follows a ``con`` and is folded into it. Inputs are RGB chips normalised like
``input_rgb_image_sized``: ``(pixel - channel mean) / 256``. The output is the raw ``fc`` output (dlib does
not L2-normalise it). ``add_prev`` of tensors of different shapes zero-pads the smaller one, as dlib does.

TensorFlow and Keras are imported lazily; this module imports ``emotion_lib`` (hence openSMILE) first.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emotion_lib.paths import CACHE_DIR
from emotion_lib.utils import atomic_write_bytes

CHIP_SIZE = 150
EMBEDDING_DIM = 128
CONVERTER_VERSION = 1
"""Bumped when the cached ``.npz`` layout changes; part of the cache file name."""


class DlibModelError(ValueError):
    """The ``.dat`` file is not the dlib face-recognition ResNet it should be; the message names the file."""


# the network's layers, innermost (next to the input) first; ("tag"|"skip"|"add_prev", id) address tensors


def _block(filters: int, stride: int) -> list[tuple]:
    """dlib's ``block<N, affine, stride>``: con 3x3 (stride), affine, relu, con 3x3, affine."""
    return [("con", filters, 3, stride), ("affine",), ("relu",), ("con", filters, 3, 1), ("affine",)]


def _ares(filters: int) -> list[tuple]:
    """``ares<N>``: relu(block(x) + x)."""
    return [("tag", 1), *_block(filters, 1), ("add_prev", 1), ("relu",)]


def _ares_down(filters: int) -> list[tuple]:
    """``ares_down<N>``: relu(block_stride2(x) + avg_pool_2x2_s2(x))."""
    return [("tag", 1), *_block(filters, 2), ("tag", 2), ("skip", 1), ("avg_pool", 2, 2), ("add_prev", 2), ("relu",)]


def anet_layers() -> list[tuple]:
    """The layers of dlib's ``anet_type`` from the input to the 128-d output."""
    layers = [("con", 32, 7, 2), ("affine",), ("relu",), ("max_pool", 3, 2)]
    layers += _ares(32) * 3  # alevel4
    layers += _ares_down(64) + _ares(64) * 3  # alevel3
    layers += _ares_down(128) + _ares(128) * 2  # alevel2
    layers += _ares_down(256) + _ares(256) * 2  # alevel1
    layers += _ares_down(256)  # alevel0
    return layers + [("avg_pool_everything",), ("fc", EMBEDDING_DIM)]


# dlib's serialization format


class _Reader:
    """Sequential reader of dlib's portable serialization; every error names the file and the byte offset."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path, self.pos = data, path, 0

    def fail(self, what: str) -> DlibModelError:
        return DlibModelError(
            f"{self.path}: not a readable dlib face-recognition ResNet ({what} at byte "
            f"{self.pos} of {len(self.data)}); the file is corrupt, truncated or another model"
        )

    def take(self, count: int) -> bytes:
        if self.pos + count > len(self.data):
            raise self.fail(f"unexpected end of file reading {count} bytes")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def int(self) -> int:
        control = self.take(1)[0]
        size = control & 0x0F
        if control & 0x70 or size > 8:
            raise self.fail(f"invalid integer control byte {control:#04x}")
        value = int.from_bytes(self.take(size), "little")
        return -value if control & 0x80 else value

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        specials = {32000: math.inf, 32001: -math.inf, 32002: math.nan}
        return specials[exponent] if exponent in specials else math.ldexp(mantissa, exponent)

    def bool(self) -> bool:
        value = self.take(1)
        if value not in (b"0", b"1"):
            raise self.fail(f"invalid bool byte {value!r}")
        return value == b"1"

    def string(self) -> str:
        return self.take(self.int()).decode("latin-1")

    def expect(self, *names: str) -> str:
        start, name = self.pos, self.string()
        if name not in names:
            self.pos = start
            raise self.fail(f"expected {' or '.join(names)}, found {name[:40]!r}")
        return name

    def version(self, allowed: Sequence[int], what: str) -> int:
        value = self.int()
        if value not in allowed:
            raise self.fail(f"unexpected {what} version {value}")
        return value

    def shape(self) -> tuple[int, int, int, int]:
        return self.int(), self.int(), self.int(), self.int()

    def tensor(self) -> np.ndarray:
        """A ``resizable_tensor`` (version 2: dims then raw little-endian float32) as an ``(n, k, nr, nc)`` array."""
        self.version((2,), "tensor")
        shape = self.shape()
        if min(shape) < 0:
            raise self.fail(f"negative tensor shape {shape}")
        count = int(np.prod(shape))
        return np.frombuffer(self.take(4 * count), dtype="<f4").reshape(shape).astype(np.float32)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        self.version((1,), "alias_tensor")
        return self.shape()


def con_padding(size: int, stride: int) -> int:
    """dlib's default ``con`` padding: ``size // 2`` for stride 1, none otherwise."""
    return size // 2 if stride == 1 else 0


def _check(reader: _Reader, what: str, found, expected) -> None:
    if found != expected:
        raise reader.fail(f"{what} is {found}, expected {expected}")


def _read_con(reader: _Reader, spec: tuple) -> dict[str, np.ndarray]:
    _, filters, size, stride = spec
    reader.expect("con_4")
    params = reader.tensor().ravel()
    _check(reader, "con filters", reader.int(), filters)
    padding = con_padding(size, stride)
    _check(
        reader,
        "con size, stride and padding",
        tuple(reader.int() for _ in range(6)),
        (size, size, stride, stride, padding, padding),
    )
    filter_shape = reader.alias_tensor()
    in_channels = filter_shape[1]
    _check(reader, "con filter shape", filter_shape, (filters, in_channels, size, size))
    _check(reader, "con bias shape", reader.alias_tensor(), (1, filters, 1, 1))
    for _ in range(4):  # learning-rate and weight-decay multipliers
        reader.float()
    n_weights = filters * in_channels * size * size
    _check(reader, "con parameter count", params.size, n_weights + filters)
    kernel = params[:n_weights].reshape(filters, in_channels, size, size).transpose(2, 3, 1, 0)
    return {"kernel": np.ascontiguousarray(kernel), "bias": params[n_weights:].copy()}


def _read_affine(reader: _Reader, _spec: tuple) -> dict[str, np.ndarray]:
    reader.expect("affine_")
    params = reader.tensor().ravel()
    gamma_shape, beta_shape = reader.alias_tensor(), reader.alias_tensor()
    channels = gamma_shape[1]
    _check(
        reader, "affine gamma and beta shapes (per-channel mode)", (gamma_shape, beta_shape), ((1, channels, 1, 1),) * 2
    )
    _check(reader, "affine parameter count", params.size, 2 * channels)
    reader.int()  # mode (CONV_MODE), implied by the per-channel shapes checked above
    return {"gamma": params[:channels].copy(), "beta": params[channels:].copy()}


def _read_pool(reader: _Reader, spec: tuple) -> dict[str, np.ndarray]:
    kind = spec[0]
    size, stride = (0, 1) if kind == "avg_pool_everything" else spec[1:]
    reader.expect("max_pool_2" if kind == "max_pool" else "avg_pool_2")
    _check(
        reader,
        f"{kind} size, stride and padding",
        tuple(reader.int() for _ in range(6)),
        (size, size, stride, stride, 0, 0),
    )
    return {}


def _read_fc(reader: _Reader, spec: tuple) -> dict[str, np.ndarray]:
    reader.expect("fc_2")
    outputs, inputs = reader.int(), reader.int()
    _check(reader, "fc outputs", outputs, spec[1])
    params = reader.tensor().ravel()
    _check(reader, "fc weight shape", reader.alias_tensor(), (inputs, outputs, 1, 1))
    reader.alias_tensor()  # bias alias, unused without a bias
    reader.int()  # bias mode, checked through the parameter count below
    for _ in range(4):  # learning-rate and weight-decay multipliers
        reader.float()
    _check(reader, "fc parameter count (no bias)", params.size, inputs * outputs)
    return {"kernel": params.reshape(inputs, outputs).copy()}


def _read_named(name: str):
    def read(reader: _Reader, _spec: tuple) -> dict[str, np.ndarray]:
        reader.expect(name)
        return {}

    return read


_DETAILS = {
    "con": _read_con,
    "affine": _read_affine,
    "relu": _read_named("relu_"),
    "add_prev": _read_named("add_prev_"),
    "max_pool": _read_pool,
    "avg_pool": _read_pool,
    "avg_pool_everything": _read_pool,
    "fc": _read_fc,
}


def _read_input(reader: _Reader) -> np.ndarray:
    reader.expect("input_rgb_image_sized")
    mean = np.array([reader.float() for _ in range(3)], dtype=np.float32)
    _check(reader, "input size", (reader.int(), reader.int()), (CHIP_SIZE, CHIP_SIZE))
    return mean


def parse_model(path: Path | str) -> dict[str, np.ndarray]:
    """The weights of a dlib face-recognition ResNet ``.dat`` file: ``input.mean`` (RGB channel means) and
    ``NNN.kernel`` / ``NNN.bias`` / ``NNN.gamma`` / ``NNN.beta`` for layer ``NNN`` of :func:`anet_layers`
    (conv kernels channels-last ``(kh, kw, in, out)``, fc kernel ``(in, out)``)."""
    path = Path(path)
    if not path.is_file():
        raise DlibModelError(f"{path}: dlib face-recognition model file not found")
    data = path.read_bytes()
    if data[:3] == b"BZh":
        raise DlibModelError(f"{path}: bz2-compressed; decompress it first (bunzip2)")
    reader, layers = _Reader(data, path), anet_layers()
    weights: dict[str, np.ndarray] = {}

    def walk(index: int) -> None:
        """Read the layer ``index`` (counted from the input) and everything below it, as dlib nests them."""
        spec = layers[index]
        if spec[0] in ("tag", "skip"):
            reader.version((1,), f"add_{spec[0]}_layer")
            walk(index - 1)
            return
        reader.version((3,) if index == 0 else (2,), "add_layer")
        if index == 0:
            weights["input.mean"] = _read_input(reader)
        else:
            walk(index - 1)
        weights.update({f"{index:03d}.{name}": value for name, value in _DETAILS[spec[0]](reader, spec).items()})
        for _ in range(3):  # setup-called, gradient-stale and output-disabled flags
            reader.bool()
        for _ in range(3):  # gradient and output buffers (empty)
            reader.tensor()
        if index == 0:
            reader.int()  # sample expansion factor

    reader.version((1,), "add_loss_layer")
    reader.expect("loss_metric_", "loss_metric_2")
    reader.float(), reader.float()  # margin and distance threshold: training only
    walk(len(layers) - 1)
    if reader.pos != len(data):
        raise reader.fail(f"{len(data) - reader.pos} unexpected trailing bytes")
    return weights


def load_weights(path: Path | str | None = None, cache_dir: Path | str | None = None) -> dict[str, np.ndarray]:
    """:func:`parse_model` of ``path`` (default: the file in ``face_recognition_models``), cached as an ``.npz``
    under ``cache_dir/models`` keyed by the file's SHA-256, so the parse runs once per model file."""
    path = Path(path) if path else default_model_path()
    if not path.is_file():
        raise DlibModelError(f"{path}: dlib face-recognition model file not found")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    cached = Path(cache_dir or CACHE_DIR) / "models" / f"dlib_resnet_v1_{digest}_c{CONVERTER_VERSION}.npz"
    if cached.is_file():
        with np.load(cached, allow_pickle=False) as stored:
            return {name: stored[name] for name in stored.files}
    weights = parse_model(path)
    buffer = io.BytesIO()
    np.savez(buffer, **weights)
    atomic_write_bytes(cached, buffer.getvalue())
    return weights


def default_model_path() -> Path:
    """``dlib_face_recognition_resnet_model_v1.dat`` inside the installed ``face_recognition_models``."""
    import face_recognition_models

    return Path(face_recognition_models.face_recognition_model_location())


def build_model(weights: dict[str, np.ndarray]):
    """The Keras model ``(N, 150, 150, 3) normalised RGB -> (N, 128)`` with ``affine`` folded into ``con``."""
    import keras

    layers, tags = anet_layers(), {}
    x = inputs = keras.Input((CHIP_SIZE, CHIP_SIZE, 3), name="rgb")
    for index, spec in enumerate(layers):
        kind = spec[0]
        if kind == "con":
            _, filters, size, stride = spec
            kernel, bias = weights[f"{index:03d}.kernel"], weights[f"{index:03d}.bias"]
            gamma, beta = weights[f"{index + 1:03d}.gamma"], weights[f"{index + 1:03d}.beta"]  # the next affine
            if con_padding(size, stride):
                x = keras.layers.ZeroPadding2D(con_padding(size, stride))(x)
            conv = keras.layers.Conv2D(filters, size, strides=stride, padding="valid")
            x = conv(x)
            conv.set_weights([kernel * gamma, bias * gamma + beta])
        elif kind == "relu":
            x = keras.layers.ReLU()(x)
        elif kind == "max_pool":
            x = keras.layers.MaxPooling2D(spec[1], spec[2])(x)
        elif kind == "avg_pool":
            x = keras.layers.AveragePooling2D(spec[1], spec[2])(x)
        elif kind == "tag":
            tags[spec[1]] = x
        elif kind == "skip":
            x = tags[spec[1]]
        elif kind == "add_prev":
            x = keras.layers.Add()(_zero_pad_to_common(keras, x, tags[spec[1]]))
        elif kind == "avg_pool_everything":
            x = keras.layers.GlobalAveragePooling2D()(x)
        elif kind == "fc":
            dense = keras.layers.Dense(spec[1], use_bias=False)
            x = dense(x)
            dense.set_weights([weights[f"{index:03d}.kernel"]])
    return keras.Model(inputs, x, name="dlib_face_recognition_resnet_v1")


def _zero_pad_to_common(keras, *tensors) -> list:
    """dlib's ``add_prev`` of two tensors of different shapes: the result has the larger size in every dimension
    and the smaller tensor is zero-padded at the end (bottom rows, right columns, last channels)."""
    target = [max(t.shape[axis] for t in tensors) for axis in (1, 2, 3)]

    def pad(tensor):
        widths = [[0, 0]] + [[0, size - tensor.shape[axis]] for axis, size in zip((1, 2, 3), target)]
        return keras.layers.Lambda(lambda t: keras.ops.pad(t, widths))(tensor)

    return [pad(t) if list(t.shape[1:]) != target else t for t in tensors]


class DlibResnet:
    """The Keras port as a callable: a list of aligned ``(150, 150, 3)`` RGB uint8 chips -> ``(N, 128)`` float32,
    equal to ``dlib.face_recognition_model_v1(path).compute_face_descriptor(chips)`` up to float rounding.

    The model runs eagerly. A ``tf.function`` graph is ~1.5x faster on large batches, but with oneDNN on
    (TensorFlow's default here) its graph rewrite (``MklLayoutRewritePass``) segfaulted in about one process in
    four (TensorFlow 2.21), and turning oneDNN off would change TensorFlow for the whole process.
    """

    def __init__(self, path: Path | str | None = None, cache_dir: Path | str | None = None) -> None:
        self.path = Path(path) if path else default_model_path()
        weights = load_weights(self.path, cache_dir)
        self.mean = weights["input.mean"]
        self.model = build_model(weights)

    def __call__(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        batch = np.stack(chips)
        if batch.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"dlib ResNet chips must be ({CHIP_SIZE}, {CHIP_SIZE}, 3) RGB, got {batch.shape[1:]}")
        normalised = (batch.astype(np.float32) - self.mean) / np.float32(256.0)
        return np.asarray(self.model(normalised, training=False), dtype=np.float32)
