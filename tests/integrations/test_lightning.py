"""LRPilotCallback in a real Lightning Trainer on the CPU: a tiny classifier, a real DataLoader, 3 epochs of 8 steps."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import lrpilot
from lrpilot.errors import LRPilotError
from lrpilot.integrations.lightning import LRPilotCallback
from lrpilot.store import Store

STEPS = 24  # 3 epochs of 64 samples in batches of 8
COS = f"COS(k0=0.1, k1=0.001, l={STEPS})"
AUTODROP = ("autodrop(k0=0.1, rho=0.5, saturation=absolute, theta0=100, theta_max=1000, nd=2, period=1, "
            "window=1)")  # drops every few steps


class Classifier(pl.LightningModule):
    def __init__(self, scheduler: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        self.scheduler = scheduler

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=1.0, momentum=0.9)
        return ([opt], [torch.optim.lr_scheduler.StepLR(opt, 1)]) if self.scheduler else opt


def loader() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(64, 4, generator=g), torch.randint(0, 2, (64,), generator=g))
    return DataLoader(data, batch_size=8, shuffle=False)


def fit(callback: LRPilotCallback, tmp_path, ckpt_path=None, module=None, **trainer_args) -> pl.Trainer:
    trainer = pl.Trainer(max_epochs=3, callbacks=[callback, *trainer_args.pop("callbacks", [])], logger=False,
                         enable_checkpointing=bool(trainer_args.pop("checkpointing", False)), enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", default_root_dir=tmp_path, **trainer_args)
    trainer.fit(module or Classifier(), loader(), ckpt_path=ckpt_path)
    return trainer


@pytest.mark.parametrize("accumulate", [1, 2])
def test_the_lr_follows_the_policy_at_every_optimizer_step(tmp_path, accumulate):
    callback = LRPilotCallback(COS)
    trainer = fit(callback, tmp_path, accumulate_grad_batches=accumulate)
    steps = STEPS // accumulate
    policy = lrpilot.policy(COS)
    assert trainer.global_step == steps
    assert callback.lrs == [float(policy(t)) for t in range(steps)]
    assert trainer.optimizers[0].param_groups[0]["lr"] == float(policy(steps))  # written for the next step


@pytest.mark.parametrize("text", [COS, AUTODROP])
def test_a_fit_resumed_from_a_checkpoint_continues_the_lr_sequence(tmp_path, text):
    whole = LRPilotCallback(text)
    every_epoch = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_epochs=1, save_top_k=-1,
                                               save_on_train_epoch_end=True)
    fit(whole, tmp_path, callbacks=[every_epoch], checkpointing=True)
    first_epoch = tmp_path / "ckpt" / "epoch=0-step=8.ckpt"
    assert first_epoch.exists()

    resumed = LRPilotCallback(text)
    trainer = fit(resumed, tmp_path, ckpt_path=first_epoch)
    assert trainer.global_step == STEPS
    assert resumed.lrs == whole.lrs
    assert len(set(whole.lrs[8:])) > 1  # the resumed part is not a constant that a fresh start would also give
    assert resumed.controller.record() == whole.controller.record()


def test_a_controller_text_sets_the_lr(tmp_path):
    callback = LRPilotCallback(AUTODROP)
    fit(callback, tmp_path)
    trajectory = callback.controller.record()["trajectory"]
    assert len(trajectory) > 2  # k0 and at least two drops
    expected = [[lr for step, lr in trajectory if step <= t][-1] for t in range(STEPS)]
    assert callback.lrs == pytest.approx(expected, rel=0, abs=0)


def test_the_factor_controller_rescores_at_each_epoch_end(tmp_path):
    callback, last_batch_loss = LRPilotCallback("factor(k0=0.05, probe=slides, factors=3, batch=16)"), []
    trainer = fit(callback, tmp_path, callbacks=[LossKeeper(last_batch_loss)])
    lrs = callback.lrs
    assert lrs[:8] == [0.05] * 8
    assert all(len(set(lrs[e * 8:(e + 1) * 8])) == 1 for e in range(3))  # constant within an epoch
    assert lrs[8] != lrs[0]  # the first scoring moved it
    assert trainer.callback_metrics["train_loss"] == last_batch_loss[0]  # the probe's losses were not logged


class LossKeeper(pl.Callback):
    """Keeps the loss of the last training batch into ``losses[0]``."""

    def __init__(self, losses: list):
        self.losses = losses

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses[:] = [outputs["loss"].detach()]


def test_the_store_gets_the_finished_run(tmp_path):
    store = Store(tmp_path / "runs.db")
    callback = LRPilotCallback(COS, store=store, task_name="tiny-classifier", seed=3)
    trainer = fit(callback, tmp_path)
    [run] = store.runs(task="tiny-classifier")
    assert (run.policy, run.seed, run.budget, run.status) == (str(lrpilot.policy(COS)), 3, STEPS, "ok")
    assert run.metrics["train_loss"] == pytest.approx(float(trainer.callback_metrics["train_loss"]))
    assert run.metrics["n_param"] == lrpilot.policy(COS).n_param
    assert run.cost["iterations"] == STEPS and run.cost["samples"] == 64 * 3
    assert run.curves["iteration"] == list(range(1, STEPS + 1))
    assert run.curves["lr"] == [float(lrpilot.policy(COS)(t)) for t in range(1, STEPS + 1)]  # set after t steps
    assert [t for t, loss in zip(run.curves["iteration"], run.curves["train_loss"]) if loss == loss] == [8, 16, 24]
    with pytest.raises(LRPilotError, match="already has run 'tiny-classifier'.*pass another seed"):
        fit(LRPilotCallback(COS, store=store, task_name="tiny-classifier", seed=3), tmp_path)


@pytest.mark.parametrize("text, fragment", [("COS(k0=0.1, k1=", "COS"), ("stpt(k0=0.1)", "is a search")])
def test_a_bad_policy_text_is_one_lrpiloterror_before_training(text, fragment):
    with pytest.raises(LRPilotError, match=fragment.replace("(", r"\(")) as e:
        LRPilotCallback(text)
    assert "\n" not in str(e.value)


def test_a_scheduler_of_the_module_is_refused(tmp_path):
    with pytest.raises(LRPilotError, match="return no lr_scheduler from configure_optimizers"):
        fit(LRPilotCallback(COS), tmp_path, module=Classifier(scheduler=True))


def test_the_controller_gets_the_mean_training_loss_every_10_optimizer_steps(tmp_path):
    checks = []

    class Watching(lrpilot.controllers.base.ScheduleController):
        def after_check(self, step, loss):
            checks.append((step, loss))
            return False

    fit(LRPilotCallback(Watching(lrpilot.policy("FIX(k0=0.1)"))), tmp_path)
    assert [s for s, _ in checks] == [1, 10, 20]  # not at the last step, 24
    assert all(0.3 < loss < 1.5 for _, loss in checks)  # cross-entropy over 2 classes, near ln 2 = 0.69


def test_the_guarded_factor_controller_comes_back_from_an_lr_that_diverges(tmp_path):
    callback = LRPilotCallback("factor(k0=20)")
    trainer = fit(callback, tmp_path)
    record = callback.controller.record()
    assert record["restores"] and all(r["loss"] > 1.1 * 0.69 for r in record["restores"])
    assert all([r["iteration"], r["lr"]] in record["trajectory"] for r in record["restores"])
    assert callback.lrs[-1] < 2.0  # a tenth of the start, or below
    assert all(torch.isfinite(p).all() for p in trainer.lightning_module.parameters())
