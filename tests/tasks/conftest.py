"""Fixtures shared by the task tests: tiny data folders in the raw formats (written by tests/data/formats.py)."""

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("_formats", Path(__file__).parents[1] / "data" / "formats.py")
formats = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(formats)


@pytest.fixture
def mnist_dir(tmp_path):
    """A folder with MNIST's four IDX files (gzipped), 20 training and 10 test images."""
    formats.write_mnist(tmp_path / "mnist", n_train=20, n_test=10, gz=True)
    return tmp_path / "mnist"


@pytest.fixture
def cifar_dir(tmp_path):
    """A folder holding cifar-10-batches-bin/ with 4 images per file (20 training, 4 test)."""
    formats.write_cifar(tmp_path / "cifar" / "cifar-10-batches-bin", per_file=4)
    return tmp_path / "cifar"
