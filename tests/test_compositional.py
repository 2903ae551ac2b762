"""Held-out value combinations (TaskConfig.holdout) and claim 20 (experiments/compositional.py)."""
import hashlib

import numpy as np
import pytest

from minimanifold import TaskConfig, make_batch
from minimanifold.analysis.intervals import Interval
from minimanifold.experiments import compositional as CP
from minimanifold.trajectories.presets import PAPER, QUICK, SMOKE
from minimanifold.trajectories.task import heldout, probe_set


def test_holdout_zero_leaves_the_batch_stream_unchanged():
    """The checksum of a default batch, computed by the code before holdout existed."""
    b = make_batch(np.random.default_rng(0), TaskConfig(), [1, 2, 3, 4], 256)
    assert hashlib.sha256(b.tokens.tobytes() + b.targets.tobytes()).hexdigest()[:16] == "fbf7e9071a104e38"


def test_heldout_combinations_are_fixed_never_trained_on_and_about_the_share():
    task = TaskConfig(holdout=0.2)
    natural = make_batch(np.random.default_rng(1), task, [1, 2, 3, 4], 8000, include_heldout=True)
    h = heldout(natural.values, natural.m, task)
    assert not h[natural.m == 1].any()
    for m in (2, 3, 4):
        assert 0.1 < h[natural.m == m].mean() < 0.3
    # membership depends on the multiset only: permuting an example's values keeps it
    perm = natural.values.copy()
    perm[:, :2] = perm[:, 1::-1]
    two = natural.m >= 2
    assert (heldout(perm, natural.m, task)[two] == h[two]).all()
    assert set(np.unique(natural.targets[h])) == set(range(task.C))      # every answer still trained via others
    for seed in range(3):
        train = make_batch(np.random.default_rng(seed), task, [1, 2, 3, 4], 2000)
        assert not heldout(train.values, train.m, task).any()
        assert (train.targets == train.values.clip(0).sum(1) % task.C).all()
    assert not any(heldout(b.values, b.m, task).any() for b in probe_set(task, [2, 3], 500, 0).values())


@pytest.mark.parametrize("bad", [-0.1, 1.0, float("nan"), "0.2"])
def test_bad_holdout_names_the_field(bad):
    with pytest.raises(ValueError, match="holdout"):
        TaskConfig(holdout=bad)


def iv(lo, hi):
    return Interval((lo + hi) / 2, lo, hi, 5, "t")


@pytest.mark.parametrize("lo, hi, verdict", [(0.9, 1.0, "supported"), (0.9 - 1e-6, 1.0, "inconclusive"),
                                             (0.2, 0.9 - 1e-6, "not supported")])
def test_rule_boundaries(lo, hi, verdict):
    assert CP.compositional_rule(iv(lo, hi)) == verdict


def gen(acc_heldout, acc_seen=1.0, n=400, rank=3.5):
    return {"2": {"acc": 0.0, "acc_seen": acc_seen, "acc_heldout": acc_heldout, "n_heldout": n, "rank_heldout": rank},
            "1": {"acc": 1.0, "acc_seen": 1.0, "acc_heldout": None, "n_heldout": 0, "rank_heldout": None}}


def test_claim_reads_the_mixed_runs_heldout_accuracy():
    assert CP.claim_compositional([gen(0.95)] * 3, [gen(0.1)] * 3, C=8).verdict == "supported"
    assert CP.claim_compositional([gen(0.3)] * 3, [gen(0.99)] * 3, C=8).verdict == "not supported"
    assert CP.claim_compositional([gen(0.95)], [gen(0.1)], C=8).verdict == "inconclusive"         # one seed
    assert CP.claim_compositional([], [], C=8).verdict == "inconclusive"
    pooled = {"2": {"acc_heldout": 1.0, "n_heldout": 300}, "3": {"acc_heldout": 0.0, "n_heldout": 100}}
    assert CP.heldout_accuracy(pooled) == 0.75


def test_variants():
    v = CP.variants(PAPER)
    assert sorted(v) == ["held-out-curriculum", "held-out-m", "held-out-mixed"]
    assert v["held-out-m"][0].train.schedule == "mixed:1,2,4" and v["held-out-m"][0].task.holdout == 0
    assert v["held-out-mixed"][0].task.holdout == PAPER.holdout and v["held-out-curriculum"][0].train.schedule.startswith("curriculum:")
    assert CP.variants(QUICK) == {} and "held-out-m" not in CP.variants(SMOKE)      # {1,2}: no interior m


