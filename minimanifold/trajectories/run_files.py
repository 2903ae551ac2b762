"""A run directory's files: reading them, checking them, and the config they were made
with (see ``train.py`` for what a run directory holds).

    config.json, metrics.json, trajectory.npz, ckpt/step_XXXXXXXX.npz, summary.json

A finished run's summary lists the sha256 of its files; ``verify_run`` checks them before
a cached run is used. Every checkpoint carries the run's config.
"""
from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import os
import sys

from ..model.io import atomic_write, read_npz


class DamagedRun(ValueError):
    """A finished run's files are missing, truncated or changed; the message names the file."""


# Options added after runs were first cached, with the value every earlier run had. A run
# directory whose config lacks one was trained with that value (and keeps its cache key).
LATER_OPTIONS = {"train": {"lr_schedule": "constant"}, "task": {"holdout": 0.0},
                 "model": {"attn_bias": False}}


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


def digest_path(path) -> str:
    return f"{path}.sha256"


def record_digest(path) -> None:
    """Write ``<path>.sha256``, the digest of the file just written at ``path``: a run's
    summary and every cached measurement (``experiments.rundir``) carry one, so a file
    changed or truncated after its writer finished is caught by ``changed``."""
    digest = file_digest(path)
    atomic_write(digest_path(path), lambda f: f.write(digest + "\n"), mode="w")


def changed(path):
    """None if ``path`` is the file whose digest was recorded beside it; else why not (no
    digest recorded: written before digests were kept, or its writer was killed first)."""
    try:
        with open(digest_path(path), encoding="utf-8") as f:
            want = f.read().strip()
    except FileNotFoundError:
        return "has no recorded digest"
    return None if file_digest(path) == want else "is not the file its writer wrote (changed or truncated)"


def verify_run(run_dir) -> dict:
    """The summary of a finished run, after checking that every file it lists is there and
    has the content it was written with; DamagedRun naming the file otherwise. A run
    written before summaries listed their files gets its files' presence checked. The
    summary itself is checked against its recorded digest; a summary written before
    digests were kept has its digest recorded now (adopted as it is)."""
    path = os.path.join(run_dir, "summary.json")
    why = changed(path) if os.path.isfile(path) else None
    if why == "has no recorded digest":
        record_digest(path)
    elif why is not None:
        raise DamagedRun(f"{run_dir}: summary.json {why}")
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


@contextlib.contextmanager
def run_lock(d, log=None):
    """Hold ``<run dir>.lock`` (an exclusive ``flock``) while one process trains or adopts the
    run in ``d``: a second sweep of the same run directory (another ``run_all.py`` on the
    same cache, a repeated seed) waits for the first, says so, and then loads its result.
    The lock goes with the process, however it ends."""
    os.makedirs(os.path.dirname(d), exist_ok=True)
    with open(f"{d}.lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            say = log or (lambda s: print(s, file=sys.stderr))
            say(f"[{os.path.basename(os.path.dirname(d))}/{os.path.basename(d)}] waiting for {holder}, "
                f"which is training this run; its result is then loaded")
            fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}")
        f.flush()
        try:
            yield
        finally:
            f.truncate(0)
            fcntl.flock(f, fcntl.LOCK_UN)
