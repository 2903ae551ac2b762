"""Claim 5's functional equivalence at the level of outputs: the agreement of two runs'
answers beside independent errors (known answers and a simulation), the shared probe every
seed reads, and the text the row carries."""
import dataclasses

import numpy as np
import pytest

from minimanifold.analysis.agreement import agreement, independent_agreement, pair_agreements, shared_errors
from minimanifold.experiments import answers as AN


def test_agreement_and_its_independent_errors_baseline_known_answers():
    assert agreement([0, 1, 2, 3], [0, 1, 0, 3]) == 0.75
    assert independent_agreement(1.0, 1.0, 8) == 1.0
    assert independent_agreement(0.5, 0.5, 2) == 0.5                 # two classes: wrong alike is wrong
    assert independent_agreement(0.5, 0.5, 8) == pytest.approx(0.25 + 0.25 / 7)
    assert independent_agreement(0.9, 0.6, 5) == pytest.approx(0.54 + 0.1 * 0.4 / 4)


def test_independent_errors_agree_as_the_baseline_says():
    """Two simulated runs each wrong at their own rate, independently, the wrong answer
    uniform over the other C − 1 classes: the observed agreement matches the baseline."""
    rng = np.random.default_rng(0)
    n, C = 200_000, 8
    targets = rng.integers(0, C, n)

    def run(acc):
        wrong = rng.random(n) > acc
        return np.where(wrong, (targets + rng.integers(1, C, n)) % C, targets)
    a, b = run(0.7), run(0.55)
    observed, independent = pair_agreements([a, b], targets, C)
    assert observed[0] == pytest.approx(independent[0], abs=0.005)
    assert independent[0] == pytest.approx(0.7 * 0.55 + 0.3 * 0.45 / 7, abs=0.005)
    # the same run twice agrees with itself everywhere, far above its baseline
    same, base = pair_agreements([a, a], targets, C)
    assert same[0] == 1.0 and base[0] < 0.6


def test_pairs_come_in_combinations_order_and_shared_errors_are_counted():
    targets = np.array([0, 1, 2, 3])
    answers = np.array([[0, 1, 2, 3],           # right everywhere
                        [1, 1, 2, 0],           # wrong on inputs 0 and 3
                        [1, 1, 3, 3]])          # wrong on inputs 0 and 2
    observed, independent = pair_agreements(answers, targets, 4)
    assert observed.tolist() == [0.5, 0.5, 0.5]                       # (0,1), (0,2), (1,2)
    assert independent.tolist() == pytest.approx([0.5, 0.5, 0.25 + 0.25 / 3])
    both, expected, same = shared_errors(answers, targets)
    assert both.tolist() == [0, 0, 1] and same.tolist() == [0, 0, 1]  # runs 1, 2: input 0, both answer 1
    assert expected.tolist() == pytest.approx([0, 0, 0.5 * 0.5 * 4])


def test_a_seed_without_errors_agrees_exactly_as_independent_errors_would():
    """Where one run is right everywhere, agreement is the other's accuracy, and so is the
    baseline: the agreement cannot tell such a pair from independent errors."""
    rng = np.random.default_rng(1)
    targets = rng.integers(0, 8, 500)
    other = np.where(rng.random(500) < 0.3, (targets + 3) % 8, targets)
    observed, independent = pair_agreements([targets, other], targets, 8)
    assert observed[0] == independent[0] == pytest.approx(np.mean(other == targets))


def _answers(per_m, C=4):
    """A cached_answers-like dict: {m: (answers, targets)}."""
    return {"C": C, "m": {str(m): {"answers": list(a), "targets": list(t)} for m, (a, t) in per_m.items()}}


def test_seed_agreement_is_the_mean_over_m_of_each_ms_own():
    """m = 1 has both runs right (agreement 1), m = 2 has them disagree on half: the mean over
    m is 0.75 for the observed and each m's baseline comes from that m's accuracies."""
    t = [0, 1, 2, 3]
    runs = [_answers({1: (t, t), 2: ([0, 1, 2, 3], t)}), _answers({1: (t, t), 2: ([0, 1, 0, 0], t)})]
    observed, independent = AN.agreement_of_seeds(runs)
    assert observed.tolist() == [0.75]
    assert independent.tolist() == pytest.approx([(1.0 + 0.5) / 2])
    text = AN.agreement_text(runs + [runs[0]])
    assert "not in the rule; 8 held-out inputs): two seeds agree on" in text
    assert "(equal by construction in the 3 of 3 pairs where one seed makes no error)" in text
    assert "inputs both answer wrong, summed over pairs: 0 (0.0 if independent" in text
    assert AN.agreement_text(runs[:1]) == "the seeds' answers need 2 seeds"
    assert "agree on 0.750 (seed pairs), independent errors at their accuracies would give 0.750" in \
        AN.agreement_text(runs)                                        # two seeds: one pair, no spread


def test_answers_on_different_probes_are_refused():
    t = [0, 1, 2, 3]
    with pytest.raises(ValueError, match=r"different probes \(m = 1\)"):
        AN.agreement_text([_answers({1: (t, t)}), _answers({1: (t, [1, 1, 2, 3])})])
    with pytest.raises(ValueError, match="different probes"):
        AN.agreement_of_seeds([_answers({1: (t, t)}), _answers({2: (t, t)})])


