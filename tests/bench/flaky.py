"""A user task for the benchmark tests: digits-lenet, whose run kills its worker or raises at given LRs."""

import math
import os

from lrpilot.tasks import get_task

KILL_LR, RAISE_LR = 0.0123, 0.0456


def task():
    base = get_task("digits-lenet")
    make, loss, made = base.make_optimizer, base.train_loss, []

    def make_optimizer(params, lr):
        made.append(make(params, lr))
        return made[-1]

    def train_loss(model, batch):
        lr = made[-1].param_groups[0]["lr"]
        if math.isclose(lr, KILL_LR):
            os._exit(3)
        if math.isclose(lr, RAISE_LR):
            raise RuntimeError("the flaky task fails at this LR")
        return loss(model, batch)

    base.name, base.make_optimizer, base.train_loss = "flaky", make_optimizer, train_loss
    return base
