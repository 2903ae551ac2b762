"""The recipe screen's outcome table (trajectories/recipes.py): what the README records."""
import json

import pytest
from hypothesis import given, settings, strategies as st

from minimanifold.trajectories.recipes import GRID, outcome_table, recipe_specs


def _run(tmp_path, seed, curve_m4, final4):
    d = tmp_path / f"seed_{seed}"
    d.mkdir()
    hist = [{"step": 100 * i, "acc": {"1": 1.0, "2": 1.0, "3": 1.0, "4": a}} for i, a in enumerate(curve_m4)]
    (d / "metrics.json").write_text(json.dumps(hist))
    return {"dir": str(d), "summary": {"final_acc": {"4": final4}}}


def test_outcome_table_counts_only_runs_that_settle(tmp_path):
    runs = [_run(tmp_path, 0, [0.1, 0.96, 0.97], 0.97),      # learned from step 100
            _run(tmp_path, 1, [0.1, 0.96, 0.90], 0.90),      # touched 0.95, fell back: never
            _run(tmp_path, 2, [0.1, 0.5, 0.99], 0.99)]       # learned from step 200
    row = outcome_table({"L3-cos0.15-30k": runs}).splitlines()[-1]
    assert "| 2/3 [0.09, 0.99]: below 90% |" in row and "100 / never / 200" in row and "0.97 / 0.90 / 0.99" in row
    assert "30000 steps" in row and "lr 0.15 cosine:1000" in row


def test_every_recipe_is_plain_sgd_in_the_papers_setting():
    for name in GRID:
        (spec,) = recipe_specs(name, [0])
        assert spec.train.optimizer == "sgd"          # weight_decay is AdamW-only (optim.step)
        assert (spec.task.T, spec.task.C, spec.model.d_model, spec.model.n_heads) == (32, 8, 128, 4)


def test_seed_list_trains_exactly_the_seeds_named(monkeypatch, tmp_path, capsys):
    """--seed-list 3 7 hands the sweep seeds 3 and 7 of each recipe named, nothing else;
    without it, --first-seed/--seeds give a contiguous range; a negative seed is refused."""
    from minimanifold.trajectories import recipes as R
    seen = []

    def fake_sweep(specs, runs_dir, jobs=1, log=None):
        seen.append([(s.name, s.train.seed) for s in specs])
        return []
    monkeypatch.setattr(R, "sweep", fake_sweep)
    assert R.main(["--only", "L3-cos0.15-30k", "L4-cos0.15-30k", "--seed-list", "3", "7",
                   "--runs-dir", str(tmp_path)]) == 0
    assert seen[-1] == [("recipe-L3-cos0.15-30k", 3), ("recipe-L4-cos0.15-30k", 3),
                        ("recipe-L3-cos0.15-30k", 7), ("recipe-L4-cos0.15-30k", 7)]
    assert R.main(["--only", "L3-cos0.15-30k", "--first-seed", "2", "--seeds", "3", "--runs-dir", str(tmp_path)]) == 0
    assert seen[-1] == [("recipe-L3-cos0.15-30k", s) for s in (2, 3, 4)]
    n = len(seen)
    assert R.main(["--only", "L3-cos0.15-30k", "--seed-list", "-1", "--runs-dir", str(tmp_path)]) == 2
    assert len(seen) == n and "seeds must be non-negative" in capsys.readouterr().err


def test_clopper_pearson_known_answers():
    """Exact 95% intervals of a binomial share (published tables / scipy.stats.binomtest)."""
    from minimanifold.trajectories.recipes import clopper_pearson
    for (k, n), (lo, hi) in {(9, 10): (0.5550, 0.9975), (8, 10): (0.4439, 0.9748), (0, 10): (0.0, 0.3085),
                             (10, 10): (0.6915, 1.0), (1, 2): (0.0126, 0.9874), (5, 10): (0.1871, 0.8129)}.items():
        got = clopper_pearson(k, n)
        assert abs(got[0] - lo) < 1e-4 and abs(got[1] - hi) < 1e-4, (k, n, got)
    with pytest.raises(ValueError, match="0 <= k <= n"):
        clopper_pearson(11, 10)


@settings(deadline=None, max_examples=60)
@given(n=st.integers(1, 40), data=st.data())
def test_clopper_pearson_is_a_range_around_the_share(n, data):
    """lo <= k/n <= hi inside [0, 1]; one more success moves both ends up; a wider level
    gives a wider interval."""
    from minimanifold.trajectories.recipes import clopper_pearson
    k = data.draw(st.integers(0, n))
    lo, hi = clopper_pearson(k, n)
    assert 0.0 <= lo <= k / n <= hi <= 1.0 and lo < hi
    if k < n:
        lo2, hi2 = clopper_pearson(k + 1, n)
        assert lo2 > lo and hi2 > hi
    lo99, hi99 = clopper_pearson(k, n, level=0.99)
    assert lo99 <= lo and hi99 >= hi


def test_share_says_whether_the_goal_is_met_by_count_and_by_interval():
    from minimanifold.trajectories.recipes import share
    assert share(9, 10).endswith(": meets 90%")                         # the count meets it; the interval straddles
    assert share(8, 10).endswith(": below 90%")
    assert share(5, 10).endswith("below 90%, interval below 90%")
    assert share(100, 100).endswith("meets 90%, interval above 90%")    # [0.96, 1.00]
