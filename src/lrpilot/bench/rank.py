"""Deprecated: moved to :mod:`lrpilot.decision.ranking` and :mod:`lrpilot.present.tables` (this path goes in the next
release)."""

from lrpilot._moved import moved

__getattr__ = moved(__name__, "lrpilot.decision.ranking", "lrpilot.present.tables")
