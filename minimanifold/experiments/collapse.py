"""§4.1, Figure 1: the collapse of attention trajectories to a few PCA directions.

Measured per run (cached in the run directory): for every attention matrix and for all
of them together, the PCA spectrum of the checkpoints (eq 1–2), r90 beside random-walk
nulls with the same step norms, r90 over expanding windows and when it settles, and the
top-3 directions (to compare seeds' orientations). Claims 1–5 and 19.
"""
from __future__ import annotations

import itertools
import json
import os

import numpy as np

from ..analysis import pca as G
from ..model.io import read_npz, save_json, save_npz
from ..report.ledger import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, mean_sd
from ..report.plotting import plt, save_figure
from .rundir import ALL, MATS, attention_trajectories, matrix_names, run_configs

ANALYSIS_VERSION = 1   # bump when the measurement changes, so cached results are recomputed


def geometry_of_run(run_dir, null_draws=3, k_dirs=3) -> dict:
    """Per matrix: spectrum summary, nulls, expanding-window r90, stabilization fraction,
    and the top ``k_dirs`` PCA directions (for seed orientation)."""
    cfg, _, _ = run_configs(run_dir)
    out = {}
    for i, (name, X) in enumerate(attention_trajectories(run_dir, cfg).items()):
        lam = G.pca_spectrum(X)
        norms = G.step_norms(X)
        windows = G.expanding_window(X, G.FRACTIONS)
        null = G.random_walk_null(norms, X.shape[1], n_draws=null_draws, seed=i)
        null_windows = G.expanding_window(G.random_walk(norms, X.shape[1],
                                                        np.random.default_rng([i, 5])), G.FRACTIONS)
        out[name] = {**G.summarize(lam), "evr": G.explained_variance_ratio(lam)[:10].tolist(),
                     "null": null, "windows": windows,
                     "stabilization": G.stabilization_fraction(windows),
                     "null_stabilization": G.stabilization_fraction(null_windows),
                     "D": int(X.shape[1]), "n": int(X.shape[0])}
        if name != ALL:
            out[name]["dirs"] = G.pca_directions(X, k_dirs)
    return out


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


def mean_r90(geom, n_layers, key=lambda x: x["r90"]) -> float:
    """Mean over the 4 x n_layers attention matrices of one run (r90 by default)."""
    return float(np.mean([key(geom[k]) for k in matrix_names(n_layers)]))


def matched_null(x) -> float:
    return x["null"]["matched"]["mean"]


# ---- verdict rules: the docstring is the rule the ledger prints ----

def r90_range_rule(r90: float, null: float) -> str:
    """r90 of 3–4: *supported* if the mean r90 lies in [3, 5] (the paper's widest range) and at
    least 1 below the matched random-walk null; *inconclusive* if in range but within 1 of the
    null; *not supported* outside."""
    if not 3 <= r90 <= 5:
        return NOT_SUPPORTED
    return SUPPORTED if r90 <= null - 1 else INCONCLUSIVE


def vo_below_qk_rule(mean_diff: float, frac_positive: float) -> str:
    """W_V/W_O below W_Q/W_K: *supported* if the mean difference r90(Q,K) − r90(V,O) is > 0 and
    > 0 on at least 80% of seeds; *not supported* if the mean difference is ≤ 0; otherwise
    *inconclusive*."""
    if mean_diff <= 0:
        return NOT_SUPPORTED
    return SUPPORTED if frac_positive >= 0.8 else INCONCLUSIVE


def early_collapse_rule(settled: float, null_settled: float) -> str:
    """collapse in the first 20–30%: the fraction of training from which the expanding-window r90
    stays at its final value; *supported* if its mean is ≤ 0.3 and earlier than the matched
    null's, *inconclusive* if ≤ 0.3 but not earlier than the null's, *not supported* if > 0.3."""
    if settled > 0.3:
        return NOT_SUPPORTED
    return SUPPORTED if settled < null_settled else INCONCLUSIVE


def same_dimension_rule(max_spread: float, n_seeds: int) -> str:
    """same dimension across seeds: *supported* if every matrix's r90 varies by at most 1 across
    seeds, *not supported* otherwise (*inconclusive* with fewer than 3 seeds)."""
    if n_seeds < 3:
        return INCONCLUSIVE
    return SUPPORTED if max_spread <= 1 else NOT_SUPPORTED


