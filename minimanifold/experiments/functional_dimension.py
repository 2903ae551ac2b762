"""Functional dimension (issue 10 §3), claim 22: does the low-dimensional subspace the
attention trajectories vary in carry the function? Variance is not function.

Per main run (cached in the run directory): every attention matrix rebuilt as theta_0 +
its drift projected onto its top-k trajectory PCA directions (centred and uncentred PCA;
every other parameter at its final value), held-out accuracy for each k in ``KS``; beside
it, k random directions in the same blocks, plain and norm-matched (carrying the PCA
projection's drift norm: ``analysis/functional.py``). k* = the smallest k recovering 90%
of the final accuracy. An uncentred k* of 1 says the function lies along theta_T - theta_0
(the drift's top uncentred direction is nearly that vector), not that the manifold is 1-D.

Bases that do not know the end (issue 24 §2; ``analysis/causal_bases.py``), cached apart per run
(``causal_of_run``) and shown in the row and the figure beside the whole trajectory's PCA
(which does know it): the top-k centred PCA of the first 15% of the checkpoints (the window
sized for K_CLAIM: at least 5 checkpoints, so at most 4 directions where the run has few);
another seed's top-k (the main run with the next seed, (s + 1) mod the main runs' count,
or the next run left if that one diverged); k - 1 random directions plus the unit vector
along theta_T - theta_0, which rebuilds theta_T itself at every k by construction (the
rebuild keeps the drift's component along each basis direction, and the drift lies along
one): it is there to show that a basis holding that one direction explains everything
here. Claim 22's rule is unchanged: it tests the paper's manifold, the whole trajectory's
PCA; the causal bases are beside it, not in it.
"""
from __future__ import annotations

import numpy as np

from ..analysis.causal_bases import (EARLY_SHARE, drift_and_random, early_count, early_directions, partner_index,
                                     rebuilt_curve)
from ..analysis.functional import drift_directions, functional_curve, k_star, random_directions
from ..analysis.intervals import Interval, all_of, holds, t_interval
from ..report.ledger import Row, mean_sd, verdict
from ..report.plotting import plt, save_figure
from ..trajectories import records
from ..trajectories.metrics import evaluate
from ..trajectories.schedule import Schedule
from ..trajectories.task import probe_set
from .contract import Experiment
from ..trajectories.rundir import (attention_trajectories, cached_json, final_params, is_finished, load_trajectory,
                                   matrix_names, run_configs)

KS = (1, 2, 3, 4, 6, 8, 12, 16)
K_CLAIM = 4          # the paper's r90 is 3-4: the top 4 directions of every matrix
VERSION = 2           # 2: the norm-matched random control and the drift share per k
CAUSAL_VERSION = 1    # the bases that do not know the end (``causal_of_run``)
CAUSAL = {"early": f"early (first {EARLY_SHARE:.0%} of the checkpoints) PCA", "other": "another seed's PCA",
          "drift": "k − 1 random + θT − θ0"}


def probe_accuracy(run_dir):
    """(model config, training config, accuracy): accuracy({matrix: flat [D]}) is the held-out
    accuracy (mean over m) of the run's final parameters with those attention matrices."""
    cfg, task, train = run_configs(run_dir)
    params = final_params(run_dir)
    probe = probe_set(task, Schedule.parse(train["schedule"]).all_m(), train["n_probe"], train["seed"])

    def accuracy(mats) -> float:
        p = dict(params)
        for name, flat in mats.items():
            p[name] = flat.reshape(params[name].shape).astype(params[name].dtype)
        return float(np.mean(list(evaluate(p, probe, cfg)["acc"].values())))
    return cfg, train, accuracy


def functional_of_run(run_dir) -> dict:
    """{"centred": functional_curve(...), "uncentred": ...} on the run's held-out probe set
    (accuracy = mean over m)."""
    cfg, train, accuracy = probe_accuracy(run_dir)
    traj = attention_trajectories(run_dir, cfg)
    blocks = {name: traj[name] for name in matrix_names(cfg.n_layers)}
    return {kind: functional_curve(blocks, accuracy, KS, seed=train["seed"], centred=(kind == "centred"))
            for kind in ("centred", "uncentred")}


def cached_functional(run_dir) -> dict:
    return cached_json(run_dir, f"functional_v{VERSION}.json", functional_of_run)