def test_seeds_failing_alike_share_more_errors_than_independent_ones():
    """Three runs wrong on the first 1, 2 and 3 inputs, always answering target + 1: pairs
    agree on 7/8, 6/8, 7/8, above independent errors; they share 1, 1 and 2 wrong inputs
    where independent errors share 0.25, 0.375 and 0.75, every shared one alike (uniform
    wrong answers would make a third alike); the excess's interval is the jackknife one of
    these known pair values."""
    from minimanifold.analysis.intervals import pairs_interval
    t = [0, 1, 2, 3, 0, 1, 2, 3]
    wrong = lambda k: [(x + 1) % 4 if i < k else x for i, x in enumerate(t)]      # noqa: E731
    runs = [_answers({1: (wrong(k), t)}) for k in (1, 2, 3)]
    observed, independent = AN.agreement_of_seeds(runs)
    assert observed.tolist() == [7 / 8, 6 / 8, 7 / 8]
    acc = [7 / 8, 6 / 8, 5 / 8]
    want = [acc[i] * acc[j] + (1 - acc[i]) * (1 - acc[j]) / 3 for i, j in ((0, 1), (0, 2), (1, 2))]
    assert independent.tolist() == pytest.approx(want)
    text = AN.agreement_text(runs)
    iv = pairs_interval(np.array([1, 1, 2]) - np.array([0.25, 0.375, 0.75]))
    assert f"summed over pairs: 4 (1.4 if independent; per pair, the excess {iv.text()})" in text
    assert "with the same wrong answer: 4 (1.3 if wrong answers were uniform)" in text
    assert "in the 0 of 3 pairs where one seed makes no error" in text


def test_every_seed_answers_the_same_shared_probe(tmp_path):
    """Two seeds' runs read the same inputs (targets equal, not their own probe sets), the
    answers are the final parameters' argmax, and the result is cached."""
    from minimanifold.trajectories.presets import SMOKE
    from minimanifold.trajectories.training_loop import train
    from minimanifold.trajectories.task import probe_set
    cfg = dataclasses.replace(SMOKE.train, steps=20, ckpt_every=10)
    dirs = []
    for seed in (0, 1):
        train(tmp_path / f"s{seed}", SMOKE.model, SMOKE.task, dataclasses.replace(cfg, seed=seed), log=lambda line: None)
        dirs.append(str(tmp_path / f"s{seed}"))
    got = [AN.cached_answers(d) for d in dirs]
    assert got[0]["m"].keys() == got[1]["m"].keys() and len(got[0]["m"]) >= 2
    for m in got[0]["m"]:
        assert got[0]["m"][m]["targets"] == got[1]["m"][m]["targets"]
        own = probe_set(SMOKE.task, [int(m)], cfg.n_probe, 0)[int(m)].targets.tolist()
        assert own != got[0]["m"][m]["targets"] and len(own) == len(got[0]["m"][m]["targets"])
    from minimanifold.trajectories.metrics import evaluate
    from minimanifold.trajectories.rundir import final_params
    shared = probe_set(SMOKE.task, [int(m) for m in got[0]["m"]], cfg.n_probe, AN.SHARED_SEED)
    acc = evaluate(final_params(dirs[1]), shared, SMOKE.model)["acc"]     # the final parameters' answers
    assert {int(m): float(np.mean(np.array(v["answers"]) == v["targets"])) for m, v in got[1]["m"].items()} == acc
    assert AN.cached_answers(dirs[0]) == got[0]
    import os
    assert os.path.exists(os.path.join(dirs[0], f"answers_v{AN.VERSION}.json"))


def test_claim_5s_row_carries_the_agreement_and_its_verdict_does_not():
    """The seeds' answers go into claim 5's measured text, not its verdict (the rule reads the
    angles alone); without answers the row says functional equivalence is not measured."""
    from minimanifold.experiments import collapse as CO
    orientation = {"m": {"seed_pairs_deg": [[79.0, 89.0], [80.0, 89.0], [81.0, 89.0]], "random_deg": [[88.0, 89.0]]}}
    t = [0, 1, 2, 3]
    runs = [_answers({1: (t, t)}), _answers({1: ([0, 1, 2, 0], t)}), _answers({1: ([0, 1, 2, 1], t)})]
    row = CO.claim_orientation(orientation, runs)
    assert row.measured.endswith(AN.agreement_text(runs)) and "agree on 0.750 ± 0.000" in row.measured
    assert "independent errors at their accuracies would give 0.694 ± 0.079" in row.measured
    assert "summed over pairs: 1 (" in row.measured and "same wrong answer: 0 (0.3 if wrong answers" in row.measured
    bare = CO.claim_orientation(orientation)
    assert bare.measured.endswith("the seeds' answers not measured")
    assert (row.verdict, row.interval, row.value) == (bare.verdict, bare.interval, bare.value)


def test_the_collapse_experiment_measures_and_reads_each_main_runs_answers(monkeypatch):
    """Every main run's answers are a per-run measurement of the collapse experiment, and its
    report hands them, in the runs' order, to claim 5's row."""
    from minimanifold.experiments import collapse as CO
    runs = [{"dir": f"d{k}"} for k in range(3)]

    class Ctx:
        n_layers, caption = 1, "c"

        def __init__(self):
            self.runs = runs

        def per_run(self, measure, rs=None):
            return [measure.__name__ + r["dir"] for r in runs]

        def path(self, name):
            return name
    assert [c for c in CO.measurements(Ctx()) if c[0] is AN.cached_answers] == [(AN.cached_answers, (r["dir"],))
                                                                                for r in runs]
    for name in ("claim_r90_range", "claim_vo_below_qk", "claim_early_collapse", "claim_same_dimension"):
        monkeypatch.setattr(CO, name, lambda *a: None)
    monkeypatch.setattr(CO, "fig1_effective_rank", lambda *a: "fig")
    monkeypatch.setattr(CO, "cached_orientation", lambda dirs: dirs)
    monkeypatch.setattr(CO, "claim_orientation", lambda orientation, answers=(): (orientation, answers))
    rows, _ = CO.report(Ctx())
    assert rows[5] == (["d0", "d1", "d2"], ["cached_answersd0", "cached_answersd1", "cached_answersd2"])
