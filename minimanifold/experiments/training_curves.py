"""§3.2: the trained runs themselves — the training figure (the summary table and which
runs learned their task, which the pipeline logs, are ``trajectories/metrics.py``'s)."""
from __future__ import annotations

import numpy as np

from ..model.optim import lr_words
from ..report.plotting import plt, save_figure, step_ticks
from ..trajectories.rundir import load_metrics
from .contract import Experiment

RULES = {}   # no ledger rows: the runs themselves


def training_figure(runs, preset, path) -> str:
    """Train loss and held-out accuracy per m against step, every seed (faint) and the
    mean over seeds (bold)."""
    hist = [load_metrics(r["dir"]) for r in runs]
    ms = sorted({m for h in hist for m in h[-1]["acc"]}, key=int)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(ms)))
    for h in hist:
        steps = [r["step"] for r in h if r["loss"] is not None]
        ax_loss.plot(steps, [r["loss"] for r in h if r["loss"] is not None], color="0.4", lw=0.8, alpha=0.6)
        for c, m in zip(colors, ms):
            ax_acc.plot([r["step"] for r in h], [r["acc"][m] for r in h], color=c, lw=0.7, alpha=0.35)
    steps = [r["step"] for r in hist[0]]
    for c, m in zip(colors, ms):
        mean = np.mean([[r["acc"][m] for r in h] for h in hist], axis=0)
        ax_acc.plot(steps, mean, color=c, lw=2.2, label=f"m = {m} (mean of {len(hist)} seeds)")
    ax_loss.set(xlabel="training step",
                ylabel=f"train cross-entropy (nats, mean over {preset.train.ckpt_every} steps)",
                title="Training loss, each seed", yscale="log")
    ax_acc.axhline(0.95, color="k", ls=":", lw=0.8)
    ax_acc.set(xlabel="training step", ylabel="held-out accuracy", ylim=(0, 1.02),
               title="Held-out accuracy per number of markers m")
    for ax in (ax_loss, ax_acc):
        step_ticks(ax)
    ax_acc.legend(loc="lower right", fontsize=8)
    tr = preset.train
    fig.suptitle(f"{preset.name} preset: {len(hist)} seeds, {tr.optimizer} lr={tr.lr} ({lr_words(tr.lr_schedule)}), "
                 f"batch {tr.batch_size}, m schedule {tr.schedule}", fontsize=10)
    return save_figure(fig, path)


def report(ctx):
    return {}, [training_figure(ctx.runs, ctx.preset, ctx.path("fig_training.png"))]


EXPERIMENT = Experiment("training", "§3.2: the runs, training curves", RULES, report)
