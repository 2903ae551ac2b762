"""Every verdict rule at its boundaries: just above and just below each threshold, exactly at
it where the rule says <= or >=, and each comparison direction. Then each claim function on
synthetic measurements, so a row cannot pass the wrong number to its rule."""
import dataclasses
import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minimanifold.experiments import (EXPERIMENTS, architecture as AR, bubbling as BU, collapse as CO,
                                      m_scaling as MS, multiplication as MU, sae_probing as SP)
from minimanifold.experiments.commutators import claims as CM
from minimanifold.analysis.intervals import Interval, t_interval
from minimanifold.trajectories.rundir import ALL, MATS

S, N, I = "supported", "not supported", "inconclusive"
E = 1e-6      # "just above / just below"


def iv(lo, hi, n=5):
    return Interval((lo + hi) / 2, lo, hi, n, "t")


def at(x, n=5):
    """An interval of width 0 at x."""
    return iv(x, x, n)


@pytest.mark.parametrize("rule, args, verdict", [
    # claim 1: r90 interval inside [3, 4] (the headline), null - r90 interval >= 1
    (CO.r90_range_rule, (iv(3.0, 4.0), at(2)), S), (CO.r90_range_rule, (iv(3 - E, 4.0), at(2)), I),
    (CO.r90_range_rule, (iv(3.5, 4.0), at(2)), S), (CO.r90_range_rule, (iv(3.5, 4 + E), at(2)), I),
    (CO.r90_range_rule, (iv(4.0, 5.0), at(2)), I), (CO.r90_range_rule, (iv(4 + E, 5.0), at(2)), N),
    (CO.r90_range_rule, (iv(1.0, 3 - E), at(2)), N), (CO.r90_range_rule, (iv(5 + E, 7.0), at(2)), N),
    (CO.r90_range_rule, (iv(4.0, 5.0), at(2), 3, 5), S), (CO.r90_range_rule, (iv(2.0, 3.0), at(2), 2, 3), S),
    (CO.r90_range_rule, (at(4), iv(1.0, 2.0)), S), (CO.r90_range_rule, (at(4), iv(1 - E, 2.0)), I),
    (CO.r90_range_rule, (at(4), iv(-2.0, 0.0)), I),
    # claim 2: difference interval above 0
    (CO.vo_below_qk_rule, (iv(E, 1.0),), S), (CO.vo_below_qk_rule, (iv(0.0, 1.0),), I),
    (CO.vo_below_qk_rule, (iv(-1.0, 0.0),), N), (CO.vo_below_qk_rule, (iv(-1.0, E),), I),
    # claim 3: fraction <= 0.3, and below the null's
    (CO.early_collapse_rule, (iv(0.1, 0.3), at(-0.1)), S), (CO.early_collapse_rule, (iv(0.1, 0.3 + E), at(-0.1)), I),
    (CO.early_collapse_rule, (iv(0.3 + E, 0.5), at(-0.1)), N), (CO.early_collapse_rule, (iv(0.3 + E, 0.5), at(0.1)), N),
    (CO.early_collapse_rule, (iv(0.3 + E, 0.5), iv(-0.32, 0.32)), I),   # the authors preset: no better than the walk
    (CO.early_collapse_rule, (iv(0.3 + E, 0.5), iv(-0.32, -E)), N), (CO.early_collapse_rule, (iv(0.3 + E, 0.5), iv(-0.32, 0.0)), I),
    (CO.early_collapse_rule, (at(0.2), iv(-0.2, -E)), S), (CO.early_collapse_rule, (at(0.2), iv(-0.2, 0.0)), I),
    (CO.early_collapse_rule, (at(0.2), iv(0.0, 0.2)), I),
    # claim 4: mean sd <= 0.5 (intervals.sd_interval), 3 seeds at least
    (CO.same_dimension_rule, (iv(0.1, 0.5, 3),), S), (CO.same_dimension_rule, (iv(0.1, 0.5 + E, 3),), I),
    (CO.same_dimension_rule, (iv(0.5 + E, 1.0, 3),), N), (CO.same_dimension_rule, (iv(0.1, 0.2, 2),), I),
    # claim 5: > 45 degrees supported, < 20 not
    (CO.orientation_rule, (iv(45 + E, 80),), S), (CO.orientation_rule, (iv(45, 80),), I),
    (CO.orientation_rule, (iv(5, 20 - E),), N), (CO.orientation_rule, (iv(5, 20),), I),
    # claim 19: every r90(M) - r90(M_min) interval inside [-1, 1]
    (MS.m_scaling_rule, ([iv(-1.0, 1.0), iv(-0.5, 0.5)],), S), (MS.m_scaling_rule, ([iv(-1.0, 1 + E), at(0)],), I),
    (MS.m_scaling_rule, ([at(0), iv(1 + E, 3)],), N), (MS.m_scaling_rule, ([iv(-3, -1 - E)],), N),
    (MS.m_scaling_rule, ([iv(-1 - E, 0)],), I), (MS.m_scaling_rule, ([],), I),
    # claim 6: fall >= 10%, largest share <= 0.5
    (BU.entropy_smooth_rule, (iv(0.10, 0.5), iv(0.1, 0.5)), S), (BU.entropy_smooth_rule, (iv(0.10 - E, 0.5), at(0.1)), I),
    (BU.entropy_smooth_rule, (iv(0.0, 0.10 - E), at(0.1)), N), (BU.entropy_smooth_rule, (at(0.5), iv(0.1, 0.5 + E)), I),
    (BU.entropy_smooth_rule, (at(0.5), iv(0.5 + E, 0.9)), N),
    # claim 7: gap <= 0.2
    (BU.bubbling_with_collapse_rule, (iv(0.0, 0.2),), S), (BU.bubbling_with_collapse_rule, (iv(0.0, 0.2 + E),), I),
    (BU.bubbling_with_collapse_rule, (iv(0.2 + E, 0.5),),  N),
    # claim 8: share > 0.95, and share - chance's >= 0
    (CM.perpendicular_rule, (iv(0.95 + E, 1), iv(0.0, 0.01)), S), (CM.perpendicular_rule, (iv(0.95, 1), at(0.01)), I),
    (CM.perpendicular_rule, (iv(0.5, 0.95), at(0.01)), N), (CM.perpendicular_rule, (at(0.99), iv(-0.01, -E)), N),
    (CM.perpendicular_rule, (at(0.99), iv(-E, 0.01)), I),
    # claim 9: ratio >= 0.1
    (CM.norms_rule, (iv(0.1, 1.0),), S), (CM.norms_rule, (iv(0.1 - E, 1.0),), I), (CM.norms_rule, (iv(0.0, 0.1 - E),), N),
    # claim 10: fall early / late >= 2 and late > 1
    (CM.enrichment_rule, (iv(2.0, 5), iv(1 + E, 3)), S), (CM.enrichment_rule, (iv(2 - E, 5), at(2)), I),
    (CM.enrichment_rule, (iv(0.5, 2 - E), at(2)), N), (CM.enrichment_rule, (at(4.6), iv(1.0, 2)), I),
    (CM.enrichment_rule, (at(4.6), iv(0.5, 1.0)), N),
    # claim 11: late - early > 0, and the spike level >= 100
    (CM.defect_rule, (iv(E, 5), iv(100.0, 150)), S), (CM.defect_rule, (iv(E, 5), iv(100 - E, 150)), I),
    (CM.defect_rule, (iv(0.0, 5), iv(100.0, 150)), I), (CM.defect_rule, (iv(-5, 0.0), iv(100.0, 150)), N),
    (CM.defect_rule, (iv(E, 5), iv(20.0, 100 - E)), N),
    # claim 12: ratio <= 1
    (CM.negligible_inside_rule, (iv(0.5, 1.0),), S), (CM.negligible_inside_rule, (iv(0.5, 1 + E),), I),
    (CM.negligible_inside_rule, (iv(1 + E, 3),), N),
    # claim 27: late / start <= 0.5 and late rho < 0.1
    (CM.rho_falls_rule, (iv(0.1, 0.5), iv(0.0, 0.1 - E)), S), (CM.rho_falls_rule, (iv(0.1, 0.5 + E), at(0.05)), I),
    (CM.rho_falls_rule, (iv(0.5 + E, 2), at(0.05)), N), (CM.rho_falls_rule, (at(0.3), iv(0.05, 0.1)), I),
    (CM.rho_falls_rule, (at(0.3), iv(0.1, 0.2)), N),
    # claim 13: every stage's count (m, marker positions) inside [3, 5]
    (SP.correlated_rule, ([iv(3, 5)] * 3,), S), (SP.correlated_rule, ([at(4), iv(3 - E, 5), at(4)],), I),
    (SP.correlated_rule, ([at(4), iv(3, 5 + E), at(4)],), I),
    (SP.correlated_rule, ([at(4), at(4), iv(1, 3 - E)],), N),
    (SP.correlated_rule, ([iv(5 + E, 9), at(4), at(4)],), N), (SP.correlated_rule, ([at(4), iv(1, 3), at(4)],), I),
    (SP.correlated_rule, ([at(4), iv(5, 9), at(4)],), I), (SP.correlated_rule, ([iv(1, 3 - E), iv(3, 9), at(4)],), N),
    # claim 14: every stage's drop − random drop <= 0.05
    (SP.ablation_rule, ([iv(-0.1, 0.05)] * 3,), S), (SP.ablation_rule, ([at(0), iv(0, 0.05 + E), at(0)],), I),
    (SP.ablation_rule, ([at(0), iv(0.05 + E, 0.1), at(0)],), N),
    (SP.ablation_rule, ([at(0), iv(0.05, 0.1), at(0)],), I),
    # claim 15: MLP - attention r90 > 1 supported, <= 0 not
    (AR.mlp_rank_rule, (iv(1 + E, 3),), S), (AR.mlp_rank_rule, (iv(1.0, 3),), I), (AR.mlp_rank_rule, (iv(-1, 0.0),), N),
    (AR.mlp_rank_rule, (iv(-1, E),), I),
    # claim 16: MLP - attention accuracy < -0.02
    (AR.mlp_accuracy_rule, (iv(-0.5, -0.02 - E),), S), (AR.mlp_accuracy_rule, (iv(-0.5, -0.02),), I),
    (AR.mlp_accuracy_rule, (iv(-0.02, 0.1),), N),
    # claim 17: curriculum forgetting >= 0.2, mixed forgetting < 0.2
    (AR.curriculum_rule, (iv(0.2, 0.9), iv(0.0, 0.2 - E)), S), (AR.curriculum_rule, (iv(0.2 - E, 0.9), at(0)), I),
    (AR.curriculum_rule, (iv(0.0, 0.2 - E), at(0)), N), (AR.curriculum_rule, (iv(0.5, 0.9), iv(0.2, 0.5)), N),
    (AR.curriculum_rule, (iv(0.5, 0.9), iv(0.1, 0.2)), I), (AR.curriculum_rule, (iv(0.0, 0.2 - E), iv(0.1, 0.3)), N),
    # claim 18: mul - add r90 >= 1 supported, <= 0 not
    (MU.multiplication_rule, (iv(1.0, 3),), S), (MU.multiplication_rule, (iv(1 - E, 3),), I),
    (MU.multiplication_rule, (iv(-1, 0.0),), N), (MU.multiplication_rule, (iv(-1, E),), I),
])
def test_rule_boundaries(rule, args, verdict):
    assert rule(*args) == verdict