def snapshots(run_dir, cfg) -> tuple:
    """(steps [n], {attention matrix: snapshots X [n,D]}) of a finished run."""
    traj = load_trajectory(run_dir)
    n = len(traj["steps"])
    return np.asarray(traj["steps"]), {name: traj[name].reshape(n, -1) for name in matrix_names(cfg.n_layers)}


def other_snapshots(partner_dir, cfg) -> dict:
    """Another run's {matrix: X [n,D]}; refused unless that run has finished (a basis read off
    a run still training would be cached as if it were its whole trajectory's)."""
    if partner_dir is None or not is_finished(partner_dir):
        raise ValueError(f"another seed's basis needs a finished run, not {partner_dir!r}")
    return snapshots(partner_dir, cfg)[1]


def partner_dirs(runs, n_seeds: int) -> list:
    """[the directory of the run lending each run its basis, or None] (``causal_bases.partner_index``)."""
    seeds = [r["seed"] for r in runs]
    return [None if (j := partner_index(seeds, i, n_seeds)) is None else runs[j]["dir"] for i in range(len(runs))]


def seed_of(run_dir) -> int:
    """A run directory's seed, from its name (``<key>/seed_<n>``)."""
    return int(str(run_dir).rstrip("/\\").rsplit("seed_", 1)[1])


def causal_of_run(run_dir, partner_dir=None) -> dict:
    """{"k": KS, "early", "other" (None without a partner), "drift": [accuracy at each k],
    "early_dims": the fewest directions the early basis has in a matrix, "early_step": its
    window's last step, "other_seed"}: each attention matrix rebuilt from a basis that does
    not know the end (module docstring), every other parameter final."""
    cfg, train, accuracy = probe_accuracy(run_dir)
    kmax = max(KS)
    other = None
    if partner_dir is not None:                          # its trajectory freed before ours is read
        other = {name: drift_directions(X, kmax) for name, X in other_snapshots(partner_dir, cfg).items()}
    steps, blocks = snapshots(run_dir, cfg)
    rng = np.random.default_rng([train["seed"], 17])
    bases = {"early": {n: early_directions(X, steps, kmax, window_k=K_CLAIM) for n, X in blocks.items()},
             "drift": {n: drift_and_random(X, random_directions(X.shape[1], kmax, rng)) for n, X in blocks.items()}}
    out = {kind: rebuilt_curve(blocks, V, accuracy, KS) for kind, V in bases.items()}
    out["other"] = None if other is None else rebuilt_curve(blocks, other, accuracy, KS)
    return {"k": list(KS), **out, "early_dims": min(V.shape[1] for V in bases["early"].values()),
            "early_step": int(steps[early_count(steps, K_CLAIM) - 1]),
            "other_seed": None if partner_dir is None else seed_of(partner_dir)}


def cached_causal(run_dir, partner_dir=None) -> dict:
    other = "" if partner_dir is None else f"_other-seed{seed_of(partner_dir)}-{records.tag(partner_dir)}"   # that run
    return cached_json(run_dir, f"functional_causal_v{CAUSAL_VERSION}{other}.json",
                       lambda d: causal_of_run(d, partner_dir))


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


def causal_text(results: list, causal, acc_step: float) -> tuple:
    """(measured, interval) text of the bases that do not know the end at k = K_CLAIM: each
    one's accuracy / final and k*, and its difference from the plain random control per seed
    (shown, not in the rule); ("", "") without them."""
    if not causal or any(x is None for x in causal):
        return "", ""
    i = KS.index(K_CLAIM)
    finals = np.array([r["centred"]["final"] for r in results])
    rand = np.array([r["centred"]["random"][i] for r in results])
    parts, ivs = [], []
    for kind, label in CAUSAL.items():
        if any(x[kind] is None for x in causal):
            continue
        acc = np.array([x[kind][i] for x in causal])
        kstar = _kstar_text([k_star(KS, x[kind], f) for x, f in zip(causal, finals)])
        parts.append(f"{label} {mean_sd(acc / finals)} (k* {kstar})")
        if kind != "drift":                          # θT itself by construction: no difference to read
            ivs.append(f"{label} − random {t_interval(acc - rand, acc_step).text()}")
    dims = min(x["early_dims"] for x in causal)
    return (f"; bases that do not know the end, top-{K_CLAIM} accuracy / final: " + "; ".join(parts)
            + f" (the early window ends at step {mean_sd([x['early_step'] for x in causal], '{:.0f}')}, "
              f"{dims} directions at least; k − 1 random + θT − θ0 rebuilds θT itself by construction)",
            f"; not in the rule: top-{K_CLAIM} " + f"; top-{K_CLAIM} ".join(ivs))


