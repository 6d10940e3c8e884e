"""lrpilot: find, compare and adapt learning-rate policies for PyTorch training."""

from typing import Any

from lrpilot.errors import LRPilotError
from lrpilot.policy import Policy, policy, policy_from_dict

__version__ = "0.1.0"
__all__ = ["LRPilotError", "Policy", "PolicyScheduler", "Problem", "policy", "policy_from_dict", "__version__"]


def __getattr__(name: str) -> Any:
    """``PolicyScheduler`` and ``Problem`` imported on first use, so that ``import lrpilot`` (and the CLI) needs
    no torch."""
    if name == "PolicyScheduler":
        from lrpilot.controllers.scheduler import PolicyScheduler

        return PolicyScheduler
    if name == "Problem":
        from lrpilot.problem import Problem

        return Problem
    raise AttributeError(f"module 'lrpilot' has no attribute {name!r}")
