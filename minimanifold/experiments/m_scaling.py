"""§4.1, claim 19: is the dimension stable as the task grows? Mixed training up to M for
each M of the preset's ``m_scaling`` (the paper: M = 1..6), at the main runs' budget, with
``n_extra_seeds`` seeds each; r90 per M beside its matched random-walk null.

A preset without ``m_scaling`` leaves the claim *inconclusive* (not measured).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..analysis.intervals import any_of, diff_interval, holds
from ..report.ledger import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, Row, mean_sd
from ..report.plotting import plt, save_figure, seeds
from .contract import Experiment
from .variants import counted_claim, mean_final_accuracy, summarize, summary_measurements, variant_specs


def schedule_up_to(M: int) -> str:
    return "mixed:" + ",".join(str(m) for m in range(1, M + 1))


def variants(preset) -> dict:
    """One variant per M whose schedule differs from the main runs' (those serve their M)."""
    out = {}
    for M in preset.m_scaling:
        if schedule_up_to(M) != preset.train.schedule:
            task = dataclasses.replace(preset.task, n_markers=max(preset.task.n_markers, M))
            out[f"m-scaling-M{M}"] = variant_specs(f"m-scaling-M{M}", preset, preset.n_extra_seeds, task=task,
                                         train=dataclasses.replace(preset.train, schedule=schedule_up_to(M)))
    return out


def runs_per_M(ctx) -> dict:
    return {M: ctx.runs if schedule_up_to(M) == ctx.preset.train.schedule else ctx.variants[f"m-scaling-M{M}"]
            for M in ctx.preset.m_scaling}


def m_scaling_rule(changes: list) -> str:
    """dimension stable for m ≤ 6: for each M, the mean r90 of runs trained on m ∈ {1..M} minus
    that of the smallest M (Welch intervals); *supported* if every interval lies inside
    [−1, 1], *not supported* if one lies wholly outside, *inconclusive* otherwise or when the
    preset measures fewer than 2 values of M."""
    if not changes:
        return INCONCLUSIVE
    if any_of(*[any_of(holds(c, "<", -1), holds(c, ">", 1)) for c in changes]) is True:
        return NOT_SUPPORTED
    inside = all(holds(c, ">=", -1) is True and holds(c, "<=", 1) is True for c in changes)
    return SUPPORTED if inside else INCONCLUSIVE


RULES = {19: m_scaling_rule}


def claim_m_scaling(per_M: dict, n_layers: int = 3):
    """per_M: {M: summarize(...) of the runs trained up to M}."""
    base = "dimension stable for moderate complexity (m ≤ 6)"
    if len(per_M) < 2:
        return Row(claim=base, section="§4.1", paper="stable for m ≤ 6",
                   measured="not measured by this preset (its m_scaling is empty)", null="", interval="",
                   verdict=m_scaling_rule([]), value=None)
    Ms = sorted(per_M)
    step = 1 / (4 * n_layers)                  # a mean of 4L integer r90s moves in these steps
    changes = [diff_interval(per_M[M]["r90"], per_M[Ms[0]]["r90"], step) for M in Ms[1:]]
    return Row(claim=base, section="§4.1", paper="stable for m ≤ 6",
               measured="r90 by M: " + ", ".join(f"M={M} {mean_sd(per_M[M]['r90'])}" for M in Ms)
                        + "; final accuracy (mean over m; the worst m over seeds): "
                        + ", ".join(f"M={M} {np.mean(mean_final_accuracy(per_M[M])):.2f} "
                                    f"({min(min(a.values()) for a in per_M[M]['final_acc']):.2f})" for M in Ms),
               null="matched random walks: " + ", ".join(f"M={M} {mean_sd(per_M[M]['null'])}" for M in Ms),
               interval="; ".join(f"M={M} − M={Ms[0]}: {c.text()}" for M, c in zip(Ms[1:], changes)),
               verdict=m_scaling_rule(changes), value=[float(np.mean(per_M[M]["r90"])) for M in Ms])


def fig_m_scaling(per_M: dict, caption, path) -> str:
    Ms = sorted(per_M)
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.3))
    for M in Ms:
        r, n = np.asarray(per_M[M]["r90"]), np.asarray(per_M[M]["null"])
        a.scatter(np.full(len(r), M), r, color="tab:blue", s=12, alpha=0.5)
        a.fill_between([M - 0.3, M + 0.3], n.mean() - n.std() - 0.05, n.mean() + n.std() + 0.05, color="0.3",
                       alpha=0.35, lw=0, label="matched random-walk null (mean ± sd)" if M == Ms[0] else None)
        acc = mean_final_accuracy(per_M[M])
        low = [min(a.values()) for a in per_M[M]["final_acc"]]            # a mean over m hides one unlearned m
        b.scatter(np.full(len(acc), M) - 0.08, acc, color="tab:green", s=12,
                  label="mean over m (each seed)" if M == Ms[0] else None)
        b.scatter(np.full(len(low), M) + 0.08, low, color="tab:red", marker="x", s=18,
                  label="the seed's worst m" if M == Ms[0] else None)
    a.errorbar(Ms, [np.mean(per_M[M]["r90"]) for M in Ms], yerr=[np.std(per_M[M]["r90"]) for M in Ms],
               color="tab:blue", marker="o", capsize=3, label="r90, mean ± sd over seeds (dots: seeds)")
    a.axhspan(3, 4, color="tab:red", alpha=0.08, label="paper: r90 = 3–4, stable for m ≤ 6")
    ticks = [f"{M}\n{seeds(len(per_M[M]['r90']))}" for M in Ms]      # the main runs' M has more; a partial ledger fewer
    a.set(xlabel="M (trained on mixed m ∈ {1..M})", ylabel="r90, mean over attention matrices", xticks=Ms,
          xticklabels=ticks, ylim=(0, None), title="Effective rank against task complexity")
    a.legend(fontsize=7)
    b.axhline(0.95, color="k", ls=":", lw=0.8)
    b.set(xlabel="M", ylabel="final held-out accuracy (each seed)", ylim=(0, 1.02), xticks=Ms, xticklabels=ticks,
          title="Did each M learn every m?")
    b.legend(fontsize=7, loc="lower left")
    fig.suptitle(caption, fontsize=9, y=1.02)
    return save_figure(fig, path)


def measurements(ctx) -> list:
    return summary_measurements(*runs_per_M(ctx).values()) if len(ctx.preset.m_scaling) >= 2 else []


def report(ctx):
    if len(ctx.preset.m_scaling) < 2:
        return {19: claim_m_scaling({})}, []
    per_M = {M: summarize(ctx, runs) for M, runs in runs_per_M(ctx).items()}
    return {19: counted_claim(lambda p: claim_m_scaling(p, ctx.n_layers), per_M)}, [fig_m_scaling(per_M, ctx.extra_caption, ctx.path("fig_m_scaling.png"))]


EXPERIMENT = Experiment("m_scaling", "§4.1: r90 against M = 1..6, claim 19", RULES, report,
                        variants=variants, measurements=measurements)