def test_every_rule_is_documented_and_numbered_once():
    from minimanifold.report.rule_changes import RETIRED          # numbers of retired claims are not reused
    numbers = [n for e in EXPERIMENTS for n in e.rules] + list(RETIRED)
    assert len(numbers) == len(set(numbers)) and sorted(numbers) == list(range(1, len(numbers) + 1))
    for e in EXPERIMENTS:
        for n, rule in e.rules.items():
            assert rule.__doc__ and "*" in rule.__doc__, f"claim {n}: the rule's docstring is its text"


# ---- each claim on synthetic measurements ----

def fake_geoms(r90s, null=6.0, stab=0.2, null_stab=0.6, n_layers=1):
    """One geometry dict per seed; r90s[seed] is a list over (layer, matrix)."""
    out = []
    for r in r90s:
        g = {f"blocks.{l}.attn.{W}": {"r90": r[i], "null": {"matched": {"mean": null}, "constant": {"mean": null + 1}},
                                      "exact_null": {"r90": null}, "common": {"r90": r[i], "exact_null": {"r90": null}}}
             for i, (l, W) in enumerate((l, W) for l in range(n_layers) for W in MATS)}
        g[ALL] = {"stabilization": stab, "null_stabilization": null_stab, "angle_settled": stab,
                  "null_angle_settled": null_stab, "common": {"n": 40}}
        out.append(g)
    return out


