"""§4.1, Figure 1: the collapse of attention trajectories to a few PCA directions.

Reads each run's geometry (``experiments/geometry.py``: r90 beside random-walk nulls with
the same step norms, expanding windows, r90 from 40 evenly spaced snapshots) and the seeds'
orientations. Claims 1–5 (claim 19, r90 against M, is experiments/m_scaling.py). Claims 1,
2, 3 and 4 are decided from every checkpoint and from 40 snapshots (``snapshot_count``).
"""
from __future__ import annotations

import itertools

import numpy as np

from ..analysis.intervals import Interval, all_of, any_of, holds, pairs_interval, sd_interval, t_interval, within
from ..report.ledger import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, Row, mean_sd, verdict
from ..report.plotting import plt, save_figure
from .answers import agreement_text, cached_answers
from .contract import Experiment
from .snapshot_count import counted, n_common
from .geometry import (cached_geometry, cached_orientation, cached_settling, common_null, common_r90, matched_null,
                       mean_r90)
from ..trajectories.rundir import ALL, MATS, matrix_names

# ---- verdict rules: the docstring is the rule the ledger prints ----
# Each takes 95% intervals over seeds (analysis.intervals) and decides only when the whole
# interval clears its threshold.

# The ranges the paper states for claim 1: the headline, then the others it prints
R90_RANGES = {"3–4 (abstract, §1)": (3, 4), "2–3 (Fig 1's panel text)": (2, 3), "3–5 (Fig 1 caption)": (3, 5)}


def r90_range_rule(r90: Interval, below_null: Interval, lo=3, hi=4) -> str:
    """r90 of 3–4 (the paper's headline, abstract and §1): *supported* if the interval of the
    mean r90 lies inside [3, 4] and that of the matched random-walk null minus r90 lies at or
    above 1; *not supported* if the r90 interval lies wholly outside [3, 4]; *inconclusive*
    otherwise. The row gives the verdict under the paper's other ranges (2–3, 3–5) beside it."""
    if any_of(holds(r90, "<", lo), holds(r90, ">", hi)) is True:
        return NOT_SUPPORTED
    ok = all_of(holds(r90, ">=", lo), holds(r90, "<=", hi), holds(below_null, ">=", 1))
    return SUPPORTED if ok is True else INCONCLUSIVE


def vo_below_qk_rule(diff: Interval) -> str:
    """W_V/W_O below W_Q/W_K: the mean over seeds of r90(Q,K) − r90(V,O); *supported* if its
    interval lies above 0, *not supported* if it lies at or below 0, *inconclusive* otherwise."""
    return verdict(holds(diff, ">", 0))


def early_collapse_rule(settled: Interval, minus_null: Interval) -> str:
    """collapse in the first 20–30%: the fraction of training from which the top-k PCA subspace
    of every longer expanding window (k = the run's r90) stays within 30° of the whole run's
    (largest principal angle), all attention; *supported* if its interval lies at or below 0.3
    and that of (fraction − the matched random walk's) below 0; *not supported* if it lies
    above 0.3 and the difference from the walk is decided either way; *inconclusive* otherwise
    (a fraction indistinguishable from the walk's decides nothing), or when the verdict from 40
    evenly spaced snapshots (their own r90 and walk) differs."""
    if holds(settled, "<=", 0.3) is False and holds(minus_null, "<", 0) is not None:
        return NOT_SUPPORTED
    return SUPPORTED if all_of(holds(settled, "<=", 0.3), holds(minus_null, "<", 0)) is True else INCONCLUSIVE


def same_dimension_rule(spread: Interval) -> str:
    """same dimension across seeds: the across-seed sd of r90 pooled over matrices (the root of
    the mean over matrices of the unbiased, ddof = 1, variance), in a chi-square interval whose
    degrees of freedom allow for matrices sharing seeds (``intervals.sd_interval``, coverage
    checked by simulation); *supported* if it lies at or below 0.5, *not supported* if it lies
    above 0.5, *inconclusive* otherwise, with fewer than 3 seeds, or when every matrix is tied
    across seeds."""
    return verdict(holds(spread, "<=", 0.5)) if spread.n >= 3 else verdict(None)


def orientation_rule(angle: Interval) -> str:
    """different orientation: the smallest principal angle between two seeds' top-3 subspaces,
    averaged over matrices, one value per seed pair; the interval of their mean is a
    delete-one-seed jackknife (the pairs share seeds: t with n − 1 df,
    ``intervals.pairs_interval``); *supported* if it lies above 45°, *not supported* if it lies
    below 20°, *inconclusive* otherwise."""
    if holds(angle, ">", 45) is True:
        return SUPPORTED
    return NOT_SUPPORTED if holds(angle, "<", 20) is True else INCONCLUSIVE


