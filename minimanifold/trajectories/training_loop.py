"""Training (paper §3.2): minibatch SGD that records the parameter trajectory.

A run directory holds
  config.json              the run's full configuration (model, task, training)
  ckpt/step_XXXXXXXX.npz   every ``ckpt_every`` steps (and step 0): all parameters under
                           their TransformerLens names (each loads with
                           ``model.io.load_params``), the optimizer state, the step, the
                           metrics recorded at that step, and the run's config
  metrics.json             every checkpoint's metrics, rewritten at each checkpoint
  trajectory.npz           written at the end: each parameter stacked over checkpoints
                           [n_ckpt, ...] plus ``steps``; intermediate ckpt files are then
                           removed (the last one stays)
  summary.json             written last; its presence marks the run complete; it lists
                           the sha256 of the other files (``rundir.verify_run``) and
                           where the training time went
Every file is written atomically. The batch of step s is a pure function of (seed, s),
so a run killed mid-way resumes from its last checkpoint and ends bit-identical to an
uninterrupted one.
"""
from __future__ import annotations

import dataclasses
import glob
import json
import math
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from ..model import optim
from ..model.backend import get_backend, to_device
from ..model.config import ModelConfig
from .schedule import Schedule, train_batch
from .task import TaskConfig, probe_set
from ..files import clean_stale_tmp, file_digest, read_json, read_npz, record_digest, save_json, save_npz
from ..model.transformer import INIT_STD, init_params, loss_and_grads, param_shapes
from .metrics import evaluate
from .rundir import ckpt_path, is_finished, latest_checkpoint, read_history, refuse_other_config


