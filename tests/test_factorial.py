"""The optimizer x schedule x task factorial (issue 24), claims 24–26: which runs each cell
trains, the rules at their boundaries, and rows built from known per-cell values."""
import dataclasses

import numpy as np
import pytest

from minimanifold.analysis.intervals import Interval
from minimanifold.experiments import factorial as fac
from minimanifold.experiments.factorial import plots
from minimanifold.experiments.groups import planned_specs
from minimanifold.trajectories.presets import AUTHORS, PAPER, QUICK, SMOKE
from minimanifold.trajectories.sweep import run_key



def iv(lo, hi):
    return Interval((lo + hi) / 2, lo, hi, 5, "t")


def test_the_cells_of_the_paper_preset():
    groups = fac.variants(PAPER)
    assert len(fac.CELLS) == 8 and fac.main_cell(PAPER) == ("SGD", "cosine", "task")
    assert sorted(groups) == sorted(fac.group_name(c) for c in fac.CELLS if c != ("SGD", "cosine", "task"))
    for cell in fac.CELLS:
        if cell == fac.main_cell(PAPER):
            continue
        specs = groups[fac.group_name(cell)]
        assert [s.train.seed for s in specs] == list(range(PAPER.factorial_seeds)) and PAPER.factorial_seeds >= 5
        tr, task = specs[0].train, specs[0].task
        assert task == dataclasses.replace(PAPER.task, labels="random" if cell[2] == "no task" else "task")
        assert specs[0].model == PAPER.model and tr.steps == PAPER.train.steps and tr.batch_size == PAPER.train.batch_size
        assert tr.schedule == PAPER.train.schedule                     # the same m-schedule: the same inputs
        if cell[0] == "SGD":
            assert (tr.optimizer, tr.lr) == ("sgd", 0.15)
        else:
            assert (tr.optimizer, tr.lr, tr.weight_decay) == ("adamw", 3e-4, 0.01)
        assert tr.lr_schedule == ("constant" if cell[1] == "constant" else "cosine:1000")


def test_the_main_cell_is_the_main_runs_and_the_adamw_arm_is_reused():
    """A cell equal to the main runs' configuration trains nothing; AdamW + constant + task is
    the optimizer control's AdamW arm, trained once (the sweep reuses a finished run of the
    same configuration under another name)."""
    main = PAPER.specs()[0]
    same = fac.cell_train(PAPER, "SGD", "cosine")
    assert same == main.train
    arm = planned_specs(PAPER)["optimizer-adamw"][0]
    cell = fac.variants(PAPER)["factorial-adamw-constant-task"][0]
    assert run_key(arm).split("-")[-1] == run_key(cell).split("-")[-1]


def test_a_constant_step_preset_gets_a_cosine_with_the_papers_warmup_share():
    assert fac.main_cell(QUICK) == ("SGD", "constant", "task")
    assert fac.cell_train(QUICK, "SGD", "cosine").lr_schedule == f"cosine:{QUICK.train.steps // 30}"
    assert fac.main_cell(AUTHORS) == ("AdamW", "constant", "task")
    assert fac.cell_train(AUTHORS, "AdamW", "constant") == AUTHORS.train            # its own AdamW
    sgd = fac.cell_train(AUTHORS, "SGD", "constant")
    assert (sgd.optimizer, sgd.lr, sgd.weight_decay) == ("sgd", 0.1, 0.0)


def test_presets_without_the_factorial_train_nothing_for_it():
    assert fac.variants(QUICK) == {} and fac.variants(AUTHORS) == {}
    assert not any(g.startswith("factorial") for g in planned_specs(QUICK))
    assert len([g for g in planned_specs(SMOKE) if g.startswith("factorial")]) == 7