@pytest.mark.parametrize("r90, null, verdict", [(3.5, 6.0, S), (3.5, 4.0, I), (2, 6.0, N), (7, 9.0, N)])
def test_claim_r90_range(r90, null, verdict):
    """5 seeds whose mean r90 (over 4 matrices) is r90 − 1/4, r90 (3 seeds), r90 + 1/4: one
    matrix one step lower or higher. Mean r90, sd 0.18 floored at the step 1/4: ± 0.31."""
    seeds = [[r90 - 1] + [r90] * 3, [r90] * 4, [r90] * 4, [r90] * 4, [r90 + 1] + [r90] * 3]
    c = CO.claim_r90_range(fake_geoms(seeds, null=null), 1)
    assert c.verdict == verdict and c.value == pytest.approx(r90) and c.null_value == null
    assert "sd floored at the resolution 0.25" in c.interval


def test_claim_r90_range_tied_seeds_use_the_step():
    """3 seeds at r90 3 exactly: the sd is floored at the step 1/4 (a mean of 4 integers), so
    the interval is 3 ± 4.303 · 0.25 / √3 = [2.38, 3.62]: it reaches below 3, inconclusive; 3
    seeds at 2 lie wholly below 3: not supported."""
    c = CO.claim_r90_range(fake_geoms([[3] * 4] * 3), 1)
    assert c.verdict == I and c.interval.startswith("r90 [2.38, 3.62] (95% t, 3 seeds; all 3 values tied: "
                                                   "sd floored at the resolution 0.25)")
    assert CO.claim_r90_range(fake_geoms([[2] * 4] * 3), 1).verdict == N


def test_claim_vo_below_qk_direction():
    """Per seed r90(Q,K) − r90(V,O) of 2, 1.5, 2.5 (sd 0.5, the step 1/2 of a mean of 2 integers):
    2 ± 4.303 · 0.5 / √3 = [0.76, 3.24], above 0; mirrored, below. 3 tied seeds at 1: the sd
    floored at 1/2 gives [−0.24, 2.24], which decides nothing."""
    qk_high = [[5, 5, 3, 3], [5, 4, 3, 3], [5, 5, 3, 2]]
    assert CO.claim_vo_below_qk(fake_geoms(qk_high), 1).verdict == S
    assert CO.claim_vo_below_qk(fake_geoms([r[2:] + r[:2] for r in qk_high]), 1).verdict == N
    assert CO.claim_vo_below_qk(fake_geoms([[4, 4, 3, 3]] * 3), 1).verdict == I
    mixed = fake_geoms([[4, 4, 3, 3], [4, 4, 3, 3], [3, 3, 3.5, 3.5]])
    assert CO.claim_vo_below_qk(mixed, 1).verdict == I


def settled(s, sn):
    """fake_geoms of len(s) seeds whose subspace settles at s[seed] and the walk's at sn[seed]."""
    geoms = fake_geoms([[3] * 4] * len(s))
    for g, a, b in zip(geoms, s, sn):
        g[ALL].update(stabilization=a, null_stabilization=b, angle_settled=a, null_angle_settled=b)
    return geoms


def test_claim_collapse_and_same_dimension():
    """Fractions on the 10% grid, 5 seeds: the sd is floored at 0.1, ± 2.776 · 0.1 / √5 = ± 0.124.
    Settled at 0.1, 0.2, 0.1, 0.2, 0.1 (mean 0.14: [0.016, 0.264]) against a walk's 0.5–0.7: supported;
    against a walk's 0.1 (difference 0.04: [−0.084, 0.164]): inconclusive. At 0.5, 0.6, … (mean 0.54:
    [0.416, 0.664]) against a walk's 0.9: not supported; against the same fractions as the walk's
    (a tied difference of 0, floored: [−0.124, 0.124]): inconclusive."""
    early, late = (0.1, 0.2, 0.1, 0.2, 0.1), (0.5, 0.6, 0.5, 0.6, 0.5)
    assert CO.claim_early_collapse(settled(early, (0.6, 0.5, 0.7, 0.6, 0.6))).verdict == S
    assert CO.claim_early_collapse(settled(early, [0.1] * 5)).verdict == I
    assert CO.claim_early_collapse(settled(late, [0.9] * 5)).verdict == N
    assert CO.claim_early_collapse(settled(late, late)).verdict == I
    row = CO.claim_early_collapse(settled(early, (0.6, 0.5, 0.7, 0.6, 0.6)))
    assert row.value == pytest.approx(0.14) and bounds(row.interval, "fraction") == (0.02, 0.26)
    # tied seeds decide with the grid's resolution: 3 at 0.2 give 0.2 ± 4.303 · 0.1 / √3 = [0, 0.45] (cut at 0)
    assert CO.claim_early_collapse(fake_geoms([[3] * 4] * 3, stab=0.2)).verdict == I
    assert CO.claim_early_collapse(fake_geoms([[3] * 4] * 3, stab=0.8, null_stab=0.2)).verdict == N
    # claim 4: 5 seeds at 3, 3.05, 2.95, 3.1, 2.9 on every matrix: sd √(0.025 / 4) = 0.079 on n − 1 = 4 df,
    # upper end 0.079 · √(4 / χ²_{0.025}(4) = 0.484) = 0.23, below 0.5
    close = fake_geoms([[v] * 4 for v in (3.0, 3.05, 2.95, 3.1, 2.9)])
    row = CO.claim_same_dimension(close, 1)
    assert row.verdict == S and row.value == pytest.approx(0.2) and bounds(row.interval, "mean sd")[1] == 0.23
    # 3 seeds at 3, 4, 3: sd 0.58 on 2 df, [0.30, 3.63]; 3 seeds tied on every matrix decide nothing
    assert CO.claim_same_dimension(fake_geoms([[3] * 4, [4] * 4, [3] * 4]), 1).verdict == I
    row = CO.claim_same_dimension(fake_geoms([[3] * 4] * 3), 1)
    assert row.verdict == I and "every matrix's 3 values tied, so it decides nothing" in row.interval
    assert CO.claim_same_dimension(fake_geoms([[1] * 4, [5] * 4] * 5), 1).verdict == N
    # 3 seeds at 2, 4, 3: sd 1 on 2 df, lower end √(2 / χ²_{0.975}(2) = 7.38) = 0.52, above 0.5
    assert CO.claim_same_dimension(fake_geoms([[2] * 4, [4] * 4, [3] * 4]), 1).verdict == N
    assert CO.claim_same_dimension(fake_geoms([[3] * 4, [3] * 4]), 1).verdict == I


