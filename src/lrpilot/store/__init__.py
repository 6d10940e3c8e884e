"""The results store: runs, tasks, policies and curves in SQLite (default) or PostgreSQL.

``Store(url)`` opens (creating or migrating) the store; see :mod:`lrpilot.store.base` for the contract.
"""

from lrpilot.store.base import RunRecord, Storage
from lrpilot.store.store import Store
from lrpilot.store.urls import default_path, mask, resolve

__all__ = ["RunRecord", "Storage", "Store", "default_path", "mask", "resolve"]
