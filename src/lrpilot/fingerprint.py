"""A run's fingerprint: what decides its result besides its identity (task name, policy, seed, budget, purpose).

:func:`fingerprint` describes a built task at a budget as plain data: a hash of its data (every tensor the task
holds: the train/val/test inputs and labels, or a generated task's parameters) and its settings (its class and
plain attributes such as the batch size or a generator's seed), its model (factory, architecture, parameter
count), its optimizer (class and param-group settings without the LR), the budget, and the lrpilot and torch
versions. :func:`digest` is the hash the store keeps per run. A bench compares it with a stored run's: a run
trained on other data, another model or optimizer is trained again. The versions are recorded but are not in
the digest: a new lrpilot or torch alone does not make stored runs stale.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

#: Task attributes that do not decide a run's result: its label, defaults the run overrides (the policy gives the
#: LR, the budget the length), what the store records beside it, and the evaluation's batching.
_NOT_RESULT = frozenset({"name", "lr", "epochs", "meta", "eval_batch_size"})
_CACHE = "_lrpilot_fingerprint"  # the task part, kept on the built task: computed once per task and process


def fingerprint(task: Any, total: int) -> dict[str, Any]:
    """What decides the result of a run of ``task`` (a built task) for ``total`` iterations, as plain data."""
    part = getattr(task, _CACHE, None)
    if part is None:
        part = _task_part(task)
        setattr(task, _CACHE, part)
    return {**part, "budget": int(total)}


def digest(fp: dict[str, Any]) -> str:
    """The fingerprint's hash (64 hex digits) over everything but the versions."""
    kept = {k: v for k, v in fp.items() if k != "versions"}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()


def short(d: str | None) -> str:
    """A digest as the first 10 hex digits ("-" for a run stored without one)."""
    return "-" if d is None else d[:10]


def _task_part(task: Any) -> dict[str, Any]:
    import torch

    from lrpilot import __version__

    data, settings = hashlib.sha256(), {"class": f"{type(task).__module__}.{type(task).__qualname__}"}
    for name, value in sorted(vars(task).items()):
        if name.startswith("_") or name in _NOT_RESULT:
            continue
        tensors = _tensors(value)
        if tensors:
            for i, t in enumerate(tensors):
                _hash_tensor(data, f"{name}.{i}", t)
        elif value is None or isinstance(value, (bool, int, float, str)):
            settings[name] = value
    with torch.random.fork_rng(devices=[]):  # the model is built to be described, not trained: no RNG state moves
        torch.manual_seed(0)
        model = task.make_model()
        optimizer = task.make_optimizer(model.parameters(), lr=1.0)
    return {"data": data.hexdigest(), "settings": settings, "model": _model(task, model),
            "optimizer": {"class": f"{type(optimizer).__module__}.{type(optimizer).__qualname__}",
                          "groups": [_group(g) for g in optimizer.param_groups]},
            "versions": {"lrpilot": __version__, "torch": torch.__version__}}


def _tensors(value: Any) -> list:
    """The tensors of an attribute: a tensor, or a tuple/list of them (a split's inputs and labels); else none."""
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)) and value and all(isinstance(v, torch.Tensor) for v in value):
        return list(value)
    return []


def _hash_tensor(h: Any, name: str, t: Any) -> None:
    """Feed a tensor's name, dtype, shape and values (in row-major order, whatever its memory format) into ``h``."""
    import torch

    t = t.detach().cpu().contiguous()
    h.update(f"{name}:{t.dtype}:{list(t.shape)};".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().data if t.numel() else b"")


def _model(task: Any, model: Any) -> dict[str, Any]:
    """The model's factory, class, architecture (a hash of its printed form), parameter shapes' hash and count."""
    shapes = [[name, list(p.shape)] for name, p in model.named_parameters()]
    return {"factory": _factory(getattr(task, "make_model_fn", None)),
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "architecture": hashlib.sha256(str(model).encode()).hexdigest()[:16],
            "shapes": hashlib.sha256(json.dumps(shapes).encode()).hexdigest()[:16],
            "n_param": sum(p.numel() for p in model.parameters())}


def _factory(fn: Any) -> Any:
    """A model factory by name, a partial with its arguments (e.g. ``init="xavier"``); None for none."""
    if fn is None:
        return None
    if isinstance(fn, functools.partial):
        return {"func": _factory(fn.func), "args": [_plain(a) for a in fn.args],
                "keywords": {k: _plain(v) for k, v in sorted(fn.keywords.items())}}
    return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"


def _group(group: dict[str, Any]) -> dict[str, Any]:
    """A param group's settings without its parameters and LR; flags that are off (False, None) are left out, so
    that a torch release adding a new off-by-default flag does not change the fingerprint."""
    return {k: _plain(v) for k, v in sorted(group.items())
            if k not in ("params", "lr", "initial_lr") and v is not None and v is not False}


def _plain(v: Any) -> Any:
    """A setting as JSON: numbers, text and True as they are, sequences element-wise, a one-value tensor as its
    number, anything else as its type's name."""
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    if hasattr(v, "numel") and v.numel() == 1:
        return v.item()
    return type(v).__qualname__
