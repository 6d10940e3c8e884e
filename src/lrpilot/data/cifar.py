"""Reader for the binary version of CIFAR-10 (Krizhevsky, 2009: cifar-10-binary.tar.gz), without pickle.

Each file is a run of 3073-byte records: one label byte (0-9), then 3072 pixel bytes, the
32 x 32 red channel, then green, then blue. The binary version ships data_batch_1.bin to
data_batch_5.bin (10,000 records each, the 50,000 training images) and test_batch.bin.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lrpilot.errors import LRPilotError

TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
SUBFOLDER = "cifar-10-batches-bin"
IMAGE_SHAPE = (3, 32, 32)
RECORD_BYTES = 1 + 3 * 32 * 32
CIFAR_HINT = (
    f"the folder must hold {', '.join(TRAIN_FILES)} and {TEST_FILE} from the binary version of CIFAR-10 "
    f"(cifar-10-binary.tar.gz, not the Python pickle version), or a subfolder {SUBFOLDER}/ holding them"
)


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The uint8 images (N, 3, 32, 32) and int64 labels (N) of one CIFAR-10 binary file."""
    path = Path(path)
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % RECORD_BYTES:
        raise LRPilotError(
            f"CIFAR-10 file {path} has {raw.size} bytes, expected a positive multiple of {RECORD_BYTES} "
            "(1 label byte + 3072 pixel bytes per image); it is truncated or not a CIFAR-10 binary file"
        )
    records = raw.reshape(-1, RECORD_BYTES)
    labels = records[:, 0]
    bad = np.flatnonzero(labels > 9)
    if bad.size:
        raise LRPilotError(
            f"CIFAR-10 file {path} has label {labels[bad[0]]} in record {bad[0]}, expected labels 0-9; "
            "is it a CIFAR-100 file?"
        )
    return records[:, 1:].reshape(-1, *IMAGE_SHAPE), labels.astype(np.int64)


def load_cifar10(folder: str | Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """CIFAR-10's ``(train, test)`` splits: float32 images (N, 3, 32, 32) normalised per channel by the
    training split's mean and standard deviation, and int64 labels."""
    root = _batches_folder(Path(folder))
    train = [read_cifar_batch(_require(root, name)) for name in TRAIN_FILES]
    x_test, y_test = read_cifar_batch(_require(root, TEST_FILE))
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    mean = x_train.mean(axis=(0, 2, 3), dtype=np.float64).reshape(1, 3, 1, 1)
    std = x_train.std(axis=(0, 2, 3), dtype=np.float64).reshape(1, 3, 1, 1)
    if not std.all():
        channel = "RGB"[int(np.flatnonzero(std.ravel() == 0)[0])]
        raise LRPilotError(f"the CIFAR-10 training images in {root} have a constant {channel} channel (standard "
                           "deviation 0), so they cannot be normalised: these are not CIFAR-10's images; pass "
                           "--data-dir with the folder of the real binary version")
    return (_normalise(x_train, mean, std), y_train), (_normalise(x_test, mean, std), y_test)


def _normalise(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(x - mean) / std`` as float32."""
    out = x.astype(np.float32)
    out -= mean.astype(np.float32)
    out /= std.astype(np.float32)
    return out


def _batches_folder(folder: Path) -> Path:
    """``folder`` itself, or its subfolder cifar-10-batches-bin/ when it has one."""
    if not folder.is_dir():
        raise LRPilotError(f"CIFAR-10 folder {folder} does not exist; pass --data-dir: {CIFAR_HINT}")
    sub = folder / SUBFOLDER
    return sub if sub.is_dir() else folder


def _require(folder: Path, name: str) -> Path:
    """``folder/name``, which must exist."""
    path = folder / name
    if not path.is_file():
        raise LRPilotError(f"CIFAR-10 file {name} not found in {folder}; {CIFAR_HINT}")
    return path
