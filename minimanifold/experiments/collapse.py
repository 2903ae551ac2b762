"""§4.1, Figure 1: the collapse of attention trajectories to a few PCA directions.

Measured per run (cached in the run directory): for every attention matrix and for all
of them together, the PCA spectrum of the checkpoints (eq 1–2), r90 beside random-walk
nulls with the same step norms, r90 over expanding windows and when it settles, and the
top-3 directions (to compare seeds' orientations). Claims 1–5 (claim 19, r90 against M,
is experiments/m_scaling.py).
"""
from __future__ import annotations

import itertools

import numpy as np

from ..analysis import pca
from ..analysis.intervals import Interval, all_of, any_of, bootstrap_interval, holds, seeds_of_pairs, t_interval, within
from ..report.ledger import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, Row, mean_sd, verdict
from ..report.plotting import plt, save_figure
from .contract import Experiment
from ..trajectories.rundir import (ALL, MATS, attention_trajectories, cached_json, cached_npz, matrix_names, run_configs)

ANALYSIS_VERSION = 2   # bump when the measurement changes, so cached results are recomputed


def geometry_of_run(run_dir, null_draws=3, k_dirs=3) -> dict:
    """``geometry`` of a run directory's attention trajectories."""
    cfg, _, _ = run_configs(run_dir)
    return geometry(attention_trajectories(run_dir, cfg), null_draws, k_dirs)


def geometry(snaps: dict, null_draws=3, k_dirs=3) -> dict:
    """Per matrix of ``snaps`` ({name: snapshots [n,D]}, ``ALL`` last): spectrum summary,
    nulls, expanding-window r90, stabilization fraction, and the top ``k_dirs`` PCA
    directions (for seed orientation). The audit of any checkpoint series calls it too."""
    out = {}
    for i, (name, X) in enumerate(snaps.items()):
        lam = pca.pca_spectrum(X)
        norms = pca.step_norms(X)
        windows = pca.expanding_window(X, pca.FRACTIONS)
        null = pca.random_walk_null(norms, X.shape[1], n_draws=null_draws, seed=i)
        null_windows = pca.expanding_window(pca.random_walk(norms, X.shape[1],
                                                        np.random.default_rng([i, 5])), pca.FRACTIONS)
        out[name] = {**pca.summarize(lam), "evr": pca.explained_variance_ratio(lam)[:10].tolist(),
                     "null": null, "windows": windows,
                     "stabilization": pca.stabilization_fraction(windows),
                     "null_stabilization": pca.stabilization_fraction(null_windows),
                     "D": int(X.shape[1]), "n": int(X.shape[0])}
        if name != ALL:
            out[name]["dirs"] = pca.pca_directions(X, k_dirs)
    return out


def cached_geometry(run_dir) -> dict:
    """geometry_of_run, cached in the run directory: JSON, and the PCA directions in .npz
    (each checked against its digest by ``rundir.cached``; computed at most once)."""
    fresh = {}

    def compute(d):
        if not fresh:
            fresh.update(geometry_of_run(d))
        return fresh
    geom = cached_json(run_dir, f"geometry_v{ANALYSIS_VERSION}.json",
                       lambda d: {k: {kk: vv for kk, vv in v.items() if kk != "dirs"} for k, v in compute(d).items()})
    dirs = cached_npz(run_dir, f"geometry_dirs_v{ANALYSIS_VERSION}.npz",
                      lambda d: {k: v["dirs"] for k, v in compute(d).items() if "dirs" in v})
    return {k: {**v, **({"dirs": dirs[k]} if k in dirs else {})} for k, v in geom.items()}


def seed_orientation(geoms: list, k_dirs=3, n_random=5) -> dict:
    """Per matrix: principal angles (degrees) between every pair of seeds' top-k PCA
    subspaces, and between random k-subspaces of the same dimension."""
    out = {}
    for name in geoms[0]:
        if name == ALL:
            continue
        pairs = [np.degrees(pca.principal_angles(a[name]["dirs"], b[name]["dirs"]))
                 for a, b in itertools.combinations(geoms, 2)]
        rand = np.degrees(pca.random_subspace_angles(geoms[0][name]["D"], k_dirs, n_random))
        out[name] = {"seed_pairs_deg": [p.tolist() for p in pairs],
                     "random_deg": rand.tolist()}
    return out


def mean_r90(geom, n_layers, key=lambda x: x["r90"]) -> float:
    """Mean over the 4 x n_layers attention matrices of one run (r90 by default)."""
    return float(np.mean([key(geom[k]) for k in matrix_names(n_layers)]))


