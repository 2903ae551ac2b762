"""The recipe screen's outcome table (trajectories/recipes.py): what the README records."""
import json

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
    assert "| 2/3 |" in row and "100 / never / 200" in row and "0.97 / 0.90 / 0.99" in row
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
