"""What the §4.5–4.6 comparisons share: a variant is the main runs' configuration with one
thing changed (schedule, architecture, operation), trained at the same budget, summarised
like the main runs and drawn beside them."""
from __future__ import annotations

import dataclasses

import numpy as np

from ..report.ledger import INCONCLUSIVE, Row
from ..report.plotting import plt, save_figure
from ..trajectories.sweep import RunSpec
from ..trajectories.rundir import ALL, load_metrics
from .collapse import cached_geometry, matched_null, mean_r90
from .snapshot_count import counted
from .geometry import common_null, common_r90


def variant_specs(name, preset, n_seeds, model=None, task=None, train=None) -> list:
    """One RunSpec per seed: the preset's main configuration with ``model``, ``task`` or
    ``train`` replaced."""
    return [RunSpec(name, model or preset.model, task or preset.task,
                    dataclasses.replace(train or preset.train, seed=s)) for s in range(n_seeds)]


NO_COMPARISONS = "not measured by this preset (it trains no comparisons: the paper and authors presets do)"


def not_measured(claim, section, paper) -> Row:
    """The row of a comparison claim in a preset that trains no comparisons
    (``Preset.comparisons`` False): inconclusive, saying which presets measure it."""
    return Row(claim=claim, section=section, paper=paper, measured=NO_COMPARISONS, null="", interval="",
               verdict=INCONCLUSIVE, value=None)


def summary_measurements(*groups) -> list:
    """The per-run measurements ``summarize`` reads (each run's geometry), for a module's
    ``measurements``; a call asked for twice is computed once."""
    return [(cached_geometry, (r["dir"],)) for runs in groups for r in runs]


def summarize(ctx, runs) -> dict:
    """Per seed: mean r90 over the attention matrices, its matched null, the all-attention
    r90, and the final accuracy per m; and the steps these move in (``r90_step``: a mean of
    4L integers; ``acc_step``: one probe example), the resolution a tied interval needs."""
    geoms = ctx.per_run(cached_geometry, runs)
    return {"r90_step": 1 / (4 * ctx.n_layers), "acc_step": 1 / ctx.preset.train.n_probe,
            "r90": [mean_r90(g, ctx.n_layers) for g in geoms],
            "common": {"n": geoms[0][ALL]["common"]["n"] if geoms else 0,            # at the common count
                       "r90": [mean_r90(g, ctx.n_layers, common_r90) for g in geoms],
                       "null": [mean_r90(g, ctx.n_layers, common_null) for g in geoms]},
            "null": [mean_r90(g, ctx.n_layers, matched_null) for g in geoms],
            "r90_all": [g[ALL]["r90"] for g in geoms],
            "final_acc": [{int(m): a for m, a in r["summary"]["final_acc"].items()} for r in runs]}


def mean_final_accuracy(v) -> np.ndarray:
    """[seed] final accuracy averaged over m."""
    return np.array([np.mean(list(a.values())) for a in v["final_acc"]])


def at_common(v) -> dict:
    """A ``summarize`` dict with r90 and its null taken from the common snapshot count (the
    null: the exact walk's there), to decide a comparison at one count across presets."""
    return {**v, "r90": v["common"]["r90"], "null": v["common"]["null"]} if "common" in v else v


def counted_claim(claim, *summaries):
    """``claim(*summaries)`` decided from every checkpoint and again from the common snapshot
    count (``at_common``; a dict of summaries is mapped value by value): the verdicts must
    agree, or the row reads inconclusive (``snapshot_count.count_rule``)."""
    def common(s):
        return {k: at_common(v) for k, v in s.items()} if "r90" not in s else at_common(s)
    row = claim(*summaries)
    first = summaries[0] if "r90" in summaries[0] else next(iter(summaries[0].values()))
    if "common" not in first:
        return row
    return counted(row, claim(*[common(s) if isinstance(s, dict) else s for s in summaries]).verdict,
                   first["common"]["n"])


def excess_over_null(v) -> np.ndarray:
    """[seed] r90 minus its own matched random-walk null (negative: collapsed below it)."""
    return np.asarray(v["r90"], dtype=float) - np.asarray(v["null"], dtype=float)


def _acc_curves(ax, runs, ls, label) -> dict:
    """Mean accuracy per m against step; returns {m (int): its colour}."""
    hist = [load_metrics(r["dir"]) for r in runs]
    ms = sorted(hist[0][-1]["acc"], key=int)
    # one categorical colour per m (viridis made m = 1 and m = 2 two near-identical dark blues)
    colors = [plt.cm.tab10(i % 10) for i in range(len(ms))]
    steps = [r["step"] for r in hist[0]]
    for c, m in zip(colors, ms):
        ax.plot(steps, np.mean([[r["acc"][m] for r in h] for h in hist], axis=0), color=c, ls=ls,
                lw=2, label=f"{label}, m = {m}")
    return {int(m): c for m, c in zip(ms, colors)}


def _r90_bars(ax, variants):
    """r90 per variant with its matched null, and r90 − null (what claims 15 and 18 compare)."""
    for i, (name, v) in enumerate(variants.items()):
        r, n = np.array(v["r90"]), np.array(v["null"])
        ax.bar(i, r.mean(), 0.6, yerr=r.std(), capsize=4, color=f"C{i}", label=name)
        ax.fill_between([i - 0.3, i + 0.3], n.mean() - n.std() - 0.05, n.mean() + n.std() + 0.05,
                        color="0.3", alpha=0.35, lw=0, label="matched random-walk null" if i == 0 else None)
        gap = f"{np.mean(r - n):+.2f}".replace("-", "−")
        ax.text(i, max(r.mean() + r.std(), n.mean() + n.std()) + 0.1, f"r90 − null {gap}", ha="center", va="bottom",
                fontsize=8)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.1)
    ax.set_xticks(range(len(variants)), list(variants))
    ax.set(ylabel="r90, mean over attention matrices", title="Effective rank (mean ± sd over seeds)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3)


def fig_compare(variants, runs_by_variant, title, caption, path, boundaries=None, baselines=None) -> str:
    """Accuracy per m against step for each variant (line styles), and r90 with nulls.
    ``baselines`` (variant, {m: accuracy}): a chance level per m of that variant (its
    majority class), drawn as a thin dash-dot line in m's colour."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    colors = {}
    for (name, runs), ls in zip(runs_by_variant.items(), ("-", "--", ":")):
        colors[name] = _acc_curves(a, runs, ls, name)
    if baselines is not None:
        name, levels = baselines
        for m, y in sorted(levels.items()):
            a.axhline(y, color=colors[name][m], ls="-.", lw=1, label=f"{name} majority class, m = {m} ({y:.2f})")
    for s in boundaries or []:
        a.axvline(s, color="k", lw=0.8, ls=":")
    a.set(xlabel="training step", ylabel="held-out accuracy (mean over seeds)", ylim=(0, 1.03),
          title=title + (" (dotted: curriculum stage boundaries)" if boundaries else ""))
    # below the axes (curves reach every corner); 3 columns with baselines, clear of the r90 legend
    a.legend(fontsize=7, ncol=3 if baselines else 4, loc="upper center", bbox_to_anchor=(0.5, -0.13))
    _r90_bars(b, variants)
    fig.suptitle(caption, fontsize=9, y=1.02)
    return save_figure(fig, path)
