"""§4.3's per-run measurement: commutators at evenly spaced checkpoints (stored), and their
projections onto the execution subspace with the three random baselines (cached).

``measure`` evaluates commutators at up to ``n_points`` evenly spaced checkpoints of the
saved trajectory — the exact parameters training had at those steps — and stores every
delta and g_A (float32, flattened) in ``commutators_v*.npz`` in the run directory, so
``project`` (and any other projection) is recomputed offline without retraining.
The step size of each commutator is the eta the schedule had at that step (stored as
``lr``, one per point). Samples per point: ``n_mixed`` pairs of independent training-distribution minibatches,
one same-m pair (A and B both with one m) and one cross-m pair (different m's).
"""
from __future__ import annotations

import os
import sys

import numpy as np

from ...analysis import execution
from ...analysis.commutator import commutator
from ...files import changed, read_npz, record_digest, save_npz
from ...model.optim import lr_at
from ...model.transformer import attention_param_names, flatten, param_shapes
from ...trajectories.schedule import Schedule
from ...trajectories.task import make_batch
from ...trajectories.rundir import attention_trajectories, cached_npz, load_trajectory, run_configs

VERSION = 1              # the stored commutators
PROJECTION_VERSION = 2   # their projections (2: bases keep only directions with variance)
KINDS = ("mixed", "same-m", "cross-m")
K_PER_MATRIX = 3         # execution-basis directions per attention matrix (``project``)


def measure(run_dir, n_points=12, n_mixed=4, batch_size=64) -> str:
    path = os.path.join(run_dir, f"commutators_v{VERSION}.npz")
    if os.path.exists(path):
        why = changed(path)                  # the stored vectors, as cached() checks its files
        if why is None:
            return path
        print(f"{path} {why}: recomputed", file=sys.stderr)
    cfg, task, tr = run_configs(run_dir)
    schedule = Schedule.parse(tr["schedule"])
    traj = load_trajectory(run_dir)
    steps = traj["steps"]
    idx = np.unique(np.linspace(0, len(steps) - 1, n_points).round().astype(int))
    ms = schedule.all_m()
    rows = {"delta": [], "g_A": [], "norm": [], "defect": [], "cosine": [], "kind": [], "m_A": [], "m_B": []}
    lrs = []                                  # eta in force at each measured step (the schedule's)
    for i in idx:
        # the final checkpoint has no update after it: the eta in force there is the last one's
        lrs.append(lr_at(tr["lr_schedule"], tr["lr"], min(int(steps[i]), tr["steps"] - 1), tr["steps"],
                         schedule.boundaries()))
        params = {k: traj[k][i].astype(np.float64) for k in param_shapes(cfg)}
        rng = np.random.default_rng([tr["seed"], 6, int(i)])
        pairs = [("mixed", schedule.m_set(int(steps[i])), schedule.m_set(int(steps[i])))] * n_mixed
        m = int(rng.choice(ms))
        pairs.append(("same-m", (m,), (m,)))
        if len(ms) > 1:
            m_a, m_b = rng.choice(ms, size=2, replace=False)
            pairs.append(("cross-m", (int(m_a),), (int(m_b),)))
        point = {k: [] for k in rows}
        for kind, set_a, set_b in pairs:
            A, B = make_batch(rng, task, set_a, batch_size), make_batch(rng, task, set_b, batch_size)
            s = commutator(params, (A.tokens, A.targets), (B.tokens, B.targets), lrs[-1], cfg)
            point["delta"].append(flatten(s.delta).astype(np.float32))
            point["g_A"].append(flatten(s.g_A).astype(np.float32))
            point["norm"].append(s.norm)
            point["defect"].append(s.defect)
            point["cosine"].append(s.cosine)
            point["kind"].append(KINDS.index(kind))
            point["m_A"].append(int(A.m[0]) if kind != "mixed" else 0)
            point["m_B"].append(int(B.m[0]) if kind != "mixed" else 0)
        for k in rows:
            rows[k].append(point[k])
    save_npz(path, {"steps": steps[idx], "index": idx, "lr": np.array(lrs),
                    **{k: np.array(v) for k, v in rows.items()}})
    record_digest(path)
    return path


def project(run_dir, k=K_PER_MATRIX, n_random=4) -> dict:
    """rho of every stored delta and g_A onto the causal basis (checkpoints up to the
    measurement step) and the whole-trajectory basis, with the three baselines."""
    cfg, _, tr = run_configs(run_dir)
    data = read_npz(measure(run_dir))
    snaps = attention_trajectories(run_dir, cfg)
    whole = execution.execution_basis(snaps, cfg, k)
    rng = np.random.default_rng([tr["seed"], 7])
    P, K = execution.n_params(cfg), k * len(attention_param_names(cfg))
    block = [execution.random_block_basis(cfg, k, rng) for _ in range(n_random)]
    full = [execution.random_full_basis(P, K, rng) for _ in range(n_random)]
    n_pts, n_s = data["norm"].shape
    out = {key: np.full((n_pts, n_s), np.nan) for key in
           ("rho_whole", "rho_causal", "rho_g_whole", "rho_g_causal",
            "rand_analytic", "rand_full", "rand_block", "rand_g_full", "rand_g_block")}
    for i, j in enumerate(data["index"]):
        causal = execution.execution_basis({n: x[:j + 1] for n, x in snaps.items()}, cfg, k) if j >= 1 else None
        for s in range(n_s):
            d, g = data["delta"][i, s], data["g_A"][i, s]
            out["rho_whole"][i, s] = execution.rho(whole, d, cfg)
            out["rho_g_whole"][i, s] = execution.rho(whole, g, cfg)
            if causal is not None:
                out["rho_causal"][i, s] = execution.rho(causal, d, cfg)
                out["rho_g_causal"][i, s] = execution.rho(causal, g, cfg)
            bd, bg = execution.baselines(d, cfg, k, block, full), execution.baselines(g, cfg, k, block, full)
            out["rand_analytic"][i, s] = bd["analytic"]
            out["rand_full"][i, s], out["rand_block"][i, s] = bd["full"], bd["block"]
            out["rand_g_full"][i, s], out["rand_g_block"][i, s] = bg["full"], bg["block"]
    out.update({k2: data[k2] for k2 in ("steps", "norm", "defect", "cosine", "kind", "m_A", "m_B", "lr")})
    return out


def subspace_size(run_dir, k=K_PER_MATRIX) -> int:
    """K, the execution subspace's dimension ``project`` uses: k directions per attention matrix."""
    return k * len(attention_param_names(run_configs(run_dir)[0]))


def cached_projection(run_dir) -> dict:
    return cached_npz(run_dir, f"commutator_projection_v{PROJECTION_VERSION}.npz", project)


