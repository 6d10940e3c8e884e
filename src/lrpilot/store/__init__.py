"""The results store: runs, tasks, policies and curves in SQLite (default) or PostgreSQL.

``Store(url)`` opens (creating or migrating) the store; see :mod:`lrpilot.store.base` for the contract.
The SQL-backed names are imported on first use, so that reading the contract needs no SQLAlchemy.
"""

from typing import Any

from lrpilot.records import RunRecord
from lrpilot.store.base import ClaimLost, Storage, retrain, retryable, stale

__all__ = ["ClaimLost", "RunRecord", "Storage", "Store", "retrain", "retryable", "stale", "default_path", "mask",
           "resolve"]
_LAZY = {"Store": "lrpilot.store.store", "default_path": "lrpilot.store.urls", "mask": "lrpilot.store.urls",
         "resolve": "lrpilot.store.urls"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'lrpilot.store' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)