@pytest.mark.parametrize("gaps, want", [
    ({k: iv(1.0, 3.0) for k in range(4)}, "supported"),                   # every pair clears 1
    ({**{k: iv(1.2, 3.0) for k in range(3)}, 3: iv(0.99, 3.0)}, "inconclusive"),   # one straddles 1
    ({**{k: iv(1.2, 3.0) for k in range(3)}, 3: iv(-0.5, 0.99)}, "not supported"),  # one wholly below 1
    ({**{k: iv(1.2, 3.0) for k in range(3)}, 3: iv(0.5, 1.0)}, "inconclusive"),     # one touching 1 from below
    ({k: iv(1.2, 3.0) for k in range(3)}, "inconclusive"),                # a cell missing
])
def test_task_rule_at_its_margin(gaps, want):
    assert fac.task_rule(gaps) == want


@pytest.mark.parametrize("diffs, want", [
    ({0: iv(-0.99, 0.99), 1: iv(-0.5, 0.5)}, "supported"),
    ({0: iv(-1.0, 0.5), 1: iv(-0.5, 0.5)}, "inconclusive"),               # touches -1: not within
    ({0: iv(1.0, 2.0), 1: iv(-0.5, 0.5)}, "not supported"),               # wholly at or above 1
    ({0: iv(-3.0, -1.0), 1: iv(-0.5, 0.5)}, "not supported"),             # wholly at or below -1
    ({0: iv(0.5, 1.5), 1: iv(-0.5, 0.5)}, "inconclusive"),                # straddles 1
    ({0: iv(-0.5, 0.5)}, "inconclusive"),                                 # a pair missing
])
def test_unchanged_rule_at_its_margins(diffs, want):
    assert fac.unchanged_rule(diffs) == want


def _cells(r90_of):
    return {c: {"r90": r90_of(c), "walk": [6.0] * 5, "exact": [6.0] * 5, "shuffled": [4.0] * 5} for c in fac.CELLS}


def test_rows_pair_the_cells_that_differ_in_one_factor():
    """Known per-cell values: no-task runs 2 dimensions higher, AdamW 0.2 higher, cosine 0.1
    lower, so claim 24 is supported, 25 and 26 too, and each interval's estimate is exactly
    that difference."""
    base = np.array([2.0, 2.1, 1.9, 2.05, 1.95])

    def r90(c):
        return list(base + 2.0 * (c[2] == "no task") + 0.2 * (c[0] == "AdamW") - 0.1 * (c[1] == "cosine"))
    rows = fac.rows(_cells(r90))
    assert [rows[n].verdict for n in (24, 25, 26)] == ["supported"] * 3
    assert rows[24].value == pytest.approx({f"{o}, {s}": 2.0 for o in fac.OPTIMIZERS for s in fac.SCHEDULES})
    assert rows[25].value == pytest.approx({"constant": 0.2, "cosine": 0.2})
    assert rows[26].value == pytest.approx({"SGD": -0.1, "AdamW": -0.1})
    assert "SGD, cosine: no task − task [" in rows[24].interval and "AdamW − SGD" in rows[25].interval


def test_rows_are_decided_again_at_the_common_snapshot_count():
    """Claims 24–26 from r90 at every checkpoint and at 40 evenly spaced snapshots. No-task
    runs 2 dimensions higher at both counts: supported, and the row says the count agrees.
    At 40 snapshots only 0.5 higher: claim 24 would be not supported there, so it reads
    inconclusive with both verdicts; 25 and 26 (unchanged at both counts) stay supported.
    The common interval is of the common r90 (a per-cell key mix-up gives other verdicts)."""
    base = np.array([2.0, 2.1, 1.9, 2.05, 1.95])

    def cells(common_gap):
        out = _cells(lambda c: list(base + 2.0 * (c[2] == "no task") + 0.2 * (c[0] == "AdamW")))
        for c, v in out.items():
            v["r90_common"] = list(base + 1 + common_gap * (c[2] == "no task") + 0.2 * (c[0] == "AdamW"))
            v["n_common"] = 40
        return out
    same = fac.rows(cells(2.0))
    assert [same[n].verdict for n in (24, 25, 26)] == ["supported"] * 3
    assert all(same[n].interval.endswith("; from 40 evenly spaced snapshots: the same verdict") for n in (24, 25, 26))
    flips = fac.rows(cells(0.5))
    assert [flips[n].verdict for n in (24, 25, 26)] == ["inconclusive", "supported", "supported"]
    assert flips[24].interval.endswith("; from 40 evenly spaced snapshots: not supported (against supported from "
                                       "every checkpoint): the verdict depends on the snapshot count")
    assert flips[24].value == pytest.approx({f"{o}, {s}": 2.0 for o in fac.OPTIMIZERS for s in fac.SCHEDULES})