class TrainingDiverged(FloatingPointError):
    """The loss became non-finite; the message names the step."""


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 3000
    lr: float = 0.1
    batch_size: int = 64
    ckpt_every: int = 100
    seed: int = 0
    schedule: str = "mixed:1,2"
    optimizer: str = "sgd"          # "adamw" is the authors' code, not the paper
    weight_decay: float = 0.01      # adamw only
    n_probe: int = 256              # held-out examples per m
    init_std: float = INIT_STD      # std of the normal init of matrices and embeddings
    lr_schedule: str = "constant"   # or "warmup:W", "cosine:W", +"/stage" (optim.lr_at): plain SGD all the same

    def __post_init__(self):
        for name in ("steps", "batch_size", "ckpt_every", "n_probe"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive finite number, got {self.lr!r}")
        if not (isinstance(self.init_std, (int, float)) and math.isfinite(self.init_std) and self.init_std > 0):
            raise ValueError(f"init_std must be a positive finite number, got {self.init_std!r}")
        if not (isinstance(self.weight_decay, (int, float)) and math.isfinite(self.weight_decay)
                and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be a finite number >= 0, got {self.weight_decay!r}")
        if self.optimizer not in optim.OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {optim.OPTIMIZERS}, got {self.optimizer!r}")
        Schedule.parse(self.schedule)
        optim.parse_lr_schedule(self.lr_schedule)


def run_config(model: ModelConfig, task: TaskConfig, train: TrainConfig) -> dict:
    return {"model": dataclasses.asdict(model), "task": dataclasses.asdict(task),
            "train": dataclasses.asdict(train)}


def check_compatible(model: ModelConfig, task: TaskConfig) -> None:
    if model.d_vocab != task.d_vocab:
        raise ValueError(f"model d_vocab={model.d_vocab} differs from task d_vocab={task.d_vocab}")
    if model.d_vocab_out != task.C:
        raise ValueError(f"model d_vocab_out={model.d_vocab_out} must equal task C={task.C}")
    if model.n_ctx < task.T:
        raise ValueError(f"model n_ctx={model.n_ctx} is shorter than task T={task.T}")


def blas_threads() -> int:
    """BLAS threads this process uses (OpenBLAS's default is one per core). Results are
    bit-identical only for the same machine and thread count: the GEMM kernels sum in a
    thread-dependent order (measured: 1 vs 2 threads differ by 1 ulp after 20 steps)."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return os.cpu_count() or 1


def _format_progress(tag, step, total, loss, acc, elapsed, eta):
    accs = " ".join(f"m{m}={a:.2f}" for m, a in sorted(acc.items()))
    return (f"[{tag}] step {step:>6}/{total} loss {loss:.4f} acc {accs} | "
            f"{elapsed:5.0f}s elapsed, ETA {eta:4.0f}s")


def train(run_dir, model: ModelConfig, task: TaskConfig, train_cfg: TrainConfig,
          backend: str | None = None, log=None, tag: str | None = None) -> dict:
    """Train (or resume, or just load) the run in ``run_dir``; returns its summary dict.

    Raises TrainingDiverged naming the step if the loss becomes non-finite (the last
    good checkpoint stays on disk), and ValueError if ``run_dir`` holds a different run.
    """
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    tag = tag or os.path.basename(os.path.normpath(run_dir))
    check_compatible(model, task)
    schedule = Schedule.parse(train_cfg.schedule)
    schedule.validate(task)
    xp = get_backend(backend)
    cfg_dict = run_config(model, task, train_cfg)
    cfg_path = os.path.join(run_dir, "config.json")
    if os.path.exists(cfg_path):
        refuse_other_config(run_dir, read_json(cfg_path), cfg_dict, "config.json")
        if is_finished(run_dir):
            return read_json(os.path.join(run_dir, "summary.json"))
    else:
        if (ckpt := latest_checkpoint(run_dir)) is not None:   # config.json lost: the checkpoint says
            z = read_npz(ckpt)
            if "config" not in z:
                raise ValueError(f"{run_dir}: config.json is missing and {os.path.basename(ckpt)} records no "
                                 f"config; cannot check that resuming it continues the same run")
            refuse_other_config(run_dir, json.loads(str(z["config"])), cfg_dict, os.path.basename(ckpt))
        save_json(cfg_path, cfg_dict)

    for folder in (run_dir, os.path.join(run_dir, "ckpt")):   # what killed writes left behind
        clean_stale_tmp(folder)
    cfg_json = json.dumps(cfg_dict, sort_keys=True)          # every checkpoint carries its config
    names = list(param_shapes(model))
    probe = probe_set(task, schedule.all_m(), train_cfg.n_probe, train_cfg.seed)
    history = []
    latest = latest_checkpoint(run_dir)
    if latest is None:
        params = init_params(model, train_cfg.seed, np.float32, xp, std=train_cfg.init_std)
        state = optim.init_state(train_cfg.optimizer, params)
        start = 0
    else:
        z = read_npz(latest)
        params = {k: to_device(z[k], xp) for k in names}
        state = {k[4:]: to_device(z[k], xp) for k in z if k.startswith("opt.")}
        start = int(z["step"])
        history = [r for r in read_history(run_dir) if r["step"] <= start]
        log(f"[{tag}] resuming from step {start}")

    seconds = {"steps": 0.0, "evaluate": 0.0, "checkpoint_writes": 0.0}    # this process's share

    def checkpoint(step, window_losses):
        t_eval = time.perf_counter()
        ev = evaluate(params, probe, model)
        if not ev["finite"]:          # never save diverged parameters as the "last good" checkpoint
            raise TrainingDiverged(f"[{tag}] non-finite logits at step {step} (the parameters its updates "
                                   f"reached); last good checkpoint: {latest_checkpoint(run_dir)}")
        t_save = time.perf_counter()
        seconds["evaluate"] += t_save - t_eval
        rec = {"step": step, "loss": float(np.mean(window_losses)) if window_losses else None,
               "acc": {str(m): a for m, a in ev["acc"].items()},
               "entropy": {str(m): e for m, e in ev["entropy"].items()}}
        extra = {"step": np.array(step), "metrics": np.array(json.dumps(rec)), "config": np.array(cfg_json),
                 **{"opt." + k: v for k, v in state.items()}}
        save_npz(ckpt_path(run_dir, step), {**params, **extra})
        history.append(rec)
        save_json(os.path.join(run_dir, "metrics.json"), history)
        seconds["checkpoint_writes"] += time.perf_counter() - t_save
        return rec, ev

    if start == 0 and not history:
        checkpoint(0, [])
    t0, losses = time.perf_counter(), []
    for s in range(start, train_cfg.steps):
        t_step = time.perf_counter()
        batch = train_batch(task, schedule, train_cfg.batch_size, train_cfg.seed, s)
        loss, grads = loss_and_grads(params, to_device(batch.tokens, xp),
                                     to_device(batch.targets, xp), model)
        loss = float(loss)
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"[{tag}] non-finite loss ({loss}) at step {s}; last good checkpoint: "
                f"{latest_checkpoint(run_dir)}")
        lr = optim.lr_at(train_cfg.lr_schedule, train_cfg.lr, s, train_cfg.steps, schedule.boundaries())
        optim.step(train_cfg.optimizer, params, grads, state, lr, train_cfg.weight_decay)
        losses.append(loss)
        seconds["steps"] += time.perf_counter() - t_step
        if (s + 1) % train_cfg.ckpt_every == 0 or s + 1 == train_cfg.steps:
            rec, ev = checkpoint(s + 1, losses)
            elapsed = time.perf_counter() - t0
            eta = elapsed / (s + 1 - start) * (train_cfg.steps - s - 1)
            log(_format_progress(tag, s + 1, train_cfg.steps, rec["loss"], ev["acc"], elapsed, eta))
            losses = []
    return _finish(run_dir, names, history, cfg_dict, seconds)


def _finish(run_dir, names, history, cfg_dict, seconds) -> dict:
    """Stack the checkpoints into trajectory.npz, drop all but the last, write summary.

    Safe to re-enter after a kill at any point: a trajectory.npz that already ends at the
    final step is complete (it was written atomically before any checkpoint was pruned)."""
    t0 = time.perf_counter()
    paths = sorted(glob.glob(os.path.join(run_dir, "ckpt", "step_*.npz")))
    final = history[-1]
    traj_path = os.path.join(run_dir, "trajectory.npz")
    if os.path.exists(traj_path) and int(read_npz(traj_path)["steps"][-1]) == final["step"]:
        n_ckpt = len(read_npz(traj_path)["steps"])
    else:
        ckpts = [read_npz(p) for p in paths]
        traj = {k: np.stack([c[k] for c in ckpts]) for k in names}
        traj["steps"] = np.array([int(c["step"]) for c in ckpts])
        save_npz(traj_path, traj)
        n_ckpt = len(ckpts)
    for p in paths[:-1]:
        os.remove(p)
    seconds = {**seconds, "trajectory_write": time.perf_counter() - t0}
    files = ["config.json", "metrics.json", "trajectory.npz", os.path.relpath(paths[-1], run_dir)]
    summary = {"config": cfg_dict, "final_step": final["step"], "final_loss": final["loss"],
               "final_acc": final["acc"], "n_checkpoints": n_ckpt,
               "final_checkpoint": os.path.relpath(paths[-1], run_dir),
               "blas_threads": blas_threads(),
               "seconds": {k: round(v, 3) for k, v in seconds.items()},     # the last process's, if resumed
               "files": {f: file_digest(os.path.join(run_dir, f)) for f in files}}   # checked by verify_run
    save_json(os.path.join(run_dir, "summary.json"), summary)
    record_digest(os.path.join(run_dir, "summary.json"))     # checked by verify_run: an edit is caught
    return summary


