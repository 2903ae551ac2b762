"""Functional dimension (issue 10 §3), claim 22: does the low-dimensional subspace the
attention trajectories vary in carry the function? Variance is not function.

Per main run (cached in the run directory): every attention matrix rebuilt as theta_0 +
its drift projected onto its top-k trajectory PCA directions (centred and uncentred PCA;
every other parameter at its final value), held-out accuracy for each k in ``KS``; beside
it, k random directions in the same blocks, plain and norm-matched (carrying the PCA
projection's drift norm: ``analysis/functional.py``). k* = the smallest k recovering 90%
of the final accuracy. An uncentred k* of 1 says the function lies along theta_T - theta_0
(the drift's top uncentred direction is nearly that vector), not that the manifold is 1-D.
"""
from __future__ import annotations

import numpy as np

from ..analysis.functional import functional_curve
from ..analysis.intervals import Interval, all_of, holds, t_interval
from ..report.ledger import Row, mean_sd, verdict
from ..report.plotting import plt, save_figure
from ..trajectories.metrics import evaluate
from ..trajectories.schedule import Schedule
from ..trajectories.task import probe_set
from .contract import Experiment
from ..trajectories.rundir import attention_trajectories, cached_json, final_params, matrix_names, run_configs

KS = (1, 2, 3, 4, 6, 8, 12, 16)
K_CLAIM = 4          # the paper's r90 is 3-4: the top 4 directions of every matrix
VERSION = 2           # 2: the norm-matched random control and the drift share per k


def functional_of_run(run_dir) -> dict:
    """{"centred": functional_curve(...), "uncentred": ...} on the run's held-out probe set
    (accuracy = mean over m)."""
    cfg, task, train = run_configs(run_dir)
    params = final_params(run_dir)
    probe = probe_set(task, Schedule.parse(train["schedule"]).all_m(), train["n_probe"], train["seed"])
    traj = attention_trajectories(run_dir, cfg)
    blocks = {name: traj[name] for name in matrix_names(cfg.n_layers)}

    def accuracy(mats) -> float:
        p = dict(params)
        for name, flat in mats.items():
            p[name] = flat.reshape(params[name].shape).astype(params[name].dtype)
        return float(np.mean(list(evaluate(p, probe, cfg)["acc"].values())))
    return {kind: functional_curve(blocks, accuracy, KS, seed=train["seed"], centred=(kind == "centred"))
            for kind in ("centred", "uncentred")}


def cached_functional(run_dir) -> dict:
    return cached_json(run_dir, f"functional_v{VERSION}.json", functional_of_run)


def functional_rule(recovered: Interval, over_random: Interval, over_matched: Interval) -> str:
    """the low-dimensional subspace carries the function: per seed, held-out accuracy with every
    attention matrix rebuilt from its top-4 (centred) trajectory PCA directions over the final
    accuracy; that accuracy minus the one with 4 random directions per matrix; and minus the one
    with the same random directions norm-matched (moved as far as the PCA rebuild); *supported* if
    the first interval lies at or above 0.9 and the other two above 0, *not supported* if the first
    lies below 0.9 or a control's difference lies at or below 0, *inconclusive* otherwise."""
    return verdict(all_of(holds(recovered, ">=", 0.9), holds(over_random, ">", 0),
                          holds(over_matched, ">", 0)))


RULES = {22: functional_rule}


def _kstar_text(values) -> str:
    found = [k for k in values if k is not None]
    text = mean_sd(found, "{:.1f}") if found else "none"
    missing = len(values) - len(found)
    return text + (f" ({missing} of {len(values)} seeds: > {KS[-1]})" if missing else "")


