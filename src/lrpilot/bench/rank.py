"""Deprecated: moved to :mod:`lrpilot.decision.ranking` and :mod:`lrpilot.decision.tables` (this path goes in the next
release)."""

from lrpilot._moved import moved

__getattr__ = moved(__name__, "lrpilot.decision.ranking", "lrpilot.decision.tables")
