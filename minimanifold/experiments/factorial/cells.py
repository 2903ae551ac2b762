"""The factorial's eight cells: {plain SGD, AdamW} x {constant step, warmup + cosine} x
{the task, no task}, each the main runs' model, task inputs, steps and batch with one
optimizer and one schedule. "No task" keeps the inputs and draws each label independently
of them, fresh every batch (``TaskConfig(labels="random")``): descent with nothing to
learn. Per run, the two nulls that need the trajectory; per cell, each seed's r90 and
participation ratio beside the three nulls, as means over the attention matrices and per
matrix.
"""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from ...analysis import pca
from ...model.optim import lr_words
from ...trajectories.rundir import attention_trajectories, cached_json, matrix_names, run_configs
from ..geometry import cached_geometry, common_r90, matched_null, mean_r90
from ..optimizer import ADAMW_LR, ADAMW_WD, SGD_LR
from ..snapshot_count import n_common
from ..variants import variant_specs

VERSION = 1
OPTIMIZERS = ("SGD", "AdamW")
SCHEDULES = ("constant", "cosine")
TASKS = ("task", "no task")
CELLS = tuple(itertools.product(OPTIMIZERS, SCHEDULES, TASKS))


def schedule_of(train) -> str:
    return "constant" if train.lr_schedule == "constant" else "cosine"


def main_cell(preset) -> tuple:
    opt = "SGD" if preset.train.optimizer == "sgd" else "AdamW"
    return opt, schedule_of(preset.train), "task"


def cell_train(preset, opt, sched):
    """The main runs' training with ``opt`` (SGD at the preset's own SGD step size, else the
    quick preset's; AdamW as the authors' code) and ``sched``: constant, or the preset's
    warmup + cosine (a constant-step preset: 1/30 of the steps of warmup, the paper's ratio)."""
    tr = preset.train
    if opt == "SGD":                                   # (SGD ignores weight_decay: kept as the main runs')
        kind, lr, wd = ("sgd", tr.lr, tr.weight_decay) if tr.optimizer == "sgd" else ("sgd", SGD_LR, 0.0)
    else:
        kind, lr, wd = "adamw", tr.lr if tr.optimizer == "adamw" else ADAMW_LR, \
            tr.weight_decay if tr.optimizer == "adamw" else ADAMW_WD
    cosine = tr.lr_schedule if tr.lr_schedule.startswith("cosine") else f"cosine:{max(1, tr.steps // 30)}"
    return dataclasses.replace(tr, optimizer=kind, lr=lr, weight_decay=wd,
                               lr_schedule="constant" if sched == "constant" else cosine)


def cell_caption(preset) -> str:
    """What every cell shares and how their training differs, for the figure. The pipeline's
    caption describes the main runs ("10 seeds ... sgd lr=0.15"), which are one cell of eight."""
    m, t, tr = preset.model, preset.task, preset.train
    sgd, adamw = cell_train(preset, "SGD", "cosine"), cell_train(preset, "AdamW", "cosine")
    return (f"{preset.name} preset, every cell: L={m.n_layers}, d_model={m.d_model}, T={t.T}, C={t.C}, "
            f"{tr.schedule}, batch {tr.batch_size}, {tr.steps} steps, checkpoints every {tr.ckpt_every};\n"
            f"SGD lr {sgd.lr:g}, AdamW lr {adamw.lr:g} (weight decay {adamw.weight_decay:g}); "
            f"constant, or {lr_words(sgd.lr_schedule)}")


def group_name(cell) -> str:
    opt, sched, task = cell
    return f"factorial-{opt.lower()}-{sched}-{task.replace(' ', '')}"


def variants(preset) -> dict:
    if not preset.factorial_seeds:
        return {}
    main = main_cell(preset)
    return {group_name(c): variant_specs(group_name(c), preset, preset.factorial_seeds,
                                         task=dataclasses.replace(preset.task,
                                                                  labels="random" if c[2] == "no task" else "task"),
                                         train=cell_train(preset, c[0], c[1]))
            for c in CELLS if c != main}


# ---- per run: the two nulls that need the trajectory ----

def nulls_of_run(run_dir) -> dict:
    """Per attention matrix: r90 and participation ratio of the exact expected spectrum of a
    walk with the run's step norms, and of 3 shuffled-increment trajectories."""
    model, _, _ = run_configs(run_dir)
    traj = attention_trajectories(run_dir, model)
    out = {}
    for name in matrix_names(model.n_layers):
        X = traj[name].astype(np.float64)
        exact = pca.expected_walk_spectrum(pca.step_norms(X))
        out[name] = {"exact": {"r90": pca.rank_at(exact, 0.90), "pr": pca.participation_ratio(exact)},
                     "shuffled": pca.shuffled_null(X, n_draws=3, seed=0)}
    return out


def cached_nulls(run_dir) -> dict:
    return cached_json(run_dir, f"factorial_nulls_v{VERSION}.json", nulls_of_run)


def summarize_cell(ctx, runs) -> dict:
    """Per seed, means over the attention matrices: r90, participation ratio and the three
    nulls' of each; and under "per_matrix", {quantity: [seed, matrix]} for the matrices in
    ``matrix_names`` order (the means hide a matrix that collapses less than the rest)."""
    geoms, nulls = ctx.per_run(cached_geometry, runs), ctx.per_run(cached_nulls, runs)
    names = matrix_names(ctx.n_layers)
    keys = {"r90": (geoms, lambda x: x["r90"]), "pr": (geoms, lambda x: x["participation_ratio"]),
            "walk": (geoms, matched_null), "walk_pr": (geoms, lambda x: x["null"]["matched"]["pr_mean"]),
            "exact": (nulls, lambda x: x["exact"]["r90"]), "exact_pr": (nulls, lambda x: x["exact"]["pr"]),
            "shuffled": (nulls, lambda x: x["shuffled"]["mean"]),
            "shuffled_pr": (nulls, lambda x: x["shuffled"]["pr_mean"]), "r90_common": (geoms, common_r90)}
    per_matrix = {q: np.array([[float(key(run[k])) for k in names] for run in per]) for q, (per, key) in keys.items()}
    return {"r90_step": 1 / len(names), **{q: [mean_r90(run, ctx.n_layers, key) for run in per]
                                           for q, (per, key) in keys.items()},
            "n_common": n_common(geoms), "matrices": names, "per_matrix": per_matrix}


def cell_runs(ctx) -> dict:
    """{cell: sweep records}: the main runs for the main cell, each variant group for the
    others (a cell whose runs all diverged is absent)."""
    out = {main_cell(ctx.preset): ctx.runs}
    for c in CELLS:
        if ctx.variants.get(group_name(c)):
            out[c] = ctx.variants[group_name(c)]
    return out


def label(cell) -> str:
    """'SGD, cosine, no task': a cell as the rows and figures name it."""
    return f"{cell[0]}, {cell[1]}, {cell[2]}"


def matrix_gaps(per_cell: dict, quantity: str = "r90") -> dict:
    """{(optimizer, schedule): [matrix] no task − task}, each the difference of the two
    cells' means over seeds of ``quantity`` per attention matrix, for every optimizer and
    schedule whose two cells both have per-matrix summaries."""
    out = {}
    for o in OPTIMIZERS:
        for s in SCHEDULES:
            task, none = per_cell.get((o, s, "task")), per_cell.get((o, s, "no task"))
            if task and none and "per_matrix" in task and "per_matrix" in none:
                out[(o, s)] = none["per_matrix"][quantity].mean(axis=0) - task["per_matrix"][quantity].mean(axis=0)
    return out
