"""The factorial's figures: the eight cells side by side with their nulls (means over the
attention matrices), and the same per attention matrix (``fig_factorial_matrices``)."""
from __future__ import annotations

import numpy as np

from ...report.plotting import plt, save_figure, seeds
from .cells import CELLS, label, matrix_gaps
from .verdicts import MARGIN, TOL


def fig_factorial(per_cell: dict, caption, path) -> str:
    cells = [c for c in CELLS if c in per_cell]
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.6))
    for ax, key, what in ((axes[0], "", "r90 (eq 2)"), (axes[1], "_pr", "participation ratio")):
        labelled = set()                    # each kind of bar once in the legend (a partial set may lack one)
        for i, c in enumerate(cells):
            v = per_cell[c]["r90" if not key else "pr"]
            kind = "task" if c[2] == "task" else "no task (random labels)"
            ax.bar(i, np.mean(v), 0.6, color="tab:blue" if c[2] == "task" else "tab:red", alpha=0.8,
                   label=None if kind in labelled else kind)
            labelled.add(kind)
            ax.scatter(np.full(len(v), i), v, color="k", s=8, zorder=3)
            ax.hlines(np.mean(per_cell[c]["walk" + key]), i - 0.3, i + 0.3, color="0.2", lw=2, zorder=4,
                      label="random walk, matched steps (sampled)" if i == 0 else None)
            for null, marker, color, name in (("exact", "x", "k", "the same walk's exact expected spectrum"),
                                              ("shuffled", "D", "tab:orange", "the run's own steps, shuffled")):
                ax.scatter(i + 0.42, np.mean(per_cell[c][null + key]), marker=marker, color=color, s=36, zorder=4,
                           label=name if i == 0 else None)
        n = [len(per_cell[c]["r90"]) for c in cells]
        ax.set_xticks(range(len(cells)), [f"{c[0]}\n{c[1]}\n{c[2]}\n({seeds(k)})" for c, k in zip(cells, n)],
                      fontsize=7)
        ax.set(ylabel=f"{what}, mean over attention matrices", ylim=(0, None),
               title=f"{what}: bars mean over seeds (dots: seeds), markers: nulls")
    axes[0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.28), ncol=3)
    fig.suptitle("Is the collapse the task's? Optimizer × schedule × task, the same model, inputs and steps "
                 f"(seeds per cell under each bar{'; cells not finished are absent' * (len(cells) < len(CELLS))})\n"
                 + caption, fontsize=9, y=1.04)
    return save_figure(fig, path)


def short_name(matrix: str) -> str:
    """'blocks.2.attn.W_Q' -> 'L2 W_Q'."""
    parts = matrix.split(".")
    return f"L{parts[1]} {parts[-1]}"


def fig_factorial_matrices(per_cell: dict, caption, path) -> str:
    """Top: per cell (rows) and attention matrix (columns), means over seeds, r90 with the
    matched walk's below it, and the participation ratio with the walk's. Bottom: no task −
    task of each (``matrix_gaps``), per optimizer and schedule, red where the no-task runs
    are higher; the margin of claim 24's rule in bold. A matrix that collapses less than the
    rest, hidden by the means ``fig_factorial`` and the rows read, shows here."""
    cells = [c for c in CELLS if c in per_cell]
    names = per_cell[cells[0]]["matrices"]
    fig, axes = plt.subplots(2, 2, figsize=(max(10, 1.5 * len(names)), 0.5 * len(cells) + 6.5),
                             gridspec_kw={"height_ratios": [len(cells), 4]})
    for col, (key, what) in enumerate((("r90", "r90 (eq 2)"), ("pr", "participation ratio"))):
        ax = axes[0, col]
        grid = np.array([per_cell[c]["per_matrix"][key].mean(axis=0) for c in cells])
        walk = np.array([per_cell[c]["per_matrix"][{"r90": "walk", "pr": "walk_pr"}[key]].mean(axis=0) for c in cells])
        image = ax.imshow(grid, cmap="viridis", vmin=0, vmax=max(grid.max(), 1e-9), aspect="auto")
        for (i, j), v in np.ndenumerate(grid):
            ax.text(j, i, f"{v:.1f}\n({walk[i, j]:.1f})", ha="center", va="center", fontsize=6,
                    color="k" if v > 0.6 * grid.max() else "w")
        ax.set_yticks(range(len(cells)),
                      [f"{label(c)} ({seeds(len(per_cell[c]['r90']))})" for c in cells], fontsize=7)
        ax.set_title(f"{what} of the runs (colour), mean over seeds; matched random walk's in brackets", fontsize=9)
        fig.colorbar(image, ax=ax, shrink=0.8, label=what)
        gaps = matrix_gaps(per_cell, key)
        ax = axes[1, col]
        if not gaps:
            ax.set_axis_off()
            continue
        grid = np.array(list(gaps.values()))
        top = max(float(np.abs(grid).max()), 1.0)
        image = ax.imshow(grid, cmap="RdBu_r", vmin=-top, vmax=top, aspect="auto")
        for (i, j), v in np.ndenumerate(grid):
            ax.text(j, i, f"{v:+.1f}", ha="center", va="center", fontsize=6,
                    color="w" if abs(v) > 0.6 * top else "k",
                    fontweight="bold" if key == "r90" and abs(v) >= MARGIN - TOL else "normal")
        ax.set_yticks(range(len(gaps)), [f"{o}, {s}" for o, s in gaps], fontsize=7)
        ax.set_title(f"no task − task, {what}" + (" (bold: at least the rule's margin of 1)" if key == "r90" else ""),
                     fontsize=9)
        fig.colorbar(image, ax=ax, shrink=0.8, label="no task − task")
    for ax in axes.flat:
        ax.set_xticks(range(len(names)), [short_name(n) for n in names], rotation=90, fontsize=7)
    fig.suptitle("Is the collapse the task's? Each cell per attention matrix (seeds per cell after its name"
                 f"{'; cells not finished are absent' * (len(cells) < len(CELLS))})\n" + caption, fontsize=9, y=1.02)
    fig.tight_layout()
    return save_figure(fig, path)