def test_rows_say_no_task_runs_as_low_is_not_the_tasks():
    rows = fac.rows(_cells(lambda c: [2.0, 2.1, 1.9, 2.05, 1.95]))
    assert rows[24].verdict == "not supported"


def test_rows_with_a_missing_cell_or_none_measured_decide_nothing():
    """A no-task cell missing: claims 25 and 26 have every pair they compare (they would be
    supported) yet read inconclusive, the missing cell named; every present cell's nulls
    (a no-task run's too: its r90 means something only beside them)."""
    base = np.array([2.0, 2.1, 1.9, 2.05, 1.95])
    cells = _cells(lambda c: list(base + 2.0 * (c[2] == "no task") + 0.2 * (c[0] == "AdamW")))
    for c in fac.CELLS:
        cells[c]["walk"] = [6.0 + (c[2] == "no task")] * 5
    del cells[("AdamW", "cosine", "no task")]
    rows = fac.rows(cells)
    assert all(r.verdict == "inconclusive" and "AdamW, cosine, no task" in r.measured for r in rows.values())
    assert len(rows[25].value) == 2 and len(rows[26].value) == 2
    assert "SGD, cosine, task: walk 6.00" in rows[24].null and "SGD, cosine, no task: walk 7.00" in rows[24].null
    assert "AdamW, cosine, no task" not in rows[24].null                 # the missing cell has none
    none = fac.rows({}, "not measured by this preset (its factorial_seeds is 0)")
    assert sorted(none) == [24, 25, 26] and all(r.measured.startswith("not measured") for r in none.values())


def test_a_partial_factorial_gives_the_pairs_it_has_and_decides_nothing():
    """The SGD half finished (a partial sitting): task against no task under both schedules
    and cosine against constant under SGD, each with its known difference; no AdamW pair;
    every row inconclusive (even a gap that would refute claim 24), naming the AdamW cells."""
    base = np.array([2.0, 2.1, 1.9, 2.05, 1.95])
    cells = _cells(lambda c: list(base + 0.5 * (c[2] == "no task") - 0.3 * (c[1] == "cosine")))
    cells = {c: v for c, v in cells.items() if c[0] == "SGD"}
    rows = fac.rows(cells)
    assert rows[24].value == pytest.approx({"SGD, constant": 0.5, "SGD, cosine": 0.5})
    assert rows[25].value == {} and rows[25].interval == ""
    assert rows[26].value == pytest.approx({"SGD": -0.3})
    assert "SGD, constant: no task − task [" in rows[24].interval and "AdamW" not in rows[24].interval
    assert all(r.verdict == "inconclusive" and "no finished run yet" in r.measured
               and "AdamW, cosine, task" in r.measured and "SGD, cosine, task 1." in r.measured for r in rows.values())
    assert fac.EXPERIMENT.some_variants


def test_a_partial_ledger_reports_the_factorial_once_some_cell_has_finished():
    """pipeline.not_measured: an experiment with ``some_variants`` is left out of a partial
    ledger only while none of its groups has a finished run; others while any lacks one."""
    from minimanifold.experiments.context import Context
    from minimanifold.experiments.optimizer import EXPERIMENT as OPT
    from minimanifold.pipeline import not_measured
    groups = list(fac.variants(PAPER))
    ctx = Context(PAPER, [], {}, "", "")
    assert "runs not trained yet" in not_measured(ctx, frozenset())[fac.EXPERIMENT]
    ctx = Context(PAPER, [], {groups[0]: [{"dir": "x"}]}, "", "")
    assert fac.EXPERIMENT not in not_measured(ctx, frozenset())
    assert OPT in not_measured(ctx, frozenset())                   # its groups are not there: still left out


