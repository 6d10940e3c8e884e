"""Executors: run a search's candidates side by side.

``map(fn, items)`` returns ``[fn(item) for item in items]``, in order, whichever executor runs it:

- :class:`InProcess`: one after another in this process;
- :class:`LocalProcesses`: a pool of ``workers`` processes started with ``torch.multiprocessing``
  (spawn); more items than workers queue up;
- :class:`Distributed`: the ranks of a ``torch.distributed`` group started by ``torchrun`` (gloo on
  CPU, nccl with CUDA); item i runs on rank ``i % world_size`` and every rank gets every result;
  the search's main run trains data-parallel across the ranks;
- :class:`RayExecutor`: Ray tasks on a local Ray instance of ``workers`` CPUs (Ray is optional).

``fn`` must be a module-level function and the items picklable. A worker that dies raises
:class:`LRPilotError`.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable

import torch

from lrpilot.errors import LRPilotError

EXECUTORS = ("inprocess", "local", "ray", "torchrun")


class Executor:
    """Runs picklable ``fn(item)`` calls side by side; a context manager that releases its workers."""

    workers = 1
    leader = True  # this process reports the search's result
    distributed = False  # the ranks of a torch.distributed group: the main run trains data-parallel

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the workers."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class InProcess(Executor):
    """One item after another in this process."""

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        return [fn(item) for item in items]


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


class LocalProcesses(Executor):
    """A pool of ``workers`` local processes (spawned), each with its share of this process's torch threads."""

    def __init__(self, workers: int):
        self.workers = workers
        threads = max(1, torch.get_num_threads() // workers)
        self.pool = ProcessPoolExecutor(workers, mp_context=torch.multiprocessing.get_context("spawn"),
                                        initializer=_init_worker, initargs=(threads,))

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        futures = [self.pool.submit(fn, item) for item in items]
        try:
            return [f.result() for f in futures]
        except BrokenProcessPool as e:
            raise LRPilotError(f"a local worker process died while running {fn.__name__} (killed, or out of "
                               "memory); the search stopped. Run it again, with fewer --workers if memory is short"
                               ) from e

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


class Distributed(Executor):
    """The ranks of the ``torch.distributed`` group that ``torchrun`` started (initialised here if needed)."""

    distributed = True

    def __init__(self):
        import torch.distributed as dist

        self.dist = dist
        self.owned = not dist.is_initialized()
        if self.owned:
            if torch.cuda.is_available():
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        self.rank, self.workers = dist.get_rank(), dist.get_world_size()
        self.leader = self.rank == 0

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        mine = {i: fn(item) for i, item in enumerate(items) if i % self.workers == self.rank}
        gathered: list[dict[int, Any]] = [{} for _ in range(self.workers)]
        self.dist.all_gather_object(gathered, mine)
        results = {i: r for part in gathered for i, r in part.items()}
        return [results[i] for i in range(len(items))]

    def close(self) -> None:
        if self.owned:
            self.dist.destroy_process_group()


def _call(fn: Callable[[Any], Any], item: Any) -> Any:
    return fn(item)


class RayExecutor(Executor):
    """Ray tasks of one CPU each on a local Ray instance of ``workers`` CPUs (or the one already initialised)."""

    def __init__(self, workers: int):
        try:
            import ray
        except ImportError as e:
            raise LRPilotError("the ray executor needs Ray, an optional dependency: pip install ray; "
                               "or use --executor local") from e
        self.ray, self.workers = ray, workers
        self.owned = not ray.is_initialized()
        if self.owned:
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            ray.init(num_cpus=workers, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
        self.remote = ray.remote(num_cpus=1, max_retries=0)(_call)

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        errors = self.ray.exceptions
        try:
            return self.ray.get([self.remote.remote(fn, item) for item in items])
        except errors.RayTaskError as e:
            if isinstance(e.cause, LRPilotError):
                raise e.cause from None
            raise
        except errors.RayError as e:  # a worker or node died
            raise LRPilotError(f"a Ray worker died while running {fn.__name__} ({type(e).__name__}); "
                               "the search stopped. Run it again") from e

    def close(self) -> None:
        if self.owned:
            self.ray.shutdown()


def make_executor(name: str | None = None, workers: int | None = None) -> Executor:
    """The executor called ``name`` (default: torchrun under ``torchrun``, else local with workers > 1,
    else in-process) with ``workers`` workers (default: 2)."""
    under_torchrun = int(os.environ.get("WORLD_SIZE", 1)) > 1
    if name is None:
        name = "torchrun" if under_torchrun else "local" if workers and workers > 1 else "inprocess"
    if name not in EXECUTORS:
        raise LRPilotError(f"executor {name!r} is unknown; known: {', '.join(EXECUTORS)}")
    if name == "torchrun":
        if not under_torchrun:
            raise LRPilotError("the torchrun executor needs the ranks torchrun starts: "
                               "torchrun --nproc_per_node=N -m lrpilot train ...")
        return Distributed()
    if workers is not None and workers < 1:
        raise LRPilotError(f"--workers {workers} must be >= 1")
    if name == "inprocess":
        return InProcess()
    return LocalProcesses(workers or 2) if name == "local" else RayExecutor(workers or 2)
