"""Reading a trained run directory (written by ``trajectories.train``) and the sweep's
record of it (which runs learned, the summary table), and caching a measurement inside it
so a second ``run_all.py`` only redraws."""
from __future__ import annotations

import json
import os
import sys

import numpy as np

from ..model.config import ModelConfig, TaskConfig
from ..model.io import load_params, read_npz, save_json, save_npz
from ..model.transformer import attention_param_names
from ..trajectories.metrics import steps_to_learn
from ..trajectories.run_files import (changed, load_metrics, load_trajectory, read_json, record_digest,
                                      with_later_options)
from ..trajectories.task import Schedule

MATS = ("W_Q", "W_K", "W_V", "W_O")
ALL = "all attention"


def run_configs(run_dir):
    """(ModelConfig, TaskConfig, the training config as a dict) of a run."""
    with open(f"{run_dir}/config.json") as f:
        c = with_later_options(json.load(f))
    return ModelConfig(**c["model"]), TaskConfig(**c["task"]), c["train"]


def final_params(run_dir) -> dict:
    with open(f"{run_dir}/summary.json") as f:
        summary = json.load(f)
    return load_params(f"{run_dir}/{summary['final_checkpoint']}")[0]


def attention_trajectories(run_dir, cfg: ModelConfig) -> dict:
    """{matrix name: snapshots [n,D]} for every attention matrix, plus ALL: them all."""
    traj = load_trajectory(run_dir)
    names = attention_param_names(cfg)
    out = {k: traj[k].reshape(len(traj["steps"]), -1) for k in names}
    out[ALL] = np.concatenate([out[k] for k in names], axis=1)
    return out


def matrix_names(n_layers) -> list:
    """The 4 x n_layers attention matrices, layer by layer."""
    return [f"blocks.{l}.attn.{W}" for l in range(n_layers) for W in MATS]


def cached(run_dir, filename, compute, read, write):
    """``compute(run_dir)``, written to ``filename`` in the run directory by ``write(path,
    value)`` with its digest beside it (``run_files.record_digest``); a stored one is read
    by ``read(path)`` instead, but only if it is the file that was written: one changed,
    truncated or unreadable since (or stored before digests were kept) is named on stderr
    and recomputed, never used (bump the version in ``filename`` when the measurement
    changes)."""
    path = os.path.join(run_dir, filename)
    if os.path.exists(path):
        why = changed(path)
        if why is None:
            try:
                return read(path)
            except ValueError as e:                    # valid digest, unreadable content: a bug
                why = f"is unreadable ({e})"
        print(f"{path} {why}: recomputed", file=sys.stderr)
    out = compute(run_dir)
    write(path, out)
    record_digest(path)
    return out


def cached_json(run_dir, filename, compute, decode=lambda x: x):
    """compute(run_dir), cached as JSON in the run directory (``cached``); a stored one is
    decoded."""
    return cached(run_dir, filename, compute, lambda p: decode(read_json(p)), save_json)


def cached_npz(run_dir, filename, compute) -> dict:
    """compute(run_dir) -> {name: array}, cached as .npz in the run directory (``cached``)."""
    return cached(run_dir, filename, compute, read_npz, save_npz)


# ---- the sweep's records of the runs ----

def learned(run) -> bool:
    """Held-out accuracy >= 0.95 on every m at the end of training."""
    return min(run["summary"]["final_acc"].values()) >= 0.95


def learned_final_stage(run) -> bool:
    """Accuracy >= 0.95 on every m of the schedule's final stage (all m for mixed)."""
    final = Schedule.parse(run["summary"]["config"]["train"]["schedule"]).stages[-1][0]
    return all(run["summary"]["final_acc"][str(m)] >= 0.95 for m in final)


def summary_table(runs) -> str:
    """One markdown row per run: seed, steps, final loss, accuracy per m, and the step
    from which every m stays >= 0.95 ("-" if it never does)."""
    ms = sorted({m for r in runs for m in r["summary"]["final_acc"]}, key=int)
    lines = ["| run | seed | steps | final loss | " + " | ".join(f"acc m={m}" for m in ms)
             + " | learned (all m >= 0.95) from step |",
             "|---|---|---|---|" + "---|" * len(ms) + "---|"]
    for r in runs:
        s = r["summary"]
        acc = [s["final_acc"].get(m) for m in ms]
        learned = steps_to_learn(load_metrics(r["dir"]))
        lines.append(f"| {r['name']} | {r['seed']} | {s['final_step']} | {s['final_loss']:.4f} | "
                     + " | ".join("" if a is None else f"{a:.3f}" for a in acc)
                     + f" | {'-' if learned is None else learned} |")
    return "\n".join(lines)
