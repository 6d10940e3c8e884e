"""Executors: run jobs (calls of one top-level function) side by side, in local processes or on Ray.

An executor pulls jobs from an iterator only when a worker is free (so a job can be claimed
in the store at that moment), reports each result or failure through callbacks in the
calling process, and calls ``tick`` at least every ``every`` seconds (for heartbeats). A
worker that dies takes only its own job with it: the job is reported failed, a new worker
takes its place. Callbacks run in the caller's process; workers never touch the store.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import traceback
from multiprocessing.connection import wait
from typing import Any, Callable, Iterator

from lrpilot.errors import LRPilotError

Done = Callable[[Any, Any], None]  # (job, result)
Failed = Callable[[Any, str], None]  # (job, reason)


class Executor:
    """Runs jobs side by side (see the module). Used as a context manager (nesting allowed), it keeps
    its workers between runs and frees them when the outermost ``with`` ends; otherwise each run
    frees them at its end."""

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


def _check_workers(workers: Any) -> None:
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise LRPilotError(f"--workers {workers!r} must be an int >= 1")


class LocalExecutor(Executor):
    """``workers`` processes on this machine (spawned), each with an equal share of the cores for torch.

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
        """Stop the idle worker processes."""
        while self._idle:
            _stop(*self._idle.pop())

    def _start(self, warm: tuple[Callable[..., Any], tuple] | None = None) -> tuple[Any, Any]:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        proc = ctx.Process(target=_serve, args=(child, threads, os.getpid(), warm), daemon=True)
        proc.start()
        child.close()  # so that the worker's death reads as EOF here
        return parent, proc

    def run(self, fn: Callable[[Any], Any], jobs: Iterator[Any], on_done: Done, on_failed: Failed,
            tick: Callable[[], None] = lambda: None, every: float = 10.0) -> None:
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
            for conn, (proc, _) in busy.items():  # interrupted: these are mid-job
                _stop(conn, proc)
            if not self._depth:
                self.close()


def _stop(conn, proc) -> None:
    try:
        conn.send(None)
    except OSError:
        pass
    proc.join(2)
    if proc.is_alive():
        proc.terminate()
        proc.join(5)
    conn.close()


def _serve(conn, threads: int, parent_pid: int, warm: tuple[Callable[..., Any], tuple] | None = None) -> None:
    """A worker: run each (function, job) received until None; exits when its parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    import torch

    torch.set_num_threads(threads)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    if warm is not None:
        try:
            warm[0](*warm[1])
        except Exception:  # noqa: BLE001 - only a head start: the job itself reports the error
            pass
    while (work := conn.recv()) is not None:
        fn, job = work
        try:
            result = ("ok", fn(job))
        except Exception as e:  # noqa: BLE001 - reported to the parent, which records the run as failed
            result = ("failed", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=-3)}")
        conn.send(result)


def _exit_with_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        threading.Event().wait(1.0)
    os._exit(1)


class RayExecutor(Executor):
    """Jobs as Ray tasks (one CPU each) on the cluster at ``address``, or on a local Ray started here.

    A local Ray listens on 127.0.0.1 only; ``workers`` caps the jobs in flight (default: the
    cluster's CPUs). A Ray this executor started is shut down after the run or, used as a
    context manager, at its exit; one already running (``ray.init`` by the caller) is left alone.
    """

    def __init__(self, address: str | None = None, workers: int | None = None):
        _check_workers(workers)
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
        return ray

    def run(self, fn: Callable[[Any], Any], jobs: Iterator[Any], on_done: Done, on_failed: Failed,
            tick: Callable[[], None] = lambda: None, every: float = 10.0) -> None:
        ray = self._connect()
        remote = ray.remote(num_cpus=1, max_retries=0)(fn)
        limit = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        flight: dict[Any, Any] = {}
        try:
            while True:
                while len(flight) < limit and (job := next(jobs, None)) is not None:
                    flight[remote.remote(job)] = job
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
    try:
        import ray
    except ImportError:
        raise LRPilotError("--executor ray needs Ray: pip install 'lrpilot[ray]' (or use --executor local)") from None
    return ray


EXECUTORS = {"local": LocalExecutor, "ray": RayExecutor}


def make_executor(name: str, workers: int | None = None, address: str | None = None):
    """The executor called ``name`` (local or ray)."""
    if name not in EXECUTORS:
        raise LRPilotError(f"unknown executor {name!r}: use one of {', '.join(EXECUTORS)}")
    if address is not None and name != "ray":
        raise LRPilotError(f"--address {address!r} is for --executor ray")
    return LocalExecutor(workers) if name == "local" else RayExecutor(address, workers)
