"""The results store: runs, tasks, policies and curves in SQLite (default) or PostgreSQL.

``Store(url)`` opens (creating or migrating) the store; see :mod:`lrpilot.store.base` for the contract.
"""

from lrpilot.records import RunRecord
from lrpilot.store.base import Storage
from lrpilot.store.store import Store
from lrpilot.store.urls import default_path, mask, resolve

__all__ = ["RunRecord", "Storage", "Store", "default_path", "mask", "resolve"]