def decode(tokens, task):
    """values [b,n_markers] (-1 where a marker is absent) and m [b], read back from the tokens
    alone: marker C+i sits right before the i-th value."""
    values = np.full((len(tokens), task.n_markers), -1)
    for i in range(task.n_markers):
        rows, pos = np.nonzero(tokens == task.C + i)
        values[rows, i] = tokens[rows, pos + 1]
    return values, (values >= 0).sum(1)


def test_generalisation_splits_add_up(tmp_path, monkeypatch):
    """SMOKE (C=5, m in {1,2}) with holdout 0.3 holds out the multisets {0,0}, {3,3}, {0,3}
    and {2,4}: 6 of the 25 equally likely ordered pairs at m=2, none at m=1. A stand-in model
    right exactly on the held-out examples must score 1 on them and 0 on the seen ones, with
    the counts of a natural (held-out included) sample; the trained model's accuracy is the
    count-weighted mean of its two parts."""
    import dataclasses
    from minimanifold.trajectories.training_loop import train
    spec = SMOKE.specs(seeds=[0], steps=30, ckpt_every=10)[0]
    task = dataclasses.replace(spec.task, holdout=0.3)
    C = task.C
    pairs = np.array([(a, b) for a in range(C) for b in range(C)])
    assert heldout(pairs, np.full(len(pairs), 2), task).sum() == 6          # the known answer above
    p = 6 / C ** 2
    train(tmp_path / "r", spec.model, task, spec.train, log=lambda s: None)

    g = CP.generalisation_of_run(tmp_path / "r")                             # the trained model
    assert sorted(g) == ["1", "2"] and g["1"]["acc_heldout"] is None and g["1"]["n_heldout"] == 0
    v = g["2"]
    assert v["acc_heldout"] is not None and 0 < v["n_heldout"] < CP.N_EVAL
    mixed = (v["acc_seen"] * (CP.N_EVAL - v["n_heldout"]) + v["acc_heldout"] * v["n_heldout"]) / CP.N_EVAL
    assert v["acc"] == pytest.approx(mixed, abs=1e-12)
    for v in g.values():
        assert all(0 <= v[k] <= 1 for k in ("acc", "acc_seen", "acc_heldout") if v[k] is not None)

    seen_by_model = {}

    def right_on_heldout_only(params, tokens, cfg, *args, **kwargs):
        values, m = decode(np.asarray(tokens), task)
        target = values.clip(0).sum(1) % C                                   # op "add"
        h = heldout(values, m, task)
        seen_by_model[int(m.max())] = (int(len(m)), int(h.sum()), set(m.tolist()))
        pred = np.where(h, target, (target + 1) % C)
        return np.eye(cfg.d_vocab_out)[pred], None
    monkeypatch.setattr(CP, "forward", right_on_heldout_only)
    g = CP.generalisation_of_run(tmp_path / "r")
    n = seen_by_model[2][1]
    assert seen_by_model == {1: (CP.N_EVAL, 0, {1}), 2: (CP.N_EVAL, n, {2})}    # N_EVAL examples of each m
    assert g["1"] == {"acc": 0.0, "acc_seen": 0.0, "acc_heldout": None, "n_heldout": 0, "rank_heldout": None,
                      "rank_by_support": None}
    by_support = g["2"].pop("rank_by_support")
    assert g["2"] == {"acc": n / CP.N_EVAL, "acc_seen": 0.0, "acc_heldout": 1.0, "n_heldout": n, "rank_heldout": 0.0}
    # held out, the true answer (support 0) is the stand-in's top answer, every other one ties at rank 1
    assert len(by_support) == 3 and 0 <= by_support[0] < 1 and all(r in (1.0, None) for r in by_support[1:])
    # a natural sample: Binomial(N_EVAL, 6/25) held-out examples (sd 19), not 0 and not all
    assert abs(n - p * CP.N_EVAL) < 5 * np.sqrt(CP.N_EVAL * p * (1 - p)), n


def test_true_rank_known_answers():
    """Rank 0 is the model's top answer; a tie counts in the true answer's favour; answers
    past C (an output layer wider than the modulus) are not ranked."""
    logits = np.array([[5.0, 1.0, 3.0, 9.0],      # true 0: only the 4th, past C=3, is above
                       [5.0, 1.0, 3.0, 0.0],      # true 1: last of 3
                       [2.0, 0.0, 2.0, 0.0],      # true 2: tied with 0, ranks first
                       [1.0, 2.0, 3.0, 0.0]])     # true 1: one above
    assert CP.true_rank(logits, np.array([0, 1, 2, 1]), 3).tolist() == [0, 2, 0, 1]


