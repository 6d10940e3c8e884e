"""Snapshots: a run's whole state (model, optimizer, controller, RNG states, position, curves) as bytes.

A snapshot is :meth:`lrpilot.engine.Run.state` written with ``torch.save`` and read back with
``torch.load(weights_only=True)``: plain data and tensors, a copy that later training cannot
touch, and one form for every executor (a function argument, a pickled message, a Ray object,
a ``torch.distributed`` gather).
"""

from __future__ import annotations

import io
from typing import Any

import torch


def pack(state: dict[str, Any]) -> bytes:
    """The state as bytes: a copy."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def unpack(snapshot: bytes) -> dict[str, Any]:
    """The state a snapshot holds, on the CPU (RNG states must be; loading a model moves its tensors to it)."""
    return torch.load(io.BytesIO(snapshot), weights_only=True, map_location="cpu")