def test_claim_orientation():
    """3 seeds, pairs (0,1), (0,2), (1,2) at deg − 1, deg, deg + 1: leaving out seed 0, 1, 2 leaves
    deg + 1, deg, deg − 1, so the jackknife half-width is 4.303 · √(2/3 · 2) = 4.97."""
    orient = lambda deg, pairs=3: {"m": {"seed_pairs_deg": [[deg + k, 89.0] for k in (-1, 0, 1)][:pairs],  # noqa: E731
                                         "random_deg": [[88.0, 89.0]]}}
    assert CO.claim_orientation(orient(80.0)).verdict == S
    assert CO.claim_orientation(orient(5.0)).verdict == N
    assert CO.claim_orientation(orient(30.0)).verdict == I
    assert CO.claim_orientation(orient(80.0, pairs=1)).verdict == I        # one seed pair: undetermined
    assert CO.claim_orientation(orient(80.0, pairs=0)).verdict == I
    row = CO.claim_orientation(orient(80.0))
    assert row.value == pytest.approx(80.0) and row.interval == "[75.0, 85.0] (95% jackknife t, 3 seeds)"
    tied = {"m": {"seed_pairs_deg": [[80.0, 89.0]] * 3, "random_deg": [[88.0, 89.0]]}}     # every pair at 80°
    row = CO.claim_orientation(tied)
    assert row.verdict == I and "all 3 pair values tied, so it decides nothing" in row.interval
    from minimanifold.analysis.intervals import seeds_of_pairs
    assert [seeds_of_pairs(p) for p in (1, 3, 10, 45)] == [2, 3, 5, 10]
    with pytest.raises(ValueError, match="not the number of pairs"):
        seeds_of_pairs(4)


def test_claim_entropy_smooth():
    """Three seeds, seed k's curve over 30 checkpoints a little different (t from 0 to 1):
    smooth: 1 + 0.1k + (2.4 − 0.1k) (1 − t)^(1 + 0.1k), a fall of 71%, 68%, 65% whose largest step
    is its first, 3.4–4.1% of it; a step from 3.4 to 1 halfway, less a slope 0.05k over the run:
    the step is 100%, 98%, 96% of the fall; flat at 3.4 less 0.01k over the run: a fall of 0–0.6%."""
    def bubbles(curves):
        return [{"entropy": {1: [[c, c] for c in curve]}, "T": 32} for curve in curves]
    t, ks = np.linspace(0, 1, 30), (0, 1, 2)
    smooth = [1 + 0.1 * k + (2.4 - 0.1 * k) * (1 - t) ** (1 + 0.1 * k) for k in ks]
    assert BU.claim_entropy_smooth(bubbles(smooth)).verdict == S
    step = [np.r_[np.full(15, 3.4), np.full(15, 1.0)] - 0.05 * k * t for k in ks]
    assert BU.claim_entropy_smooth(bubbles(step)).verdict == N
    assert BU.claim_entropy_smooth(bubbles([np.full(30, 3.4) - 0.01 * k * t for k in ks])).verdict == N
    # the same curve on every seed: entropies are continuous, no resolution, so the tie decides nothing
    assert BU.claim_entropy_smooth(bubbles([np.linspace(3.4, 1.0, 30)] * 3)).verdict == I
    row = BU.claim_entropy_smooth(bubbles(smooth))                      # 30 checkpoints: all of them again
    assert row.interval.endswith("; from 30 evenly spaced snapshots: the same verdict")


def test_claim_entropy_smooth_at_the_common_snapshot_count():
    """300 checkpoints, three seeds. A logistic fall of width 1–1.2 checkpoints around checkpoint
    150: from every checkpoint its largest share is ≈ 22% (supported), from the 40 evenly
    spaced ones (one every 7.7) it is above one half (not supported): the verdict depends on
    the count, so inconclusive, and the row says both. An exponential fall over the whole run
    (time constant 50–70 checkpoints): its largest share is ≈ 2% from every checkpoint and
    11–15% from 40: supported from both."""
    def bubbles(curves):
        return [{"entropy": {1: [[c] for c in curve]}, "T": 32} for curve in curves]
    t = np.arange(300)
    sharp = [1 + (2.4 - 0.1 * k) / (1 + np.exp((t - 150 - 0.3 * k) / (1 + 0.1 * k))) for k in (0, 1, 2)]
    row = BU.claim_entropy_smooth(bubbles(sharp))
    assert row.verdict == I and row.interval.endswith(
        "; from 40 evenly spaced snapshots: not supported (against supported from every checkpoint): "
        "the verdict depends on the snapshot count")
    assert "largest share [0.19, 0.25]" in row.interval
    gentle = [1 + 2.4 * np.exp(-t / (50 + 10 * k)) for k in (0, 1, 2)]
    row = BU.claim_entropy_smooth(bubbles(gentle))
    assert row.verdict == S and row.interval.endswith("; from 40 evenly spaced snapshots: the same verdict")


def test_claim_entropy_smooth_when_the_fall_comes_before_the_first_checkpoint():
    """The authors preset's entropy falls before its first checkpoint: a share of 95–99% in the
    first interval cannot show whether the fall was smooth (inconclusive, with the reason);
    the same share halfway through training is a sharp fall (not supported); a fall of 0.3–1.2%
    is not supported wherever it happens."""
    def bubbles(curves):
        return [{"entropy": {1: [[c] for c in curve]}, "T": 32} for curve in curves]
    t = np.linspace(0, 1, 30)
    early = [np.r_[3.4, np.full(29, 1.0)] - 0.1 * k * t for k in (0, 1, 2)]
    row = BU.claim_entropy_smooth(bubbles(early))
    assert row.verdict == I and "the largest fall comes before the first checkpoint on 3 of 3 seeds" in row.interval
    assert "largest share [0.87, 1.00]" in row.interval                   # a share of a fall: cut at 1
    late = [np.r_[np.full(15, 3.4), np.full(15, 1.0)] - 0.1 * k * t for k in (0, 1, 2)]
    assert BU.claim_entropy_smooth(bubbles(late)).verdict == N
    tiny = [np.r_[3.4, 3.4 - 0.01 * (k + 1) - 0.001 * k * t[1:]] for k in (0, 1, 2)]   # most of it first
    assert BU.claim_entropy_smooth(bubbles(tiny)).verdict == N


def test_the_entropys_90_percent_point():
    """A linear fall from 3 to 1 over steps 0–500, then flat, read every 100 steps of 1,000:
    90% of the fall is first reached at step 500 (450 is not a checkpoint), so 0.5."""
    steps = np.arange(0, 1001, 100)
    assert BU.entropy_90(steps, np.maximum(3 - steps / 250, 1.0)) == 0.5
    assert BU.entropy_90(steps, np.r_[3.0, np.full(10, 1.0)]) == 0.1
    assert BU.entropy_90([0, 1, 2, 3], np.array([10.0, 9.0, 1.0, 0.0])) == pytest.approx(2 / 3)   # exactly 90%: counts


