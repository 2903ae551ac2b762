"""Control (issue 24): is the collapse the task's, or the optimizer's and the step-size
schedule's? Every cell of {plain SGD, AdamW} x {constant step, warmup + cosine} x {the
task, no task} at the main runs' model, task inputs, steps and batch. "No task" keeps the
inputs and draws each label independently of them, fresh every batch
(``TaskConfig(labels="random")``): descent with nothing to learn. Per cell, r90 and the
participation ratio of the attention trajectories (means over the attention matrices)
beside three nulls: the isotropic walk with the run's own step norms (sampled, as claim
1's), that walk's exact expected spectrum (``pca.expected_walk_spectrum``), and the run's
own increments in a random order (``pca.shuffled_null``: same steps, no temporal order).
Claims 24–26. The cell of the main runs is served by them; a preset with
``factorial_seeds`` 0 does not measure it.
"""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from ..analysis import pca
from ..analysis.intervals import all_of, diff_interval, holds
from ..model.optim import lr_words
from ..report.ledger import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, Row, mean_sd
from ..report.plotting import plt, save_figure, seeds
from ..trajectories.rundir import attention_trajectories, cached_json, matrix_names, run_configs
from .collapse import cached_geometry, matched_null, mean_r90
from .snapshot_count import counted, n_common
from .geometry import common_r90
from .contract import Experiment
from .optimizer import ADAMW_LR, ADAMW_WD, SGD_LR
from .variants import variant_specs

VERSION = 1
MARGIN = 1.0               # one dimension of r90: what "lower-dimensional" must clear
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
    nulls' of each."""
    geoms, nulls = ctx.per_run(cached_geometry, runs), ctx.per_run(cached_nulls, runs)
    n = ctx.n_layers
    mean = lambda per, key: [mean_r90(g, n, key) for g in per]          # noqa: E731
    return {"r90_step": 1 / (4 * n), "r90": mean(geoms, lambda x: x["r90"]),
            "pr": mean(geoms, lambda x: x["participation_ratio"]),
            "walk": mean(geoms, matched_null), "walk_pr": mean(geoms, lambda x: x["null"]["matched"]["pr_mean"]),
            "exact": mean(nulls, lambda x: x["exact"]["r90"]), "exact_pr": mean(nulls, lambda x: x["exact"]["pr"]),
            "shuffled": mean(nulls, lambda x: x["shuffled"]["mean"]),
            "shuffled_pr": mean(nulls, lambda x: x["shuffled"]["pr_mean"]),
            "r90_common": mean(geoms, common_r90), "n_common": n_common(geoms)}


def cell_runs(ctx) -> dict:
    """{cell: sweep records}: the main runs for the main cell, each variant group for the
    others (a cell whose runs all diverged is absent)."""
    out = {main_cell(ctx.preset): ctx.runs}
    for c in CELLS:
        if ctx.variants.get(group_name(c)):
            out[c] = ctx.variants[group_name(c)]
    return out


# ---- verdict rules: the docstring is the rule the ledger prints ----

def task_rule(gaps: dict) -> str:
    """the collapse is the task's: per optimizer and schedule, the Welch interval of no-task
    r90 minus task r90 (means over attention matrices); *supported* if every pair's lies at
    or above 1 (the task makes trajectories at least one dimension lower than descent with
    nothing to learn); *not supported* if some pair's lies below 1 (no-task runs as low,
    within one dimension); *inconclusive* otherwise or with a cell missing, or when the verdict
    from 40 evenly spaced snapshots differs (``snapshot_count.count_rule``)."""
    if len(gaps) < len(OPTIMIZERS) * len(SCHEDULES):
        return INCONCLUSIVE
    if any(holds(iv, "<", MARGIN) is True for iv in gaps.values()):
        return NOT_SUPPORTED
    return SUPPORTED if all(holds(iv, ">=", MARGIN) is True for iv in gaps.values()) else INCONCLUSIVE


def unchanged_rule(diffs: dict) -> str:
    """the collapse does not hang on this choice: per pair of task cells that differ only in
    it, the Welch interval of the r90 difference; *supported* if every one lies within
    (−1, 1); *not supported* if some one lies wholly at or beyond ±1; *inconclusive*
    otherwise or with a cell missing, or when the verdict from 40 evenly spaced snapshots differs."""
    if len(diffs) < 2:
        return INCONCLUSIVE
    if any(holds(iv, ">=", MARGIN) is True or holds(iv, "<=", -MARGIN) is True for iv in diffs.values()):
        return NOT_SUPPORTED
    return SUPPORTED if all(all_of(holds(iv, ">", -MARGIN), holds(iv, "<", MARGIN)) is True
                            for iv in diffs.values()) else INCONCLUSIVE