def claim_functional(results: list, acc_step: float = 1 / 256, causal=None):
    """``acc_step``: one probe example's share of an accuracy (the resolution of a tied interval);
    ``causal``: [causal_of_run(...) per seed], shown beside the rule's intervals."""
    i = KS.index(K_CLAIM)
    c = [r["centred"] for r in results]
    ratio = np.array([x["pca"][i] / x["final"] for x in c])
    gap = np.array([x["pca"][i] - x["random"][i] for x in c])
    gap_matched = np.array([x["pca"][i] - x["random_matched"][i] for x in c])
    rec, over, over_m = (t_interval(v, acc_step) for v in (ratio, gap, gap_matched))
    along = np.array([r["uncentred"]["drift_share"][0] for r in results])
    beside, beside_iv = causal_text(results, causal, acc_step)
    return Row(claim="the low-dimensional subspace carries the function (functional dimension)",
               section="§4.1 (control)", paper="an execution manifold of r90 3–4 dimensions",
               measured=f"k* (90% of final accuracy): centred PCA {_kstar_text([x['k_star'] for x in c])}, "
                        f"uncentred {_kstar_text([r['uncentred']['k_star'] for r in results])} (its top direction"
                        f" holds {mean_sd(along)} of |θT − θ0|²: an uncentred k* of 1 means the function lies "
                        f"along θT − θ0); top-{K_CLAIM} accuracy / final {mean_sd(ratio)}" + beside,
               null=f"{K_CLAIM} random directions per matrix: accuracy / final "
                    f"{mean_sd([x['random'][i] / x['final'] for x in c])}, k* "
                    f"{_kstar_text([x['k_star_random'] for x in c])}; "
                    f"norm-matched (as far from θ0 as the top-{K_CLAIM} rebuild): accuracy / final "
                    f"{mean_sd([x['random_matched'][i] / x['final'] for x in c])}, k* "
                    f"{_kstar_text([x['k_star_random_matched'] for x in c])}",
               interval=f"top-{K_CLAIM} / final {rec.text()}; top-{K_CLAIM} − random {over.text()}; "
                        f"top-{K_CLAIM} − norm-matched random {over_m.text()}" + beside_iv,
               verdict=functional_rule(rec, over, over_m), value=rec.est)


def fig_functional(results: list, caption, path, causal=None) -> str:
    """``causal``: [causal_of_run(...) per seed]: its curves too (dash-dotted)."""
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
    for kind, color in (("early", "tab:green"), ("other", "tab:brown"), ("drift", "tab:olive")):
        if causal and all(x is not None and x[kind] is not None for x in causal):
            vals = np.array([x[kind] for x in causal])                        # [seed, k]
            ax.plot(KS, vals.mean(0), color=color, marker="s", ms=3, lw=1.5, ls="-.",
                    label=f"top-k {CAUSAL[kind]} (does not know the end)" if kind != "drift" else
                    f"{CAUSAL[kind]} (θT itself by construction)")
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


def causal_calls(ctx) -> list:
    """[(cached_causal, args)] per main run: its directory, then its partner's if it has one
    (the call then waits for that run too: ``contract.Call``)."""
    return [(cached_causal, (r["dir"],) if p is None else (r["dir"], p))
            for r, p in zip(ctx.runs, partner_dirs(ctx.runs, ctx.preset.n_seeds))]


def measurements(ctx) -> list:
    return [(cached_functional, (r["dir"],)) for r in ctx.runs] + causal_calls(ctx)


def report(ctx):
    results = ctx.per_run(cached_functional)
    causal = [fn(*args) for fn, args in causal_calls(ctx)]
    return {22: claim_functional(results, 1 / ctx.preset.train.n_probe, causal)}, [
        fig_functional(results, ctx.caption, ctx.path("fig_functional_dimension.png"), causal)]


EXPERIMENT = Experiment("functional_dimension", "control, does the top-k subspace carry the function? claim 22",
                        RULES, report, measurements=measurements,
                        weight=2)   # rough seconds per call in the quick preset