def test_the_factorial_figure_names_each_kind_of_bar_once(tmp_path, monkeypatch):
    """Two task cells first (a partial set) drew "task" twice in the legend and no no-task
    entry; each legend entry appears once, and an absent cell is said in the title."""
    drawn = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: drawn.append(fig) or str(path))
    cells = {c: {**v, "pr": [1.5] * 5, "walk_pr": [2.0] * 5, "exact_pr": [2.0] * 5, "shuffled_pr": [1.9] * 5}
             for c, v in _cells(lambda c: [2.0] * 5).items()}
    for chosen in ([c for c in fac.CELLS if c[2] == "task"][:2] + [("AdamW", "cosine", "no task")], fac.CELLS):
        fac.fig_factorial({c: cells[c] for c in chosen}, "caption", tmp_path / "f.png")
        fig = drawn.pop()
        texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        assert sorted(texts) == sorted(set(texts)) and {"task", "no task (random labels)"} <= set(texts)
        assert ("cells not finished are absent" in fig._suptitle.get_text()) == (len(chosen) < 8)
        plots.plt.close(fig)


def test_the_factorial_figure_caption_describes_every_cell_not_the_main_runs(monkeypatch):
    """The pipeline's caption ("paper preset, 10 seeds: ... sgd lr=0.15") described the main
    runs, one cell of eight, above cells of 3 AdamW seeds; the figure's caption names what
    the cells share and each optimizer's step size, and claims no seed count."""
    from minimanifold.experiments.context import Context
    cap = fac.cell_caption(PAPER)
    assert "seeds" not in cap and "L=3" in cap and "30000 steps" in cap and "batch 64" in cap
    assert "SGD lr 0.15" in cap and "AdamW lr 0.0003 (weight decay 0.01)" in cap
    assert cap.endswith("constant, or warmup 1000 steps, then cosine decay to 0")
    assert "SGD lr 0.1," in fac.cell_caption(dataclasses.replace(QUICK, factorial_seeds=3))
    # an AdamW preset's SGD cells run at the quick preset's step size, without weight decay
    assert "SGD lr 0.1, AdamW lr 0.0003 (weight decay 0.01); constant, or warmup 666 steps" in fac.cell_caption(AUTHORS)
    got = []
    monkeypatch.setattr(fac, "summarize_cell", lambda ctx, runs: {})
    monkeypatch.setattr(fac, "rows", lambda per_cell, *a: {})
    monkeypatch.setattr(fac, "fig_factorial", lambda per_cell, caption, path: got.append(caption) or path)
    monkeypatch.setattr(fac, "fig_factorial_matrices", lambda per_cell, caption, path: got.append(caption) or path)
    fac.report(Context(PAPER, [{"dir": "x"}], {}, "", "paper preset, 10 seeds: main runs"))
    assert got == [cap, cap]


