"""Step-size schedules for plain SGD (issue 9): known values of eta_t, the update really
uses eta_t, commutators use the eta in force at their step, and existing runs keep their
cache keys and configs."""
import dataclasses
import json
import math

import numpy as np
import pytest

from minimanifold.model.optim import lr_at, parse_lr_schedule
from minimanifold.trajectories.presets import QUICK, SMOKE
from minimanifold.trajectories.sweep import run_key
from minimanifold.trajectories.rundir import load_trajectory
from minimanifold.trajectories.training_loop import TrainConfig, train


def test_known_values():
    assert [lr_at("constant", 0.3, t, 10) for t in (0, 5, 9)] == [0.3, 0.3, 0.3]
    assert [lr_at("warmup:4", 1.0, t, 10) for t in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    cos = [lr_at("cosine:2", 1.0, t, 10) for t in range(10)]
    assert cos[:3] == [0.5, 1.0, 1.0]                        # warmup, then the cosine starts at lr
    assert cos[6] == pytest.approx(0.5)                      # half-way through the decay
    assert cos[9] == pytest.approx(0.5 * (1 + math.cos(math.pi * 7 / 8)))
    assert all(a > b for a, b in zip(cos[2:], cos[3:])) and cos[-1] > 0


@pytest.mark.parametrize("bad", ["", "linear", "warmup", "cosine:-3", "cosine:x", "constant:5"])
def test_bad_schedule_names_the_field(bad):
    with pytest.raises(ValueError, match="lr_schedule"):
        parse_lr_schedule(bad)
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule=bad)


def test_later_options_keep_the_cache_key_of_earlier_runs():
    """add-3c167bf8b9 is the quick preset's run directory from before lr_schedule and
    holdout existed."""
    spec = QUICK.specs(seeds=[0])[0]
    assert run_key(spec) == "add-3c167bf8b9"
    assert run_key(QUICK.specs(seeds=[0], lr_schedule="cosine:100")[0]) != "add-3c167bf8b9"
    held = dataclasses.replace(spec, task=dataclasses.replace(spec.task, holdout=0.2))
    assert run_key(held) != "add-3c167bf8b9"


def test_an_earlier_run_directory_without_the_option_still_loads(tmp_path):
    spec = SMOKE.specs(seeds=[0], steps=4, ckpt_every=2)[0]
    d = tmp_path / "r"
    first = train(d, spec.model, spec.task, spec.train, log=lambda s: None)
    cfg = json.loads((d / "config.json").read_text())
    del cfg["train"]["lr_schedule"]                          # as written before the option existed
    (d / "config.json").write_text(json.dumps(cfg))
    assert train(d, spec.model, spec.task, spec.train, log=lambda s: None) == first
    with pytest.raises(ValueError, match="lr_schedule"):
        train(d, spec.model, spec.task, dataclasses.replace(spec.train, lr_schedule="warmup:2"), log=lambda s: None)


def test_the_update_uses_eta_t(tmp_path):
    """One step of warmup:4 at lr 0.5 is one step of constant lr 0.125, to the bit."""
    a = SMOKE.specs(seeds=[0], steps=1, ckpt_every=1, lr=0.5, lr_schedule="warmup:4")[0]
    b = SMOKE.specs(seeds=[0], steps=1, ckpt_every=1, lr=0.125)[0]
    for spec, name in ((a, "a"), (b, "b")):
        train(tmp_path / name, spec.model, spec.task, spec.train, log=lambda s: None)
    ta, tb = load_trajectory(tmp_path / "a"), load_trajectory(tmp_path / "b")
    for k in ta:
        np.testing.assert_array_equal(ta[k], tb[k])
    c = SMOKE.specs(seeds=[0], steps=1, ckpt_every=1, lr=0.5)[0]
    train(tmp_path / "c", c.model, c.task, c.train, log=lambda s: None)
    assert not np.array_equal(load_trajectory(tmp_path / "c")["embed.W_E"], ta["embed.W_E"])


