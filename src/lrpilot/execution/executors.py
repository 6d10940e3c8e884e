"""Executors: run jobs (calls of one module-level function on picklable items) side by side.

- :class:`InProcess`: one after another in this process;
- :class:`LocalExecutor`: ``workers`` processes on this machine (spawned);
- :class:`RayExecutor`: Ray tasks on a cluster, or on a local Ray started here (Ray is optional);
- :class:`Distributed`: the ranks of a ``torch.distributed`` group started by ``torchrun`` (gloo on
  CPU, nccl with CUDA); item i runs on rank ``i % world_size`` and every rank gets every result.

Two ways to use one. :meth:`Executor.run` (the benchmark runner) pulls jobs from an iterator only
when a worker is free (so a job can be claimed in the store at that moment), reports each result
or failure through callbacks in the calling process, and calls ``tick`` at least every ``every``
seconds (for heartbeats); a worker that dies takes only its own job with it: the job is reported
failed, a new worker takes its place. :meth:`Executor.map` (the searches) returns
``[fn(item) for item in items]`` in order, whichever executor runs it, and raises
:class:`LRPilotError` if any item fails or its worker dies.

The CLI and :func:`make_executor` know the executors by name from :data:`EXECUTORS`: a new one is a
subclass of :class:`Executor` and one entry there.
"""

from __future__ import annotations

import functools
import os
import signal
import threading
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from lrpilot.errors import LRPilotError
from lrpilot.extras import locate, require

Done = Callable[[Any, Any], None]  # (job, result)
Failed = Callable[[Any, str], None]  # (job, reason)


class Executor:
    """Runs jobs side by side (see the module). Used as a context manager (nesting allowed), it keeps
    its workers between runs and frees them when the outermost ``with`` ends; otherwise each run
    frees them at its end."""

    workers = 1
    leader = True  # this process reports the result (False on torchrun ranks > 0)
    distributed = False  # the ranks of a torch.distributed group: a search's main run trains data-parallel
    _depth = 0

    def __enter__(self):
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if not self._depth:
            self.close()

    def start(self, warm: tuple[Callable[..., Any], tuple] | None = None) -> None:
        """Start the workers now (their start-up overlaps the caller's); each calls ``warm`` once if given."""

    def close(self) -> None:
        """Free the workers that no run is using."""

    def run(self, fn: Callable[[Any], Any], jobs: Iterator[Any], on_done: Done, on_failed: Failed,
            tick: Callable[[], None] = lambda: None, every: float = 10.0) -> None:
        """Call ``fn(job)`` for each job pulled from ``jobs``, reporting to ``on_done``/``on_failed``."""
        raise NotImplementedError

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        """``[fn(item) for item in items]``, run side by side; LRPilotError if one fails."""
        results: list[Any] = [None] * len(items)

        def done(job: tuple[int, Any], result: Any) -> None:
            results[job[0]] = result

        def failed(job: tuple[int, Any], reason: str) -> None:
            raise LRPilotError(f"{fn.__name__} failed on item {job[0]}: {reason.splitlines()[0]}; the work "
                               "stopped. Run it again (with fewer --workers if memory is short)")

        with self:
            self.run(functools.partial(_on_item, fn), iter(enumerate(items)), done, failed)
        return results


def _on_item(fn: Callable[[Any], Any], job: tuple[int, Any]) -> Any:
    return fn(job[1])


def _call(fn: Callable[[Any], Any], job: Any) -> Any:
    return fn(job)


class InProcess(Executor):
    """One job after another in this process; an exception fails its job (``map``: it propagates as is)."""

    def run(self, fn: Callable[[Any], Any], jobs: Iterator[Any], on_done: Done, on_failed: Failed,
            tick: Callable[[], None] = lambda: None, every: float = 10.0) -> None:
        for job in jobs:
            try:
                result = fn(job)
            except Exception as e:  # noqa: BLE001 - reported as a worker would report it
                on_failed(job, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=-3)}")
            else:
                on_done(job, result)
            tick()

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        return [fn(item) for item in items]


def _check_workers(workers: Any) -> None:
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise LRPilotError(f"--workers {workers!r} must be an int >= 1")