def test_a_cell_summary_reads_each_runs_common_count_r90():
    """``summarize_cell``: per seed the mean over attention matrices of r90 from every
    checkpoint and from the common count (known per-matrix values), and the common count."""
    from minimanifold.trajectories.rundir import ALL, matrix_names

    def geom(seed):
        g = {k: {"r90": 3 + seed, "participation_ratio": 2.0, "null": {"matched": {"mean": 6.0, "pr_mean": 2.5}},
                 "common": {"r90": 1 + seed + (i % 2), "n": 40}} for i, k in enumerate(matrix_names(2))}
        g[ALL] = {"common": {"n": 40}}
        return g
    nulls = {k: {"exact": {"r90": 6, "pr": 2.5}, "shuffled": {"mean": 4.0, "pr_mean": 2.0}} for k in matrix_names(2)}

    class Ctx:
        n_layers = 2

        def per_run(self, measure, runs):
            return [geom(r["seed"]) if measure is fac.cached_geometry else nulls for r in runs]
    out = fac.summarize_cell(Ctx(), [{"seed": 0}, {"seed": 1}])
    assert out["r90"] == [3.0, 4.0] and out["r90_common"] == [1.5, 2.5] and out["n_common"] == 40
    assert out["matrices"] == matrix_names(2) and out["per_matrix"]["r90"].shape == (2, 8)
    assert out["per_matrix"]["r90_common"].tolist() == [[1, 2] * 4, [2, 3] * 4]       # seed by matrix, in order
    assert out["per_matrix"]["walk"].tolist() == [[6.0] * 8] * 2 and out["per_matrix"]["exact_pr"][1, 7] == 2.5


def _per_matrix(cells, gaps):
    """Give each cell per-matrix r90 (3 seeds x len(gaps) matrices): task cells 2.0
    everywhere, no-task cells 2.0 + gaps (one list for every optimizer and schedule)."""
    for c, v in cells.items():
        v["per_matrix"] = {"r90": np.tile(2.0 + np.array(gaps) * (c[2] == "no task"), (3, 1)),
                           "walk": np.full((3, len(gaps)), 5.0), "pr": np.full((3, len(gaps)), 1.5),
                           "walk_pr": np.full((3, len(gaps)), 2.5)}
        v["matrices"] = [f"blocks.{i // 4}.attn.W_{'QKVO'[i % 4]}" for i in range(len(gaps))]
    return cells


def test_the_row_counts_the_matrices_whose_gap_clears_the_margin():
    """Claim 24's rule reads means over matrices; the row adds in how many matrices the
    no-task cell lies at least 1 above the task cell (1.0 counts, 0.99 does not) and at least
    1 below (-1.0 counts), claim 24 only, and nothing without per-matrix summaries (the
    rule's verdict is unchanged)."""
    cells = _per_matrix(_cells(lambda c: [2.0, 2.1, 1.9]), [1.0, 0.99, 3.0, -1.0])     # -1.0 counts as below
    rows = fac.rows(cells)
    assert rows[24].interval.endswith(
        "not in the rule, no task − task per attention matrix (means over seeds), SGD, constant: ≥ 1 in 2, ≤ −1 in 1 "
        "of 4; SGD, cosine: ≥ 1 in 2, ≤ −1 in 1 of 4; AdamW, constant: ≥ 1 in 2, ≤ −1 in 1 of 4; AdamW, cosine: "
        "≥ 1 in 2, ≤ −1 in 1 of 4 (fig_factorial_matrices)")
    assert "per attention matrix" not in rows[25].interval + rows[26].interval
    assert rows[24].verdict == fac.rows(_cells(lambda c: [2.0, 2.1, 1.9]))[24].verdict
    spread = _per_matrix(_cells(lambda c: [2.0, 2.1, 1.9]), [0.9, 0.0, 0.0, 0.0])      # means over seeds, not the top
    spread[("SGD", "constant", "no task")]["per_matrix"]["r90"][:, 0] = [2.9, 3.2, 2.6]  # mean 2.9: 0.9 above
    assert "SGD, constant: ≥ 1 in 0, ≤ −1 in 0 of 4" in fac.rows(spread)[24].interval
    # means of integers land on the margin up to rounding: 1.8 − 2.8 is −0.9999999999999998
    exact = _per_matrix(_cells(lambda c: [2.0, 2.1, 1.9]), [0.0])
    exact[("SGD", "constant", "no task")]["per_matrix"]["r90"] = np.array([[2.0], [2.0], [2.0], [2.0], [1.0]])
    exact[("SGD", "constant", "task")]["per_matrix"]["r90"] = np.array([[3.0], [3.0], [3.0], [3.0], [2.0]])
    exact[("AdamW", "constant", "no task")]["per_matrix"]["r90"] = np.array([[3.0], [3.0], [3.0], [3.0], [2.0]])
    exact[("AdamW", "constant", "task")]["per_matrix"]["r90"] = np.array([[2.0], [2.0], [2.0], [2.0], [1.0]])
    text = fac.rows(exact)[24].interval
    assert "SGD, constant: ≥ 1 in 0, ≤ −1 in 1 of 1" in text and "AdamW, constant: ≥ 1 in 1, ≤ −1 in 0 of 1" in text
    del cells[("SGD", "cosine", "no task")]["per_matrix"]
    assert "SGD, cosine: ≥" not in fac.rows(cells)[24].interval and "SGD, constant: ≥" in fac.rows(cells)[24].interval
    assert "per attention matrix" not in fac.rows(_cells(lambda c: [2.0, 2.1, 1.9]))[24].interval