RULES = {1: r90_range_rule, 2: vo_below_qk_rule, 3: early_collapse_rule, 4: same_dimension_rule,
         5: orientation_rule}


# ---- ledger rows ----

def claim_r90_range(geoms, n_layers):
    per_seed = np.array([mean_r90(g, n_layers) for g in geoms])
    null = np.array([mean_r90(g, n_layers, matched_null) for g in geoms])
    exact = np.array([mean_r90(g, n_layers, lambda x: x["exact_null"]["r90"]) for g in geoms])
    const = [mean_r90(g, n_layers, lambda x: x["null"]["constant"]["mean"]) for g in geoms]
    step = 1 / (4 * n_layers)                # a mean of 4L integer r90s moves in these steps
    iv, gap = t_interval(per_seed, step), t_interval(null - per_seed, step)
    common = np.array([mean_r90(g, n_layers, common_r90) for g in geoms])
    c_iv = t_interval(common, step)
    c_gap = t_interval(np.array([mean_r90(g, n_layers, common_null) for g in geoms]) - common, step)
    others = "; ".join(f"under {name}: {r90_range_rule(iv, gap, lo, hi)}"
                       for name, (lo, hi) in list(R90_RANGES.items())[1:])
    row = Row(claim="attention trajectories collapse to r90 of 3–4 (addition)", section="§4.1, Fig 1",
              paper="3–4 (abstract, §1, §4.1; 2–3 in Fig 1's panel, 3–5 in its caption and §4.1's next paragraph; "
                    "authors' figure: 4.1–6.0 W_Q/W_K, 2.5–3.8 W_V/W_O)",
              measured=f"r90 {mean_sd(per_seed)} (mean over the {4 * n_layers} matrices); "
                       f"from {n_common(geoms)} snapshots {mean_sd(common)}",
              null=f"random walk, matched steps {mean_sd(null)} (exact expected spectrum, no sampling: "
                   f"{mean_sd(exact)}); constant steps {mean_sd(const)}",
              interval=f"r90 {iv.text()}; null − r90 {gap.text()}; verdict {others}",
              verdict=r90_range_rule(iv, gap), value=iv.est, null_value=float(null.mean()))
    return counted(row, r90_range_rule(c_iv, c_gap), n_common(geoms))


def claim_vo_below_qk(geoms, n_layers):
    def diff(g, key):
        qk = [key(g[f"blocks.{l}.attn.{W}"]) for l in range(n_layers) for W in ("W_Q", "W_K")]
        vo = [key(g[f"blocks.{l}.attn.{W}"]) for l in range(n_layers) for W in ("W_V", "W_O")]
        return np.mean(qk) - np.mean(vo)
    d = np.array([diff(g, lambda x: x["r90"]) for g in geoms])
    dn = np.array([diff(g, matched_null) for g in geoms])
    iv = t_interval(d, 1 / (2 * n_layers))          # means of 2L integers each
    row = Row(claim="W_V, W_O lower-dimensional than W_Q, W_K", section="§4.1",
              paper="consistently lower (authors' figure: 2.5–3.8 vs 4.1–6.0)",
              measured=f"r90(Q,K) − r90(V,O) = {mean_sd(d)}; > 0 in {float((d > 0).mean()):.0%} of seeds",
              null=f"same difference for the matched null: {mean_sd(dn)}", interval=iv.text(),
              verdict=vo_below_qk_rule(iv), value=iv.est)
    common = vo_below_qk_rule(t_interval(np.array([diff(g, common_r90) for g in geoms]), 1 / (2 * n_layers)))
    return counted(row, common, n_common(geoms))


def claim_early_collapse(geoms, settling=None):
    """Claim 3's row; with ``settling`` (per seed, ``geometry.cached_settling``) decided again
    from the common snapshot count (``snapshot_count.count_rule``)."""
    s = np.array([g[ALL]["angle_settled"] for g in geoms])
    sn = np.array([g[ALL]["null_angle_settled"] for g in geoms])
    r = np.array([g[ALL]["stabilization"] for g in geoms])
    iv, ivd = settling_intervals(s, sn)
    row = Row(claim="collapse within the first 20–30% of training", section="§4.1",
               paper="20–30% of training",
               measured=f"the top-k PCA subspace (all attention) stays within 30° of the whole run's from "
                        f"{mean_sd(100 * s, '{:.0f}')}% of training (the integer r90 settles from "
                        f"{mean_sd(100 * r, '{:.0f}')}%)",
               null=f"matched random walk: from {mean_sd(100 * sn, '{:.0f}')}%",
               interval=f"fraction {iv.text()}; minus the walk's {ivd.text()}",
               verdict=early_collapse_rule(iv, ivd), value=iv.est)
    if settling is None:
        return row
    at = [np.array([x[key] for x in settling]) for key in ("angle_settled", "null_angle_settled")]
    return counted(row, early_collapse_rule(*settling_intervals(*at)), settling[0]["n"])


