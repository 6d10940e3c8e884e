"""Interrupted runs for the resume tests: a controller that stops a run at one epoch end, as a
killed process would, and the uninterrupted / interrupted-then-resumed pair to compare."""

import pytest
import torch

from lrpilot.controllers.base import Controller, make_controller
from lrpilot.engine import train


def crash_at(spec, epoch: int) -> Controller:
    """The controller for ``spec`` (text or object), raising KeyboardInterrupt at the end of ``epoch``."""
    controller = make_controller(spec)
    inner = controller.after_epoch

    def after_epoch(e):
        if e == epoch:
            raise KeyboardInterrupt
        inner(e)

    controller.after_epoch = after_epoch
    return controller


def interrupted_and_resumed(task, text: str, checkpoint_dir, at_epoch: int = 3, **kwargs):
    """(uninterrupted run, checkpoint state left by a run stopped at the end of ``at_epoch``, that run resumed)."""
    full = train(task, text, **kwargs)
    with pytest.raises(KeyboardInterrupt):
        train(task, crash_at(text, at_epoch), checkpoint_dir=checkpoint_dir, **kwargs)
    state = torch.load(checkpoint_dir / "checkpoint.pt", weights_only=True)
    resumed = train(task, text, checkpoint_dir=checkpoint_dir, resume=True, **kwargs)
    return full, state, resumed
