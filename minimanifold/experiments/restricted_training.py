"""Restricted training (issue 10 §4; issue 24 §2), claim 23: is the execution subspace causal?

For the first ``preset.restrict_seeds`` main runs and each K in ``preset.restrict_k``:
retrain from the run's own theta_0 on its own batches, with its own step-size schedule (a
retraining of fewer steps than the run is that schedule cut short, never compressed), with
every attention matrix's update projected onto K directions of that matrix; every other
parameter trains freely (``trajectories/restricted.py``; AdamW restricted too). Cached in
the run directory. The bases, per matrix (``analysis/causal_bases.py``):

    execution   the run's own top-K centred PCA directions of its whole trajectory: they
                know where training ends (theta_T - theta_0 lies mostly in them)
    early       the top-K centred PCA directions of the first 15% of the run's checkpoints
                (at least K + 1 of them): found before the end is known
    other       another seed's top-K (the main run with seed (s + 1) mod the main runs'
                count, or the next run left if that one diverged): the job reads two runs
                and waits for both (``Retrain.also``; ``contract.Call``)
    drift       K - 1 random directions (the first K - 1 of "random"'s) plus the unit vector
                along the run's own theta_T - theta_0, orthonormalised: K in all, as every
                basis; does one known drift direction explain the effect?
    random      K random orthonormal directions (the null)

The verdict reads a basis that does not know the end: early against random. The others
are shown beside it in the row, the execution basis marked as knowing the end.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..analysis.causal_bases import drift_and_random, early_directions
from ..analysis.functional import drift_directions, random_directions
from ..analysis.intervals import Interval, holds, t_interval
from ..report.ledger import INCONCLUSIVE, NOT_SUPPORTED, Row, SUPPORTED, mean_sd
from ..report.plotting import plt, save_figure, seeds
from ..trajectories.restricted import train_restricted
from ..trajectories.rundir import cached_json, load_metrics, run_configs
from ..trajectories.training_loop import TrainConfig
from .contract import Experiment, Retrain, Retraining
from .functional_dimension import other_snapshots, partner_dirs, seed_of, snapshots

VERSION = 2          # 2: the bases that do not know the end; the main run's own step-size schedule
KINDS = ("execution", "early", "other", "drift", "random")
LABEL = {"execution": "execution", "early": "early", "other": "another seed's", "drift": "random + drift",
         "random": "random"}
NOTE = {"execution": " (knows the end)", "early": " (decides)", "other": "", "drift": "", "random": ""}
DECIDES = "early"
MARGIN = 0.1         # accuracy points the early subspace must beat the random one by


def restriction_bases(run_dir, K: int, kind: str, partner_dir=None) -> dict:
    """{attention matrix: V [D, K']} of basis ``kind`` (module docstring); ``partner_dir``:
    the finished run whose directions "other" borrows."""
    cfg, _, train = run_configs(run_dir)
    steps, traj = snapshots(run_dir, cfg)
    other = other_snapshots(partner_dir, cfg) if kind == "other" else None
    rng = np.random.default_rng([train["seed"], 11, K])
    if kind not in KINDS:
        raise ValueError(f"no basis {kind!r} (one of {', '.join(KINDS)})")
    out = {}
    for name, X in traj.items():
        R = random_directions(X.shape[1], K, rng)        # drawn for every kind: "drift" shares "random"'s
        if kind == "execution":
            out[name] = drift_directions(X, K)
        elif kind == "early":
            out[name] = early_directions(X, steps, K)
        elif kind == "other":
            out[name] = drift_directions(other[name], K)
        else:
            out[name] = drift_and_random(X, R) if kind == "drift" else R
    return out


def restricted_of_run(run_dir, K: int, kind: str, steps: int, partner_dir=None) -> dict:
    cfg, task, train = run_configs(run_dir)
    tr = dataclasses.replace(TrainConfig(**train), steps=steps)
    bases = restriction_bases(run_dir, K, kind, partner_dir)
    out = train_restricted(cfg, task, tr, bases, eval_every=max(1, steps // 20), schedule_steps=train["steps"])
    out.pop("params")
    out["acc"] = {str(m): v for m, v in out["acc"].items()}
    out["K_used"] = min(int(V.shape[1]) for V in bases.values())     # PCA may find fewer than K
    out["other_seed"] = None if partner_dir is None else seed_of(partner_dir)
    return out


def cache_name(K, kind, steps, other_seed=None) -> str:
    """Its cache file; another seed's basis names that seed."""
    return f"restricted_v{VERSION}_K{K}_{kind}{'' if other_seed is None else f'-seed{other_seed}'}_{steps}.json"


def cached_restricted(run_dir, K, kind, steps, partner_dir=None) -> dict:
    name = cache_name(K, kind, steps, None if partner_dir is None else seed_of(partner_dir))
    return cached_json(run_dir, name, lambda d: restricted_of_run(d, K, kind, steps, partner_dir))


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


def restricted_rule(early_over_random: Interval) -> str:
    """a subspace found before the end of training is causal: per seed, the final held-out
    accuracy (mean over m) of training restricted, from the run's own θ0 on its own batches with
    its own step-size schedule, to the top-K centred PCA directions of the first 15% of the run's
    checkpoints (at least K + 1 of them) per attention matrix, minus that of K random directions in
    the same matrices, at the largest K ≤ 4 (accuracies resolved to one probe example);
    *supported* if its interval lies above 0.1, *not supported* if it lies at or below 0.1 (a random
    subspace does as well), *inconclusive* otherwise or when not measured. The run's own
    whole-trajectory directions (which know the end), another seed's, and K − 1 random directions
    plus θT − θ0 are shown beside it, not decided on."""
    return {True: SUPPORTED, False: NOT_SUPPORTED, None: INCONCLUSIVE}[holds(early_over_random, ">", MARGIN)]


RULES = {23: restricted_rule}


def over_random(finals: dict, kind: str, acc_step: float) -> Interval:
    """t interval over seeds of (basis ``kind``'s final accuracy − random's), seed by seed;
    undetermined when the two were not measured on the same seeds."""
    a, r = (np.array(finals.get(k, []), dtype=float) for k in (kind, "random"))
    return t_interval(a - r if len(a) == len(r) else [], acc_step)


def claim_restricted(per_k: dict, steps: int, acc_step: float = 1 / 256):
    """per_k: {K: {kind: [result per seed]}} (kinds of KINDS; "random" and "early" decide);
    ``acc_step``: one probe example's share of an accuracy (the resolution of a tie)."""
    base = "training restricted to the execution subspace learns; a random one of the same K does not"
    paper = "an execution manifold (causal role implied)"
    if not per_k:
        return Row(claim=base, section="§4.3 (control)", paper=paper,
                   measured="not measured by this preset (presets with restrict_k only)",
                   null="", interval="", verdict=INCONCLUSIVE, value=None)
    K = max([k for k in per_k if k <= 4] or [min(per_k)])
    finals = {k: {kind: [float(mean_acc(r)[-1]) for r in v[kind]] for kind in v} for k, v in per_k.items()}
    diffs = {kind: over_random(finals[K], kind, acc_step) for kind in KINDS if kind != "random"}
    return Row(claim=base, section="§4.3 (control)", paper=paper,
               measured=f"final accuracy after {steps} restricted steps (first step at 0.9): " + "; ".join(
                   f"K={k} " + ", ".join(
                       f"{LABEL[kind]}{NOTE[kind]} {mean_sd(finals[k][kind])} ({_when(per_k[k][kind])})"
                       for kind in KINDS if kind in per_k[k] and kind != "random")
                   for k in sorted(per_k)),
               null="K random directions per matrix: " + "; ".join(
                   f"K={k} {mean_sd(finals[k]['random'])} ({_when(per_k[k]['random'])})" for k in sorted(per_k)),
               interval=f"K={K} " + "; ".join(f"{LABEL[kind]}{NOTE[kind]} − random {iv.text()}"
                                              for kind, iv in diffs.items()),
               verdict=restricted_rule(diffs[DECIDES]), value=diffs[DECIDES].est)


COLOR = {"execution": "tab:blue", "early": "tab:green", "other": "tab:purple", "drift": "tab:orange", "random": "0.45"}


def fig_restricted(per_k: dict, main_hist, caption, path) -> str:
    fig, ax = plt.subplots(figsize=(8, 4.8))
    K = max([k for k in per_k if k <= 4] or [min(per_k)])
    for k in sorted(per_k):
        for kind in (kind for kind in KINDS if kind in per_k[k]):
            runs = per_k[k][kind]
            ax.plot(runs[0]["steps"], np.mean([mean_acc(r) for r in runs], axis=0), color=COLOR[kind],
                    ls=(":" if k != K else "--" if kind == "random" else "-"), lw=2 if k == K else 1.2,   # dashed:
                    # the random control stays visible over a basis that does no better (another seed's)
                    label=f"K={k}, {LABEL[kind]} subspace (mean of {seeds(len(runs))})")
    if main_hist:
        steps = [r["step"] for r in main_hist[0]]
        acc = np.mean([[np.mean(list(r["acc"].values())) for r in h] for h in main_hist], axis=0)
        ax.plot(steps, acc, color="k", lw=1, label="unrestricted (the same seeds' main runs)")
        ax.set_xlim(0, max(per_k[k][kind][0]["steps"][-1] for k in per_k for kind in per_k[k]))
    ax.set(xlabel="step", ylabel="held-out accuracy (mean over m)", ylim=(0, 1.02),
           title="Restricted retraining from the same θ0, batches and step sizes: attention updates\n"
                 "projected onto K directions per matrix. execution: the run's own top-K PCA (knows the end);\n"
                 "early: the top-K PCA of its first 15% (decides); another seed's top-K; random + drift: "
                 "K − 1 random + θT − θ0")
    ax.title.set_fontsize(8)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)   # off the curves
    fig.suptitle(caption, fontsize=8, y=1.02)
    return save_figure(fig, path)


def restricted_steps(preset) -> int:
    return max(1, int(round(preset.train.steps * preset.restrict_steps)))


def jobs(preset) -> list:
    """[Retrain]: the restricted retrainings ``report`` reads, each from one of the first
    ``restrict_seeds`` main runs and cached in its directory; another seed's basis also
    reads the main run with the next seed."""
    n, seeds = restricted_steps(preset), range(min(preset.restrict_seeds, preset.n_seeds))
    out = []
    for s in preset.specs(seeds=seeds):
        p = (s.train.seed + 1) % preset.n_seeds
        for k in preset.restrict_k:
            out += [Retrain(s, cache_name(k, kind, n, p), n, tuple(preset.specs(seeds=[p])))
                    if kind == "other" else Retrain(s, cache_name(k, kind, n), n) for kind in KINDS]
    return out


def calls(ctx) -> list:
    """[(K, kind, (cached_restricted, args))] of the runs ``report`` reads: the first
    ``restrict_seeds`` main runs, another seed's basis with its partner's directory."""
    p = ctx.preset
    runs, partners = ctx.runs[:p.restrict_seeds], partner_dirs(ctx.runs, p.n_seeds)
    return [(k, kind, (cached_restricted, (r["dir"], k, kind, restricted_steps(p), *([o] if kind == "other" else []))))
            for r, o in zip(runs, partners) for k in p.restrict_k for kind in KINDS if kind != "other" or o]


def measurements(ctx) -> list:
    """The per-run measurements ``report`` reads, as (function, args) the pipeline may run
    in parallel first (each lands in its run directory's cache): the retrainings."""
    return [call for *_, call in calls(ctx)]


def report(ctx):
    p = ctx.preset
    steps = restricted_steps(p)
    if not p.restrict_k:
        return {23: claim_restricted({}, steps)}, []
    per_k = {k: {} for k in p.restrict_k}
    for k, kind, (fn, args) in calls(ctx):
        per_k[k].setdefault(kind, []).append(fn(*args))
    hist = [load_metrics(r["dir"]) for r in ctx.runs[:p.restrict_seeds]]
    return {23: claim_restricted(per_k, steps, 1 / p.train.n_probe)}, [
        fig_restricted(per_k, hist, ctx.caption, ctx.path("fig_restricted_training.png"))]


GROUP = "restricted-retraining"     # --train's and --plan's name for its retrainings
# its measurement is training: a ledger that does not train it (--finished-only, a --train
# without GROUP) shows claim 23 only when every retraining is cached
EXPERIMENT = Experiment("restricted_training", "control, does training inside it (vs a random one) learn? claim 23",
                        RULES, report, measurements=measurements, retraining=Retraining(GROUP, jobs, after="main"),
                        weight=20)   # rough seconds per call in the quick preset: the pipeline starts the longest first
