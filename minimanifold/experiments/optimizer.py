"""The optimizer control (issue 10 §2): the same model, task and step budget trained with
plain SGD (the paper's), AdamW (the authors' code: lr 3e-4, weight decay 0.01) and AdamW
without weight decay; per optimizer, r90 and the participation ratio of the attention
trajectories beside those of matched random walks (same step norms), and the final accuracy.

It decides no claim since issue 24. Its claim 21 ("the collapse is the task's, not the
optimizer's": *supported* when plain SGD's r90 lies at least 1 below the matched walk's) is
retired: any directed descent beats that walk, whatever the task, and the arms confound the
optimizer with the schedule (the paper preset's SGD decays, its AdamW arms do not). The
factorial (``factorial.py``, claims 24–26) decides both questions; ``fig_optimizer`` stays
as a picture of the arms, the no-weight-decay one included (the factorial has none).

The preset's own optimizer is served by its main runs; the others of its ``optimizer_arms``
(default: all three; the quick preset: SGD alone) are variants with ``n_extra_seeds``
seeds. An SGD variant uses the SGD step size of the quick preset (0.1).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from matplotlib.patches import Patch

from ..report.plotting import plt, save_figure, seeds
from .collapse import cached_geometry, mean_r90
from .contract import Experiment
from ..model.optim import lr_words
from .variants import mean_final_accuracy, summary_measurements, variant_specs

ADAMW_LR = 3e-4        # the authors' code (PyTorch's betas and eps; optim.py)
ADAMW_WD = 0.01
SGD_LR = 0.1           # the quick preset's plain-SGD step size (README: defaults table)
OPTIMIZERS = {"SGD": ("sgd", SGD_LR, 0.0), "AdamW": ("adamw", ADAMW_LR, ADAMW_WD),
              "AdamW, no weight decay": ("adamw", ADAMW_LR, 0.0)}


def label_of(train) -> str:
    if train.optimizer == "sgd":
        return "SGD"
    return "AdamW" if train.weight_decay > 0 else "AdamW, no weight decay"


def variants(preset) -> dict:
    """The preset's optimizer arms that its main runs do not use, each at the main runs'
    budget."""
    unknown = set(preset.optimizer_arms) - set(OPTIMIZERS)
    if unknown:
        raise ValueError(f"optimizer_arms: {sorted(unknown)} not among {list(OPTIMIZERS)}")
    main = label_of(preset.train)
    out = {}
    for label, (opt, lr, wd) in OPTIMIZERS.items():
        if label != main and label in preset.optimizer_arms:
            name = "optimizer-" + label.lower().replace(",", "").replace(" ", "-")
            train = dataclasses.replace(preset.train, optimizer=opt, lr=lr, weight_decay=wd,
                                        lr_schedule="constant")
            out[name] = variant_specs(name, preset, preset.n_extra_seeds, train=train)
    return out


def summarize(ctx, runs) -> dict:
    """Per seed, means over the attention matrices: r90, participation ratio, and those of
    the matched random walks; the final accuracy per m."""
    geoms = ctx.per_run(cached_geometry, runs)
    n = ctx.n_layers
    return {"r90": [mean_r90(g, n) for g in geoms],
            "null": [mean_r90(g, n, lambda x: x["null"]["matched"]["mean"]) for g in geoms],
            "pr": [mean_r90(g, n, lambda x: x["participation_ratio"]) for g in geoms],
            "null_pr": [mean_r90(g, n, lambda x: x["null"]["matched"]["pr_mean"]) for g in geoms],
            "final_acc": [{int(m): a for m, a in r["summary"]["final_acc"].items()} for r in runs]}


def arm_label(name, train, n_seeds) -> str:
    """An arm's tick label: its name, learning rate, step-size schedule (the arms differ
    in both: the paper preset's SGD decays, its AdamW arms do not) and seeds plotted, one
    short line each (on one line the paper preset's neighbouring labels overlapped)."""
    return (f"{name}\nlr {train.lr:g}\n{lr_words(train.lr_schedule)}".replace(", then ", ",\nthen ")
            + f"\n({seeds(n_seeds)})")


def fig_optimizer(per_opt: dict, caption, path, trains=None) -> str:
    order = [k for k in OPTIMIZERS if k in per_opt]
    ticks = [arm_label(k, trains[k], len(per_opt[k]["r90"])) if trains else k for k in order]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.8))
    for ax, key, null_key, what in ((axes[0], "r90", "null", "r90 (eq 2)"),
                                    (axes[1], "pr", "null_pr", "participation ratio")):
        for i, k in enumerate(order):
            r, n = np.array(per_opt[k][key]), np.array(per_opt[k][null_key])
            ax.bar(i - 0.18, r.mean(), 0.34, yerr=r.std(), capsize=3, color=f"C{i}")
            ax.bar(i + 0.18, n.mean(), 0.34, yerr=n.std(), capsize=3, color="0.6",
                   label="matched random walks" if i == 0 else None)
            ax.scatter(np.full(len(r), i - 0.18), r, color="k", s=8, zorder=3)
        top = max(max(np.array(per_opt[k][key]).max(), np.array(per_opt[k][null_key]).max()) for k in order)
        ax.set_xticks(range(len(order)), ticks, fontsize=7)
        ax.set(ylabel=f"{what}, mean over attention matrices", ylim=(0, 1.45 * top), title=what)
        handles = [Patch(facecolor=f"C{i}", label=k) for i, k in enumerate(order)]
        handles.append(Patch(facecolor="0.6", label="matched random walks"))
        ax.legend(handles=handles, fontsize=7, loc="upper left", title="mean ± sd over seeds (dots: seeds)",
                  title_fontsize=7)
    for i, k in enumerate(order):
        acc = mean_final_accuracy(per_opt[k])
        axes[2].scatter(np.full(len(acc), i), acc, color=f"C{i}", s=16)
    axes[2].axhline(0.95, color="k", ls=":", lw=0.8)
    axes[2].set_xticks(range(len(order)), ticks, fontsize=7)
    axes[2].set_xlim(-0.5, len(order) - 0.5)                 # the arms' dots off the frame's edges
    axes[2].set(ylabel="final held-out accuracy (mean over m; dots: seeds)", ylim=(0, 1.02),
                title="Did each learn?")
    fig.suptitle("Optimizer control (no verdict: claim 21 retired, the factorial's claims 24–26 decide): the "
                 "same model, task and steps; the arms' optimizers and step-size schedules differ (under each name)\n"
                 + caption, fontsize=9, y=1.04)
    return save_figure(fig, path)


def measurements(ctx) -> list:
    return summary_measurements(*(ctx.variants.get(name, []) for name in variants(ctx.preset)))


def report(ctx):
    per_opt = {label_of(ctx.preset.train): summarize(ctx, ctx.runs)}
    trains = {label_of(ctx.preset.train): ctx.preset.train}
    for name, specs in variants(ctx.preset).items():
        if ctx.variants.get(name):                 # all of a variant's seeds may have diverged
            per_opt[label_of(specs[0].train)] = summarize(ctx, ctx.variants[name])
            trains[label_of(specs[0].train)] = specs[0].train
    return {}, [fig_optimizer(per_opt, ctx.extra_caption, ctx.path("fig_optimizer.png"), trains)]


EXPERIMENT = Experiment("optimizer", "control, SGD against AdamW (with and without weight decay): a figure, "
                        "no claim (claim 21 retired: the factorial decides)", {}, report, variants=variants, measurements=measurements)
