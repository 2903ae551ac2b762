"""Restricted training (issue 10 §4), claim 23: is the execution subspace causal?

For the first ``preset.restrict_seeds`` main runs and each K in ``preset.restrict_k``:
retrain from the run's own theta_0 on its own batches with every attention matrix's
update projected onto (a) the K-dimensional execution subspace the run itself found (its
top-K centred trajectory PCA directions per matrix) and (b) K random orthonormal
directions in the same matrix; every other parameter trains freely
(``trajectories/restricted.py``; with the preset's optimizer, AdamW included). Cached in
the run directory.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..analysis.functional import drift_directions, random_directions
from ..analysis.intervals import Interval, holds, t_interval
from ..report.ledger import INCONCLUSIVE, NOT_SUPPORTED, Row, SUPPORTED, mean_sd
from ..report.plotting import plt, save_figure
from ..trajectories.restricted import train_restricted
from ..trajectories.rundir import attention_trajectories, cached_json, load_metrics, matrix_names, run_configs
from ..trajectories.training_loop import TrainConfig
from .contract import Experiment, Retrain, Retraining

VERSION = 1
KINDS = ("execution", "random")
MARGIN = 0.1         # accuracy points the execution subspace must beat the random one by


def restriction_bases(run_dir, K: int, kind: str) -> dict:
    """{attention matrix: V [D, K']}: the run's own top-K centred PCA directions of that
    matrix's trajectory ("execution"), or K random orthonormal ones ("random")."""
    cfg, _, train = run_configs(run_dir)
    traj = attention_trajectories(run_dir, cfg)
    rng = np.random.default_rng([train["seed"], 11, K])
    return {name: (drift_directions(traj[name], K) if kind == "execution"
                   else random_directions(traj[name].shape[1], K, rng))
            for name in matrix_names(cfg.n_layers)}


def restricted_of_run(run_dir, K: int, kind: str, steps: int) -> dict:
    cfg, task, train = run_configs(run_dir)
    tr = dataclasses.replace(TrainConfig(**train), steps=steps)
    bases = restriction_bases(run_dir, K, kind)
    out = train_restricted(cfg, task, tr, bases, eval_every=max(1, steps // 20))
    out.pop("params")
    out["acc"] = {str(m): v for m, v in out["acc"].items()}
    out["K_used"] = min(int(V.shape[1]) for V in bases.values())     # PCA may find fewer than K
    return out


def cache_name(K, kind, steps) -> str:
    return f"restricted_v{VERSION}_K{K}_{kind}_{steps}.json"


def cached_restricted(run_dir, K, kind, steps) -> dict:
    return cached_json(run_dir, cache_name(K, kind, steps), lambda d: restricted_of_run(d, K, kind, steps))


def mean_acc(result) -> np.ndarray:
    """[eval point] held-out accuracy averaged over m."""
    return np.mean([result["acc"][m] for m in result["acc"]], axis=0)


def steps_to(result, level=0.9):
    """First evaluated step whose accuracy (mean over m) is >= level; None if none."""
    hit = np.nonzero(mean_acc(result) >= level)[0]
    return int(result["steps"][hit[0]]) if len(hit) else None


def _when(results) -> str:
    s = [steps_to(r) for r in results]
    return mean_sd([x for x in s if x is not None], "{:.0f}") if all(x is not None for x in s) else "never on some seed"


def restricted_rule(advantage: Interval) -> str:
    """the execution subspace is causal: per seed, the final held-out accuracy (mean over m) of
    training restricted to the run's own top-K PCA directions per attention matrix minus that of
    K random directions in the same matrices, at the largest K ≤ 4; *supported* if its interval
    lies above 0.1, *not supported* if it lies at or below 0.1 (a random subspace does as well),
    *inconclusive* otherwise or when not measured."""
    return {True: SUPPORTED, False: NOT_SUPPORTED, None: INCONCLUSIVE}[holds(advantage, ">", MARGIN)]


RULES = {23: restricted_rule}


def claim_restricted(per_k: dict, steps: int):
    """per_k: {K: {"execution": [result per seed], "random": [...]}}."""
    base = "training restricted to the execution subspace learns; a random one of the same K does not"
    if not per_k:
        return Row(claim=base, section="§4.3 (control)", paper="an execution manifold (causal role implied)",
                   measured="not measured by this preset (presets with restrict_k only)",
                   null="", interval="", verdict=INCONCLUSIVE, value=None)
    K = max([k for k in per_k if k <= 4] or [min(per_k)])
    finals = {k: {kind: [float(mean_acc(r)[-1]) for r in v[kind]] for kind in KINDS} for k, v in per_k.items()}
    adv = t_interval(np.array(finals[K]["execution"]) - np.array(finals[K]["random"]), 1 / 256)   # 1 probe example
    return Row(claim=base, section="§4.3 (control)", paper="an execution manifold (causal role implied)",
               measured=f"final accuracy after {steps} restricted steps (first step at 0.9): " + "; ".join(
                f"K={k} execution {mean_sd(finals[k]['execution'])} ({_when(per_k[k]['execution'])})"
                for k in sorted(per_k)),
               null="K random directions per matrix: " + "; ".join(
                f"K={k} {mean_sd(finals[k]['random'])} ({_when(per_k[k]['random'])})" for k in sorted(per_k)),
               interval=f"K={K} execution − random {adv.text()}", verdict=restricted_rule(adv), value=adv.est)


def fig_restricted(per_k: dict, main_hist, caption, path) -> str:
    fig, ax = plt.subplots(figsize=(8, 4.6))
    colors = plt.cm.viridis(np.linspace(0, 0.8, len(per_k)))
    for c, k in zip(colors, sorted(per_k)):
        for kind, ls in (("execution", "-"), ("random", "--")):
            runs = per_k[k][kind]
            ax.plot(runs[0]["steps"], np.mean([mean_acc(r) for r in runs], axis=0), color=c, ls=ls, lw=2,
                    label=f"K={k}, {kind} subspace (mean of {len(runs)} seed{'s' * (len(runs) > 1)})")
    if main_hist:
        steps = [r["step"] for r in main_hist[0]]
        acc = np.mean([[np.mean(list(r["acc"].values())) for r in h] for h in main_hist], axis=0)
        ax.plot(steps, acc, color="k", lw=1, label="unrestricted (the same seeds' main runs)")
        ax.set_xlim(0, max(per_k[k]["execution"][0]["steps"][-1] for k in per_k))
    ax.set(xlabel="step", ylabel="held-out accuracy (mean over m)", ylim=(0, 1.02),
           title="Restricted retraining from the same θ0 and batches:\n"
                 "attention updates projected onto K directions per matrix")
    ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(caption, fontsize=8, y=1.02)
    return save_figure(fig, path)


def restricted_steps(preset) -> int:
    return max(1, int(round(preset.train.steps * preset.restrict_steps)))


def jobs(preset) -> list:
    """[Retrain]: the restricted retrainings ``report`` reads, each from one of the first
    ``restrict_seeds`` main runs and cached in its directory."""
    n, seeds = restricted_steps(preset), range(min(preset.restrict_seeds, preset.n_seeds))
    return [Retrain(s, cache_name(k, kind, n), n) for s in preset.specs(seeds=seeds)
            for k in preset.restrict_k for kind in KINDS]


def measurements(ctx) -> list:
    """The per-run measurements ``report`` reads, as (function, args) the pipeline may run
    in parallel first (each lands in its run directory's cache): the retrainings."""
    p = ctx.preset
    return [(cached_restricted, (r["dir"], k, kind, restricted_steps(p)))
            for r in ctx.runs[:p.restrict_seeds] for k in p.restrict_k for kind in KINDS]


def report(ctx):
    p = ctx.preset
    steps = restricted_steps(p)
    if not p.restrict_k:
        return {23: claim_restricted({}, steps)}, []
    runs = ctx.runs[:p.restrict_seeds]
    per_k = {k: {kind: [cached_restricted(r["dir"], k, kind, steps) for r in runs] for kind in KINDS}
             for k in p.restrict_k}
    hist = [load_metrics(r["dir"]) for r in runs]
    return {23: claim_restricted(per_k, steps)}, [fig_restricted(per_k, hist, ctx.caption,
                                                                 ctx.path("fig_restricted_training.png"))]


GROUP = "restricted-retraining"     # --train's and --plan's name for its retrainings
# its measurement is training: a ledger that does not train it (--finished-only, a --train
# without GROUP) shows claim 23 only when every retraining is cached
EXPERIMENT = Experiment("restricted_training", "control, does training inside it (vs a random one) learn? claim 23",
                        RULES, report, measurements=measurements, retraining=Retraining(GROUP, jobs, after="main"),
                        weight=20)   # rough seconds per call in the quick preset: the pipeline starts the longest first
