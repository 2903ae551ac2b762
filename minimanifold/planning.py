"""``run_all.py --plan``: what a preset would train, how long that takes here, and the
least time any implementation could take on this machine. Trains nothing.

    estimate = steps left x a step timed now (the way the runs will train) / jobs
    floor    = steps left x matrix-product FLOPs of a step / this machine's GEMM roofline

The floor is a lower bound, not a forecast: it counts only the GEMMs of the training steps
(``config.step_flops``) and assumes every core runs them at the speed of one large
float32 GEMM. A preset whose floor exceeds a time budget cannot meet it by a faster step,
only by fewer or cheaper steps (or another machine).
"""
from __future__ import annotations

import os
import time

import numpy as np

from .experiments.groups import (group_templates, is_retrained, retraining_needs, retrainings, seeds_in_cache,
                                 steps_left)
from .model import optim
from .model.backend import gemm_gflops
from .model.config import step_flops
from .model.transformer import init_params, loss_and_grads
from .trajectories import records
from .trajectories.pool import run_parallel, usable_cores
from .trajectories.sweep import run_dir
from .trajectories.schedule import Schedule, train_batch


def seconds_per_step(spec, steps=8) -> float:
    """Median seconds of one training step (forward, backward, update) of ``spec``'s model,
    task, batch and optimizer, measured in this process with its BLAS threads."""
    m, t, tr = spec.model, spec.task, spec.train
    params = init_params(m, 0, np.float32, std=tr.init_std)
    state = optim.init_state(tr.optimizer, params)
    schedule = Schedule.parse(tr.schedule)
    times = []
    for s in range(steps + 2):                      # two warm-up steps
        batch = train_batch(t, schedule, tr.batch_size, 0, s)
        t0 = time.perf_counter()
        _, grads = loss_and_grads(params, batch.tokens, batch.targets, m)
        optim.step(tr.optimizer, params, grads, state, 1e-9, tr.weight_decay)
        times.append(time.perf_counter() - t0)
    return float(np.median(times[2:]))


def timed_step(spec, jobs=1, executor=None) -> float:
    """Seconds per step of one run as ``run`` trains it with ``jobs``: in this process on
    every thread (jobs 1), or the median over ``jobs`` workers timing at once, each with its
    share of the threads (they compete for the machine as training runs do); on
    ``executor`` (a Dask cluster's ``Workers``: ``jobs`` its slots), timed by its workers."""
    if jobs <= 1 and executor is None:
        return seconds_per_step(spec)
    return float(np.median(run_parallel([(seconds_per_step, (spec,))] * jobs, jobs, results=True,
                                        executor=executor)))


def floor_hours(flops: float, gflops: float) -> float:
    """Hours that ``flops`` take at ``gflops`` GFLOP/s (the roofline): the least time."""
    if gflops <= 0:
        raise ValueError(f"the roofline must be positive, got {gflops!r} GFLOP/s")
    return flops / (gflops * 1e9) / 3600


def recorded_seeds(records_root, runs_dir, spec) -> set:
    """The seeds of ``spec``'s configuration with a committed record under ``records_root``
    (read from the folder's listing: the cost follows what is on disk, not the seed count)."""
    if not records_root:
        return set()
    folder = os.path.dirname(records.record_dir(records_root, run_dir(runs_dir, spec)))
    names = os.listdir(folder) if os.path.isdir(folder) else []
    return {int(n[len("seed_"):]) for n in names
            if n.startswith("seed_") and n[len("seed_"):].isdigit() and os.path.isdir(os.path.join(folder, n))
            and records.find(records_root, os.path.join(runs_dir, os.path.basename(folder), n))}


def group_rows(preset, runs_dir, train, records_root=None) -> dict:
    """{group: (a spec, number of runs, done, reusable, [steps left of each run to train])}
    for the groups ``train`` names (None: all), the retrainings included (a job's steps
    are those of its starting run's configuration). Reusable: finished under another name,
    or (every group training: ``train`` None) read from a committed record. A retraining's
    job done: in the run cache; reusable: only in the records, whatever ``train`` names
    (neither is retrained); a job begun: its steps left (``steps_left``).
    The runs its other jobs start from train (``retraining_needs``), in their group's row,
    even when ``train`` does not name that group."""
    out, need = {}, retraining_needs(preset, runs_dir, records_root, train)
    for name, (spec, seeds) in group_templates(preset).items():
        if train is not None and name not in train:
            if name not in need:
                continue
            seeds = sorted(need[name])          # only the runs a retraining to train starts from or reads
        partial, done, twins = seeds_in_cache(runs_dir, spec)
        if train is None:
            twins = twins | {s for s in recorded_seeds(records_root, runs_dir, spec)
                             if s in seeds and s not in done and s not in need.get(name, ())}
        n_done = sum(s in seeds for s in done)
        n_reuse = sum(s in seeds for s in twins - done)
        resumed = [spec.train.steps - at for s, at in partial.items() if s in seeds and s not in twins]
        n_todo = len(seeds) - n_done - n_reuse
        out[name] = (spec, len(seeds), n_done, n_reuse, resumed + [spec.train.steps] * (n_todo - len(resumed)))
    for name, (_, jobs) in retrainings(preset).items():
        if train is not None and name not in train:
            continue
        todo = [j for j in jobs if not is_retrained(runs_dir, j, records_root)]   # a recorded one is never retrained
        n_done = sum(is_retrained(runs_dir, j) for j in jobs)                    # in the run cache
        out[name] = (jobs[0].spec, len(jobs), n_done, len(jobs) - len(todo) - n_done,
                     [steps_left(runs_dir, j) for j in todo])
    return out


