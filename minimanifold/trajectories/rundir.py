"""A run directory: what it holds, whether it is finished, who trained it, reading and
checking it, and caching a measurement inside it (see ``training_loop.py`` for how one is written).

    config.json, metrics.json, trajectory.npz, ckpt/step_XXXXXXXX.npz, summary.json,
    trained_by.json

A run is finished when its summary.json exists (``is_finished``). A finished run's summary
lists the sha256 of its files; ``verify_run`` checks them before a cached run is used.
Every checkpoint carries the run's config. ``run_lock`` makes one process at a time train
or adopt a run; ``cached`` keeps a per-run measurement beside the run, checked by its digest.
"""
from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import socket
import sys

import numpy as np

from ..files import changed, file_digest, read_json, read_npz, record_digest, save_json, save_npz
from ..model.backend import blas_core
from ..model.config import ModelConfig
from ..model.io import load_params
from ..model.transformer import attention_param_names
from .task import TaskConfig

MATS = ("W_Q", "W_K", "W_V", "W_O")
ALL = "all attention"


class DamagedRun(ValueError):
    """A finished run's files are missing, truncated or changed; the message names the file."""


class MissingRecord(ValueError):
    """A committed record (``trajectories/records.py``) lacks a measurement a report asks for."""


RECORD = "record.json"   # marks a committed record: a run directory without its heavy files
READ = set()             # every cached measurement this process read or wrote (what a record keeps)


def is_record(d) -> bool:
    return os.path.isfile(os.path.join(d, RECORD))


def in_records(d) -> bool:
    """``d`` is a committed record, or the folder of one configuration's records (where a
    measurement across its seeds is kept)."""
    return is_record(d) or (os.path.isdir(d) and any(is_record(os.path.join(d, e)) for e in os.listdir(d)))


# Options added after runs were first cached, with the value every earlier run had. A run
# directory whose config lacks one was trained with that value (and keeps its cache key).
LATER_OPTIONS = {"train": {"lr_schedule": "constant"}, "task": {"holdout": 0.0, "labels": "task"},
                 "model": {"attn_bias": False}}


def with_later_options(cfg: dict) -> dict:
    """A run's config dict with every later option filled in at its earlier value."""
    return {s: {**LATER_OPTIONS.get(s, {}), **v} for s, v in cfg.items()}


def is_finished(run_dir) -> bool:
    """The run in ``run_dir`` finished training: its summary.json was written (the last file
    ``train`` writes). Whether its files are intact is ``verify_run``'s."""
    return os.path.exists(os.path.join(run_dir, "summary.json"))


def ckpt_path(run_dir, step):
    return os.path.join(run_dir, "ckpt", f"step_{step:08d}.npz")


def latest_checkpoint(run_dir):
    paths = sorted(glob.glob(os.path.join(run_dir, "ckpt", "step_*.npz")))
    return paths[-1] if paths else None


def checkpoint_step(path) -> int:
    """The step of a checkpoint file ``.../step_XXXXXXXX.npz``."""
    return int(os.path.basename(path)[len("step_"):-len(".npz")])


def record_trainer(run_dir, worker=None) -> dict:
    """Append who trains ``run_dir`` now to its ``trained_by.json`` (a list, oldest first)
    and return the entry: the Dask worker's address (None: a local process), the host, the
    process id, the step training starts from (its latest checkpoint; 0: from scratch) and
    OpenBLAS's kernel (``OPENBLAS_CORETYPE`` or the CPU's: the same seed under another one
    ends elsewhere). A run resumed after its worker died lists both workers. Call it holding the
    run lock."""
    path = os.path.join(run_dir, "trained_by.json")
    latest = latest_checkpoint(run_dir)
    entry = {"worker": worker, "host": socket.gethostname(), "pid": os.getpid(),
             "from_step": checkpoint_step(latest) if latest else 0,
             "blas_core": blas_core()}          # the GEMM kernel: another one trains the same seed elsewhere
    save_json(path, (read_json(path) if os.path.exists(path) else []) + [entry])
    return entry


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



# ---- a measurement cached in the run directory ----

def cached(run_dir, filename, compute, read, write, record=True):
    """``compute(run_dir)``, written to ``filename`` in the run directory by ``write(path,
    value)`` with its digest beside it (``files.record_digest``); a stored one is read
    by ``read(path)`` instead, but only if it is the file that was written: one changed,
    truncated or unreadable since (or stored before digests were kept) is named on stderr
    and recomputed, never used (bump the version in ``filename`` when the measurement
    changes). ``record``: a committed record keeps it (``READ``); False for a large
    intermediate that a smaller cached measurement summarises."""
    path = os.path.join(run_dir, filename)
    if record:
        READ.add(os.path.abspath(path))
    if os.path.exists(path):
        why = changed(path)
        if why is None:
            try:
                return read(path)
            except ValueError as e:                    # valid digest, unreadable content: a bug
                why = f"is unreadable ({e})"
        if in_records(run_dir):
            raise MissingRecord(f"{path} {why}: a committed record is never recomputed (restore it with git)")
        print(f"{path} {why}: recomputed", file=sys.stderr)
    elif in_records(run_dir):
        raise MissingRecord(f"{path} is not in the committed records (a measurement added or changed since they "
                            f"were made): it needs the run itself, in the run cache (its group's --train retrains it)")
    out = compute(run_dir)
    write(path, out)
    record_digest(path)
    return out


def cached_json(run_dir, filename, compute, decode=lambda x: x):
    """compute(run_dir), cached as JSON in the run directory (``cached``); a stored one is
    decoded."""
    return cached(run_dir, filename, compute, lambda p: decode(read_json(p)), save_json)


def cached_npz(run_dir, filename, compute, record=True) -> dict:
    """compute(run_dir) -> {name: array}, cached as .npz in the run directory (``cached``)."""
    return cached(run_dir, filename, compute, read_npz, save_npz, record)