class LocalExecutor(Executor):
    """``workers`` processes on this machine (spawned), each with an equal share of the cores for torch
    (at most ``$OMP_NUM_THREADS`` when it is set).

    Used as a context manager, its processes outlive one :meth:`run` and serve the next (no second
    start-up); otherwise each run starts and stops its own. Scripts that use it must guard their
    entry point with ``if __name__ == "__main__":``, as for any spawned process.
    """

    def __init__(self, workers: int | None = None):
        _check_workers(workers)
        self.workers = workers or os.cpu_count() or 1
        self._idle: list[tuple[Any, Any]] = []  # (connection, process)

    def start(self, warm: tuple[Callable[..., Any], tuple] | None = None) -> None:
        while len(self._idle) < self.workers:
            self._idle.append(self._start(warm))

    def close(self) -> None:
        """Stop the idle worker processes (all told first, then awaited)."""
        _stop(self._idle)
        self._idle = []

    def _start(self, warm: tuple[Callable[..., Any], tuple] | None = None) -> tuple[Any, Any]:
        import multiprocessing  # here: the commands that run no job (lrpilot rank) start faster without it

        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        if os.environ.get("OMP_NUM_THREADS", "").isdigit():  # the user's cap on threads per process
            threads = max(1, min(threads, int(os.environ["OMP_NUM_THREADS"])))
        proc = ctx.Process(target=_serve, args=(child, threads, os.getpid(), warm), daemon=True)
        proc.start()
        child.close()  # so that the worker's death reads as EOF here
        return parent, proc

    def run(self, fn: Callable[[Any], Any], jobs: Iterator[Any], on_done: Done, on_failed: Failed,
            tick: Callable[[], None] = lambda: None, every: float = 10.0) -> None:
        from multiprocessing.connection import wait

        busy: dict[Any, tuple[Any, Any]] = {}  # connection -> (process, job)

        def dispatch(worker: tuple[Any, Any] | None = None) -> bool:
            """Send the next job to ``worker`` (an idle or new one if None); park it if there is none."""
            job = next(jobs, None)
            if job is None:
                if worker is not None:
                    self._idle.append(worker)
                return False
            conn, proc = worker or (self._idle.pop() if self._idle else self._start())
            conn.send((fn, job))
            busy[conn] = (proc, job)
            return True

        try:
            for _ in range(self.workers):
                if not dispatch():
                    break
            while busy:
                for conn in wait(list(busy), timeout=every):
                    proc, job = busy.pop(conn)
                    try:
                        status, payload = conn.recv()
                    except (EOFError, OSError):
                        proc.join(5)
                        conn.close()
                        on_failed(job, f"its worker process died (exit code {proc.exitcode})")
                        dispatch()
                        continue
                    (on_done if status == "ok" else on_failed)(job, payload)
                    dispatch((conn, proc))
                tick()
        finally:
            _stop([(conn, proc) for conn, (proc, _) in busy.items()])  # interrupted: these are mid-job
            if not self._depth:
                self.close()


def _stop(workers: list[tuple[Any, Any]]) -> None:
    """Tell every worker to exit, then wait for each (terminating one that does not exit within 2 s)."""
    for conn, _ in workers:
        try:
            conn.send(None)
        except OSError:
            pass
    for conn, proc in workers:
        proc.join(2)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
        conn.close()


def _serve(conn, threads: int, parent_pid: int, warm: tuple[Callable[..., Any], tuple] | None = None) -> None:
    """A worker: run each (function, job) received until None; exits when its parent is gone."""
    import torch  # here, not at the top: the CLI reads EXECUTORS without importing torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    torch.set_num_threads(threads)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    if warm is not None:
        try:
            warm[0](*warm[1])
        except Exception:  # noqa: BLE001 - only a head start: the job itself reports the error
            pass
    try:
        while (work := conn.recv()) is not None:
            fn, job = work
            try:
                result = ("ok", fn(job))
            except Exception as e:  # noqa: BLE001 - reported to the parent, which records the run as failed
                result = ("failed", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=-3)}")
            conn.send(result)
        conn.close()
    except (EOFError, OSError):  # the parent is gone (killed): its pipe is closed, so exit quietly, no traceback
        os._exit(1)
    os._exit(0)  # nothing left to flush: skip the interpreter's (and torch's) slow teardown


def _exit_with_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        threading.Event().wait(1.0)
    os._exit(1)


class Distributed(Executor):
    """The ranks of the ``torch.distributed`` group that ``torchrun`` started (initialised here if needed)."""

    distributed = True

    def __init__(self):
        import torch
        import torch.distributed as dist

        self.dist = dist
        self.owned = not dist.is_initialized()
        if self.owned:
            if torch.cuda.is_available():
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        self.rank, self.workers = dist.get_rank(), dist.get_world_size()
        self.leader = self.rank == 0

    def run(self, fn: Callable[[Any], Any], jobs: Iterator[Any], on_done: Done, on_failed: Failed,
            tick: Callable[[], None] = lambda: None, every: float = 10.0) -> None:
        items = list(jobs)
        for item, result in zip(items, self.map(fn, items)):
            on_done(item, result)

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        mine = {i: fn(item) for i, item in enumerate(items) if i % self.workers == self.rank}
        gathered: list[dict[int, Any]] = [{} for _ in range(self.workers)]
        self.dist.all_gather_object(gathered, mine)
        results = {i: r for part in gathered for i, r in part.items()}
        return [results[i] for i in range(len(items))]

    def close(self) -> None:
        if self.owned:
            self.dist.destroy_process_group()


