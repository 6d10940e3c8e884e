"""Per-example outcomes of a run as compact text, so that two runs on the same split can be compared pairwise.

A split's outcomes are a 1-D bool array (example i right or wrong). :func:`encode` writes it as
``"<length>:<base64 of numpy.packbits>"`` (e.g. ``"450:..."``: 450 examples in 57 bytes, 76 characters),
:func:`decode` reads it back exactly. No torch: the store, ranking and reports read it.
"""

from __future__ import annotations

import base64
import binascii

import numpy as np

from lrpilot.errors import LRPilotError


def encode(correct: np.ndarray) -> str:
    """A 1-D bool array as ``"<length>:<base64 of its packed bits>"``."""
    bits = np.asarray(correct)
    if bits.ndim != 1 or bits.dtype != np.bool_:
        raise LRPilotError(f"outcomes must be a 1-D bool array, got a {bits.dtype} array of shape {bits.shape}")
    return f"{len(bits)}:{base64.b64encode(np.packbits(bits).tobytes()).decode('ascii')}"


def decode(text: str) -> np.ndarray:
    """The bool array that :func:`encode` wrote as ``text``; LRPilotError for text it did not write."""
    head, sep, body = text.partition(":") if isinstance(text, str) else ("", "", "")
    try:
        if not sep or not head.isdigit():
            raise ValueError("no '<length>:' prefix")
        n, packed = int(head), base64.b64decode(body, validate=True)
        if len(packed) != -(-n // 8):
            raise ValueError(f"{len(packed)} bytes for {n} outcomes")
    except (ValueError, binascii.Error) as e:
        shown = repr(text[:40]) if isinstance(text, str) else type(text).__name__
        raise LRPilotError(f"malformed outcomes {shown} ({e}): expected '<length>:<base64>' as "
                           "lrpilot.outcomes.encode writes it") from None
    return np.unpackbits(np.frombuffer(packed, dtype=np.uint8), count=n).astype(bool)
