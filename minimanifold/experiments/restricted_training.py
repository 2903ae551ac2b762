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

The verdict reads a basis that does not know the end: early against random, paired seed by
seed. The others are shown beside it in the row, the execution basis marked as knowing the end.

The jobs, their cache and the bases are in ``restricted_jobs``. A retraining may take
several sittings: a ledger that does not train the group reads the jobs finished, and the
verdict waits, *inconclusive*, until the decisive pair is in on every seed the preset plans.
"""
from __future__ import annotations

import textwrap

import numpy as np

from ..analysis.intervals import Interval, holds, t_interval
from ..report.ledger import INCONCLUSIVE, NOT_SUPPORTED, Row, SUPPORTED, mean_sd
from ..report.plotting import plt, save_figure, seeds
from ..trajectories.rundir import load_metrics
from .contract import Experiment, Retraining
from .functional_dimension import seed_of
from .restricted_jobs import (DECIDES, GROUP, KINDS, VERSION, cache_name, cached_restricted,  # noqa: F401
                              calls, finished, jobs, restricted_of_run, restricted_steps, restriction_bases)

LABEL = {"execution": "execution", "early": "early", "other": "another seed's", "drift": "random + drift",
         "random": "random"}
NOTE = {"execution": " (knows the end)", "early": " (decides)", "other": "", "drift": "", "random": ""}
MARGIN = 0.1         # accuracy points the early subspace must beat the random one by


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
    subspace does as well), *inconclusive* otherwise, when not measured, or while fewer than the preset's seeds are retrained on both bases. The run's own
    whole-trajectory directions (which know the end), another seed's, and K − 1 random directions
    plus θT − θ0 are shown beside it, not decided on."""
    return {True: SUPPORTED, False: NOT_SUPPORTED, None: INCONCLUSIVE}[holds(early_over_random, ">", MARGIN)]


RULES = {23: restricted_rule}


def paired(finals: dict, kind: str) -> tuple:
    """([basis ``kind``'s final accuracy], [random's]) on the seeds both were measured on.
    Values are {seed: accuracy}, or lists (seeds unknown: paired by position only when the
    lengths agree, else nothing)."""
    a, r = (finals.get(k, []) for k in (kind, "random"))
    if isinstance(a, dict) and isinstance(r, dict):
        common = sorted(set(a) & set(r))
        return [a[s] for s in common], [r[s] for s in common]
    return (list(a), list(r)) if len(a) == len(r) else ([], [])


def over_random(finals: dict, kind: str, acc_step: float) -> Interval:
    """t interval over seeds of (basis ``kind``'s final accuracy − random's), seed by seed;
    undetermined when the two share no seed."""
    a, r = (np.array(v, dtype=float) for v in paired(finals, kind))
    return t_interval(a - r, acc_step)


def by_seed(results) -> dict:
    """{seed: result}: a result's own "seed" (``report`` adds it), else its position."""
    return {r.get("seed", i): r for i, r in enumerate(results)}


def claim_restricted(per_k: dict, steps: int, acc_step: float = 1 / 256, planned: int = 0):
    """per_k: {K: {kind: [result per seed]}} (kinds of KINDS; "random" and "early" decide);
    ``acc_step``: one probe example's share of an accuracy (the resolution of a tie);
    ``planned``: the seeds the preset retrains (a partial sitting's row is *inconclusive*
    while the decisive pair is in on fewer)."""
    base = "training restricted to the execution subspace learns; a random one of the same K does not"
    paper = "an execution manifold (causal role implied)"
    if not per_k:
        return Row(claim=base, section="§4.3 (control)", paper=paper,
                   measured="not measured by this preset (presets with restrict_k only)",
                   null="", interval="", verdict=INCONCLUSIVE, value=None)
    K = max([k for k in per_k if k <= 4] or [min(per_k)])
    finals = {k: {kind: {s: float(mean_acc(r)[-1]) for s, r in by_seed(v[kind]).items()} for kind in v}
              for k, v in per_k.items()}
    diffs = {kind: over_random(finals[K], kind, acc_step) for kind in KINDS if kind != "random"}
    short = diffs[DECIDES].n < planned
    wait = (f" (partial: {diffs[DECIDES].n} of the {planned} seeds retrained with both; the verdict waits for all)"
            if short else "")
    return Row(claim=base, section="§4.3 (control)", paper=paper,
               measured=f"final accuracy after {steps} restricted steps (first step at 0.9): " + "; ".join(
                   f"K={k} " + ", ".join(
                       f"{LABEL[kind]}{NOTE[kind]} {mean_sd(list(finals[k][kind].values()))} "
                       f"({_when(per_k[k][kind])}{_seeds(per_k[k][kind], planned)})"
                       for kind in KINDS if kind in per_k[k] and kind != "random")
                   for k in sorted(per_k)),
               null="K random directions per matrix: " + ("; ".join(
                   f"K={k} {mean_sd(list(finals[k]['random'].values()))} ({_when(per_k[k]['random'])}"
                   f"{_seeds(per_k[k]['random'], planned)})" for k in sorted(per_k) if 'random' in per_k[k])
                   or "not retrained yet"),
               interval=f"K={K} " + "; ".join(f"{LABEL[kind]}{NOTE[kind]} − random {iv.text()}"
                                              for kind, iv in diffs.items()) + wait,
               verdict=INCONCLUSIVE if short else restricted_rule(diffs[DECIDES]), value=diffs[DECIDES].est)


