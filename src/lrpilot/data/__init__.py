"""Readers for the raw data formats of the built-in tasks (numpy only, never pickle)."""

from lrpilot.data.cifar import load_cifar10, read_cifar_batch
from lrpilot.data.idx import default_mnist_dir, load_mnist, read_idx

__all__ = ["default_mnist_dir", "load_cifar10", "load_mnist", "read_cifar_batch", "read_idx"]
