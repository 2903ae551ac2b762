"""The quick preset is a first look that decides what it measures (issue 27 §1): every row
it prints rests on at least 3 seeds per group, or says plainly that the quick preset does
not measure it; what it leaves out (the comparison runs) reads "not measured"."""
import dataclasses
import json
import os

import matplotlib
import numpy as np

from minimanifold.analysis.intervals import MIN_SEEDS
from minimanifold.experiments import architecture, multiplication, restricted_training
from minimanifold.experiments.context import Context
from minimanifold.experiments.groups import planned_specs
from minimanifold.experiments.variants import NO_COMPARISONS
from minimanifold.trajectories.presets import PAPER, QUICK

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPARISON_GROUPS = {"curriculum", "mlp", "mul"}


def test_every_group_the_quick_preset_trains_has_enough_seeds_to_decide():
    assert QUICK.n_seeds >= MIN_SEEDS and QUICK.n_extra_seeds >= MIN_SEEDS      # main runs; SAE probing
    assert not QUICK.restrict_k or QUICK.restrict_seeds >= MIN_SEEDS
    for group, specs in planned_specs(QUICK).items():
        assert len(specs) >= MIN_SEEDS, group


def test_the_committed_quick_ledger_has_no_undetermined_row():
    """Known answer on the committed ledger: a row is either decided by an interval over at
    least 3 seeds per group, or not measured by this preset."""
    claims = json.load(open(os.path.join(ROOT, "figures", "quick", "claims.json")))["claims"]
    assert [c["n"] for c in claims] == [n for n in range(1, 28) if n != 21]          # 21 retired
    for c in claims:
        if c["measured"].startswith("not measured by this preset"):
            assert c["verdict"] == "inconclusive" and c["interval"] == "", c["n"]
        else:
            assert "undetermined" not in c["interval"] and c["interval"], (c["n"], c["interval"])
    assert [c["n"] for c in claims if c["measured"] == NO_COMPARISONS] == [15, 16, 17, 18]


def test_without_comparisons_nothing_trains_for_them_and_their_rows_say_so(tmp_path):
    assert not COMPARISON_GROUPS & set(planned_specs(QUICK))
    assert architecture.variants(QUICK) == {} and multiplication.variants(QUICK) == {}
    ctx = Context(QUICK, runs=[], variants={}, fig_dir=str(tmp_path), caption="quick preset, 5 seeds: x")
    assert architecture.measurements(ctx) == [] and multiplication.measurements(ctx) == []
    rows, figs = architecture.report(ctx)
    rows18, figs18 = multiplication.report(ctx)
    rows.update(rows18)
    assert sorted(rows) == [15, 16, 17, 18] and figs == figs18 == [] and os.listdir(tmp_path) == []
    for n, row in rows.items():
        assert row.verdict == "inconclusive" and row.measured == NO_COMPARISONS and row.value is None, n
    assert [rows[n].claim for n in (15, 17, 18)] == [
        "MLPs disrupt the low-dimensional collapse", "curriculum forgets small m; mixed training does not",
        "multiplication needs r90 of 4–6 against 3–4 for addition"]


def test_with_comparisons_each_is_trained_on_the_comparison_seeds():
    on = dataclasses.replace(QUICK, comparisons=True)
    groups = planned_specs(on)
    assert COMPARISON_GROUPS <= set(groups)
    assert all(len(groups[g]) == on.n_extra_seeds for g in COMPARISON_GROUPS)
    assert COMPARISON_GROUPS <= set(planned_specs(PAPER))


def test_captions_count_what_is_plotted(tmp_path):
    ctx = Context(QUICK, runs=[{"dir": "d"}] * 5, variants={}, fig_dir=str(tmp_path),
                  caption="quick preset, 5 seeds: x")
    assert ctx.extra_caption == "quick preset, 5 seeds (3 for SAEs; no comparisons): x"
    on = dataclasses.replace(ctx, preset=dataclasses.replace(QUICK, comparisons=True, n_extra_seeds=4))
    assert on.extra_caption == "quick preset, 5 seeds (4 per comparison and for SAEs): x"


def test_the_restricted_figure_says_how_many_seeds_each_curve_averages(tmp_path, monkeypatch):
    """A caption of the preset's 5 seeds above curves of 3 retrained seeds was a figure that
    claimed more seeds than it plotted: each curve's label counts its own."""
    matplotlib.use("Agg")
    seen = {}
    monkeypatch.setattr(restricted_training, "save_figure",
                        lambda fig, path: seen.setdefault("labels", [t.get_text() for t in
                                                                     fig.axes[0].get_legend().get_texts()]))
    run = {"steps": [0, 10, 20], "acc": {"1": [0.1, 0.5, 1.0], "2": [0.1, 0.4, 0.9]}}
    per_k = {4: {"execution": [run] * 3, "random": [run] * 2}}
    restricted_training.fig_restricted(per_k, [], "quick preset, 5 seeds", str(tmp_path / "f.png"))
    assert seen["labels"] == ["K=4, execution subspace (mean of 3 seeds)", "K=4, random subspace (mean of 2 seeds)"]
    np.testing.assert_allclose(restricted_training.mean_acc(run), [0.1, 0.45, 0.95])