def _seeds(results, planned) -> str:
    """", n of N seeds" for a basis retrained on fewer seeds than planned; "" otherwise."""
    return f", {len(results)} of {planned} seeds" if len(results) < planned else ""


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
        few = len(steps) <= 40                  # marked: with few checkpoints the segments are not curves
        ax.plot(steps, acc, "k.-" if few else "k-", lw=1, ms=4, label=f"unrestricted (the main runs of the seeds "
                f"retrained: {len(main_hist)}){', at its checkpoints' if few else ''}")
        ax.set_xlim(0, max(per_k[k][kind][0]["steps"][-1] for k in per_k for kind in per_k[k]))
    ax.set(xlabel="step", ylabel="held-out accuracy (mean over m)", ylim=(0, 1.02),
           title="Restricted retraining from the same θ0, batches and step sizes: attention updates\n"
                 "projected onto K directions per matrix. execution: the run's own top-K PCA (knows the end);\n"
                 "early: the top-K PCA of its first 15% (decides); another seed's top-K; random + drift: "
                 "K − 1 random + θT − θ0")
    ax.title.set_fontsize(8)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)   # off the curves
    fig.suptitle(textwrap.fill(caption, 120), fontsize=8, y=1.02, va="bottom")   # wider than the axes: wrapped
    return save_figure(fig, path)


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
        per_k[k].setdefault(kind, []).append({**fn(*args), "seed": seed_of(args[0])})
    retrained = {r["seed"] for v in per_k.values() for rs in v.values() for r in rs}   # a partial sitting: fewer
    hist = [load_metrics(r["dir"]) for r in ctx.runs[:p.restrict_seeds] if r["seed"] in retrained]
    planned = min(p.restrict_seeds, p.n_seeds)
    return {23: claim_restricted(per_k, steps, 1 / p.train.n_probe, planned)}, [
        fig_restricted(per_k, hist, retrained_caption(ctx.caption, len(ctx.runs), retrained, planned),
                       ctx.path("fig_restricted_training.png"))]


def retrained_caption(caption: str, n_runs: int, retrained, planned: int) -> str:
    """The figure's caption: the seeds it plots, not the main runs' count ("10 seeds" over
    curves of 2 read as 10), and how many the preset plans."""
    got = sorted(retrained)
    which = f"seed{'s' if len(got) != 1 else ''} {', '.join(map(str, got))} retrained" if got else "no seed retrained yet"
    return caption.replace(f"{n_runs} seeds", f"{which} (of {planned} planned; the main runs: {n_runs} seeds)", 1)


# its measurement is training: a ledger that does not train it (--finished-only, a --train
# without GROUP) shows claim 23 from the retrainings finished (in the run cache or the records)
EXPERIMENT = Experiment("restricted_training", "control, does training inside it (vs a random one) learn? claim 23",
                        RULES, report, measurements=measurements, retraining=Retraining(GROUP, jobs, after="main"),
                        weight=20)   # rough seconds per call in the quick preset: the pipeline starts the longest first
