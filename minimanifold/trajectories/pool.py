"""Local process pools for the sweep and the analyses: how many cores this process may
use, the BLAS thread split between workers, workers that exit with their parent,
``run_parallel`` for (function, args) calls whose results land in disk caches, and
``drain``: calls whose results bring follow-up calls, handed out as workers free up.
"""
from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, as_completed, wait

from ..model.backend import keep_freed_memory

LINES = None   # in a pool worker: the queue its training lines go to (the sweep shows them)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS reports one, which a
    container or ``taskset`` narrows; else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:                    # macOS, Windows
        return os.cpu_count() or 1


@contextlib.contextmanager
def split_blas_threads(n):
    """While open: ``n`` BLAS threads for every process spawned (each worker's share)."""
    old = {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    os.environ.update({k: str(n) for k in old})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_call(fn, args, keep):
    """In a worker: ``fn(*args)``, its result sent back only if ``keep``."""
    out = fn(*args)
    return out if keep else None   # by default the result stays in the worker: it is on disk


def run_parallel(calls, jobs: int, results: bool = False, executor=None):
    """Run ``calls`` [(module-level function, args)] on a local pool of ``jobs`` spawned
    processes, BLAS threads split between them as for training, in the order given (put
    the longest first); for work whose results land in disk caches (the analyses'
    per-run measurements). A worker's exception is raised here. ``results=True`` returns
    the calls' return values, in order (small ones: they are pickled back). ``executor``
    (a Dask cluster's ``cluster.Workers``, say): run them there instead, ``jobs`` unused."""
    out = [None] * len(calls)
    if not calls:
        return out if results else None
    with contextlib.ExitStack() as stack:
        if executor is None:
            stack.enter_context(split_blas_threads(max(1, usable_cores() // jobs)))
            executor = stack.enter_context(ProcessPoolExecutor(
                max_workers=jobs, mp_context=multiprocessing.get_context("spawn"), initializer=exit_with_parent,
                initargs=(os.getpid(),)))
        futures = {executor.submit(run_call, fn, args, results): i for i, (fn, args) in enumerate(calls)}
        for fut in as_completed(futures):
            out[futures[fut]] = fut.result()
    return out if results else None


def slots(executor) -> int:
    """Calls ``executor`` runs at once: a cluster's ``slots`` (``cluster.Workers``; 1 while no
    worker has connected), else a local pool's workers (``concurrent.futures`` keeps their
    number in ``_max_workers``)."""
    return getattr(executor, "slots", None) or getattr(executor, "_max_workers", 1)


class Ranked(list):
    """Follow-up calls that bring their own positions (``drain``): ``positions[i]`` is the
    i-th call's, in place of i (``EarlyMeasurements``: a call that waited for a second run
    keeps its place in its own run's list, not the first place in the other's)."""

    def __init__(self, calls, positions):
        super().__init__(calls)
        self.positions = list(positions)
        if len(self.positions) != len(self):        # drain zips them: a short list would drop calls
            raise ValueError(f"{len(self)} calls but {len(self.positions)} positions")


def drain(executor, first, on_result, then) -> None:
    """Run ``first`` [(function, args)] on ``executor``, all submitted now, in order;
    ``on_result(i, result, n)`` as the i-th finishes (the n-th to). ``then(result)`` ->
    [(function, args)]: its follow-up calls. They are held here, not queued behind
    ``first``, and one goes to a worker only when a worker would otherwise idle: the
    earliest position in its list first (a ``Ranked`` list gives its own positions), across
    every list that has come in (every list's first call, then every list's second, ...;
    ties by arrival). So when runs finish together (cached), each run's first calls go
    before any run's later ones (claim 23: every seed's decisive pair before the other
    bases). A follow-up's exception is raised once everything has finished."""
    pending = {executor.submit(fn, *args): i for i, (fn, args) in enumerate(first)}
    held, follow, arrival, n = [], [], itertools.count(), 0
    while pending:
        done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
        for fut in [f for f in pending if f in done]:     # results that finish together: submission order
            if (i := pending.pop(fut)) is not None:
                n += 1
                on_result(i, result := fut.result(), n)
                calls = then(result)
                positions = getattr(calls, "positions", itertools.count())
                held += [(pos, next(arrival), call) for pos, call in zip(positions, calls)]
        held.sort(key=lambda h: h[:2])
        room = slots(executor)                           # once a round: on a cluster it asks the scheduler
        while held and len(pending) < room:
            fn, args = held.pop(0)[2]
            follow.append(fut := executor.submit(run_call, fn, args, False))
            pending[fut] = None
    for fut in follow:
        fut.result()


def show_lines(lines, log) -> None:
    """The parent's reader: the workers' training lines, in arrival order, to ``log``."""
    while (line := lines.get()) is not None:
        log(line)


def exit_with_parent(parent_pid: int, lines=None, every: float = 0.5) -> None:
    """In a worker: exit as soon as the sweep that spawned it is gone (killed, say), so no
    orphan keeps training into a run directory that a restarted sweep resumes. ``lines``:
    the queue the worker's training lines go to. Workers train and measure: the allocator
    keeps freed memory for the step's temporaries (``backend.keep_freed_memory``)."""
    global LINES
    LINES = lines
    keep_freed_memory()
    def watch():
        while os.getppid() == parent_pid:
            time.sleep(every)
        os._exit(1)
    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