def orientation_rule(angle_deg: float) -> str:
    """different orientation: mean smallest principal angle between seeds' top-3 subspaces;
    *supported* > 45°, *not supported* < 20°, *inconclusive* between."""
    return SUPPORTED if angle_deg > 45 else NOT_SUPPORTED if angle_deg < 20 else INCONCLUSIVE


def m_scaling_rule() -> str:
    """dimension stable for m ≤ 6: not measured by these presets (*inconclusive*)."""
    return INCONCLUSIVE


RULES = {1: r90_range_rule, 2: vo_below_qk_rule, 3: early_collapse_rule, 4: same_dimension_rule,
         5: orientation_rule, 19: m_scaling_rule}


# ---- ledger rows ----

def claim_r90_range(geoms, n_layers):
    per_seed = [mean_r90(g, n_layers) for g in geoms]
    null = [mean_r90(g, n_layers, matched_null) for g in geoms]
    const = [mean_r90(g, n_layers, lambda x: x["null"]["constant"]["mean"]) for g in geoms]
    mean, null_mean = float(np.mean(per_seed)), float(np.mean(null))
    return {"claim": "attention trajectories collapse to r90 of 3–4 (addition)", "section": "§4.1, Fig 1",
            "paper": "3–4 (3–5 in Fig 1 caption; authors' figure: 4.1–6.0 W_Q/W_K, 2.5–3.8 W_V/W_O)",
            "measured": f"r90 {mean_sd(per_seed)} (mean over the {4 * n_layers} matrices)",
            "null": f"random walk, matched steps {mean_sd(null)}; constant steps {mean_sd(const)}",
            "verdict": r90_range_rule(mean, null_mean), "value": mean, "null_value": null_mean}


def claim_vo_below_qk(geoms, n_layers):
    def diff(g, key):
        qk = [key(g[f"blocks.{l}.attn.{W}"]) for l in range(n_layers) for W in ("W_Q", "W_K")]
        vo = [key(g[f"blocks.{l}.attn.{W}"]) for l in range(n_layers) for W in ("W_V", "W_O")]
        return np.mean(qk) - np.mean(vo)
    d = np.array([diff(g, lambda x: x["r90"]) for g in geoms])
    dn = np.array([diff(g, matched_null) for g in geoms])
    frac = float((d > 0).mean())
    return {"claim": "W_V, W_O lower-dimensional than W_Q, W_K", "section": "§4.1",
            "paper": "consistently lower (authors' figure: 2.5–3.8 vs 4.1–6.0)",
            "measured": f"r90(Q,K) − r90(V,O) = {mean_sd(d)}; > 0 in {frac:.0%} of seeds",
            "null": f"same difference for the matched null: {mean_sd(dn)}",
            "verdict": vo_below_qk_rule(d.mean(), frac), "value": float(d.mean())}


def claim_early_collapse(geoms):
    s = np.array([g[ALL]["stabilization"] for g in geoms])
    sn = np.array([g[ALL]["null_stabilization"] for g in geoms])
    return {"claim": "collapse within the first 20–30% of training", "section": "§4.1",
            "paper": "20–30% of training",
            "measured": f"expanding-window r90 (all attention) settles at its final value from "
                        f"{mean_sd(100 * s, '{:.0f}')}% of training",
            "null": f"matched random walk settles from {mean_sd(100 * sn, '{:.0f}')}%",
            "verdict": early_collapse_rule(s.mean(), sn.mean()), "value": float(s.mean())}


def claim_same_dimension(geoms, n_layers):
    r = np.array([[g[k]["r90"] for k in matrix_names(n_layers)] for g in geoms])      # [seed, matrix]
    spread = r.max(0) - r.min(0)
    nr = np.array([[matched_null(g[k]) for k in matrix_names(n_layers)] for g in geoms])
    return {"claim": "the same dimension across seeds", "section": "§4.1",
            "paper": "3–4 on every seed (20 seeds)",
            "measured": f"across-seed sd of r90 per matrix {mean_sd(r.std(0))}; largest max−min {spread.max():.0f}",
            "null": f"across-seed sd of the matched null {mean_sd(nr.std(0))}",
            "verdict": same_dimension_rule(spread.max(), len(geoms)), "value": float(spread.max())}


