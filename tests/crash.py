"""A controller made to stop a run at one epoch end, as a killed process would."""

from lrpilot.controllers.base import Controller, make_controller


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
