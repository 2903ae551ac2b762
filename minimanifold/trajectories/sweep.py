"""Train many runs (seeds, configurations) on any ``concurrent.futures.Executor``.

Runs are cached: each lives in ``<runs_root>/<key>/seed_<seed>`` where ``key`` names and
hashes its configuration without the seed, and a finished run is loaded instead of
retrained. The hash leaves the name out, so a finished run of the same configuration and
seed under another name (a recipe screen's run that a preset adopted, say) is reused too:
hard-linked into this name's directory, not retrained. With ``jobs > 1`` and no executor
given, a local process pool (spawned, BLAS threads split between workers) is used; on a
Dask cluster, ``cluster.Workers`` (one BLAS thread per call, as in the pool). Each run
directory's ``trained_by.json`` names the process (and Dask worker) that trained it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import shutil
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass

from ..model.config import ModelConfig, step_flops
from .task import TaskConfig
from ..files import clean_stale_tmp
from .rundir import (LATER_OPTIONS, DamagedRun, checkpoint_step, is_finished, latest_checkpoint, record_trainer,
                     run_lock, verify_run)
from . import cluster, pool
from .pool import exit_with_parent, show_lines, split_blas_threads, usable_cores
from .training_loop import TrainConfig, TrainingDiverged, train


@dataclass(frozen=True)
class RunSpec:
    name: str              # a short human label, e.g. "add" or "mlp"
    model: ModelConfig
    task: TaskConfig
    train: TrainConfig


def run_key(spec: RunSpec) -> str:
    """``<name>-<hash of the config without the seed>``: one directory per config."""
    cfg = {"model": dataclasses.asdict(spec.model), "task": dataclasses.asdict(spec.task),
           "train": {k: v for k, v in dataclasses.asdict(spec.train).items() if k != "seed"}}
    for section, later in LATER_OPTIONS.items():     # at their earlier value they leave the key
        for k, v in later.items():                   # unchanged, so cached runs stay valid
            if cfg[section][k] == v:
                del cfg[section][k]
    digest = hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:10]
    return f"{spec.name}-{digest}"


def run_dir(runs_root, spec: RunSpec) -> str:
    return os.path.join(runs_root, run_key(spec), f"seed_{spec.train.seed}")


def twin_run(runs_root, spec: RunSpec):
    """A finished run of this spec's configuration and seed under another name (its key has
    the same hash), or None."""
    key = run_key(spec)
    digest = key.rsplit("-", 1)[1]
    if not os.path.isdir(runs_root):
        return None
    for entry in sorted(os.listdir(runs_root)):
        d = os.path.join(runs_root, entry, f"seed_{spec.train.seed}")
        if entry != key and entry.endswith("-" + digest) and is_finished(d):
            return d
    return None


def _link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:              # a filesystem without hard links
        shutil.copy2(src, dst)


def adopt_twin(runs_root, spec: RunSpec):
    """Hard-link a finished twin (``twin_run``) into this spec's run directory unless that
    run is finished itself; returns the twin's directory, or None when there is none (or it
    is damaged). An unfinished run in the directory (checkpoints of an interrupted run) is
    moved aside to ``seed_N.superseded-<time>``: the twin is the same configuration and
    seed trained to the end, so resuming would only retrain it. Atomic: linked into a
    temporary directory, then renamed."""
    d = run_dir(runs_root, spec)
    twin = twin_run(runs_root, spec)
    if twin is None or is_finished(d):
        return None
    try:
        verify_run(twin)
    except DamagedRun:
        return None
    if os.path.exists(d):
        os.rename(d, f"{d}.superseded-{time.strftime('%Y%m%d-%H%M%S')}")
    tmp = f"{d}.adopting-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.dirname(d), exist_ok=True)
    shutil.copytree(twin, tmp, copy_function=_link_or_copy)
    os.rename(tmp, d)
    return twin


def _train_one(args, log=None):
    """Train or load one spec, holding its run lock. ``args``: (runs root, spec, backend,
    whether the sweep already found its cached run intact). Training lines go to ``log``,
    else (in a pool worker) to the sweep's queue, else (a foreign executor's worker) to
    train's default, stderr."""
    runs_root, spec, backend, *checked = args
    log = log or (None if pool.LINES is None else pool.LINES.put)
    with run_lock(run_dir(runs_root, spec), log):
        return _train_locked(runs_root, spec, backend, log, bool(checked and checked[0]))


def damage(d):
    """None if the finished run in ``d`` is intact (``verify_run``), else why not."""
    try:
        verify_run(d)
    except DamagedRun as e:
        return str(e)
    return None


def _train_locked(runs_root, spec, backend, log, checked=False):
    t0 = time.perf_counter()
    d = run_dir(runs_root, spec)
    twin = adopt_twin(runs_root, spec)
    for folder in (d, os.path.join(d, "ckpt")):          # what killed writers (training or measuring) left
        clean_stale_tmp(folder)
    cached = is_finished(d)
    damaged = None if not cached or checked else damage(d)
    if damaged:                     # keep everything (its analysis caches too) beside it, train anew
        aside = f"{d}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
        os.rename(d, aside)
        cached, damaged = False, f"{damaged}; moved to {os.path.basename(aside)} and retrained"
    rec = {"name": spec.name, "seed": spec.train.seed, "dir": d, "cached": cached, "diverged": None,
           "damaged": damaged, "twin": twin, "worker": cluster.WORKER}
    if not cached:
        record_trainer(d, cluster.WORKER)
    try:
        rec["summary"] = train(d, spec.model, spec.task, spec.train, backend=backend,
                               tag=f"{spec.name} seed {spec.train.seed}", log=log)
    except TrainingDiverged as e:          # one bad seed must not sink the sweep
        rec["summary"], rec["diverged"] = None, str(e)
    rec["seconds"] = time.perf_counter() - t0
    return rec