def test_commutators_use_the_eta_of_their_step(tmp_path):
    from minimanifold.experiments.commutators.measure import measure
    from minimanifold.files import read_npz
    spec = SMOKE.specs(seeds=[0], steps=40, ckpt_every=10, lr=0.2, lr_schedule="cosine:10")[0]
    d = tmp_path / "r"
    train(d, spec.model, spec.task, spec.train, log=lambda s: None)
    data = read_npz(measure(d, n_points=5, n_mixed=1, batch_size=8))
    expected = [lr_at("cosine:10", 0.2, min(int(s), 39), 40) for s in data["steps"]]    # step 40: the last update's
    np.testing.assert_array_equal(data["lr"], expected)
    assert len(set(expected)) == len(expected)               # the schedule really varied


def test_per_stage_schedule_restarts_in_every_curriculum_stage():
    starts = [0, 10, 20]
    for t in range(30):
        local, length = t - starts[t // 10], 10
        assert lr_at("cosine:2/stage", 1.0, t, 30, starts) == lr_at("cosine:2", 1.0, local, length)
        assert lr_at("cosine:2/stage", 1.0, t, 30) == lr_at("cosine:2", 1.0, t, 30)   # no stages: plain
    assert lr_at("warmup:4/stage", 0.8, 12, 30, [0, 10, 25]) == pytest.approx(0.6)      # 3rd step of stage 2
    assert lr_at("cosine:2/stage", 1.0, 26, 30, [0, 10, 25]) == lr_at("cosine:2", 1.0, 1, 5)  # last stage to total
    assert parse_lr_schedule("cosine:1000/stage") == ("cosine", 1000)
    for bad in ("constant/stage", "cosine/stage", "cosine:3/stages"):
        with pytest.raises(ValueError, match="lr_schedule"):
            TrainConfig(lr_schedule=bad)


def test_training_uses_the_per_stage_step_size(tmp_path, monkeypatch):
    from minimanifold.model import optim
    seen = []
    real = optim.step
    monkeypatch.setattr(optim, "step", lambda name, p, g, st, lr, wd: (seen.append(lr), real(name, p, g, st, lr, wd)))
    tr = dataclasses.replace(SMOKE.train, steps=6, ckpt_every=3, lr=0.4, lr_schedule="warmup:4/stage",
                             schedule="curriculum:1x3,2x3")
    train(tmp_path / "r", SMOKE.model, SMOKE.task, tr, log=lambda s: None)
    assert seen == pytest.approx([0.1, 0.2, 0.3, 0.1, 0.2, 0.3])
    from minimanifold.experiments.commutators.measure import measure       # commutators use it too
    from minimanifold.files import read_npz
    lr = read_npz(measure(str(tmp_path / "r"), n_points=3, n_mixed=1))["lr"]
    assert list(lr) == pytest.approx([0.1, 0.1, 0.3])                     # steps 0, 3 and the last update's


def test_curriculum_variants_restart_a_decaying_schedule_per_stage():
    """The paper preset's cosine restarts in each curriculum stage (its last stage would
    otherwise train m=4 at a step size decayed towards 0); constant presets keep their runs."""
    from minimanifold.experiments import architecture as A, compositional as C
    from minimanifold.trajectories.presets import PAPER
    cur = A.variants(PAPER)["curriculum"][0].train
    assert cur.lr_schedule == "cosine:1000/stage" and cur.schedule == "curriculum:1x7500,2x7500,3x7500,4x7500"
    assert C.variants(PAPER)["held-out-curriculum"][0].train.lr_schedule == "cosine:1000/stage"
    with_comparisons = dataclasses.replace(QUICK, comparisons=True)      # the quick preset trains none now
    assert A.variants(with_comparisons)["curriculum"][0].train.lr_schedule == "constant"
    assert run_key(A.variants(with_comparisons)["curriculum"][0]) == "curriculum-4e70d3d043"   # cached runs stay valid
    assert A.curriculum_train(cur).lr_schedule == "cosine:1000/stage"                 # not doubled