def settling_intervals(s, sn):
    """Intervals of the settling fraction and of it minus the walk's (the expanding windows
    step by 10% of training: the resolution their sd is floored at)."""
    return within(t_interval(s, 0.1), 0.0, 1.0), within(t_interval(s - sn, 0.1), -1.0, 1.0)


def claim_same_dimension(geoms, n_layers):
    names = matrix_names(n_layers)
    r = np.array([[g[k]["r90"] for k in names] for g in geoms])      # [seed, matrix]
    spread = r.max(0) - r.min(0)
    nr = np.array([[matched_null(g[k]) for k in names] for g in geoms])
    iv = sd_interval(r)
    row = Row(claim="the same dimension across seeds", section="§4.1",
              paper="\"the intrinsic dimension (3–4) is consistent across random seeds\" (§4.1)",
              measured=f"across-seed sd of r90 per matrix {mean_sd(r.std(0, ddof=1))}; largest max−min "
                       f"{spread.max():.0f}",
              null=f"across-seed sd of the matched null {mean_sd(nr.std(0, ddof=1))}", interval=f"mean sd {iv.text()}",
              verdict=same_dimension_rule(iv), value=float(spread.max()))
    common = same_dimension_rule(sd_interval(np.array([[common_r90(g[k]) for k in names] for g in geoms])))
    return counted(row, common, n_common(geoms))


def pair_matrix(orientation) -> np.ndarray:
    """[seed, seed]: the smallest principal angle of each seed pair, averaged over matrices
    (pairs in ``itertools.combinations`` order; the diagonal NaN)."""
    pairs = np.array([[min(p) for p in v["seed_pairs_deg"]] for v in orientation.values()]).mean(0)   # [pair]
    n = round((1 + np.sqrt(1 + 8 * len(pairs))) / 2)
    M = np.full((n, n), np.nan)
    for value, (i, j) in zip(pairs, itertools.combinations(range(n), 2)):
        M[i, j] = M[j, i] = value
    return M


def claim_orientation(orientation, answers=()):
    """``answers``: each seed's ``cached_answers`` (functional equivalence, not in the rule)."""
    first = next(iter(orientation.values()))
    if not first["seed_pairs_deg"]:
        return Row(claim="a different orientation across seeds", section="§4.1", paper="seed-dependent",
                   measured="needs 2 seeds", null="", interval="", verdict=INCONCLUSIVE, value=None)
    M = pair_matrix(orientation)
    rand = [min(p) for v in orientation.values() for p in v["random_deg"]]
    iv = pairs_interval(M)
    return Row(claim="a different orientation across seeds", section="§4.1",
               paper="orientation is seed-dependent, with functionally equivalent rotations (no number given)",
               measured=f"smallest principal angle between two seeds' top-3 PCA subspaces "
                        f"{mean_sd(M[np.triu_indices(len(M), 1)], '{:.1f}')}° (mean over matrices, all seed "
                        f"pairs): as far apart as random subspaces; "
                        + (agreement_text(list(answers)) if answers else "the seeds' answers not measured"),
               null=f"two random 3-subspaces of the same dimension: {mean_sd(rand, '{:.1f}')}°",
               interval=iv.text("{:.1f}"), verdict=orientation_rule(iv), value=iv.est)


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
    """The main runs' geometry, settling at the common count and answers on the shared probe
    (variants measure theirs)."""
    return [(f, (r["dir"],)) for r in ctx.runs for f in (cached_geometry, cached_settling, cached_answers)]


def report(ctx):
    geoms, n_layers = ctx.per_run(cached_geometry), ctx.n_layers
    claims = {1: claim_r90_range(geoms, n_layers), 2: claim_vo_below_qk(geoms, n_layers),
              3: claim_early_collapse(geoms, ctx.per_run(cached_settling)), 4: claim_same_dimension(geoms, n_layers),
              5: claim_orientation(cached_orientation([r["dir"] for r in ctx.runs]), ctx.per_run(cached_answers))}
    return claims, [fig1_effective_rank(geoms, n_layers, ctx.caption, ctx.path("fig1_effective_rank.png"))]


EXPERIMENT = Experiment("collapse", "§4.1, Fig 1: claims 1–5", RULES, report, measurements=measurements)  # weight 1