def test_support_and_ranks_by_support_known_answers():
    """C=5, holdout 0.3 holds out {0,0}, {3,3}, {0,3}, {2,4} at m=2. For (0, 3), held out:
    leaving out the 0, answer a needs 3 + x = a, and x = 0 or 3 (held out) give a = 3, 1;
    leaving out the 3, x = a, held out for a = 0, 3. Supports: a = 0..4 -> 1, 1, 2, 0, 2; the
    true answer 3's is 0. Logits 0..4 rank the answers 4, 3, 2, 1, 0: support 0 holds answer 3
    (rank 1), support 1 answers 0 and 1 (ranks 4, 3), support 2 answers 2 and 4 (2, 0)."""
    import dataclasses
    task = dataclasses.replace(SMOKE.task, holdout=0.3)
    values = np.array([[0, 3]])
    assert heldout(values, np.array([2]), task).all()
    assert CP.support(values, 2, task).tolist() == [[1, 1, 2, 0, 2]]
    logits = np.arange(5.0)[None]
    assert CP.answer_ranks(logits, 5).tolist() == [[4, 3, 2, 1, 0]]
    assert CP.rank_by_support(logits, values, 2, task) == [1.0, 3.5, 1.0]
    seen = np.array([[1, 1]])                                   # {1,1} is trained on
    assert not heldout(seen, np.array([2]), task).any() and CP.support(seen, 2, task)[0, 2] == 2


def test_support_means_average_the_seeds_and_say_what_is_missing():
    g = lambda r: {"2": {"rank_by_support": r}}
    means = CP.support_means([g([1.0, 2.0, None]), g([3.0, None, None])], "2")
    assert means[:2].tolist() == [2.0, 2.0] and np.isnan(means[2])
    assert CP.support_means([g([1.0, 2.0, 3.0]), g(None)], "2") is None          # op "mul": not measured
    assert CP._listed(means) == "2.0, 2.0, –"


def test_the_row_gives_the_true_answers_rank_on_the_largest_m_beside_a_guess():
    """The curriculum runs of the paper preset ranked the true answer about 5 of 0-7 on
    held-out m = 4: the row says it, at the largest m, beside (C - 1)/2."""
    def two_m(rank2, rank3):
        g = gen(0.1, rank=rank2)
        g["3"] = dict(g["2"], rank_heldout=rank3)
        return g
    row = CP.claim_compositional([two_m(1.0, 4.0)] * 3, [two_m(2.0, 5.0)] * 3, C=8)
    assert ("the true answer's mean rank on held-out m=3 (0 = top; a guess gives 3.5): "
            "mixed 4.00 ± 0.00, curriculum 5.00 ± 0.00") in row.measured, row.measured
    assert "by support" not in row.measured                    # not measured: not said
    mixed, cur = two_m(1.0, 4.0), two_m(2.0, 5.0)
    mixed["3"]["rank_by_support"], cur["3"]["rank_by_support"] = [5.0, 4.0, 3.0, 2.0], [6.0, 4.5, None, 1.0]
    mixed["2"]["rank_by_support"] = cur["2"]["rank_by_support"] = [0.0, 0.0, 0.0]
    row = CP.claim_compositional([mixed] * 3, [cur] * 3, C=8)
    assert "by support k = 0..3" in row.measured and "mixed 5.0, 4.0, 3.0, 2.0, curriculum 6.0, 4.5, –, 1.0" in row.measured
    assert "a guess gives 2" in CP.claim_compositional([two_m(1.0, 4.0)] * 3, [two_m(2.0, 5.0)] * 3, C=5).measured


def test_the_interval_of_an_accuracy_stays_in_0_1():
    """Three seeds near 0 (as in the paper preset: 0.20, 0.07, 0.11) give a t interval that
    reaches below 0; an accuracy's interval is cut to [0, 1]. An undetermined one stays so."""
    import re
    from minimanifold.analysis.intervals import t_interval, within
    row = CP.claim_compositional([gen(0.20), gen(0.07), gen(0.02)], [gen(0.1)] * 3, C=8)
    lo, hi = map(float, re.search(r"\[(-?[\d.]+), (-?[\d.]+)\]", row.interval).groups())
    assert t_interval([0.20, 0.07, 0.02]).lo < 0 and 0.0 == lo < hi <= 1.0 and row.verdict == "not supported"
    assert within(t_interval([0.99, 1.0, 0.98]), 0.0, 1.0).hi == 1.0
    assert within(t_interval([0.5]), 0.0, 1.0).text().startswith("undetermined")
