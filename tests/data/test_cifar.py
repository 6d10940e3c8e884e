"""The CIFAR-10 binary reader, on small files written here in the exact format."""

import re

import numpy as np
import pytest

from lrpilot.data import load_cifar10, read_cifar_batch
from lrpilot.data.cifar import TEST_FILE, TRAIN_FILES
from lrpilot.errors import LRPilotError

from .formats import cifar_records, write_cifar


def test_read_batch_round_trips(tmp_path):
    written = write_cifar(tmp_path)
    images, labels = read_cifar_batch(tmp_path / "data_batch_3.bin")
    np.testing.assert_array_equal(images, written["data_batch_3.bin"][0])
    np.testing.assert_array_equal(labels, written["data_batch_3.bin"][1])
    assert images.shape == (3, 3, 32, 32) and labels.dtype == np.int64


def test_channel_major_layout(tmp_path):
    images = np.zeros((1, 3, 32, 32), np.uint8)
    images[0, 1, 2, 3] = 200  # green channel, row 2, column 3
    raw = cifar_records(np.array([7]), images)
    assert raw[1 + 1024 + 2 * 32 + 3] == 200
    (tmp_path / "one.bin").write_bytes(raw)
    x, y = read_cifar_batch(tmp_path / "one.bin")
    assert y.tolist() == [7] and x[0, 1, 2, 3] == 200 and x.sum() == 200


@pytest.mark.parametrize("nested", [False, True])
def test_load_normalises_by_train_statistics(tmp_path, nested):
    written = write_cifar(tmp_path / "cifar-10-batches-bin" if nested else tmp_path)
    (x_train, y_train), (x_test, y_test) = load_cifar10(tmp_path)
    assert x_train.shape == (15, 3, 32, 32) and x_test.shape == (3, 3, 32, 32)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    np.testing.assert_allclose(x_train.mean(axis=(0, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(x_train.std(axis=(0, 2, 3)), 1, atol=1e-4)
    np.testing.assert_array_equal(y_train, np.concatenate([written[n][1] for n in TRAIN_FILES]))
    raw_train = np.concatenate([written[n][0] for n in TRAIN_FILES]).astype(np.float64)
    mean, std = raw_train.mean(axis=(0, 2, 3)), raw_train.std(axis=(0, 2, 3))
    expected_test = (written[TEST_FILE][0] - mean[None, :, None, None]) / std[None, :, None, None]
    np.testing.assert_allclose(x_test, expected_test, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(y_test, written[TEST_FILE][1])


def test_truncated_file(tmp_path):
    write_cifar(tmp_path)
    path = tmp_path / "data_batch_2.bin"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(LRPilotError, match=r"data_batch_2.bin has 9218 bytes, expected a positive multiple of 3073"):
        load_cifar10(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(LRPilotError, match="empty.bin has 0 bytes"):
        read_cifar_batch(tmp_path / "empty.bin")


@pytest.mark.parametrize("label", [10, 11])
def test_label_out_of_range(tmp_path, label):
    write_cifar(tmp_path)
    raw = bytearray((tmp_path / TEST_FILE).read_bytes())
    raw[3073] = label  # label byte of the second record
    (tmp_path / TEST_FILE).write_bytes(bytes(raw))
    with pytest.raises(LRPilotError, match=f"test_batch.bin has label {label} in record 1"):
        load_cifar10(tmp_path)


def test_missing_file_names_it(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "data_batch_5.bin").unlink()
    with pytest.raises(LRPilotError, match=f"data_batch_5.bin not found in {re.escape(str(tmp_path))}.*binary version"):
        load_cifar10(tmp_path)


def test_missing_folder(tmp_path):
    with pytest.raises(LRPilotError, match="nowhere does not exist"):
        load_cifar10(tmp_path / "nowhere")


def test_constant_pixels_are_a_data_error_not_a_diverged_run(tmp_path):
    write_cifar(tmp_path)
    for name in TRAIN_FILES:  # every training image's green channel the same grey
        raw = np.frombuffer((tmp_path / name).read_bytes(), dtype=np.uint8).reshape(-1, 3073).copy()
        raw[:, 1 + 1024 : 1 + 2048] = 128
        (tmp_path / name).write_bytes(raw.tobytes())
    with pytest.raises(LRPilotError, match=r"constant G channel .*not CIFAR-10's images"):
        load_cifar10(tmp_path)