def test_the_per_matrix_figure_shows_each_cells_means_over_seeds(tmp_path, monkeypatch):
    """One row per cell present, one column per matrix; each square's number is the mean over
    seeds (not one seed's), the matched walk's under it; an absent cell is said in the title."""
    drawn = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: drawn.append(fig) or str(path))
    cells = _per_matrix(_cells(lambda c: [2.0, 2.1, 1.9]), [1.0, 0.5, 3.0, 2.0])
    cells[("SGD", "constant", "task")]["per_matrix"]["r90"] = np.array([[1.0, 2, 3, 4], [3.0, 2, 3, 4], [2.0, 2, 3, 4]])
    cells[("SGD", "cosine", "no task")]["per_matrix"]["pr"] = np.full((3, 4), 3.0)    # a gap of 1.5, not r90's
    del cells[("AdamW", "cosine", "no task")]
    plots.fig_factorial_matrices(cells, "caption", tmp_path / "f.png")
    fig = drawn.pop()
    ax = fig.axes[0]
    assert ax.images[0].get_array().shape == (7, 4)
    assert [t.get_text() for t in ax.texts[:4]] == ["2.0\n(5.0)", "2.0\n(5.0)", "3.0\n(5.0)", "4.0\n(5.0)"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["L0 W_Q", "L0 W_K", "L0 W_V", "L0 W_O"]
    assert ax.get_yticklabels()[0].get_text() == "SGD, constant, task (3 seeds)"
    assert "cells not finished are absent" in fig._suptitle.get_text()
    assert fig.axes[1].texts[0].get_text() == "1.5\n(2.5)"
    gap = fig.axes[2]                                                  # no task − task, r90: 3 pairs (one cell absent)
    assert gap.images[0].get_array().shape == (3, 4)
    assert [t.get_text() for t in gap.texts[:4]] == ["+1.0", "+0.5", "+2.0", "+0.0"]   # SGD, constant
    assert [t.get_fontweight() for t in gap.texts[:4]] == ["bold", "normal", "bold", "normal"]
    assert [t.get_text() for t in gap.get_yticklabels()] == ["SGD, constant", "SGD, cosine", "AdamW, constant"]
    assert [t.get_text() for t in fig.axes[3].texts[:4]] == ["+0.0"] * 4         # participation ratios equal
    assert [(t.get_text(), t.get_fontweight()) for t in fig.axes[3].texts[4:6]] == [("+1.5", "normal")] * 2
    assert [t.get_color() for t in gap.texts[:4]] == ["k", "k", "w", "k"]          # white on the darkest
    plots.plt.close(fig)
    plots.fig_factorial_matrices(_per_matrix(_cells(lambda c: [2.0, 2.1, 1.9]), [1.0]), "caption", tmp_path / "f.png")
    fig = drawn.pop()
    assert "absent" not in fig._suptitle.get_text() and fig.axes[0].images[0].get_array().shape == (8, 1)
    plots.plt.close(fig)