def test_claim_7_is_decided_again_from_the_common_count():
    """Entropy 90% fallen by 3–5% of training on 6 seeds (300 checkpoints; at 40 snapshots the
    first one past it, a little later). The subspace settles from 10% at every checkpoint (gaps
    ≤ 0.07, the sd floored at 0.1: supported) but from 60–80% at 40 snapshots (gaps > 0.5: not
    supported): inconclusive, both shown; the same settling at both: supported."""
    steps = np.arange(300) * 100
    bubbles = [{"steps": list(steps), "entropy": {1: [[3.4 - 2.4 * min(1, s / (1500 - 100 * k))] for s in steps]},
                "T": 32} for k in range(6)]
    geoms = [{ALL: {"angle_settled": 0.1}} for _ in range(6)]
    row = BU.claim_bubbling_with_collapse(bubbles, geoms, [{"angle_settled": a} for a in (0.6, 0.7, 0.8) * 2])
    assert row.verdict == I and "from 40 evenly spaced snapshots: not supported (against supported" in row.interval
    same = BU.claim_bubbling_with_collapse(bubbles, geoms, [{"angle_settled": 0.1} for _ in range(6)])
    assert same.verdict == S and same.interval.endswith("the same verdict")


def test_claim_7_at_the_common_count_reads_the_entropy_there(monkeypatch):
    """300 checkpoints every 100 steps: the entropy has made 90% of its fall at checkpoint 10
    (step 1,000); of the 40 evenly spaced snapshots (checkpoints 0, 8, 15, ...) the first past
    it is checkpoint 15 (step 1,500). The common-count row reads 1500/29900, not 1000/29900."""
    seen = []
    real = BU._coincide
    monkeypatch.setattr(BU, "_coincide", lambda t_col, t_ent: seen.append(list(t_ent)) or real(t_col, t_ent))
    steps = np.arange(300) * 100
    bubbles = [{"steps": list(steps), "entropy": {1: [[3.0 if i < 10 else 1.0 + 0.1 * k] for i in range(300)]},
                "T": 32} for k in range(3)]
    BU.claim_bubbling_with_collapse(bubbles, [{ALL: {"angle_settled": 0.1}}] * 3, [{"angle_settled": 0.1}] * 3)
    assert seen[0] == [pytest.approx(1000 / 29900)] * 3 and seen[1] == [pytest.approx(1500 / 29900)] * 3


def test_claim_bubbling_with_collapse():
    """Entropy 90% fallen at 0.9 of training on every seed (3.0 → 1.0 over steps 100–1000, from 3.4:
    1.22 at step 900). Gaps to the settled fractions on the 10% grid, the sd floored at 0.1."""
    steps = list(range(0, 1001, 100))
    b = [{"steps": steps, "entropy": {1: [[e] for e in np.r_[3.4, np.linspace(3.0, 1.0, 10)]]}}] * 5

    def geoms(*fractions):
        return [{ALL: {"angle_settled": f}} for f in fractions]
    # gaps 0, 0, 0.1, 0, 0.1: 0.04 ± 2.776 · 0.1 / √5 = [−0.08, 0.16], cut at 0: at or below 0.2
    row = BU.claim_bubbling_with_collapse(b, geoms(0.9, 0.9, 0.8, 0.9, 1.0))
    assert row.verdict == S and row.value == pytest.approx(0.04) and bounds(row.interval, "gap") == (0.0, 0.16)
    assert BU.claim_bubbling_with_collapse(b, geoms(0.1, 0.2, 0.1, 0.1, 0.2)).verdict == N   # gaps 0.7–0.8
    assert BU.claim_bubbling_with_collapse(b[:1], geoms(0.9)).verdict == I   # one seed
    # 3 seeds tied at a gap of 0: 0 ± 4.303 · 0.1 / √3 = [0, 0.25] after the cut: the grid is too coarse
    assert BU.claim_bubbling_with_collapse(b[:3], geoms(0.9, 0.9, 0.9)).verdict == I


def fake_projs(n=11, seeds=3, **curves):
    """Commutator projections: each keyword a curve over n measurement points (or a constant)."""
    out = []
    for _ in range(seeds):
        p = {"steps": np.linspace(0, 1000, n), "kind": np.zeros((n, 2), int), "lr": np.full(n, 0.1)}
        for k, v in curves.items():
            p[k] = np.repeat(np.broadcast_to(np.asarray(v, float), (n,))[:, None], 2, 1)
        out.append(p)
    return out


def tilt(projs, *keys, by=0.01):
    """Seed k's curves ``keys`` times (1 + by k)(1 + by k t), t from 0 to 1 over the run: a small
    spread over seeds, in level and in slope (identical seeds are tied and decide nothing)."""
    for k, p in enumerate(projs):
        t = np.linspace(0, 1, len(p["steps"]))[:, None]
        for key in keys:
            p[key] = p[key] * (1 + by * k) * (1 + by * k * t)
    return projs


def test_claim_perpendicular():
    """Share > 95% and at or above chance's: ρ 0.005 under a random subspace's 0.01 is both;
    ρ 0.3 (share 0.954) is above 95% but below chance's 0.99995; ρ 0.4 (0.917) is above chance's
    (ρ 0.5: 0.866) but below 95%. Seeds' ρ differ by up to 4% (``tilt``): the same verdicts."""
    assert CM.claim_perpendicular(tilt(fake_projs(rho_whole=0.005, rand_block=0.01), "rho_whole")).verdict == S
    assert CM.claim_perpendicular(tilt(fake_projs(rho_whole=0.3, rand_block=0.01), "rho_whole")).verdict == N
    assert CM.claim_perpendicular(tilt(fake_projs(rho_whole=0.4, rand_block=0.5), "rho_whole")).verdict == N
    # identical seeds: a share is continuous, no resolution, so the tie decides nothing
    assert CM.claim_perpendicular(fake_projs(rho_whole=0.005, rand_block=0.01)).verdict == I


def test_claim_norms_and_defect():
    assert CM.claim_norms_stay_large(tilt(fake_projs(norm=1.0), "norm")).verdict == S
    assert CM.claim_norms_stay_large(tilt(fake_projs(norm=np.logspace(0, -5, 11)), "norm")).verdict == N
    assert CM.claim_norms_stay_large(fake_projs(norm=1.0)).verdict == I          # tied seeds