def claim_functional(results: list, acc_step: float = 1 / 256):
    """``acc_step``: one probe example's share of an accuracy (the resolution of a tied interval)."""
    i = KS.index(K_CLAIM)
    c = [r["centred"] for r in results]
    ratio = np.array([x["pca"][i] / x["final"] for x in c])
    gap = np.array([x["pca"][i] - x["random"][i] for x in c])
    gap_matched = np.array([x["pca"][i] - x["random_matched"][i] for x in c])
    rec, over, over_m = (t_interval(v, acc_step) for v in (ratio, gap, gap_matched))
    along = np.array([r["uncentred"]["drift_share"][0] for r in results])
    return Row(claim="the low-dimensional subspace carries the function (functional dimension)",
               section="§4.1 (control)", paper="an execution manifold of r90 3–4 dimensions",
               measured=f"k* (90% of final accuracy): centred PCA {_kstar_text([x['k_star'] for x in c])}, "
                        f"uncentred {_kstar_text([r['uncentred']['k_star'] for r in results])} (its top direction"
                        f" holds {mean_sd(along)} of |θT − θ0|²: an uncentred k* of 1 means the function lies "
                        f"along θT − θ0); top-{K_CLAIM} accuracy / final {mean_sd(ratio)}",
               null=f"{K_CLAIM} random directions per matrix: accuracy / final "
                    f"{mean_sd([x['random'][i] / x['final'] for x in c])}, k* "
                    f"{_kstar_text([x['k_star_random'] for x in c])}; "
                    f"norm-matched (as far from θ0 as the top-{K_CLAIM} rebuild): accuracy / final "
                    f"{mean_sd([x['random_matched'][i] / x['final'] for x in c])}, k* "
                    f"{_kstar_text([x['k_star_random_matched'] for x in c])}",
               interval=f"top-{K_CLAIM} / final {rec.text()}; top-{K_CLAIM} − random {over.text()}; "
                        f"top-{K_CLAIM} − norm-matched random {over_m.text()}",
               verdict=functional_rule(rec, over, over_m), value=rec.est)


def fig_functional(results: list, caption, path) -> str:
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    final = np.mean([r["centred"]["final"] for r in results])
    for key, kind, color, label in (("pca", "centred", "tab:blue", "top-k centred PCA directions"),
                                    ("pca", "uncentred", "tab:purple", "top-k uncentred (drift) PCA"),
                                    ("random", "centred", "0.45", "k random directions (control)"),
                                    ("random_matched", "centred", "tab:orange",
                                     "k random directions, norm-matched to the centred PCA's (control)")):
        vals = np.array([r[kind][key] for r in results])                     # [seed, k]
        ax.plot(KS, vals.mean(0), color=color, marker="o", ms=3, lw=2, label=label + " (mean over seeds)")
        ax.fill_between(KS, vals.min(0), vals.max(0), color=color, alpha=0.15)
    ax.axhline(final, color="k", ls="--", lw=0.8, label=f"final accuracy ({final:.2f})")
    ax.axhline(0.9 * final, color="tab:red", ls=":", lw=1, label="90% of final (defines k*)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(KS, [str(k) for k in KS])
    ax.set(xlabel="k: directions kept per attention matrix", ylim=(0, 1.02),
           ylabel="held-out accuracy (mean over m)",
           title="Functional dimension: rebuild each attention matrix from k directions\n"
                 "(θ0 + projection of θT − θ0; shaded: min–max over seeds)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)  # not over the control
    fig.suptitle(caption, fontsize=8, y=1.02)
    return save_figure(fig, path)


def measurements(ctx) -> list:
    return [(cached_functional, (r["dir"],)) for r in ctx.runs]


def report(ctx):
    results = ctx.per_run(cached_functional)
    return {22: claim_functional(results, 1 / ctx.preset.train.n_probe)}, [fig_functional(results, ctx.caption,
                                                            ctx.path("fig_functional_dimension.png"))]


EXPERIMENT = Experiment("functional_dimension", "control, does the top-k subspace carry the function? claim 22",
                        RULES, report, measurements=measurements,
                        weight=2)   # rough seconds per call in the quick preset
