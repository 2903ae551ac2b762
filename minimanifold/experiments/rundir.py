"""Reading a trained run directory (written by ``trajectories.train``), and caching a
measurement inside it so a second ``run_all.py`` only redraws."""
from __future__ import annotations

import json
import os

import numpy as np

from ..model.config import ModelConfig, TaskConfig
from ..model.io import load_params, read_npz, save_json, save_npz
from ..model.transformer import attention_param_names
from ..trajectories.run_files import load_trajectory, with_later_options

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


def cached_json(run_dir, filename, compute, decode=lambda x: x):
    """compute(run_dir), stored as JSON in the run directory; a stored one is decoded and
    returned instead (bump the version in ``filename`` when the measurement changes)."""
    path = os.path.join(run_dir, filename)
    if os.path.exists(path):
        with open(path) as f:
            return decode(json.load(f))
    out = compute(run_dir)
    save_json(path, out)
    return out


def cached_npz(run_dir, filename, compute) -> dict:
    """compute(run_dir) -> {name: array}, stored as .npz in the run directory."""
    path = os.path.join(run_dir, filename)
    if os.path.exists(path):
        return read_npz(path)
    out = compute(run_dir)
    save_npz(path, out)
    return out