def test_claim_norms_ratio_interval_is_positive_for_heavy_tailed_seeds():
    """The authors ledger printed 'ratio [-3.0e-04, 6.8e-04]': a t interval of a ratio of norms
    below 0. Seeds whose late/early ratios span two decades must give an interval above 0."""
    ratios = (1e-5, 1e-4, 5e-4, 1e-3, 2e-4)
    assert t_interval(ratios).lo < 0                                  # the old interval
    projs = [p for r in ratios for p in fake_projs(seeds=1, norm=np.logspace(0, np.log10(r), 11))]
    row = CM.claim_norms_stay_large(projs)
    lo, hi = (float(v) for v in row.interval.split("[")[1].split("]")[0].split(", "))
    assert 0 < lo < hi < 0.1 and "t on log" in row.interval and row.verdict == N
    assert CM.claim_defect_grows(tilt(fake_projs(defect=np.linspace(1, 200, 11)), "defect")).verdict == S
    grows = tilt(fake_projs(defect=np.linspace(1, 50, 11)), "defect")                      # grows, no spikes
    assert CM.claim_defect_grows(grows).verdict == N
    assert CM.claim_defect_grows(tilt(fake_projs(defect=np.linspace(200, 1, 11)), "defect")).verdict == N


def test_claim_enrichment_and_negligible_inside():
    """ρ_exec tilted per seed (``tilt``: up to 4%), random subspaces' ρ the same on every seed."""
    falling = tilt(fake_projs(rho_whole=np.linspace(0.5, 0.1, 11), rand_block=0.02, rand_full=0.01, rho_g_whole=0.1),
                   "rho_whole")
    assert CM.claim_enrichment(falling).verdict == S
    assert CM.claim_negligible_inside(falling).verdict == N
    rising = tilt(fake_projs(rho_whole=np.linspace(0.1, 0.5, 11), rand_block=0.02, rand_full=0.01), "rho_whole")
    assert CM.claim_enrichment(rising).verdict == N
    inside = tilt(fake_projs(rho_whole=0.01, rand_block=0.02, rand_full=0.01, rho_g_whole=0.1), "rho_whole")
    assert CM.claim_negligible_inside(inside).verdict == S
    tied = fake_projs(rho_whole=0.01, rand_block=0.02, rho_g_whole=0.1)
    assert CM.claim_negligible_inside(tied).verdict == I                                # tied seeds


def fake_saes(counts=(4, 4, 4), drops=(0.0, 0.0, 0.0), seeds=3, answer=(30, 30, 30), random_drops=(0, 0, 0)):
    def stage(c, d, a, r):
        return {"n_correlated_paper": c, "n_correlated_answer": a,
                "n_correlated_by_factor": {f: c for f in SP.PAPER_FACTORS},
                "sae": {"d_sae": 128, "dead_latents": 8, "fvu": 0.1, "l0": 5.0},
                "top_latents": [{"factor": "m", "abs_corr": 0.9}], "acc_clean": 1.0, "acc_ablated": 1.0 - d,
                "acc_random_ablated": 1.0 - r, "acc_ablated_any": 0.5, "acc_reconstruction": 1.0, "step": 10}
    return [{"layer": 1, "stages": {st: stage(*v) for st, *v in zip(SP.STAGES, counts, drops, answer, random_drops)}}
            ] * seeds


def test_claims_sae():
    """Counts step by 1: the sd is floored at 1, so 3 seeds give ± 4.303 / √3 = ± 2.48 and even tied
    seeds at 4 decide nothing inside [3, 5]; 7 seeds give ± 2.447 / √7 = ± 0.92. Seven seeds, each
    stage's count one lower on one seed and one higher on another: mean 4: [3.08, 4.92], inside
    [3, 5]; 2: [1.08, 2.92], below 3; 6: [5.08, 6.92], above 5."""
    def seven(counts):
        return [s for d in (-1, 0, 0, 0, 0, 0, 1) for s in fake_saes(tuple(c + d for c in counts), seeds=1)]
    row = SP.claim_sae_correlated(seven((4, 4, 4)))
    assert row.verdict == S and row.value == pytest.approx([4, 4, 4]) and bounds(row.interval, "early") == (3.1, 4.9)
    assert SP.claim_sae_correlated(seven((4, 2, 4))).verdict == N
    assert SP.claim_sae_correlated(seven((4, 6, 4))).verdict == N      # above the paper's 3–5
    row = SP.claim_sae_correlated(fake_saes((4, 4, 4)))                  # 3 seeds tied at 4: [1.5, 6.5]
    assert row.verdict == I and "all 3 values tied: sd floored at the resolution 1" in row.interval
    assert SP.claim_sae_ablation(fake_saes(drops=(0.0, 0.04, 0.0))).verdict == S
    c = SP.claim_sae_ablation(fake_saes(drops=(0.0, 0.06, 0.0)))
    assert c.verdict == N and c.value == pytest.approx([0.0, 0.06, 0.0])
    spread = fake_saes((0, 0, 0), seeds=1) + fake_saes((0, 1, 0), seeds=1) + fake_saes((1, 9, 0), seeds=1)
    text = SP.claim_sae_correlated(spread).interval                  # counts near 0 spread widely
    assert all(float(lo) >= 0 for lo in re.findall(r"\[(\S+), ", text)), text


def variant(r90, acc=1.0, **steps):
    """``summarize``'s dict: acc a number (every seed) or one per seed; steps: r90_step, acc_step."""
    accs = acc if isinstance(acc, (list, tuple)) else [acc] * len(r90)
    return {"r90": list(r90), "null": [6.0] * len(r90), "final_acc": [{1: a, 2: a} for a in accs], **steps}


def test_claims_mlp_and_multiplication_direction():
    """Seeds 0.1 apart: r90 − null differences of 2 and 1.5 (sd 0.1 each), accuracy 0.1 lower."""
    base = variant([2.9, 3.0, 3.1])
    assert AR.claim_mlp_rank(base, variant([4.9, 5.0, 5.1])).verdict == S
    assert AR.claim_mlp_rank(variant([4.9, 5.0, 5.1]), base).verdict == N
    assert AR.claim_mlp_rank(base, variant([5.0, 5.1])).verdict == I                    # 2 seeds decide nothing
    assert AR.claim_mlp_accuracy(base, variant([3.0] * 3, acc=[0.89, 0.9, 0.91])).verdict == S
    assert AR.claim_mlp_accuracy(variant([3.0] * 3, acc=[0.89, 0.9, 0.91]), base).verdict == N
    assert MU.claim_multiplication(base, variant([4.4, 4.5, 4.6]), 8).verdict == S
    assert MU.claim_multiplication(variant([4.4, 4.5, 4.6]), base, 8).verdict == N
    # tied seeds decide nothing without the steps, and decide with them: r90 a mean of 12 integers
    # (sd floored at 1/12: 2 ± 2.776 · √(2 / 144 / 3) = [1.81, 2.19]), accuracy of 256 examples
    tied, tied_mlp = variant([3.0] * 3), variant([5.0] * 3, acc=0.9)
    assert AR.claim_mlp_rank(tied, tied_mlp).verdict == I and AR.claim_mlp_accuracy(tied, tied_mlp).verdict == I
    stepped = variant([3.0] * 3, r90_step=1 / 12, acc_step=1 / 256)
    row = AR.claim_mlp_rank(stepped, tied_mlp)
    assert row.verdict == S and bounds(row.interval, "r90 − null") == (1.81, 2.19)
    assert AR.claim_mlp_accuracy(stepped, tied_mlp).verdict == S
    assert MU.claim_multiplication(stepped, variant([4.5] * 3), 8).verdict == S


