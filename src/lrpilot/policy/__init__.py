"""Layer 1: learning-rate policies, pure functions ``step -> lr`` with a canonical text form."""

from __future__ import annotations

from typing import Any

from lrpilot.errors import LRPilotError
from lrpilot.policy import functions, compose  # noqa: F401,I001  (register the names, functions first)
from lrpilot.policy.base import Policy, as_policy, build, entries
from lrpilot.policy.text import call_from_dict, parse
from lrpilot.vocabulary import clip

__all__ = ["Policy", "policy", "policy_from_dict", "entries"]


def policy(spec: str | Policy | dict[str, Any]) -> Policy:
    """A policy from its text (``"TRI2(k0=0.0001, k1=0.9, l=2000)"``), its dict form, or a policy."""
    if isinstance(spec, Policy):
        return spec
    if isinstance(spec, dict):
        return policy_from_dict(spec)
    if not isinstance(spec, str):
        raise LRPilotError(f"a policy is text such as 'FIX(k0=0.01)', a dict or a Policy, not {type(spec).__name__}")
    return as_policy(parse(spec), clip(spec))


def policy_from_dict(d: dict[str, Any]) -> Policy:
    """A policy from the JSON form that :meth:`Policy.to_dict` writes."""
    return as_policy(build(call_from_dict(d)), clip(d))

