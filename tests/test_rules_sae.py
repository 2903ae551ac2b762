"""Claims 13–14 (experiments/sae_probing.py, issue 23 §2): which latents are counted and
ablated, against which control, over which axis. Known answers on small synthetic inputs;
the rules' thresholds are in test_verdict_rules.py."""
import re

import numpy as np
import pytest

from minimanifold.analysis import sae as S
from minimanifold.experiments import sae_probing as SP
from minimanifold.trajectories.task import Batch

SUP, NOT, INC = "supported", "not supported", "inconclusive"
NAMES = ["m", "first marker position", "last marker position", "answer = 0"]
# |r| of 6 latents with the 4 factors; latent 4 is dead
CORR = np.array([[0.90, 0.10, 0.20, 0.10],     # 0: m                     -> paper
                 [0.10, 0.00, 0.00, 0.95],     # 1: the answer only       -> answer
                 [0.20, 0.51, 0.10, 0.60],     # 2: first position and answer -> both
                 [0.00, 0.00, 0.50, 0.00],     # 3: exactly 0.5           -> neither (> 0.5)
                 [0.99, 0.99, 0.99, 0.99],     # 4: dead                  -> never
                 [0.30, 0.00, 0.00, 0.70]])    # 5: the answer            -> answer
ALIVE = np.array([0, 1, 2, 3, 5])


def bounds(text, label):
    m = re.search(re.escape(label) + r" \[(\S+), (\S+)\]", text)
    assert m, f"no interval after {label!r} in {text!r}"
    return float(m.group(1)), float(m.group(2))


def test_counts_per_factor_group_known_answer():
    """Paper factors: latents 0 and 2 (2); the answer: 1, 2 and 5 (3); per factor: m 1 (latent
    0), first position 1 (latent 2), last position 0 (latent 3 sits at 0.5 exactly), answer 3.
    Guards: >= 0.5; a dead latent counted; any over the wrong axis; the answer counted with
    the paper's factors."""
    got = SP.correlated_counts(CORR, NAMES, ALIVE)
    assert got == {"n_correlated_paper": 2, "n_correlated_answer": 3,
                   "n_correlated_by_factor": {"m": 1, "first marker position": 1, "last marker position": 0,
                                              "answer = 0": 3}}
    paper = np.isin(NAMES, SP.PAPER_FACTORS)
    assert S.count_strong(CORR, ALIVE, paper, 0.5) == 2 and S.count_strong(CORR, ALIVE, paper, 0.05) == 5


def test_top_latents_rank_live_latents_by_the_chosen_factors():
    """By the paper's factors: 0 (0.9), 2 (0.51), 3 (0.5), 5 (0.3), 1 (0.1); by every factor:
    1 (0.95), 0 (0.9), 5 (0.7). The dead latent 4 (0.99) is never chosen.
    Guards: ranking ascending; the dead latent; the answer's column used for the paper's."""
    paper = np.isin(NAMES, SP.PAPER_FACTORS)
    assert S.top_latents(CORR, ALIVE, paper, 3).tolist() == [0, 2, 3]
    assert S.top_latents(CORR, ALIVE, paper, 5).tolist() == [0, 2, 3, 5, 1]
    assert S.top_latents(CORR, ALIVE, np.ones(4, bool), 3).tolist() == [1, 0, 5]
    assert S.describe_latents(CORR, NAMES, [2], paper) == [
        {"latent": 2, "factor": "first marker position", "abs_corr": 0.51}]
    assert S.describe_latents(CORR, NAMES, [2], np.ones(4, bool))[0]["factor"] == "answer = 0"


def test_task_factors_read_the_last_marker_of_each_example():
    """Two examples: m = 1 at position 4; m = 3 at 2, 6, 10. First positions 4, 2; last 4, 10
    (not the padding −1 of the first example). Guards: positions[:, -1] for the last."""
    b = Batch(tokens=np.zeros((2, 16), int), targets=np.array([3, 0]), m=np.array([1, 3]),
              positions=np.array([[4, -1, -1], [2, 6, 10]]), values=np.zeros((2, 3), int))
    f = SP.task_factors(b, 4)
    assert list(f)[:3] == list(SP.PAPER_FACTORS)
    assert f["first marker position"].tolist() == [4, 2] and f["last marker position"].tolist() == [4, 10]
    assert f["answer = 3"].tolist() == [1.0, 0.0] and f["answer = 0"].tolist() == [0.0, 1.0]


