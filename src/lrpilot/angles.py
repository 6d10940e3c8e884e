"""Angular velocity of the parameters, AutoDrop paper, Definition 1 (Equations (1)-(2)): the angle between
two consecutive parameter changes, measured by the engine and by the AutoDrop controller."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from lrpilot.errors import LRPilotError


def _flat(vectors: Tensor | Sequence[Tensor]) -> Tensor:
    """One float64 vector from a tensor or from a list of tensors (flattened and concatenated)."""
    if isinstance(vectors, Tensor):
        return vectors.detach().reshape(-1).double()
    return torch.cat([torch.as_tensor(v).detach().reshape(-1).double() for v in vectors])


def flat_params(model: torch.nn.Module) -> Tensor:
    """The model's parameters as one detached vector; unlike ``parameters_to_vector`` it also takes
    parameters in the channels-last memory format (flattened in their logical order)."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def angular_velocity(s_t: Tensor | Sequence[Tensor], s_prev: Tensor | Sequence[Tensor]) -> float:
    """The angle in degrees between two parameter changes, AutoDrop Definition 1, Equation (2).

    ``s_t = x_{t+1} - x_t`` and ``s_prev`` are the changes over two consecutive periods, each a
    tensor or a list of per-parameter tensors. Where the paper adds an epsilon to the norms, a
    zero-length change here gives nan (no direction, so no angle); the cosine is clamped to [-1, 1].
    """
    u, v = _flat(s_t), _flat(s_prev)
    if u.numel() != v.numel():
        raise LRPilotError(f"the two parameter changes differ in size: {u.numel()} vs {v.numel()} entries")
    v = v.to(u.device)
    norms = (u.norm() * v.norm()).item()
    if norms == 0.0:
        return math.nan
    cosine = min(1.0, max(-1.0, torch.dot(u, v).item() / norms))
    return math.degrees(math.acos(cosine))


class AngleTracker:
    """Angular velocity of a parameter vector measured period after period (AutoDrop Definition 1).

    :meth:`update` takes the flat parameters at the end of a period and returns the angle between
    this period's change and the previous one (nan until two changes exist).
    """

    def __init__(self) -> None:
        self.last: Tensor | None = None
        self.change: Tensor | None = None

    def update(self, params: Tensor) -> float:
        """Record the parameters at a period's end; the angle of the last two changes in degrees."""
        params = params.detach().double().clone()
        angle, change = math.nan, None
        if self.last is not None:
            change = params - self.last
            if self.change is not None:
                angle = angular_velocity(change, self.change)
        self.last, self.change = params, change
        return angle

    def state_dict(self) -> dict[str, Tensor | None]:
        """The two stored vectors (tensors: loadable with ``weights_only=True``)."""
        return {"last": self.last, "change": self.change}

    def load_state_dict(self, state: dict[str, Tensor | None]) -> None:
        """Restore :meth:`state_dict`."""
        self.last, self.change = state["last"], state["change"]