RULES = {24: task_rule, 25: unchanged_rule, 26: unchanged_rule}
CLAIMS = {24: ("the collapse is the task's (task against no-task runs)", "abstract, §4.1 (control)",
               "the manifold reflects the computation being learned"),
          25: ("the collapse does not hang on the optimizer (AdamW against plain SGD)", "§3.2 (control)",
               "low-dimensional under plain SGD (§3.2)"),
          26: ("the collapse does not hang on the step-size schedule (cosine against constant)",
               "§3.2 (control)", "no schedule stated (§3.2: SGD, lr 0.001)")}


def label(cell) -> str:
    return f"{cell[0]}, {cell[1]}, {cell[2]}"


def rows(per_cell: dict, why=None) -> dict:
    """Claims 24–26 from {cell: summarize_cell(...)}: each pair of cells that differ in one
    factor and are both there gives its interval; with a cell missing (a partial ledger)
    the rows name it and decide nothing (the rules need every pair). ``why``: not measured."""
    if why or not per_cell:
        return {n: Row(claim=c, section=s, paper=p, measured=why or "no cell has a finished run", null="",
                       interval="", verdict=INCONCLUSIVE, value=None) for n, (c, s, p) in CLAIMS.items()}
    here = [c for c in CELLS if c in per_cell]
    missing = [label(c) for c in CELLS if c not in per_cell]
    measured = "r90: " + "; ".join(f"{label(c)} {mean_sd(per_cell[c]['r90'])}" for c in here) + (
        f"; no finished run yet (decides nothing without them): {', '.join(missing)}" if missing else "")
    null = "; ".join(f"{label(c)}: walk {mean_sd(per_cell[c]['walk'])}, exact {np.mean(per_cell[c]['exact']):.2f}, "
                     f"shuffled {mean_sd(per_cell[c]['shuffled'])}" for c in here)   # no-task cells' too: read r90 beside them
    step = per_cell[here[0]].get("r90_step", 0.0)                        # r90 means of 4L integers

    def pairs(key, keys, hi, lo):     # {key: interval of r90(hi(key)) − r90(lo(key))} where both cells are there
        return {k: diff_interval(per_cell[hi(*k)][key], per_cell[lo(*k)][key], step)
                for k in keys if hi(*k) in per_cell and lo(*k) in per_cell}

    def intervals(key):               # {claim: its pairs' intervals} of r90 from every checkpoint, or the common count
        return {24: pairs(key, [(o, s) for o in OPTIMIZERS for s in SCHEDULES],
                          lambda o, s: (o, s, "no task"), lambda o, s: (o, s, "task")),
                25: pairs(key, [(s,) for s in SCHEDULES], lambda s: ("AdamW", s, "task"), lambda s: ("SGD", s, "task")),
                26: pairs(key, [(o,) for o in OPTIMIZERS], lambda o: (o, "cosine", "task"), lambda o: (o, "constant", "task"))}
    every, common = intervals("r90"), "r90_common" in per_cell[here[0]] and intervals("r90_common")
    out = {}
    for n, what in ((24, "no task − task"), (25, "AdamW − SGD"), (26, "cosine − constant")):
        (c, s, p), ivs = CLAIMS[n], every[n]
        out[n] = Row(claim=c, section=s, paper=p, measured=measured, null=null,
                     interval="; ".join(f"{', '.join(k)}: {what} {iv.text()}" for k, iv in ivs.items()),
                     verdict=RULES[n](ivs) if not missing else INCONCLUSIVE,
                     value={", ".join(k): iv.est for k, iv in ivs.items()})
        if common:                    # the verdict must not hang on the snapshot count (snapshot_count.count_rule)
            out[n] = counted(out[n], RULES[n](common[n]) if not missing else INCONCLUSIVE,
                             per_cell[here[0]]["n_common"])
    return out


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


def measurements(ctx) -> list:
    runs = [r for rs in cell_runs(ctx).values() for r in rs] if ctx.preset.factorial_seeds else []
    return [(f, (r["dir"],)) for r in runs for f in (cached_geometry, cached_nulls)]


def report(ctx):
    if not ctx.preset.factorial_seeds:
        return rows({}, "not measured by this preset (its factorial_seeds is 0)"), []
    per_cell = {c: summarize_cell(ctx, runs) for c, runs in cell_runs(ctx).items()}
    return rows(per_cell), [fig_factorial(per_cell, cell_caption(ctx.preset), ctx.path("fig_factorial.png"))]


EXPERIMENT = Experiment("factorial", "control, optimizer × schedule × task: claims 24–26", RULES, report,
                        variants=variants, measurements=measurements, weight=10, some_variants=True)