def test_stage_experiment_ablates_the_paper_top_and_random_latents_outside_it(monkeypatch):
    """On a small model whose correlations are replaced by a designed |r| matrix: live latents
    a0, a1, a2 correlate 0.9, 0.8, 0.7 with m or a marker position, a3, a4, a5 0.95, 0.94,
    0.93 with the answer, every other entry below 0.4, and dead latents 0.99 with everything.
    Every latent set spliced out is recorded: the random draws (each of 3 live latents, none of
    a0–a2), then none, then a0–a2 (the paper's top), then a3–a5 (any factor's top); the
    control is the draws' mean; 3 latents counted for the paper's factors, 3 for the answer.
    Guards: the random pool including the chosen; the any-factor top ablated as the paper's;
    the paper's top chosen by the answer's columns; the control's first draw for its mean."""
    from tests.conftest import small_setup
    from minimanifold.trajectories.task import TaskConfig
    cfg, params, _, _ = small_setup(seed=3)
    task = TaskConfig(T=8, C=5, n_markers=2, d_vocab=16)
    seen, real_splice, real_train, real_corr = [], SP.splice, SP.train_sae, SP.correlations
    live = {}

    def splice(sae, x, ablate=()):
        seen.append(sorted(int(j) for j in ablate))
        return real_splice(sae, x, ablate)

    def correlations(h, factors):
        _, names = real_corr(h, factors)
        alive = np.flatnonzero((h > 0).any(0))
        corr = np.random.default_rng(0).uniform(0, 0.4, (h.shape[1], len(names)))
        corr[np.flatnonzero(~(h > 0).any(0))] = 0.99
        paper = np.isin(names, SP.PAPER_FACTORS)
        for j, r in zip(alive[:3], (0.9, 0.8, 0.7)):
            corr[j, np.flatnonzero(paper)[j % 3]] = r
        for j, r in zip(alive[3:6], (0.95, 0.94, 0.93)):
            corr[j, np.flatnonzero(~paper)[j % 5]] = r
        live["alive"] = alive
        return corr, names
    monkeypatch.setattr(SP, "splice", splice)
    monkeypatch.setattr(SP, "correlations", correlations)
    monkeypatch.setattr(SP, "train_sae", lambda x, f, lam, seed: real_train(x, f, lam, seed, steps=150, batch=64))
    top, n_random = 3, 4
    out = SP.stage_experiment(params, cfg, task, [1, 2], 0, cfg.n_layers - 1, 24, 0.01, 128, 96, top, n_random)
    a = live["alive"]
    assert len(a) >= 9
    chosen, chosen_any = sorted(a[:3].tolist()), sorted(a[3:6].tolist())
    assert [t["latent"] for t in out["top_latents"]] == a[:3].tolist()
    assert [t["abs_corr"] for t in out["top_latents"]] == [0.9, 0.8, 0.7]
    assert len(seen) == n_random + 3
    for draw in seen[:n_random]:
        assert len(draw) == top and set(draw) <= set(a.tolist()) and not set(draw) & set(chosen), (draw, chosen)
    assert seen[n_random:] == [[], chosen, chosen_any]
    assert out["acc_random_ablated"] == pytest.approx(np.mean(out["acc_random_ablated_draws"]))
    assert len(out["acc_random_ablated_draws"]) == n_random
    assert out["acc_spliced_no_ablation"] == out["acc_clean"]
    assert (out["n_correlated_paper"], out["n_correlated_answer"]) == (3, 3)


# ---- the rows ----

def saes(paper, answer=None, clean=None, ablated=None, random=None):
    """One SAE result per seed; each argument [seed][stage] (or a constant)."""
    n = len(paper)

    def at(x, i, j, default):
        x = default if x is None else x
        return x[i][j] if isinstance(x, list) else x
    out = []
    for i in range(n):
        stages = {}
        for j, st in enumerate(SP.STAGES):
            c = at(paper, i, j, 0)
            stages[st] = {"n_correlated_paper": c, "n_correlated_answer": at(answer, i, j, 40),
                          "n_correlated_by_factor": {f: c for f in SP.PAPER_FACTORS},
                          "sae": {"d_sae": 512, "dead_latents": 2, "fvu": 0.05, "l0": 20.0},
                          "acc_clean": at(clean, i, j, 1.0), "acc_ablated": at(ablated, i, j, 1.0),
                          "acc_ablated_any": 0.5, "acc_random_ablated": at(random, i, j, 1.0),
                          "acc_reconstruction": 1.0, "step": 100 * j,
                          "top_latents": [{"latent": 7, "factor": "m", "abs_corr": 0.9 - 0.3 * j},
                                          {"latent": 9, "factor": "m", "abs_corr": 0.3}]}
        out.append({"layer": 1, "stages": stages})
    return out


