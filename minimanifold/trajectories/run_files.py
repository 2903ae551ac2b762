"""A run directory's files: reading them, checking them, and the config they were made
with (see ``train.py`` for what a run directory holds).

    config.json, metrics.json, trajectory.npz, ckpt/step_XXXXXXXX.npz, summary.json

A finished run's summary lists the sha256 of its files; ``verify_run`` checks them before
a cached run is used. Every checkpoint carries the run's config.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os

from ..model.io import read_npz


class DamagedRun(ValueError):
    """A finished run's files are missing, truncated or changed; the message names the file."""


# Options added after runs were first cached, with the value every earlier run had. A run
# directory whose config lacks one was trained with that value (and keeps its cache key).
LATER_OPTIONS = {"train": {"lr_schedule": "constant"}, "task": {"holdout": 0.0}}


def with_later_options(cfg: dict) -> dict:
    """A run's config dict with every later option filled in at its earlier value."""
    return {s: {**LATER_OPTIONS.get(s, {}), **v} for s, v in cfg.items()}


def ckpt_path(run_dir, step):
    return os.path.join(run_dir, "ckpt", f"step_{step:08d}.npz")


def latest_checkpoint(run_dir):
    paths = sorted(glob.glob(os.path.join(run_dir, "ckpt", "step_*.npz")))
    return paths[-1] if paths else None


def refuse_other_config(run_dir, stored: dict, cfg_dict: dict, where: str) -> None:
    """ValueError naming the fields if the run in ``run_dir`` was made with another config."""
    old, new = with_later_options(stored), json.loads(json.dumps(cfg_dict))
    if old != new:
        diff = [f"{s}.{k}" for s in new for k in new[s] if old.get(s, {}).get(k) != new[s][k]]
        raise ValueError(f"{run_dir} holds a run with a different config ({', '.join(diff)}; from {where})")


def read_history(run_dir):
    """Metrics of every checkpoint on disk (each file carries its own record)."""
    out = []
    for path in sorted(glob.glob(os.path.join(run_dir, "ckpt", "step_*.npz"))):
        out.append(json.loads(str(read_npz(path)["metrics"])))
    path = os.path.join(run_dir, "metrics.json")
    if os.path.exists(path):   # checkpoints already consolidated into trajectory.npz
        known = {r["step"] for r in out}
        out += [r for r in read_json(path) if r["step"] not in known]
    return sorted(out, key=lambda r: r["step"])


def read_json(path):
    """json.load of ``path``; a corrupt file raises ValueError naming it."""
    with open(path) as f:
        try:
            return json.load(f)
        except ValueError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None


def file_digest(path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def verify_run(run_dir) -> dict:
    """The summary of a finished run, after checking that every file it lists is there and
    has the content it was written with; DamagedRun naming the file otherwise. A run
    written before summaries listed their files gets its files' presence checked."""
    try:
        with open(os.path.join(run_dir, "summary.json")) as f:
            summary = json.load(f)
    except (OSError, ValueError) as e:
        raise DamagedRun(f"{run_dir}: summary.json is unreadable ({e})") from None
    files = summary.get("files") or dict.fromkeys(
        ["config.json", "metrics.json", "trajectory.npz", summary.get("final_checkpoint", "ckpt")])
    for name, digest in files.items():
        path = os.path.join(run_dir, name)
        if not os.path.isfile(path):
            raise DamagedRun(f"{run_dir}: {name} is missing")
        if digest is not None and file_digest(path) != digest:
            raise DamagedRun(f"{run_dir}: {name} is not the file the run wrote (truncated or changed)")
    return summary


def load_trajectory(run_dir) -> dict:
    """{param name: [n_ckpt, ...], "steps": [n_ckpt]} of a completed run."""
    return read_npz(os.path.join(run_dir, "trajectory.npz"))


def load_metrics(run_dir) -> list:
    return read_json(os.path.join(run_dir, "metrics.json"))
