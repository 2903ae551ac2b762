"""Control (issue 24): is the collapse the task's, or the optimizer's and the step-size
schedule's? Every cell of {plain SGD, AdamW} x {constant step, warmup + cosine} x {the
task, no task} at the main runs' model, task inputs, steps and batch. Per cell, r90 and the
participation ratio of the attention trajectories (means over the attention matrices, and
per matrix) beside three nulls: the isotropic walk with the run's own step norms (sampled,
as claim 1's), that walk's exact expected spectrum (``pca.expected_walk_spectrum``), and the
run's own increments in a random order (``pca.shuffled_null``: same steps, no temporal
order). Claims 24–26. The cell of the main runs is served by them; a preset with
``factorial_seeds`` 0 does not measure it.

    cells.py     the cells, their training, the per-run nulls and each cell's summary
    verdicts.py  the rules and the ledger rows of claims 24–26
    plots.py     the cells side by side, and per attention matrix
"""
from __future__ import annotations

from ..contract import Experiment
from .cells import (CELLS, OPTIMIZERS, SCHEDULES, TASKS, cached_geometry, cached_nulls, cell_caption, cell_runs,
                    cell_train, group_name, main_cell, summarize_cell, variants)
from .plots import fig_factorial, fig_factorial_matrices
from .verdicts import MARGIN, RULES, rows, task_rule, unchanged_rule

__all__ = ["EXPERIMENT", "RULES", "CELLS", "OPTIMIZERS", "SCHEDULES", "TASKS", "MARGIN", "cell_caption",
           "cell_train", "group_name", "main_cell", "summarize_cell", "variants", "rows", "task_rule",
           "unchanged_rule", "fig_factorial", "fig_factorial_matrices", "cached_nulls", "report", "measurements"]


def measurements(ctx) -> list:
    runs = [r for rs in cell_runs(ctx).values() for r in rs] if ctx.preset.factorial_seeds else []
    return [(f, (r["dir"],)) for r in runs for f in (cached_geometry, cached_nulls)]


def report(ctx):
    if not ctx.preset.factorial_seeds:
        return rows({}, "not measured by this preset (its factorial_seeds is 0)"), []
    per_cell = {c: summarize_cell(ctx, runs) for c, runs in cell_runs(ctx).items()}
    caption = cell_caption(ctx.preset)
    return rows(per_cell), [fig_factorial(per_cell, caption, ctx.path("fig_factorial.png")),
                            fig_factorial_matrices(per_cell, caption, ctx.path("fig_factorial_matrices.png"))]


EXPERIMENT = Experiment("factorial", "control, optimizer × schedule × task: claims 24–26", RULES, report,
                        variants=variants, measurements=measurements, weight=10, some_variants=True)