class RayExecutor(Executor):
    """Jobs as Ray tasks (one CPU each) on the cluster at ``address``, or on a local Ray started here.

    A local Ray listens on 127.0.0.1 only; ``workers`` caps the jobs in flight (default: the
    cluster's CPUs when it connects). A Ray this executor started is shut down after the run or, used as a
    context manager, at its exit; one already running (``ray.init`` by the caller) is left alone.
    """

    def __init__(self, address: str | None = None, workers: int | None = None):
        _check_workers(workers)
        locate("ray", "ray", "--executor ray", "or use --executor local")  # refused when made, before any work
        self.address, self.workers = address, workers
        self._started = False

    def close(self) -> None:
        """Shut down the Ray that this executor started."""
        if self._started:
            _import_ray().shutdown()
            self._started = False

    def start(self, warm: tuple[Callable[..., Any], tuple] | None = None) -> None:
        self._connect()

    def _connect(self):
        ray = _import_ray()
        if not ray.is_initialized():
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            if self.address:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(num_cpus=self.workers or os.cpu_count(), include_dashboard=False,
                         _node_ip_address="127.0.0.1", log_to_driver=False)
            self._started = True
        if self.workers is None:  # the jobs in flight, and a search's cost: the cluster's CPUs
            self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        return ray

    def run(self, fn: Callable[[Any], Any], jobs: Iterator[Any], on_done: Done, on_failed: Failed,
            tick: Callable[[], None] = lambda: None, every: float = 10.0) -> None:
        ray = self._connect()
        remote = ray.remote(num_cpus=1, max_retries=0)(_call)
        limit = self.workers
        flight: dict[Any, Any] = {}
        try:
            while True:
                while len(flight) < limit and (job := next(jobs, None)) is not None:
                    flight[remote.remote(fn, job)] = job
                if not flight:
                    break
                ready, _ = ray.wait(list(flight), num_returns=1, timeout=every)
                for ref in ready:
                    job = flight.pop(ref)
                    try:
                        on_done(job, ray.get(ref))
                    except ray.exceptions.RayError as e:
                        on_failed(job, str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__)
                tick()
        finally:
            for ref in flight:
                ray.cancel(ref, force=True)
            if not self._depth:
                self.close()


def _import_ray():
    return require("ray", "ray", "--executor ray", "or use --executor local")


def _under_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", 1)) > 1


def _distributed(workers: int | None, address: str | None) -> Distributed:
    if not _under_torchrun():
        raise LRPilotError("the torchrun executor needs the ranks torchrun starts: "
                           "torchrun --nproc_per_node=N -m lrpilot train ...")
    return Distributed()


@dataclass(frozen=True)
class ExecutorEntry:
    """A registered executor: how to make it from ``(workers, address)`` and what the CLI offers it for."""

    make: Callable[[int | None, str | None], Executor]
    doc: str
    jobs: bool = False  # runs the store's claimed jobs (bench, range-test, recommend, tune), not only a search's
    address: bool = False  # takes a cluster address (--address)


EXECUTORS: dict[str, ExecutorEntry] = {
    "inprocess": ExecutorEntry(lambda workers, address: InProcess(), "one job after another in this process"),
    "local": ExecutorEntry(lambda workers, address: LocalExecutor(workers), "worker processes on this machine",
                           jobs=True),
    "ray": ExecutorEntry(lambda workers, address: RayExecutor(address, workers),
                         "Ray tasks (pip install 'lrpilot[ray]')", jobs=True, address=True),
    "torchrun": ExecutorEntry(_distributed, "the torch.distributed ranks that torchrun starts"),
}
# make_executor's choice when no name is given, in words
DEFAULT_RULE = "torchrun under torchrun, local with --workers > 1, else inprocess"


def make_executor(name: str | None = None, workers: int | None = None, address: str | None = None) -> Executor:
    """The executor called ``name`` with ``workers`` workers (default: see :data:`DEFAULT_RULE`); ``address``: a Ray
    cluster's."""
    if name is None:
        name = "torchrun" if _under_torchrun() else "local" if workers and workers > 1 else "inprocess"
    entry = EXECUTORS.get(name)
    if entry is None:
        raise LRPilotError(f"unknown executor {name!r}: use one of {', '.join(EXECUTORS)}")
    if address is not None and not entry.address:
        takes = ", ".join(n for n, e in EXECUTORS.items() if e.address)
        raise LRPilotError(f"--address {address!r} is for --executor {takes}")
    _check_workers(workers)
    return entry.make(workers, address)