def test_claim_13_counts_the_paper_factors_not_the_answer():
    """7 seeds: 4 latents per stage (3 on one seed, 5 on another) correlate with m or a marker
    position, 40 with the answer: mean 4, 4 ± 2.447 × 1 / √7 = [3.08, 4.92] (the sd 0.58
    floored at the count's step 1), inside the paper's 3–5, *supported*; 2 (1 to 3) with the
    paper's factors and 4 with the answer: [1.08, 2.92], *not supported*. (3 seeds tied at 4
    give [1.52, 6.48]: counts step by 1, and 3 seeds cannot place 4 inside [3, 5].)
    Guards: the answer's (or any factor's) count read for the paper's."""
    def seven(c):
        return [[c + d] * 3 for d in (-1, 0, 0, 0, 0, 0, 1)]
    row = SP.claim_sae_correlated(saes(seven(4)))
    assert row.verdict == SUP and row.value == [4.0, 4.0, 4.0] and row.null_value == [40.0] * 3
    assert "with the answer (answer = c) early 40.0 ± 0.0" in row.null
    assert "m or a marker position (of 512): early 4.0 ± 0.5, mid 4.0 ± 0.5" in row.measured   # sd √(2/7)
    assert bounds(row.interval, "early") == (3.1, 4.9)
    assert SP.claim_sae_correlated(saes(seven(2), answer=4)).verdict == NOT
    assert SP.claim_sae_correlated(saes([[4, 4, 4]] * 3)).verdict == INC


def test_claim_13_interval_is_over_seeds_per_stage():
    """Seeds' counts (early, mid, late): (3, 4, 9), (5, 4, 10), (4, 4, 11): early mean 4 with a
    t interval 4 ± 4.303 × 1 / √3 = [1.52, 6.48] (straddles); mid 4 on every seed, tied, its sd
    floored at the count's step 1: also [1.52, 6.48]; late 10 ± 4.303 × 1 / √3 = [7.52, 12.48]
    (wholly above 5): *not supported*. Guards: the interval over stages (or over the pooled
    values); the late stage dropped."""
    row = SP.claim_sae_correlated(saes([[3, 4, 9], [5, 4, 10], [4, 4, 11]]))
    assert bounds(row.interval, "early") == pytest.approx((1.5, 6.5), abs=0.05)
    assert bounds(row.interval, "mid") == (1.5, 6.5) and bounds(row.interval, "late") == (7.5, 12.5)
    assert row.verdict == NOT
    assert SP.claim_sae_correlated(saes([[3, 4, 4], [5, 4, 4], [4, 4, 4]])).verdict == INC


def test_claim_14_subtracts_the_random_control_seed_by_seed():
    """Accuracy 0.6 → 0.50 with the paper's top 5 ablated and → 0.56 with 5 random latents:
    the excess drop is 0.10 − 0.04 = 0.06 > 0.05 (*not supported*); with the control at 0.54
    it is 0.04 (*supported*, though the raw drop of 0.10 exceeds 0.05). Seeds whose clean
    accuracy is 0.6, 0.8, 1.0 with the drops and controls moving together give an excess of
    exactly 0.04 each: tied, so the sd is floored at one of the 1,024 examples, ± 4.303 / 1024
    / √3 = ± 0.0024 ([0.038, 0.042]; 0.06: [0.058, 0.062]). Guards: the absolute drop; the
    control added instead of subtracted; the any-factor ablation (0.5) read as the paper's."""
    row = SP.claim_sae_ablation(saes([[4] * 3] * 3, clean=0.6, ablated=0.5, random=0.56))
    assert row.verdict == NOT and row.value == pytest.approx([0.06] * 3)
    assert bounds(row.interval, "mid") == (0.058, 0.062)
    row = SP.claim_sae_ablation(saes([[4] * 3] * 3, clean=0.6, ablated=0.5, random=0.54))
    assert row.verdict == SUP and row.null_value == pytest.approx([0.06] * 3)
    clean = [[c] * 3 for c in (0.6, 0.8, 1.0)]
    row = SP.claim_sae_ablation(saes([[4] * 3] * 3, clean=clean, ablated=[[c - 0.1] * 3 for c, _, _ in clean],
                                     random=[[c - 0.06] * 3 for c, _, _ in clean]))
    assert row.verdict == SUP and bounds(row.interval, "late") == (0.038, 0.042)
    assert "(their mean |corr| early 0.60 ± 0.00, mid 0.45 ± 0.00, late 0.30 ± 0.00)" in row.measured