def test_claim_curriculum():
    def run(a1, a2):
        return {"summary": {"final_acc": {"1": a1, "2": a2}, "config": {"train": {"n_probe": 256}}}}
    hist = [[{"acc": {"1": 1.0, "2": 0.2}}, {"acc": {"1": 0.3, "2": 1.0}}]] * 3
    kept_all = [[{"acc": {"1": 1.0, "2": 0.2}}, {"acc": {"1": 1.0, "2": 1.0}}]] * 3
    assert AR.claim_curriculum([run(1.0, 1.0)] * 3, [run(0.3, 1.0)] * 3, kept_all, hist).verdict == S
    # a mixed run that never reached 1.0 on m = 2 forgot nothing: learning is not forgetting
    assert AR.claim_curriculum([run(1.0, 0.9)] * 3, [run(0.3, 1.0)] * 3, kept_all, hist).verdict == S
    mixed_forgot = [[{"acc": {"1": 1.0, "2": 0.2}}, {"acc": {"1": 0.5, "2": 1.0}}]] * 3
    assert AR.claim_curriculum([run(0.5, 1.0)] * 3, [run(0.3, 1.0)] * 3, mixed_forgot, hist).verdict == N
    kept = [[{"acc": {"1": 1.0, "2": 0.2}}, {"acc": {"1": 0.95, "2": 1.0}}]] * 3
    assert AR.claim_curriculum([run(1.0, 1.0)] * 3, [run(0.95, 1.0)] * 3, kept_all, kept).verdict == N
    assert AR.claim_curriculum([run(1.0, 1.0)] * 3, [run(0.3, 1.0)] * 2, kept_all, hist[:2]).verdict == I  # 2 seeds
    # the paper preset printed forgetting [0.63, 1.11]: a fall of an accuracy cannot pass 1
    finals = (0.03, 0.15, 0.22)
    spread = [[{"acc": {"1": 1.0, "2": 0.2}}, {"acc": {"1": f, "2": 1.0}}] for f in finals]
    text = AR.claim_curriculum([run(1.0, 1.0)] * 3, [run(f, 1.0) for f in finals], kept_all, spread).interval
    assert t_interval([1 - f for f in finals]).hi > 1                       # the raw interval does
    lo, hi = bounds(text, "curriculum")
    assert 0.0 <= lo <= hi <= 1.0


def test_claim_m_scaling():
    flat = {M: variant([3.0, 3.2, 3.1]) for M in (1, 2, 3, 4)}
    c = MS.claim_m_scaling(flat)
    assert c.verdict == S and c.value == pytest.approx([3.1] * 4)
    rising = {M: variant([2.0 + M, 2.1 + M, 2.2 + M]) for M in (1, 2, 3)}
    assert MS.claim_m_scaling(rising).verdict == N
    assert MS.claim_m_scaling({}).verdict == I and "not measured" in MS.claim_m_scaling({}).measured


def test_m_scaling_variants_reuse_the_main_runs():
    from minimanifold.trajectories.presets import PAPER, QUICK
    v = MS.variants(PAPER)
    assert sorted(v) == [f"m-scaling-M{M}" for M in (1, 2, 3, 5, 6)]        # M = 4 is the main runs
    assert v["m-scaling-M6"][0].train.schedule == "mixed:1,2,3,4,5,6" and v["m-scaling-M6"][0].task.n_markers >= 6
    assert len(v["m-scaling-M1"]) == PAPER.n_extra_seeds and MS.variants(QUICK) == {}


def test_the_optimizer_control_decides_no_claim():
    """Claim 21 is retired (issue 24): the optimizer experiment has no rule and its report no
    row, and the factorial's rows take its question (RETIRED names only claims no experiment
    decides). Guards: claim 21 back among the rules."""
    from minimanifold.experiments import EXPERIMENTS, optimizer as OP
    from minimanifold.report import rule_changes as RC
    assert OP.EXPERIMENT.rules == {} and 21 in RC.RETIRED
    assert not set(RC.RETIRED) & {n for e in EXPERIMENTS for n in e.rules}
    assert {24, 25, 26} <= {n for e in EXPERIMENTS for n in e.rules}


def test_optimizer_variants_are_the_other_two():
    from minimanifold.experiments import optimizer as OP
    from minimanifold.trajectories.presets import AUTHORS, PAPER, QUICK
    v = OP.variants(PAPER)
    assert sorted(v) == ["optimizer-adamw", "optimizer-adamw-no-weight-decay"]
    tr = v["optimizer-adamw"][0].train
    assert (tr.optimizer, tr.lr, tr.weight_decay, tr.steps, tr.schedule) == ("adamw", 3e-4, 0.01, PAPER.train.steps, PAPER.train.schedule)
    assert tr.lr_schedule == "constant"                                   # AdamW at the authors' constant rate
    assert v["optimizer-adamw-no-weight-decay"][0].train.weight_decay == 0
    assert len(v["optimizer-adamw"]) == PAPER.n_extra_seeds
    assert OP.variants(QUICK) == {}                                       # reduced: SGD, its main runs, alone
    q = OP.variants(dataclasses.replace(QUICK, optimizer_arms=("SGD", "AdamW")))
    assert sorted(q) == ["optimizer-adamw"] and len(q["optimizer-adamw"]) == QUICK.n_extra_seeds
    with pytest.raises(ValueError, match="optimizer_arms"):
        OP.variants(dataclasses.replace(QUICK, optimizer_arms=("SGD", "Adam")))
    w = OP.variants(AUTHORS)
    assert sorted(w) == ["optimizer-adamw-no-weight-decay", "optimizer-sgd"]
    assert (w["optimizer-sgd"][0].train.optimizer, w["optimizer-sgd"][0].train.lr) == ("sgd", 0.1)
    assert w["optimizer-sgd"][0].train.batch_size == AUTHORS.train.batch_size and w["optimizer-sgd"][0].task.T == 16


