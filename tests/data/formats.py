"""Writers of tiny data folders in the exact raw formats (MNIST IDX, CIFAR-10 binary), for tests."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR_TEST_FILE = "test_batch.bin"


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """``array`` (uint8) in IDX form: magic (uint8 type, its number of dimensions), big-endian sizes, data."""
    magic = 0x00000800 | array.ndim if magic is None else magic
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()


def write_mnist(folder: Path, n_train: int = 6, n_test: int = 4, gz: bool = False, seed: int = 0) -> dict:
    """MNIST's four IDX files with random images and labels; returns {"train"|"t10k": (images, labels)}."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 10
        for name, array in ((f"{split}-images-idx3-ubyte", images), (f"{split}-labels-idx1-ubyte", labels)):
            data = idx_bytes(array)
            (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(data) if gz else data)
        written[split] = (images, labels)
    return written


def cifar_records(labels: np.ndarray, images: np.ndarray) -> bytes:
    """CIFAR-10 binary records: one label byte then 3072 channel-major pixel bytes each."""
    return np.concatenate([labels[:, None], images.reshape(len(labels), -1)], axis=1).astype(np.uint8).tobytes()


def write_cifar(folder: Path, per_file: int = 3, seed: int = 0) -> dict:
    """The six CIFAR-10 binary files with random images and labels; returns {file name: (images, labels)}."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for i, name in enumerate((*CIFAR_TRAIN_FILES, CIFAR_TEST_FILE)):
        images = rng.integers(0, 256, (per_file, 3, 32, 32), dtype=np.uint8)
        labels = (np.arange(per_file, dtype=np.uint8) + i) % 10
        (folder / name).write_bytes(cifar_records(labels, images))
        written[name] = (images, labels)
    return written