def test_claim_14_one_stage_above_the_margin_decides():
    """Excess drops 0, 0.08, 0 (only mid exceeds 0.05): *not supported*, value per stage in
    stage order. Guards: only the late stage read; the stages' mean (0.027)."""
    ablated = [[1.0, 0.92, 1.0]] * 3
    row = SP.claim_sae_ablation(saes([[4] * 3] * 3, ablated=ablated))
    assert row.verdict == NOT and row.value == pytest.approx([0.0, 0.08, 0.0])


def test_claim_13_says_when_its_seeds_cannot_show_a_count_inside_3_to_5():
    """Counts are resolved to 1, so with fewer than 7 seeds no interval fits inside [3, 5]
    (4 ± t975(n−1) / √n: ± 2.48 at 3 seeds, ± 0.92 at 7): the row says so, and says nothing
    from 7 seeds on, where 7 seeds at 4 read *supported*."""
    row = SP.claim_sae_correlated(saes([[4, 4, 4]] * 3))
    assert "only from 7 seeds: 3 probed, so at most inconclusive" in row.interval and row.verdict == INC
    row = SP.claim_sae_correlated(saes([[4, 4, 4]] * 7))
    assert "only from 7 seeds" not in row.interval and row.verdict == SUP


def test_the_paper_preset_probes_enough_seeds_for_claim_13_to_be_decided():
    """The paper preset probes 7 of its 10 main runs with SAEs (its comparisons keep 3 seeds):
    the fewest whose count interval can fit inside 3–5. The figures' caption says both."""
    from minimanifold.experiments.context import Context
    from minimanifold.trajectories.presets import PAPER, QUICK
    assert PAPER.n_sae == 7 and PAPER.n_extra_seeds == 3 and QUICK.n_sae == QUICK.n_extra_seeds == 3
    ctx = Context(PAPER, [{"dir": f"d{i}"} for i in range(10)], {}, "", "paper preset, 10 seeds: L=3")
    assert [args[0] for _, args in SP.measurements(ctx)] == [f"d{i}" for i in range(7)]
    assert ctx.extra_caption == "paper preset, 10 seeds (3 per comparison, 7 for SAEs): L=3"
    quick = Context(QUICK, [{"dir": f"d{i}"} for i in range(5)], {}, "", "quick preset, 5 seeds: L=2")
    assert quick.extra_caption == "quick preset, 5 seeds (3 for SAEs; no comparisons): L=2"


def test_fig6_credits_the_stars_to_the_authors_code_and_its_legends_do_not_collide(tmp_path, monkeypatch):
    """The stars are the authors' Fig 6 (their code), not numbers of the paper's text; the two
    legends below the panels sat over each other with three columns on the left."""
    from minimanifold.experiments import sae_probing as SP
    drawn = []
    monkeypatch.setattr(SP, "save_figure", lambda fig, path: drawn.append(fig) or str(path))
    stage = {"step": 100, "acc_clean": 0.9, "acc_reconstruction": 0.9, "acc_ablated": 0.85, "acc_ablated_any": 0.8,
             "acc_random_ablated": 0.9, "n_correlated_paper": 2, "n_correlated_answer": 10, "sae": {"d_sae": 512}}
    saes = [{"layer": 1, "stages": {st: dict(stage) for st in SP.STAGES}} for _ in range(3)]
    SP.fig6_sae_ablation(saes, "caption", tmp_path / "f.png")
    fig = drawn.pop()
    fig.canvas.draw()
    left, right = (ax.get_legend() for ax in fig.axes[:2])
    texts = [t.get_text() for t in left.get_texts()]
    assert any("the authors' Fig 6" in t for t in texts) and not any("paper" in t for t in texts)
    assert left.get_window_extent().x1 < right.get_window_extent().x0
    SP.plt.close(fig)