def test_functional_rule_boundaries():
    from minimanifold.experiments import functional_dimension as FU
    r = FU.functional_rule
    assert r(iv(0.9, 1.0), iv(E, 0.5), iv(E, 0.5)) == S
    assert r(iv(0.9, 1.0), iv(0, 0.5), iv(E, 0.5)) == I                  # the plain control is not beaten
    assert r(iv(0.9, 1.0), iv(E, 0.5), iv(0, 0.5)) == I                  # nor the norm-matched one
    assert r(iv(0.9, 1.0), iv(-0.5, 0), iv(E, 0.5)) == N                 # a control does as well
    assert r(iv(0.9, 1.0), iv(E, 0.5), iv(-0.5, 0)) == N
    assert r(iv(0.9 - E, 1.0), iv(0.2, 0.5), iv(0.2, 0.5)) == I
    assert r(iv(0.5, 0.9 - E), iv(0.2, 0.5), iv(0.2, 0.5)) == N


def test_claim_functional_reads_k4_and_the_random_control():
    from minimanifold.experiments import functional_dimension as FU
    K = FU.KS

    def run(pca_at4, rand_at4, k_star, k_rand=None):
        acc = [0.2] * len(K)
        pca = [a if k < 4 else pca_at4 for k, a in zip(K, acc)]
        rand = [a if k != 4 else rand_at4 for k, a in zip(K, acc)]
        c = {"k": list(K), "pca": pca, "random": rand, "random_matched": rand, "final": 1.0, "k_star": k_star,
             "k_star_random": k_rand, "k_star_random_matched": k_rand, "drift_share": [0.9] * len(K)}
        return {"centred": c, "uncentred": dict(c, k_star=k_star - 1)}
    row = FU.claim_functional([run(0.97, 0.2, 3), run(0.99, 0.25, 4), run(0.98, 0.2, 4)])
    assert row.verdict == S and abs(row.value - 0.98) < 1e-12
    assert "centred PCA 3.7" in row.measured and "uncentred 2.7" in row.measured
    assert "> 16" in row.null and "3 of 3 seeds" in row.null
    row = FU.claim_functional([run(0.5, 0.2, 12), run(0.55, 0.2, 16), run(0.45, 0.2, 12)])
    assert row.verdict == N
    half = [run(0.48, 0.1, 3), run(0.49, 0.1, 3), run(0.47, 0.1, 3)]      # final accuracy 0.5: 96% recovered
    for r in half:
        r["centred"]["final"] = 0.5
    assert FU.claim_functional(half).verdict == S


def test_restricted_rule_and_claim():
    from minimanifold.experiments import restricted_training as RT
    r = RT.restricted_rule
    assert r(iv(0.1 + E, 0.5)) == S and r(iv(0.1, 0.5)) == I and r(iv(-0.2, 0.1)) == N
    assert r(iv(0.05, 0.2)) == I

    def res(final):
        return {"steps": [0, 10], "acc": {"1": [0.2, final], "2": [0.2, final]}}
    # the early basis (found before the end) decides; the execution basis (knows the end) is only shown
    per_k = {1: {"execution": [res(0.9), res(0.95), res(1.0)], "early": [res(0.9), res(0.95), res(1.0)],
                 "random": [res(0.3), res(0.2), res(0.25)]},
             4: {"execution": [res(0.2)] * 3, "early": [res(0.98), res(0.97), res(0.96)],
                 "random": [res(0.95), res(0.97), res(1.0)]},
             8: {"execution": [res(1.0)] * 3, "early": [res(1.0)] * 3, "random": [res(0.1)] * 3}}
    row = RT.claim_restricted(per_k, 10)
    assert row.interval.startswith("K=4 ") and row.verdict == N     # the largest K <= 4 decides
    assert abs(row.value - (0.97 - 0.9733333333)) < 1e-6             # early − random, not execution − random
    assert "K=1 execution (knows the end) 0.95" in row.measured and "K=8 0.10" in row.null
    assert "early (decides) 0.97 ± 0.01 (10 ± 0); K=8" in row.measured
    assert "K=8 0.10 ± 0.00 (never on some seed)" in row.null
    per_k[4]["random"] = [res(0.3), res(0.2), res(0.25)]
    assert RT.claim_restricted(per_k, 10).verdict == S
    per_k[4]["early"] = [res(0.25), res(0.2), res(0.2)]                # only the basis that knows the end learns
    per_k[4]["execution"] = [res(1.0)] * 3
    assert RT.claim_restricted(per_k, 10).verdict == N
    assert RT.claim_restricted({}, 10).verdict == I


def bounds(text, label):
    """The [lo, hi] that follows ``label`` in a ledger row's interval text."""
    m = re.search(re.escape(label) + r" \[(\S+), (\S+)\]", text)
    assert m, f"no interval after {label!r} in {text!r}"
    return float(m.group(1)), float(m.group(2))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)), min_size=3, max_size=8))
def test_fraction_and_share_intervals_stay_in_their_range(per_seed):
    """The quick ledger printed claim 3's fraction of training as [-0.00, 0.48]: a t interval
    over seeds near 0 leaves [0, 1]. Fractions of training, their distance and the commutator's
    perpendicular share are cut to the range they can take, however the seeds spread."""
    stab, other = np.array(per_seed).T
    geoms = fake_geoms([[3] * 4] * len(stab))
    for g, s, o in zip(geoms, stab, other):
        g[ALL] = {"stabilization": float(s), "null_stabilization": float(o), "angle_settled": float(s),
                  "null_angle_settled": float(o)}
    text = CO.claim_early_collapse(geoms).interval
    lo, hi = bounds(text, "fraction")
    assert 0.0 <= lo <= hi <= 1.0
    lo, hi = bounds(text, "minus the walk's")
    assert -1.0 <= lo <= hi <= 1.0
    steps = list(range(0, 1001, 100))
    b = [{"steps": steps, "entropy": {1: [[e] for e in np.r_[3.4, np.linspace(3.0, 1.0, 10)]]}}] * len(stab)
    lo, hi = bounds(BU.claim_bubbling_with_collapse(b, geoms).interval, "gap")
    assert 0.0 <= lo <= hi <= 1.0
    projs = fake_projs(seeds=len(stab), rho_whole=0.0, rand_block=0.01)
    for p, o in zip(projs, other):
        p["rho_whole"] = np.full_like(p["rho_whole"], o)          # ρ per seed, any in [0, 1]
    text = CM.claim_perpendicular(projs).interval
    lo, hi = bounds(text, "share")
    assert 0.0 <= lo <= hi <= 1.0
    lo, hi = bounds(text, "share − chance's")
    assert -1.0 <= lo <= hi <= 1.0