def sweep(specs, runs_root, executor: Executor | None = None, jobs: int = 1,
          backend: str | None = None, log=print, then=None) -> list:
    """Train (or load) every spec; returns one record per spec, in order, with its
    summary and run directory (a run whose loss became non-finite has ``summary`` None
    and ``diverged`` set to the error). Logs one line per finished run with an ETA, and
    with a local pool, the workers' training lines too (``log`` may be a
    ``progress.Board``: then each run's line updates in place on a terminal).

    ``then(record)`` -> [(module-level function, args)]: work on a finished run (the
    analyses' per-run measurements, which land in disk caches). On a pool it waits until a
    worker would otherwise idle (none of the runs left to train is waiting), so it fills
    the workers while the last runs train, every run's first call before any run's second
    (``pool.drain``); the sweep returns when it is all done, raising a call's exception.
    Serially it runs right after its run."""
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    results, t0 = [None] * len(specs), time.perf_counter()
    finished = [is_finished(run_dir(runs_root, s)) for s in specs]
    damaged = {i for i, s in enumerate(specs) if finished[i] and damage(run_dir(runs_root, s))}   # checked once, here
    args = [(runs_root, s, backend, finished[i] and i not in damaged) for i, s in enumerate(specs)]
    todo = [i for i in range(len(specs)) if not finished[i]]
    twins = sum(twin_run(runs_root, specs[i]) is not None for i in todo)   # adopt_twin takes each
    log(f"{len(specs)} runs: {len(specs) - len(todo) - len(damaged)} cached, "
        + (f"{len(damaged)} damaged (moved aside and retrained), " if damaged else "")
        + (f"{twins} trained under another name (reused), " if twins else "") + f"{len(todo) - twins} to train")

    def report(i, rec, done):
        results[i] = rec
        getattr(log, "finish", lambda tag: None)(f"{rec['name']} seed {rec['seed']}")
        if rec["diverged"]:
            log(f"  [{done}/{len(specs)}] {rec['name']} seed {rec['seed']}: DIVERGED: {rec['diverged']}")
            return
        if rec.get("damaged"):
            log(f"  DAMAGED: {rec['damaged']}")
        acc = " ".join(f"m{m}={a:.2f}" for m, a in sorted(rec["summary"]["final_acc"].items()))
        took = (f"reused {os.path.basename(os.path.dirname(rec['twin']))}" if rec.get("twin")
                else "cached" if rec["cached"] else f"{rec['seconds']:.0f}s") + \
            (f" on {rec['worker']}" if rec.get("worker") else "")
        elapsed = time.perf_counter() - t0
        eta = elapsed / done * (len(specs) - done)
        log(f"  [{done}/{len(specs)}] {rec['name']} seed {rec['seed']}: {acc} ({took})"
            f" | overall {elapsed:.0f}s, ETA {eta:.0f}s")

    if executor is None and jobs <= 1:
        for n, (i, a) in enumerate(enumerate(args), 1):
            report(i, rec := _train_one(a, log), n)
            for fn, call_args in (then(rec) if then is not None and rec["summary"] is not None else []):
                fn(*call_args)
        return results
    if executor is not None:
        _run_on(executor, args, report, then)
        return results
    # workers are spawned lazily at submit time, so the thread split must hold until then
    ctx = multiprocessing.get_context("spawn")
    lines = ctx.SimpleQueue()
    reader = threading.Thread(target=show_lines, args=(lines, log), daemon=True, name="sweep-lines")
    reader.start()
    try:
        with split_blas_threads(max(1, usable_cores() // jobs)), \
                ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=exit_with_parent,
                                    initargs=(os.getpid(), lines)) as workers:
            _run_on(workers, args, report, then)
    finally:
        lines.put(None)
        reader.join()
    return results


def run_cost(spec: RunSpec) -> float:
    """Matrix-product FLOPs of training ``spec`` to its last step: what orders a sweep."""
    return spec.train.steps * step_flops(spec.model, spec.train.batch_size, spec.task.T)


def steps_left(runs_root, spec: RunSpec) -> int:
    """Steps ``spec`` still has to train in ``runs_root``: 0 when finished (or reusable
    under another name), its steps after the latest checkpoint when resumed."""
    d = run_dir(runs_root, spec)
    if is_finished(d) or twin_run(runs_root, spec) is not None:
        return 0
    latest = latest_checkpoint(d)
    return spec.train.steps - (checkpoint_step(latest) if latest else 0)


def submit_order(args) -> list:
    """Indices of the sweep's ``(runs_root, spec, backend)`` in the order they go to the
    workers: the finished ones first (they only load), then the most costly first by the
    steps each has left (a resumed run counts what remains), so no worker is left with a
    long run to train alone at the end (longest-processing-time first). Ties go seed-major
    (every group's seed 0, then seed 1, ...; else the given order), so a sitting stopped
    early has a run in each group and measures each claim sooner."""
    def key(i):
        runs_root, spec = args[i][:2]
        left = steps_left(runs_root, spec)
        return (1, -left / spec.train.steps * run_cost(spec), spec.train.seed) if left > 0 else (0, 0.0, 0)
    return sorted(range(len(args)), key=key)


def _run_on(executor, args, report, then=None):
    order = submit_order(args)
    pool.drain(executor, [(_train_one, (args[i],)) for i in order], lambda k, rec, n: report(order[k], rec, n),
               lambda rec: then(rec) if then is not None and rec["summary"] is not None else [])