def matched_null(x) -> float:
    return x["null"]["matched"]["mean"]


# ---- verdict rules: the docstring is the rule the ledger prints ----
# Each takes 95% intervals over seeds (analysis.intervals) and decides only when the whole
# interval clears its threshold.

def r90_range_rule(r90: Interval, below_null: Interval) -> str:
    """r90 of 3–4: *supported* if the interval of the mean r90 lies inside [3, 5] (the paper's
    widest range) and that of the matched random-walk null minus r90 lies at or above 1;
    *not supported* if the r90 interval lies wholly outside [3, 5]; *inconclusive* otherwise."""
    if any_of(holds(r90, "<", 3), holds(r90, ">", 5)) is True:
        return NOT_SUPPORTED
    ok = all_of(holds(r90, ">=", 3), holds(r90, "<=", 5), holds(below_null, ">=", 1))
    return SUPPORTED if ok is True else INCONCLUSIVE


def vo_below_qk_rule(diff: Interval) -> str:
    """W_V/W_O below W_Q/W_K: the mean over seeds of r90(Q,K) − r90(V,O); *supported* if its
    interval lies above 0, *not supported* if it lies at or below 0, *inconclusive* otherwise."""
    return verdict(holds(diff, ">", 0))


def early_collapse_rule(settled: Interval, minus_null: Interval) -> str:
    """collapse in the first 20–30%: the fraction of training from which the expanding-window r90
    stays at its final value; *supported* if its interval lies at or below 0.3 and that of
    (fraction − the matched null's fraction) lies below 0; *not supported* if it lies above 0.3;
    *inconclusive* otherwise."""
    if holds(settled, "<=", 0.3) is False:
        return NOT_SUPPORTED
    return SUPPORTED if all_of(holds(settled, "<=", 0.3), holds(minus_null, "<", 0)) is True else INCONCLUSIVE


def same_dimension_rule(spread: Interval) -> str:
    """same dimension across seeds: the across-seed sd of r90, averaged over matrices (a
    bootstrap interval over seeds); *supported* if it lies at or below 0.5, *not supported* if
    it lies above 0.5, *inconclusive* otherwise or with fewer than 3 seeds."""
    return verdict(holds(spread, "<=", 0.5)) if spread.n >= 3 else verdict(None)


def orientation_rule(angle: Interval) -> str:
    """different orientation: the smallest principal angle between two seeds' top-3 subspaces,
    averaged over matrices, one value per seed pair; *supported* if its interval lies above
    45°, *not supported* if it lies below 20°, *inconclusive* otherwise."""
    if holds(angle, ">", 45) is True:
        return SUPPORTED
    return NOT_SUPPORTED if holds(angle, "<", 20) is True else INCONCLUSIVE


RULES = {1: r90_range_rule, 2: vo_below_qk_rule, 3: early_collapse_rule, 4: same_dimension_rule,
         5: orientation_rule}


# ---- ledger rows ----

def claim_r90_range(geoms, n_layers):
    per_seed = np.array([mean_r90(g, n_layers) for g in geoms])
    null = np.array([mean_r90(g, n_layers, matched_null) for g in geoms])
    const = [mean_r90(g, n_layers, lambda x: x["null"]["constant"]["mean"]) for g in geoms]
    iv, gap = t_interval(per_seed), t_interval(null - per_seed)
    return Row(claim="attention trajectories collapse to r90 of 3–4 (addition)", section="§4.1, Fig 1",
               paper="3–4 (3–5 in Fig 1 caption; authors' figure: 4.1–6.0 W_Q/W_K, 2.5–3.8 W_V/W_O)",
               measured=f"r90 {mean_sd(per_seed)} (mean over the {4 * n_layers} matrices)",
               null=f"random walk, matched steps {mean_sd(null)}; constant steps {mean_sd(const)}",
               interval=f"r90 {iv.text()}; null − r90 {gap.text()}",
               verdict=r90_range_rule(iv, gap), value=iv.est, null_value=float(null.mean()))


