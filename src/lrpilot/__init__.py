"""lrpilot: find, compare and adapt learning-rate policies for PyTorch training."""

from lrpilot.errors import LRPilotError
from lrpilot.policy import Policy, policy, policy_from_dict
from lrpilot.controllers.scheduler import PolicyScheduler
from lrpilot import controllers  # noqa: E402,F401,I001  (registers the controller names: autodrop, factor)
from lrpilot import search  # noqa: E402,F401,I001  (registers the search names: stpt, alr)

__version__ = "0.1.0"
__all__ = ["LRPilotError", "Policy", "PolicyScheduler", "policy", "policy_from_dict", "__version__"]
