"""Analyses of trained runs for §4.1–4.2: effective rank of every attention matrix (and of
all attention weights together) beside random-walk nulls, r90 over expanding windows,
seed orientation, and bubbling. Inputs are run directories written by ``train``.
"""
from __future__ import annotations

import itertools
import json
import os

import numpy as np

from . import geometry as G
from .bubbling import last_position_topk_mass, topk_accuracy
from .config import ModelConfig, TaskConfig
from .io import load_params, read_npz, save_json, save_npz
from .model import attention_param_names
from .task import Schedule, probe_set
from .train import load_metrics, load_trajectory

FRACTIONS = tuple(np.round(np.arange(0.1, 1.01, 0.1), 2))
ALL = "all attention"


def run_configs(run_dir):
    with open(f"{run_dir}/config.json") as f:
        c = json.load(f)
    return ModelConfig(**c["model"]), TaskConfig(**c["task"]), c["train"]


def attention_trajectories(run_dir, cfg: ModelConfig) -> dict:
    """{matrix name: snapshots [n,D]} for every attention matrix, plus ALL: them all."""
    traj = load_trajectory(run_dir)
    names = attention_param_names(cfg)
    out = {k: traj[k].reshape(len(traj["steps"]), -1) for k in names}
    out[ALL] = np.concatenate([out[k] for k in names], axis=1)
    return out


def stabilization_fraction(window_ranks, fractions=FRACTIONS):
    """First fraction of training from which the expanding-window r90 equals its final
    value at every later window."""
    final = window_ranks[-1]
    for i in range(len(window_ranks)):
        if all(r == final for r in window_ranks[i:]):
            return float(fractions[i])
    return 1.0


def geometry_of_run(run_dir, null_draws=3, k_dirs=3) -> dict:
    """Per matrix: spectrum summary, nulls, expanding-window r90, stabilization fraction,
    and the top ``k_dirs`` PCA directions (for seed orientation)."""
    cfg, _, _ = run_configs(run_dir)
    out = {}
    for i, (name, X) in enumerate(attention_trajectories(run_dir, cfg).items()):
        lam = G.pca_spectrum(X)
        norms = G.step_norms(X)
        windows = G.expanding_window(X, FRACTIONS)
        null = G.random_walk_null(norms, X.shape[1], n_draws=null_draws, seed=i)
        null_windows = G.expanding_window(G.random_walk(norms, X.shape[1],
                                                        np.random.default_rng([i, 5])), FRACTIONS)
        out[name] = {**G.summarize(lam), "evr": G.explained_variance_ratio(lam)[:10].tolist(),
                     "null": null, "windows": windows,
                     "stabilization": stabilization_fraction(windows),
                     "null_stabilization": stabilization_fraction(null_windows),
                     "D": int(X.shape[1]), "n": int(X.shape[0])}
        if name != ALL:
            out[name]["dirs"] = G.pca_directions(X, k_dirs)
    return out


def seed_orientation(geoms: list, k_dirs=3, n_random=5) -> dict:
    """Per matrix: principal angles (degrees) between every pair of seeds' top-k PCA
    subspaces, and between random k-subspaces of the same dimension."""
    out = {}
    for name in geoms[0]:
        if name == ALL:
            continue
        pairs = [np.degrees(G.principal_angles(a[name]["dirs"], b[name]["dirs"]))
                 for a, b in itertools.combinations(geoms, 2)]
        rand = np.degrees(G.random_subspace_angles(geoms[0][name]["D"], k_dirs, n_random))
        out[name] = {"seed_pairs_deg": [p.tolist() for p in pairs],
                     "random_deg": rand.tolist()}
    return out


def bubbling_of_run(run_dir, n_probe=256) -> dict:
    """Entropy curves (from the run's metrics), and at the final checkpoint: accuracy with
    every pattern cut to its top k (k = T..1) and the last position's top-k mass."""
    cfg, task, train_cfg = run_configs(run_dir)
    hist = load_metrics(run_dir)
    summary = json.load(open(f"{run_dir}/summary.json"))
    params, _ = load_params(f"{run_dir}/{summary['final_checkpoint']}")
    ms = Schedule.parse(train_cfg["schedule"]).all_m()
    probe = probe_set(task, ms, n_probe, train_cfg["seed"])
    ks = list(range(task.T, 0, -1))
    return {"steps": [r["step"] for r in hist],
            "entropy": {m: [r["entropy"][str(m)] for r in hist] for m in ms},   # [n][layer]
            "acc": {m: [r["acc"][str(m)] for r in hist] for m in ms},
            "ks": ks, "topk_acc": topk_accuracy(params, probe, cfg, ks),
            "topk_mass": last_position_topk_mass(params, probe, cfg, ks), "T": task.T}


ANALYSIS_VERSION = 1   # bump when an analysis changes, so cached results are recomputed


def cached_geometry(run_dir) -> dict:
    """geometry_of_run, cached in the run directory (JSON + the PCA directions in .npz)."""
    jpath = os.path.join(run_dir, f"geometry_v{ANALYSIS_VERSION}.json")
    npath = os.path.join(run_dir, f"geometry_dirs_v{ANALYSIS_VERSION}.npz")
    if os.path.exists(jpath) and os.path.exists(npath):
        with open(jpath) as f:
            geom = json.load(f)
        for name, arr in read_npz(npath).items():
            geom[name]["dirs"] = arr
        return geom
    geom = geometry_of_run(run_dir)
    save_npz(npath, {k: v["dirs"] for k, v in geom.items() if "dirs" in v})
    save_json(jpath, {k: {kk: vv for kk, vv in v.items() if kk != "dirs"} for k, v in geom.items()})
    return geom


def cached_bubbling(run_dir) -> dict:
    path = os.path.join(run_dir, f"bubbling_v{ANALYSIS_VERSION}.json")
    if os.path.exists(path):
        with open(path) as f:
            b = json.load(f)
        for key in ("entropy", "acc", "topk_acc", "topk_mass"):
            b[key] = {int(m): v for m, v in b[key].items()}
        return b
    b = bubbling_of_run(run_dir)
    save_json(path, b)
    return b
