"""Deprecated: moved to :mod:`lrpilot.grid.runner` (this path goes in the next release)."""

from lrpilot._moved import moved

__getattr__ = moved(__name__, "lrpilot.grid.runner", "lrpilot.grid.jobs", "lrpilot.grid.claims")
