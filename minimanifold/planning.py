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

import dataclasses
import os
import time

import numpy as np

from .experiments import restricted_training
from .model import optim
from .model.backend import gemm_gflops
from .model.config import step_flops
from .model.transformer import init_params, loss_and_grads
from .pipeline import RESTRICTED, planned_specs
from .trajectories.pool import run_parallel
from .trajectories.sweep import run_dir, steps_left, twin_run
from .trajectories.task import Schedule, train_batch


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


def timed_step(spec, jobs=1) -> float:
    """Seconds per step of one run as ``run`` trains it with ``jobs``: in this process on
    every thread (jobs 1), or the median over ``jobs`` workers timing at once, each with its
    share of the threads (they compete for the machine as training runs do)."""
    if jobs <= 1:
        return seconds_per_step(spec)
    return float(np.median(run_parallel([(seconds_per_step, (spec,))] * jobs, jobs, results=True)))


def floor_hours(flops: float, gflops: float) -> float:
    """Hours that ``flops`` take at ``gflops`` GFLOP/s (the roofline): the least time."""
    if gflops <= 0:
        raise ValueError(f"the roofline must be positive, got {gflops!r} GFLOP/s")
    return flops / (gflops * 1e9) / 3600


def plan(preset, runs_dir, jobs=1, roofline=None, train=None) -> str:
    """What ``run`` would train for ``preset`` with ``runs_dir`` as its cache: per group the
    runs finished, reusable under another name, and still to train, their steps (a resumed
    run counts the steps after its latest checkpoint), an estimate of the training wall
    time with ``jobs`` from steps timed now (evaluation, checkpoints and the analyses not
    included), and the floor: the GEMM FLOPs of those steps at ``roofline`` GFLOP/s
    (default: measured now, float32, every thread of this process). ``train``: only those
    groups (``pipeline.group_names``), as ``run_all.py --train`` would train them. Trains nothing."""
    per_key, total_steps, total_s, total_flops = {}, 0, 0.0, 0.0
    lines = [preset.describe(), "", f"{'group':<32}{'runs':>5}{'done':>6}{'reuse':>6}{'train':>6}"
             f"{'steps each':>11}{'left':>9}{'ms/step':>9}{'est. h':>8}"]
    groups = {name: [(s, os.path.exists(os.path.join(run_dir(runs_dir, s), "summary.json"))) for s in specs]
              for name, specs in planned_specs(preset).items()}
    if preset.restrict_k:                         # cached in the main runs' directories
        n = restricted_training.restricted_steps(preset)
        groups[RESTRICTED] = [
            (dataclasses.replace(s, train=dataclasses.replace(s.train, steps=n)),
             os.path.exists(os.path.join(run_dir(runs_dir, s), restricted_training.cache_name(k, kind, n))))
            for s in preset.specs(seeds=range(preset.restrict_seeds))
            for k in preset.restrict_k for kind in restricted_training.KINDS]
    if train is not None:
        groups = {name: pairs for name, pairs in groups.items() if name in train}
    for name, pairs in groups.items():
        specs, done = [s for s, _ in pairs], [d for _, d in pairs]
        reuse = [not d and name != RESTRICTED and twin_run(runs_dir, s) is not None
                 for s, d in zip(specs, done)]
        todo = [s for s, d, r in zip(specs, done, reuse) if not d and not r]
        tr = specs[0].train
        key = (specs[0].model, specs[0].task.T, tr.batch_size, tr.optimizer)   # what a step costs
        if key not in per_key and todo:
            per_key[key] = timed_step(specs[0], jobs)
        per_step = per_key.get(key, 0.0)
        each = [s.train.steps if name == RESTRICTED else steps_left(runs_dir, s) for s in todo]
        steps = sum(each)
        total_flops += sum(n * step_flops(s.model, s.train.batch_size, s.task.T) for n, s in zip(each, todo))
        hours = steps * per_step / jobs / 3600
        total_steps, total_s = total_steps + steps, total_s + steps * per_step
        lines.append(f"{name:<32}{len(specs):>5}{sum(done):>6}{sum(reuse):>6}{len(todo):>6}"
                     f"{specs[0].train.steps:>11}{steps:>9}{(f'{1000 * per_step:.1f}' if todo else '-'):>9}{hours:>8.2f}")
    lines.append(f"to train: {total_steps:,} steps, about {total_s / jobs / 3600:.1f} h of steps with --jobs {jobs} "
                 f"(ms/step timed now, {jobs} at once; the runs share the cores evenly); evaluation, "
                 f"checkpoints and the analyses come on top; a busy machine times slow")
    roof = gemm_gflops(np.float32) if roofline is None else roofline
    lines.append(f"floor: {total_flops / 1e12:,.0f} TFLOP of matrix products in those steps; at this machine's "
                 f"float32 GEMM roofline ({roof:.0f} GFLOP/s, every core) no implementation trains them in "
                 f"less than {floor_hours(total_flops, roof):.1f} h")
    return "\n".join(lines)
