"""Restricted training (issue 10 §4): is the execution subspace causal?

Retrain a run from its own theta_0 on its own batches (both pure functions of the seed:
``init_params`` and ``train_batch``), with every attention matrix's update projected onto
a given K-dimensional subspace of that matrix, V [D,K] orthonormal:

    W <- W - eta_t V V^T g_W          (plain SGD inside span(V); W - W_0 stays in span(V))

Every other parameter trains as usual. Nothing is written: the experiment that calls this
caches what it returns.

AdamW (the authors' optimizer) is restricted the same way: the optimizer sees the projected
gradient, and its whole update of a restricted matrix (the Adam step and the weight decay,
either of which leaves span(V) coordinate by coordinate) is projected onto span(V) again:

    W <- W + V V^T (AdamW(W) - W)     (W - W_0 stays in span(V))

For plain SGD that second projection changes nothing, and it is skipped.

The step size follows the schedule of a run of ``schedule_steps`` steps (the main run's own:
a restricted run shorter than its main run is that run's schedule cut short, not the
schedule compressed into fewer steps).

A retraining costs as much as its run (~20 min in the paper preset), so it saves its state
at every evaluation to a ``resume`` file when given one: a job cut short (a sitting's end,
a killed process) goes on from its last evaluation, to the same parameters bit for bit
(the batch of step s is a pure function of (seed, s)), instead of starting over.
"""
from __future__ import annotations

import hashlib
import json
import os
import time

import numpy as np

from ..files import read_npz, save_npz
from ..model import optim
from ..model.config import ModelConfig
from .schedule import Schedule, train_batch
from .task import TaskConfig, probe_set
from ..model.transformer import init_params, loss_and_grads, param_shapes
from .metrics import evaluate
from .training_loop import TrainConfig, run_config


def project(g, V):
    """V V^T g for a matrix gradient g (any shape, D entries) and V [D,K]; same shape."""
    flat = g.reshape(-1)
    return (V @ (V.T @ flat)).reshape(g.shape).astype(g.dtype, copy=False)


def identity(model, task, train_cfg, bases32, eval_every, total) -> str:
    """What makes a retraining this one: its configs, evaluation grid, schedule length and
    bases (a digest of their float32 bytes); a resume file of another is refused."""
    digest = hashlib.sha256()
    for name in sorted(bases32):
        digest.update(name.encode() + np.ascontiguousarray(bases32[name]).tobytes())
    return json.dumps({**run_config(model, task, train_cfg), "eval_every": eval_every, "schedule_steps": total,
                       "bases": digest.hexdigest()}, sort_keys=True)


def train_restricted(model: ModelConfig, task: TaskConfig, train_cfg: TrainConfig, bases: dict,
                     eval_every: int = 100, schedule_steps: int | None = None, resume=None) -> dict:
    """Train ``train_cfg.steps`` steps with the updates of the matrices in ``bases`` ({name:
    V [D,K] float64, orthonormal columns}) restricted to span(V), the step size that of a
    run of ``schedule_steps`` steps (default: ``train_cfg.steps``). Returns {"steps", "acc"
    ({m: [...]}), "loss" (mean train loss since the previous evaluation), "seconds", and
    "params" (the final parameters, float32)}: accuracy on the run's held-out probe set at
    step 0 and every ``eval_every`` steps. ``resume``: a file the state is saved to at every
    evaluation before the last, and resumed from if it is there (the module docstring); the
    caller removes it once the result is kept. ValueError if it holds another retraining."""
    shapes = param_shapes(model)
    for name, V in bases.items():
        D = int(np.prod(shapes[name]))
        if V.ndim != 2 or V.shape[0] != D:
            raise ValueError(f"basis for {name!r} has shape {V.shape}, not (D, K) with D = {D}")
    schedule = Schedule.parse(train_cfg.schedule)
    probe = probe_set(task, schedule.all_m(), train_cfg.n_probe, train_cfg.seed)
    params = init_params(model, train_cfg.seed, np.float32, std=train_cfg.init_std)
    bases32 = {k: np.asarray(V, dtype=np.float32) for k, V in bases.items()}
    state = optim.init_state(train_cfg.optimizer, params)
    plain = train_cfg.optimizer == "sgd"
    total = train_cfg.steps if schedule_steps is None else schedule_steps
    out = {"steps": [], "acc": {int(m): [] for m in probe}, "loss": []}

    def record(step, losses):
        ev = evaluate(params, probe, model)
        out["steps"].append(step)
        for m, a in ev["acc"].items():
            out["acc"][int(m)].append(a)
        out["loss"].append(float(np.mean(losses)) if losses else None)

    ident = identity(model, task, train_cfg, bases32, eval_every, total)
    start, spent = 0, 0.0
    if resume is not None and os.path.exists(resume):
        z = read_npz(resume)
        if "identity" not in z or str(z["identity"]) != ident:
            raise ValueError(f"{resume}: the saved state of another retraining (its configs or bases "
                             f"differ); remove it to start this one over")
        params = {k: z[k] for k in shapes}
        state = {k[4:]: z[k] for k in z if k.startswith("opt.")}
        start, spent, saved = int(z["step"]), float(z["seconds"]), json.loads(str(z["out"]))
        out = {**saved, "acc": {int(m): v for m, v in saved["acc"].items()}}

    def save(step):
        saved = {**out, "acc": {str(m): v for m, v in out["acc"].items()}}
        save_npz(resume, {**params, **{"opt." + k: v for k, v in state.items()}, "step": np.array(step),
                          "seconds": np.array(spent + time.perf_counter() - t0),
                          "out": np.array(json.dumps(saved)), "identity": np.array(ident)})

    t0, losses = time.perf_counter(), []
    if start == 0:
        record(0, losses)
    for s in range(start, train_cfg.steps):
        batch = train_batch(task, schedule, train_cfg.batch_size, train_cfg.seed, s)
        loss, grads = loss_and_grads(params, batch.tokens, batch.targets, model)
        for name, V in bases32.items():
            grads[name] = project(grads[name], V)
        before = None if plain else {name: params[name].copy() for name in bases32}
        optim.step(train_cfg.optimizer, params, grads, state,
                   optim.lr_at(train_cfg.lr_schedule, train_cfg.lr, s, total, schedule.boundaries()),
                   train_cfg.weight_decay)
        if not plain:
            for name, V in bases32.items():
                params[name] = before[name] + project(params[name] - before[name], V)
        losses.append(float(loss))
        if (s + 1) % eval_every == 0 or s + 1 == train_cfg.steps:
            record(s + 1, losses)
            losses = []
            if resume is not None and s + 1 < train_cfg.steps:
                save(s + 1)
    out["seconds"] = spent + time.perf_counter() - t0
    out["params"] = params
    return out