def _row(name, *cells) -> str:
    """A table line: the group name, then each cell right-aligned in its column and at
    least one space from its neighbour (a count wider than its column still reads apart)."""
    return f"{name:<31}" + "".join(f" {c!s:>{w}}" for c, w in zip(cells, (4, 5, 5, 5, 10, 8, 8, 7)))


def plan(preset, runs_dir, jobs=1, roofline=None, train=None, executor=None, records_root=None) -> str:
    """What ``run`` would train for ``preset`` with ``runs_dir`` as its cache: per group the
    runs finished, reusable under another name, and still to train, their steps (a resumed
    run counts the steps after its latest checkpoint), an estimate of the training wall
    time with ``jobs`` (capped at the cores this process may use, as ``run_all.py`` caps
    it) from steps timed now (evaluation, checkpoints and the analyses not included), and
    the floor: the GEMM FLOPs of those steps at ``roofline`` GFLOP/s (default: measured
    now, float32, every thread of this process). ``train``: only those groups
    (``groups.group_names``), as ``run_all.py --train`` would train them. ``executor``: a
    Dask cluster's ``Workers``, whose ``slots`` runs train at once and whose workers time
    the step (``jobs`` unused). ``records_root``: the preset's committed records (a run read
    from one counts as reusable). Trains nothing; its cost does not grow with the seed count."""
    jobs = max(1, min(jobs, usable_cores())) if executor is None else executor.slots
    on = f"--jobs {jobs}" if executor is None else f"{jobs} Dask worker threads"
    per_key, total_steps, total_s, total_flops = {}, 0, 0.0, 0.0
    lines = [preset.describe(), "", _row("group", "runs", "done", "reuse", "train", "steps each", "left",
                                         "ms/step", "est. h")]
    for name, (spec, n, n_done, n_reuse, each) in group_rows(preset, runs_dir, train, records_root).items():
        tr = spec.train
        key = (spec.model, spec.task.T, tr.batch_size, tr.optimizer)   # what a step costs
        if key not in per_key and each:
            per_key[key] = timed_step(spec, jobs) if executor is None else timed_step(spec, jobs, executor)
        per_step = per_key.get(key, 0.0)
        steps = sum(each)
        total_flops += steps * step_flops(spec.model, tr.batch_size, spec.task.T)
        hours = steps * per_step / jobs / 3600
        total_steps, total_s = total_steps + steps, total_s + steps * per_step
        lines.append(_row(name, n, n_done, n_reuse, len(each), tr.steps, steps,
                          f"{1000 * per_step:.1f}" if each else "-", f"{hours:.2f}"))
    for group, seeds in retraining_needs(preset, runs_dir, records_root, train).items():
        if train is None:                      # said only of the seeds a record would otherwise give
            seeds = seeds & recorded_seeds(records_root, runs_dir, group_templates(preset)[group][0])
        elif group in train:
            seeds = set()
        if seeds:
            lines.append(f"{group}: seeds {', '.join(map(str, sorted(seeds)))} train for the retrainings that start "
                         f"from them or read them (a committed record holds no trajectory)")
    if records_root is not None and train is None and os.path.isdir(records_root):
        lines.append(f"reuse counts the runs read from the committed records in {records_root} (not trained; "
                     f"--train GROUP retrains a group)")
    lines.append(f"to train: {total_steps:,} steps, about {total_s / jobs / 3600:.1f} h of steps with {on} "
                 f"(ms/step timed now, {jobs} at once; the runs share the cores evenly); evaluation, "
                 f"checkpoints and the analyses come on top; a busy machine times slow")
    roof = gemm_gflops(np.float32) if roofline is None else roofline
    alone = " (this machine alone, not the cluster)" if executor is not None else ""
    lines.append(f"floor{alone}: {total_flops / 1e12:,.0f} TFLOP of matrix products in those steps; at this machine's "
                 f"float32 GEMM roofline ({roof:.0f} GFLOP/s, every core) no implementation trains them in "
                 f"less than {floor_hours(total_flops, roof):.1f} h")
    return "\n".join(lines)
