"""Old module paths kept for one release: a moved module's old file is ``__getattr__ = moved(__name__, new, ...)``."""

from __future__ import annotations

import importlib
import warnings
from typing import Any, Callable


def moved(old: str, *new: str) -> Callable[[str], Any]:
    """The module ``__getattr__`` of the old path ``old``: a name is looked up in the modules ``new`` (in order) and
    given with a DeprecationWarning that names the new path."""

    def __getattr__(name: str) -> Any:
        if not name.startswith("__"):
            for path in new:
                module = importlib.import_module(path)
                if hasattr(module, name):
                    warnings.warn(f"{old} is deprecated: import {name} from {path} (the old path goes in the next "
                                  "release)", DeprecationWarning, stacklevel=2)
                    return getattr(module, name)
        raise AttributeError(f"module {old!r} has no attribute {name!r}")

    return __getattr__
