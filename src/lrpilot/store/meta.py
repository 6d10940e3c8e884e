"""What the store records about a task and a policy."""

from __future__ import annotations

import platform
import re
from typing import Any

from lrpilot.errors import LRPilotError

_LEADING_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)")


def task_row(task: Any) -> dict[str, Any]:
    """The ``tasks`` row of a task name or a task object (its ``meta``, the framework's versions)."""
    if isinstance(task, str):
        return {"name": task}
    import torch

    from lrpilot import __version__

    meta = getattr(task, "meta", {}) or {}
    return {"name": task.name, "dataset": meta.get("dataset"), "model": meta.get("model"),
            "num_classes": meta.get("num_classes", getattr(task, "num_classes", None)),
            "n_train": meta.get("n_train"), "input_shape": _shape(meta.get("input_shape")), "framework": "pytorch",
            "versions": {"torch": torch.__version__, "lrpilot": __version__, "python": platform.python_version()}}


def policy_row(policy: Any) -> dict[str, Any]:
    """The ``policies`` row: canonical text, the function name (the text's leading name) and #Param.

    Text that names no registered policy, controller or search (yet) is kept as given, without #Param.
    """
    if isinstance(policy, str):
        from lrpilot.policy.base import build
        from lrpilot.policy.text import parse

        try:
            policy = build(parse(policy))
        except LRPilotError:
            policy = policy.strip()
    text = str(policy)
    name = _LEADING_NAME.match(text)
    if not name:
        raise LRPilotError(f"policy text {text!r} does not start with a name: give text such as 'FIX(k0=0.01)'")
    return {"text": text, "name": name.group(1), "n_param": getattr(policy, "n_param", None)}


def _shape(shape: Any) -> list[int] | None:
    return None if shape is None else [int(n) for n in shape]