def claim_orientation(orientation):
    smallest = [min(p) for v in orientation.values() for p in v["seed_pairs_deg"]]
    rand = [min(p) for v in orientation.values() for p in v["random_deg"]]
    if not smallest:
        return {"claim": "a different orientation across seeds", "section": "§4.1", "paper": "seed-dependent",
                "measured": "needs 2 seeds", "null": "", "verdict": INCONCLUSIVE, "value": None}
    m = float(np.mean(smallest))
    return {"claim": "a different orientation across seeds", "section": "§4.1",
            "paper": "orientation is seed-dependent (no number given)",
            "measured": f"smallest principal angle between two seeds' top-3 PCA subspaces "
                        f"{mean_sd(smallest, '{:.1f}')}° (all matrices, all seed pairs)",
            "null": f"random 3-subspaces of the same dimension: {mean_sd(rand, '{:.1f}')}°",
            "verdict": orientation_rule(m), "value": m}


def claim_m_scaling():
    return {"claim": "dimension stable for moderate complexity (m ≤ 6)", "section": "§4.1",
            "paper": "stable for m ≤ 6", "measured": "not measured by these presets",
            "null": "", "verdict": m_scaling_rule(), "value": None}


# ---- Figure 1 ----

def fig1_effective_rank(geoms, n_layers, caption, path) -> str:
    def grab(f):                                   # [seed, layer, matrix]
        return np.array([[[f(g[f"blocks.{l}.attn.{W}"]) for W in MATS] for l in range(n_layers)]
                         for g in geoms], dtype=float)
    r90, null_m = grab(lambda x: x["r90"]), grab(matched_null)
    null_c = grab(lambda x: x["null"]["constant"]["mean"])
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width, colors = 0.2, plt.cm.tab10(np.arange(4))
    for j, W in enumerate(MATS):
        x = np.arange(n_layers) + (j - 1.5) * width
        ax.bar(x, r90[:, :, j].mean(0), width * 0.9, yerr=r90[:, :, j].std(0), capsize=3,
               color=colors[j], label=f"{W} (mean ± sd over seeds)")
        for xi, lo, hi in zip(x, null_m[:, :, j].mean(0) - null_m[:, :, j].std(0),
                              null_m[:, :, j].mean(0) + null_m[:, :, j].std(0)):
            ax.fill_between([xi - width / 2, xi + width / 2], lo - 0.05, hi + 0.05, color="0.3",
                            alpha=0.35, lw=0)
        ax.plot(x, null_c[:, :, j].mean(0), "k_", ms=14, mew=2)
    ax.fill_between([], [], [], color="0.3", alpha=0.35, label="null: random walk, matched step norms")
    ax.plot([], [], "k_", ms=14, mew=2, label="null: random walk, constant steps")
    ax.axhspan(3, 4, color="tab:red", alpha=0.08, label="paper's claim: r90 = 3–4")
    ax.set_xticks(np.arange(n_layers), [f"layer {l}" for l in range(n_layers)])
    ax.set_ylabel("r90 (PCA components for 90% of variance, eq 2)")
    ax.set_title(f"Effective rank of each attention matrix's trajectory\n{caption}", fontsize=10)
    ax.legend(fontsize=7.5, loc="upper right", ncol=2)
    ax.set_ylim(0, max(8, np.nanmax(null_c) + 1))
    return save_figure(fig, path)


def report(ctx):
    geoms = ctx.per_run(cached_geometry)
    n_layers = ctx.n_layers
    claims = {1: claim_r90_range(geoms, n_layers), 2: claim_vo_below_qk(geoms, n_layers),
              3: claim_early_collapse(geoms), 4: claim_same_dimension(geoms, n_layers),
              5: claim_orientation(seed_orientation(geoms)), 19: claim_m_scaling()}
    return claims, [fig1_effective_rank(geoms, n_layers, ctx.caption, ctx.path("fig1_effective_rank.png"))]
