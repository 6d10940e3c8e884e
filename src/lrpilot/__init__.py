"""lrpilot: find, compare and adapt learning-rate policies for PyTorch training."""

from lrpilot.errors import LRPilotError
from lrpilot.policy import Policy, policy, policy_from_dict
from lrpilot.scheduler import PolicyScheduler

__version__ = "0.1.0"
__all__ = ["LRPilotError", "Policy", "PolicyScheduler", "policy", "policy_from_dict", "__version__"]
