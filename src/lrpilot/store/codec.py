"""JSON values with NaN and infinity kept: JSON has no such numbers, so they are tagged objects."""

from __future__ import annotations

import math
import numbers
from typing import Any

TAG = "$float"


class DecodeError(ValueError):
    """A stored value that is valid JSON but not one :func:`encode` wrote (an unknown tag)."""

_NAMES = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def encode(x: Any) -> Any:
    """``x`` with every non-finite float as ``{"$float": "nan" | "inf" | "-inf"}`` and numpy scalars as Python."""
    if isinstance(x, bool) or x is None or isinstance(x, str):
        return x
    if isinstance(x, numbers.Integral):
        return int(x)
    if isinstance(x, numbers.Real):
        x = float(x)
        return x if math.isfinite(x) else {TAG: "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")}
    if isinstance(x, dict):
        return {str(k): encode(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [encode(v) for v in x]
    raise TypeError(f"cannot store a {type(x).__name__} ({x!r}) in the results store")


def decode(x: Any) -> Any:
    """The inverse of :func:`encode`."""
    if isinstance(x, dict):
        if len(x) == 1 and TAG in x:
            if x[TAG] not in _NAMES:
                raise DecodeError(f"unknown {TAG} tag {str(x[TAG])[:40]!r} (nan, inf or -inf expected)")
            return _NAMES[x[TAG]]
        return {k: decode(v) if isinstance(v, (dict, list)) else v for k, v in x.items()}
    if isinstance(x, list):
        return [decode(v) if isinstance(v, (dict, list)) else v for v in x]
    return x