def claim_vo_below_qk(geoms, n_layers):
    def diff(g, key):
        qk = [key(g[f"blocks.{l}.attn.{W}"]) for l in range(n_layers) for W in ("W_Q", "W_K")]
        vo = [key(g[f"blocks.{l}.attn.{W}"]) for l in range(n_layers) for W in ("W_V", "W_O")]
        return np.mean(qk) - np.mean(vo)
    d = np.array([diff(g, lambda x: x["r90"]) for g in geoms])
    dn = np.array([diff(g, matched_null) for g in geoms])
    iv = t_interval(d)
    return Row(claim="W_V, W_O lower-dimensional than W_Q, W_K", section="§4.1",
               paper="consistently lower (authors' figure: 2.5–3.8 vs 4.1–6.0)",
               measured=f"r90(Q,K) − r90(V,O) = {mean_sd(d)}; > 0 in {float((d > 0).mean()):.0%} of seeds",
               null=f"same difference for the matched null: {mean_sd(dn)}", interval=iv.text(),
               verdict=vo_below_qk_rule(iv), value=iv.est)


def claim_early_collapse(geoms):
    s = np.array([g[ALL]["stabilization"] for g in geoms])
    sn = np.array([g[ALL]["null_stabilization"] for g in geoms])
    iv, ivd = within(t_interval(s), 0.0, 1.0), within(t_interval(s - sn), -1.0, 1.0)   # fractions of training
    return Row(claim="collapse within the first 20–30% of training", section="§4.1",
               paper="20–30% of training",
               measured=f"expanding-window r90 (all attention) settles at its final value from "
                        f"{mean_sd(100 * s, '{:.0f}')}% of training",
               null=f"matched random walk settles from {mean_sd(100 * sn, '{:.0f}')}%",
               interval=f"fraction {iv.text()}; minus the null's {ivd.text()}",
               verdict=early_collapse_rule(iv, ivd), value=iv.est)


def claim_same_dimension(geoms, n_layers):
    r = np.array([[g[k]["r90"] for k in matrix_names(n_layers)] for g in geoms])      # [seed, matrix]
    spread = r.max(0) - r.min(0)
    nr = np.array([[matched_null(g[k]) for k in matrix_names(n_layers)] for g in geoms])
    iv = bootstrap_interval(r, lambda x: float(x.std(0).mean()))      # mean over matrices of the sd
    return Row(claim="the same dimension across seeds", section="§4.1",
               paper="3–4 on every seed (20 seeds)",
               measured=f"across-seed sd of r90 per matrix {mean_sd(r.std(0))}; largest max−min {spread.max():.0f}",
               null=f"across-seed sd of the matched null {mean_sd(nr.std(0))}", interval=f"mean sd {iv.text()}",
               verdict=same_dimension_rule(iv), value=float(spread.max()))


def claim_orientation(orientation):
    per_pair = np.array([[min(v["seed_pairs_deg"][p]) for v in orientation.values()]
                         for p in range(len(next(iter(orientation.values()))["seed_pairs_deg"]))])  # [pair, matrix]
    rand = [min(p) for v in orientation.values() for p in v["random_deg"]]
    if not len(per_pair):
        return Row(claim="a different orientation across seeds", section="§4.1", paper="seed-dependent",
                   measured="needs 2 seeds", null="", interval="", verdict=INCONCLUSIVE, value=None)
    iv = t_interval(per_pair.mean(1))
    return Row(claim="a different orientation across seeds", section="§4.1",
               paper="orientation is seed-dependent (no number given)",
               measured=f"smallest principal angle between two seeds' top-3 PCA subspaces "
                        f"{mean_sd(per_pair.ravel(), '{:.1f}')}° (all matrices, all seed pairs)",
               null=f"random 3-subspaces of the same dimension: {mean_sd(rand, '{:.1f}')}°",
               interval=iv.text("{:.1f}", unit=f"seed pairs of {seeds_of_pairs(len(per_pair))} seeds"),
               verdict=orientation_rule(iv), value=iv.est)


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


def measurements(ctx) -> list:
    """The main runs' geometry (modules comparing variants measure theirs)."""
    return [(cached_geometry, (r["dir"],)) for r in ctx.runs]


def report(ctx):
    geoms, n_layers = ctx.per_run(cached_geometry), ctx.n_layers
    claims = {1: claim_r90_range(geoms, n_layers), 2: claim_vo_below_qk(geoms, n_layers),
              3: claim_early_collapse(geoms), 4: claim_same_dimension(geoms, n_layers),
              5: claim_orientation(seed_orientation(geoms))}
    return claims, [fig1_effective_rank(geoms, n_layers, ctx.caption, ctx.path("fig1_effective_rank.png"))]


EXPERIMENT = Experiment("collapse", "§4.1, Fig 1: claims 1–5", RULES, report, measurements=measurements)  # weight 1
