"""The plumbing between measurements and verdict rules (issue 23 §5): which window, which
statistic over which axis, which seeds, arms and nulls feed which interval. The rules
themselves are tested at their thresholds in ``test_verdict_rules.py``; a planted-bug pass
found that the wiring feeding them could be wrong at a single point with every test green.

Each test builds a small synthetic input whose right answer its docstring states (by hand,
not by calling the code under test a second way) and names the bug it guards ("Guards:").
Fast: no training except two 20-step runs of the smoke model."""
import math
import re

import numpy as np
import pytest

from tests.conftest import whole_and_resumed

from minimanifold.analysis import pca
from minimanifold.analysis.intervals import Interval, t975, within
from minimanifold.experiments import (architecture as AR, bubbling as BU, collapse as CO,
                                      functional_dimension as FU, m_scaling as MS, optimizer as OP)
from minimanifold.experiments import geometry as GE
from minimanifold.experiments.commutators import bases as BA, claims as CM
from minimanifold.trajectories.rundir import ALL

S, N, I = "supported", "not supported", "inconclusive"
STEPS = np.linspace(0, 1000, 11)        # commutator measurement points: 0%, 10%, ..., 100% of training


def iv(lo, hi, n=5):
    return Interval((lo + hi) / 2, lo, hi, n, "t")


def bounds(text, label):
    """The [lo, hi] that follows ``label`` in a ledger row's interval text."""
    m = re.search(re.escape(label) + r" \[(\S+), (\S+)\]", text)
    assert m, f"no interval after {label!r} in {text!r}"
    return float(m.group(1)), float(m.group(2))


def projs(per_seed, kind=(0, 0, 0, 1)):
    """Commutator projections (``commutators.measure.project``'s keys) on STEPS, one dict per
    seed; ``per_seed`` [{key: [point, pair] array}]; ``kind`` per pair (0 = mixed: only those
    count; the last pair is a same-m one)."""
    return [{"steps": STEPS, "kind": np.tile(np.asarray(kind), (len(STEPS), 1)),
             **{k: np.asarray(v, dtype=float) for k, v in p.items()}} for p in per_seed]


def by_point(rows, other=7.0, same_m=1e6):
    """[11 points, 4 pairs]: ``rows`` {point: values of the 3 mixed pairs}; ``other`` at the
    remaining points; ``same_m`` in the same-m pair everywhere."""
    out = np.full((len(STEPS), 4), other)
    out[:, 3] = same_m
    for point, vals in rows.items():
        out[point, :3] = vals
    return out


# Windows by point: step 0 (excluded: no causal basis), 10% and 20% (the first 20%), 70%
# (outside), 80%, 90% and 100% (the last 20%). Early median 3.5 (mean 5), late median 50
# (mean 60).
WINDOWED = {0: 1000, 1: [1, 2, 3], 2: [4, 5, 15], 7: -50, 8: [10, 20, 30], 9: [40, 50, 60], 10: [70, 80, 180]}


# ---- §4.3, claims 8–12 (experiments/commutators/claims.py) ----

def test_commutator_windows_are_the_first_and_last_fifth_of_training_without_step_0():
    """Claims 9–11 read per seed the median over mixed pairs of the points in (0, 20%] and
    [80%, 100%] of training. With WINDOWED's defects (7 at 30–60%, 1e6 in the same-m pair):
    early = median{1, 2, 3, 4, 5, 15} = 3.5, late = median{10, ..., 80, 180} = 50; the spike
    level (95th percentile of the 33 mixed samples, step 0 included) and the largest mixed
    sample are both 1000 (the three at step 0). Claim 9's ratio late/early is 50/3.5 (η fixed).
    The three seeds' defects are WINDOWED's times 0.9, 1 and 1.1 (identical seeds are tied and
    decide nothing): the means over seeds are those numbers, the largest sample 1100, and
    late − early 46.5 (41.85, 46.5, 51.15: sd 4.65) ± 4.303 · 4.65 / √3 = [34.9, 58.1]. The norms'
    last 20% are WINDOWED's times 0.5, 1 and 2 on the three seeds: a geometric mean of 50/3.5.
    Guards: the early window including step 0 (its median would be 5) or stopping before 20%
    (2); the late window `> 0.8` (65) or reaching back to 70% (35); a mean for the median (5
    and 60); the same-m pair counted (the peak would be 1.1e6); early and late swapped."""
    d = projs([{"defect": by_point(WINDOWED) * f} for f in (0.9, 1.0, 1.1)])
    row = CM.claim_defect_grows(d)
    assert row.value == pytest.approx([3.5, 50.0, 1000.0, 1100.0], rel=1e-12) and row.verdict == S
    assert bounds(row.interval, "late − early") == (34.9, 58.1)

    def late_times(f):
        norm = by_point(WINDOWED)
        norm[8:] *= f
        return {"norm": norm, "lr": np.full(len(STEPS), 0.5)}
    row = CM.claim_norms_stay_large(projs([late_times(f) for f in (0.5, 1.0, 2.0)]))
    assert row.value == pytest.approx(50 / 3.5, rel=1e-12) and row.verdict == S


def test_claim_10_late_interval_reads_the_late_window():
    """ρ_exec / ρ_random (ρ_random 0.25 in the same blocks) by point: 10 at step 0 (excluded),
    5 at 10–20%, 3 in between, 2 at 80–100% (times 0.98, 1, 1.02 on the three seeds): early 5,
    late 2 (sd 0.04: 2 ± 4.303 · 0.04 / √3 = [1.90, 2.10]), a fall by 2.5 / 0.98, 2.5, 2.5 / 1.02
    (the t interval of its log, mapped back: [2.38, 2.63], at or above 2) with late above 1:
    *supported*, value [5, 2].
    Guards: the late interval reading the early window (no fall: *not supported*)."""
    def seed(f):
        ratio = by_point({0: 10, 1: 5, 2: 5, 8: 2 * f, 9: 2 * f, 10: 2 * f}, other=3.0, same_m=100.0)
        return {"rho_whole": ratio * 0.25, "rand_block": np.full((11, 4), 0.25), "rand_full": np.full((11, 4), 0.125)}
    row = CM.claim_enrichment(projs([seed(f) for f in (0.98, 1.0, 1.02)]))
    assert row.value == pytest.approx([5.0, 2.0], rel=1e-12) and row.verdict == S
    assert bounds(row.interval, "; late") == (1.9, 2.1) and bounds(row.interval, "early / late") == (2.38, 2.63)


def test_claim_11_spike_level_is_each_seeds_95th_percentile():
    """D = s … 50 along the run (s = 1, 2, 3 on the three seeds: it grows by 0.75 (50 − s)) in
    the 3 mixed pairs of each seed (33 samples; the same-m pair 1e6, not counted). Three samples
    of a spike at 50% of training, 145, 150, 155 on the three seeds: the 95th percentile (rank
    30.4 of 0…32) is the spike, mean 150 ([138, 162]), *supported*. Two samples: 50 + 0.4 (spike
    − 50) = 88, 90, 92 ([85, 95]), below 100 although the largest sample is 155: *not supported*.
    Seeds at 150, 150 and 90: mean 130, interval [44, 216]: *inconclusive*.
    Guards: the largest sample (155: *supported* for two spikes); the smallest or largest seed
    for the interval (*not supported* / *supported* on the mixed seeds); the same-m pair counted."""
    def seed(n_spikes, spike=150.0, start=1.0):
        d = np.repeat(np.linspace(start, 50, 11)[:, None], 4, 1)
        d[:, 3] = 1e6
        d[5, :n_spikes] = spike
        return {"defect": d}
    row = CM.claim_defect_grows(projs([seed(3, 145.0, 1.0), seed(3, 150.0, 2.0), seed(3, 155.0, 3.0)]))
    assert row.value[2:] == [150.0, 155.0] and row.verdict == S
    row = CM.claim_defect_grows(projs([seed(2, 145.0, 1.0), seed(2, 150.0, 2.0), seed(2, 155.0, 3.0)]))
    assert row.value[2:] == [pytest.approx(90.0), 155.0] and row.verdict == N
    assert bounds(row.interval, "95th percentile") == (85, 95)
    row = CM.claim_defect_grows(projs([seed(3, start=1.0), seed(3, start=2.0), seed(2, start=3.0)]))
    lo, hi = bounds(row.interval, "95th percentile")
    half = t975(2) * np.std([150, 150, 90], ddof=1) / math.sqrt(3)
    assert (lo, hi) == (round(130 - half), round(130 + half)) and row.verdict == I


def test_claim_12_is_the_median_over_pairs_per_seed():
    """Per seed, 30 of the 33 mixed pairs have ρ_exec / ρ_random = 0.5 f and 3 have 20 f (f = 0.98,
    1, 1.02 on the three seeds): the median is 0.5 f, mean 0.5 ([0.475, 0.525]: not enriched,
    *supported*), value 0.5 (the median of all seeds' pairs); the mean 2.27 would be enriched.
    Guards: the per-seed median turned into a mean (*not supported*)."""
    rho = by_point({4: 0.2}, other=0.005, same_m=0.5)           # ratio 20 at one point, 0.5 elsewhere
    row = CM.claim_negligible_inside(projs([{"rho_whole": rho * f, "rand_block": np.full((11, 4), 0.01),
                                             "rho_g_whole": np.full((11, 4), 0.1)} for f in (0.98, 1.0, 1.02)]))
    assert row.value == pytest.approx(0.5) and row.verdict == S
    assert bounds(row.interval, "ratio") == (0.5, 0.5)


def test_claim_8_share_is_the_median_over_points_of_the_median_over_pairs():
    """ρ = 0.6 (√(1−ρ²) = 0.8) in mixed pair 0 at points 0–5 and in pair 1 at points 5–10,
    0.1 f (f = 0.9, 1, 1.1 on the three seeds: share 0.9959, 0.9950, 0.9939) otherwise; the
    same-m pair has ρ = 0.99 (share 0.14, not counted). Only point 5 has a median over pairs of
    0.8, so the median over points is √(1 − (0.1 f)²) > 95%; chance (a random subspace's ρ 0.2)
    is 0.9798 below it (share − chance's 0.0152 mean, sd 0.0010: [0.0127, 0.0177]): *supported*,
    value the mean of √(1 − (0.1 f)²), "lowest point 80.0%", the authors' 1 − ρ in the last 20%
    1 − 0.1 f, 90.0 ± 0.8% (median of 0.6 ×3 and 0.1 f ×6).
    Guards: the median over points per pair first (pairs 0 and 1 at 0.8: *not supported*);
    the same-m pair counted (0.8975: *not supported*); chance read from ρ_exec (null 0.995)."""
    def seed(f):
        rho = np.full((len(STEPS), 4), 0.1 * f)
        rho[:6, 0] = rho[5:, 1] = 0.6
        rho[:, 3] = 0.99
        return {"rho_whole": rho, "rand_block": np.full((11, 4), 0.2)}
    fs = (0.9, 1.0, 1.1)
    row = CM.claim_perpendicular(projs([seed(f) for f in fs]))
    assert row.verdict == S and row.value == pytest.approx(np.mean([math.sqrt(1 - (0.1 * f) ** 2) for f in fs]))
    assert row.null_value == pytest.approx(math.sqrt(1 - 0.04))
    assert "lowest point 80.0 ± 0.0%" in row.measured and "last 20%: 90.0 ± 0.8%" in row.measured
    assert bounds(row.interval, "share − chance's") == pytest.approx((0.0127, 0.0177), abs=1e-4)


def test_basis_sweep_windows():
    """The basis sweep's windows are claim 10's: with WINDOWED's ratios at every basis and K,
    early 3.5 and late 50 for each. Guards: the same window bugs in ``bases.windows``."""
    ratio = np.broadcast_to(by_point(WINDOWED)[:, :3], (len(BA.BASES), len(BA.KS), 11, 3))
    w = BA.windows([{"steps": STEPS, "ratio": ratio}] * 2)
    assert set(w) == {(b, k) for b in BA.BASES for k in BA.KS}
    for early, late in w.values():
        assert list(early) == [3.5, 3.5] and list(late) == [50.0, 50.0]


# ---- the basis and K sweep (experiments/commutators/bases.py) on a synthetic run ----

def synthetic_sweep(monkeypatch):
    """``sweep_of_run`` on a one-layer model (d_model 4, one head of 2: 8 entries per
    attention matrix) whose every attention matrix moves by e_0 per checkpoint over 11
    checkpoints, with a bump of 3.5 along e_1 at checkpoint 5 (uncorrelated with the drift:
    the trajectory PCA's directions are e_0, variance 10, and e_1, variance 1.01); W_O alone
    also wobbles by ±0.01 along e_2 (a third direction, too small to move any r90).
    Commutators at checkpoints 0 and 10: a mixed pair with delta = e_0 + e_3 of W_Q plus one
    unit on an embedding entry, and g_A = e_0 of every attention matrix; a same-m pair (not
    counted) with delta on W_K and g_A = 3 e_1 of every attention matrix."""
    from minimanifold.analysis import execution
    from minimanifold.model.config import ModelConfig
    from minimanifold.model.transformer import attention_param_names, param_shapes
    cfg = ModelConfig(d_vocab=8, d_vocab_out=4, n_ctx=4, d_model=4, n_heads=1, d_head=2, n_layers=1)
    names = attention_param_names(cfg)
    t = np.arange(11.0)
    X = np.zeros((11, 8))
    X[:, 0], X[5, 1] = t, 3.5
    snaps = {n: X.copy() for n in names}
    snaps[names[3]][:, 2] = 0.01 * (-1.0) ** t
    snaps[ALL] = np.concatenate([snaps[n] for n in names], axis=1)
    traj = {n: snaps[n].reshape(11, *param_shapes(cfg)[n]) for n in names}
    traj["steps"] = 100 * np.arange(11)
    off, P = execution.offsets(cfg), execution.n_params(cfg)
    other = next(n for n in off if n not in names)
    delta, g = np.zeros((2, 2, P)), np.zeros((2, 2, P))
    delta[:, 0, [off[names[0]][0], off[names[0]][0] + 3, off[other][0]]] = 1.0
    delta[:, 1, off[names[1]][0] + 3] = 1.0
    for n in names:
        g[:, 0, off[n][0]] = 1.0
        g[:, 1, off[n][0] + 1] = 3.0
    data = {"steps": np.array([0, 1000]), "index": np.array([0, 10]), "kind": np.array([[0, 1], [0, 1]]),
            "delta": delta, "g_A": g}
    monkeypatch.setattr(BA, "run_configs", lambda d: (cfg, None, None))
    monkeypatch.setattr(BA, "measure", lambda d: "commutators.npz")
    monkeypatch.setattr(BA, "read_npz", lambda path: data)
    monkeypatch.setattr(BA, "load_trajectory", lambda d: traj)
    monkeypatch.setattr(BA, "attention_trajectories", lambda d, c: snaps)
    return BA.sweep_of_run("run")


def test_basis_sweep_baseline_uses_the_directions_it_has(monkeypatch):
    """Every basis here holds e_0 of W_Q and none holds e_3 or the embedding, so ρ(δ) = 1/√3.
    The block-matched baseline of k_b directions in each 8-entry matrix is √(k_WQ/8 · 2/3) (W_Q
    holds 2 of δ's 3 units, no other matrix any), so the ratio is 2/√k_WQ with k_WQ the
    directions W_Q's own basis has: the trajectory PCA has 2 (3 in W_O, which δ misses):
    2 at K = 1, √2 at every K >= 2; the weights and drift SVDs of t e_0 have 1 (ratio 2) and
    none in W_Q at step 0 (W_0 = 0, no drift: NaN; W_O's 0.01 e_2 gives the weights SVD one
    direction there, which δ misses: ρ = 0, no baseline, NaN); the SVD of the mixed pairs' mean
    gradient has 1 (2) at both points.
    Guards: the baseline at the nominal K (at K = 4 it would be 1); the most directions of
    any matrix (W_O's 3); the same-m pair's delta or gradient counted; ρ without its root;
    the drift from checkpoint 1 or the weights of the last checkpoint (finite at step 0)."""
    sw = synthetic_sweep(monkeypatch)
    b = {kind: i for i, kind in enumerate(BA.BASES)}
    assert sw["ratio"].shape == (4, len(BA.KS), 2, 1)
    traj_pca = [2.0] + [math.sqrt(2)] * (len(BA.KS) - 1)
    for point in (0, 1):
        np.testing.assert_allclose(sw["ratio"][b["trajectory PCA"], :, point, 0], traj_pca, rtol=1e-9)
        np.testing.assert_allclose(sw["ratio"][b["gradient SVD"], :, point, 0], 2.0, rtol=1e-9)
        np.testing.assert_allclose(sw["rho"][b["trajectory PCA"], :, point, 0], 1 / math.sqrt(3), rtol=1e-9)
    assert sw["k_used"].shape == (4, len(BA.KS), 2, 4)                  # [basis, K, point, matrix]
    assert sw["k_used"][b["trajectory PCA"], :, 0].tolist() == [[1] * 4, [2] * 4] + [[2, 2, 2, 3]] * 4   # W_O: 3
    for kind in ("weights SVD", "drift SVD"):
        assert np.isnan(sw["ratio"][b[kind], :, 0]).all()
        np.testing.assert_allclose(sw["ratio"][b[kind], :, 1, 0], 2.0, rtol=1e-9)
    # step 0: no drift anywhere (ρ NaN); W_0 is 0 but for W_O's 0.01 e_2, one direction δ misses
    assert (sw["k_used"][b["drift SVD"], :, 0] == 0).all() and np.isnan(sw["rho"][b["drift SVD"], :, 0]).all()
    assert sw["k_used"][b["weights SVD"], :, 0].tolist() == [[0, 0, 0, 1]] * len(BA.KS)
    assert (sw["rho"][b["weights SVD"], :, 0] == 0).all()


def test_basis_sweep_baseline_uses_each_matrixs_own_k(monkeypatch):
    """Issue 23: a basis of 4 directions in W_Q (e_0, e_1, e_2, e_4) and 1 in each other matrix
    (e_7, which δ misses). δ = e_0 + e_3 of W_Q plus one embedding unit: ρ² = 1/3 at every K.
    W_Q's own k_WQ = min(K, 4): baseline² = (k_WQ/8 · 2)/3, ratio 2/√k_WQ = 2, √2, 1, 1, 1, 1.
    Guards: the fewest directions over matrices in every matrix's baseline (1: ratio 2 at
    every K); the most (4 in W_Q: ratio 1 at K = 1)."""
    def fixed_basis(kind, name, k, j, traj, whole, grad_mean):
        cols = [0, 1, 2, 4] if name.endswith("W_Q") else [7]
        return np.eye(8)[:, cols[:k]]
    monkeypatch.setattr(BA, "_basis", fixed_basis)
    sw = synthetic_sweep(monkeypatch)
    expected = [2.0, math.sqrt(2), 1.0, 1.0, 1.0, 1.0]
    for b in range(len(BA.BASES)):
        for point in (0, 1):
            np.testing.assert_allclose(sw["ratio"][b, :, point, 0], expected, rtol=1e-9)
            np.testing.assert_allclose(sw["rho"][b, :, point, 0], 1 / math.sqrt(3), rtol=1e-9)
    assert sw["k_used"][0, :, 0].tolist() == [[1, 1, 1, 1], [2, 1, 1, 1]] + [[4, 1, 1, 1]] * 4


def test_basis_sweep_r90_subsets_are_the_named_checkpoints(monkeypatch):
    """The 11 checkpoints walk along e_0 with the bump at checkpoint 5. All of them: variance
    10 along e_0, 1.01 along e_1 (share 0.908): r90 1. Every 5th (0, 5, 10): 16.7 and 2.72
    (0.860): r90 2. 5 evenly spaced (0, 2, 5, 8, 10): 13.6 and 1.96 (0.874): r90 2. 10 evenly
    spaced (0, 1, 2, 3, 4, 6, ..., 10: rounded, no 5): a line, r90 1. 20 evenly spaced: all 11,
    r90 1. Guards: every 5th starting at checkpoint 1 (1, 6: r90 1); positions truncated
    instead of rounded (10 evenly spaced would hold checkpoint 5: share 0.894, r90 2)."""
    sw = synthetic_sweep(monkeypatch)
    assert [label for label, _ in BA.SUBSETS][:2] == ["every checkpoint", "every 5th checkpoint"]
    assert sw["r90_subsets"].tolist() == [1.0, 2.0, 2.0, 1.0, 1.0]


# ---- §4.1, claims 1–5 (experiments/collapse.py) and the PCA plumbing (analysis/pca.py) ----

def test_claim_5_is_the_mean_over_matrices_of_each_pairs_smallest_angle():
    """Per seed pair, the smallest principal angle is 29°, 30°, 31° in one matrix and 90° in the
    other: their means, 59.5°, 60°, 60.5°, lie above 45° (*supported*, value 60; jackknife
    [57.5, 62.5]). Tied pairs (30° in each) decide nothing. Guards: the minimum over matrices
    (30°: *inconclusive*)."""
    orientation = {"a": {"seed_pairs_deg": [[29.0, 80.0], [30.0, 80.0], [31.0, 80.0]], "random_deg": [[88.0, 89.0]]},
                   "b": {"seed_pairs_deg": [[90.0, 90.0]] * 3, "random_deg": [[88.0, 89.0]]}}
    row = CO.claim_orientation(orientation)
    assert row.value == 60.0 and row.verdict == S and row.interval.startswith("[57.5, 62.5]")
    orientation["a"]["seed_pairs_deg"] = [[30.0, 80.0]] * 3
    assert CO.claim_orientation(orientation).verdict == I


def test_claim_2_compares_q_k_with_v_o():
    """r90 5, 3, 2, 2 for W_Q, W_K, W_V, W_O on every seed: r90(Q,K) − r90(V,O) = 4 − 2 = 2,
    its matched nulls (all 6) 0. Guards: any other pairing of the four matrices (W_V with
    W_K: 1.5)."""
    g = {f"blocks.0.attn.{W}": {"r90": r, "null": {"matched": {"mean": 6.0}, "constant": {"mean": 7.0}},
                                "common": {"r90": r}}
         for W, r in zip(("W_Q", "W_K", "W_V", "W_O"), (5, 3, 2, 2))}
    g[ALL] = {"common": {"n": 40}}
    row = CO.claim_vo_below_qk([g] * 3, 1)
    assert row.value == 2.0 and row.verdict == S and "same difference for the matched null: 0.00" in row.null


def test_matched_null_walks_the_step_norms_in_their_order():
    """A walk of 20 unit-scale steps with one step of 10 in the middle (the 10th) is two
    clusters: r90 1, and so is every random walk with those step norms in that order (D =
    500). Its expanding windows hold only the first cluster up to 40% of training, one point
    past the long step at 50% (11 snapshots: r90 2), three at 60% (13: the long step
    dominates, r90 1, the final value): the run and the null's walk both settle at 0.6.
    The same norms sorted put the long step last: one point far from a random-walk cluster
    (r90 3), reached only by the last window (settling at 1.0). The constant-step null (every
    step 1.45) is a plain random walk (r90 >= 3).
    Guards: the matched null, or the walk of the null's settling point, with its step norms
    sorted; the constant null read as the matched one."""
    norms = np.r_[np.ones(9), 10.0, np.ones(10)]
    X = pca.random_walk(norms, 500, np.random.default_rng(0))
    g = GE.geometry({"blocks.0.attn.W_Q": X, ALL: X})
    for name in ("blocks.0.attn.W_Q", ALL):
        assert g[name]["r90"] == 1
        assert g[name]["null"]["matched"]["draws"] == [1, 1, 1]
        assert g[name]["null"]["constant"]["mean"] >= 3
        assert g[name]["stabilization"] == 0.6 and g[name]["null_stabilization"] == 0.6


def test_collapse_settling_points_are_the_runs_and_the_nulls():
    """A straight line (21 snapshots t e_0 in D = 500) has r90 1 in every expanding window, so
    it settles at the first: 0.1 of training. Its matched null, a random walk of 20 equal
    steps, has r90 <= 2 in its first window (3 snapshots) and 5–6 at the end (its draws), so
    it settles later. Guards: the run's settling point read from the null's windows, or the
    null's from the run's."""
    X = np.zeros((21, 500))
    X[:, 0] = np.arange(21.0)
    g = GE.geometry({"blocks.0.attn.W_Q": X, ALL: X})
    for v in g.values():
        assert v["windows"] == [1] * 10 and v["stabilization"] == 0.1 and v["r90"] == 1
        assert v["null_stabilization"] > 0.1 and min(v["null"]["matched"]["draws"]) >= 3


def test_constant_null_steps_at_the_mean_norm():
    """Most steps of zero norm (a matrix that rarely moves: median norm 0, mean 15/11): the
    constant null walks 11 steps of the mean norm, a plain random walk whose r90 does not
    depend on its scale, so it draws what the constant null of 11 unit steps draws from the
    same seed; r90 <= 10 and a finite participation ratio.
    Guards: the constant null at the median norm (a walk that never moves: r90 12, PR NaN)."""
    norms = np.r_[np.zeros(6), np.full(5, 3.0)]
    got = pca.random_walk_null(norms, 200, n_draws=3, seed=4)["constant"]
    unit = pca.random_walk_null(np.ones(11), 200, n_draws=3, seed=4)["constant"]
    assert got["draws"] == unit["draws"] and max(got["draws"]) <= 10
    assert math.isfinite(got["pr_mean"]) and got["pr_mean"] == pytest.approx(unit["pr_mean"], rel=1e-9)


def test_expanding_window_takes_the_first_ceil_f_n_snapshots():
    """25 snapshots: 0, e_1, e_2, then 0 again. The first 10% is ceil(2.5) = 3 snapshots (0,
    e_1, e_2: variances 1/3 and 1/9, r90 2); 1% is ceil(0.25) = 1, raised to the 2 a PCA
    needs (r90 1); all 25: variances 1/25 and 23/625, r90 2.
    Guards: floor for ceil (10% would be 2 snapshots: r90 1); no floor of 2 snapshots."""
    X = np.zeros((25, 5))
    X[1, 1], X[2, 2] = 1.0, 1.0
    assert pca.expanding_window(X, [0.01, 0.1, 1.0]) == [1, 2, 2]


def test_rank_at_counts_exactly_90_percent_as_reached():
    """Eigenvalues 3, 3, 3, 1: three directions hold exactly 90% (their cumulative share
    rounds to 0.8999999999999999), so r90 = 3; a hair more on the fourth direction makes it 4.
    Guards: rank_at without its rounding tolerance (4)."""
    assert np.cumsum(np.array([3.0, 3, 3, 1]) / 10)[2] < 0.9                  # the rounding at stake
    assert pca.rank_at([3.0, 3.0, 3.0, 1.0], 0.90) == 3
    assert pca.rank_at([3.0, 3.0, 3.0, 1.0 + 1e-6], 0.90) == 4
    assert pca.rank_at([9.0, 1.0], 0.90) == 1 and pca.rank_at([8.0, 1.0, 1.0], 0.90) == 2


# ---- intervals (analysis/intervals.py) ----

def test_t_quantiles_beyond_the_table_to_1e_4():
    """t_{0.975, df} (tables; e.g. R's qt(0.975, df)): 2.039513 at df 31, 2.021075 at 40,
    2.000298 at 60, 1.979930 at 120. The second-order Cornish–Fisher term is 2.9e-3 at df 31.
    Guards: dropping it."""
    for df, t in ((31, 2.039513), (40, 2.021075), (60, 2.000298), (120, 1.979930)):
        assert abs(t975(df) - t) < 1e-4, (df, t975(df))


def test_within_clips_an_interval_outside_the_range_to_its_edge():
    """An interval of accuracies lying wholly above 1 ([1.2, 1.5]) is [1, 1] in [0, 1], one
    wholly below 0 is [0, 0]: never an interval with lo > hi.
    Guards: within without its cross-clip (it would give [1.2, 1] and [0, -0.2])."""
    assert within(iv(1.2, 1.5), 0.0, 1.0)[1:3] == (1.0, 1.0)
    assert within(iv(-0.5, -0.2), 0.0, 1.0)[1:3] == (0.0, 0.0)
    assert within(iv(-0.5, 0.5), 0.0, 1.0)[1:3] == (0.0, 0.5)


# ---- claim 22 (experiments/functional_dimension.py) ----

def functional_run(pca_acc, rand_acc, final=1.0):
    c = {"k": list(FU.KS), "pca": list(pca_acc), "random": list(rand_acc), "random_matched": list(rand_acc),
         "final": final, "k_star": 4, "k_star_random": None, "k_star_random_matched": None,
         "drift_share": [0.9] * len(FU.KS)}
    return {"centred": c, "uncentred": dict(c)}


def test_claim_22_reads_k_4_against_4_random_directions():
    """Accuracy with the top k of KS = (1, 2, 3, 4, 6, 8, 12, 16) directions 0.1, 0.2, 0.3,
    0.95, 0.97, ...; with k random directions 0.96 (at k = 1), 0.3, 0.25, 0.2, 0.15, ...:
    at k = 4, 0.95 of the final accuracy and 0.95 − 0.2 = 0.75 above random (*supported*).
    Guards: reading k = 6 (0.97); subtracting the 1-random-direction control (−0.01:
    *inconclusive*)."""
    run = functional_run([0.1, 0.2, 0.3, 0.95, 0.97, 0.98, 0.99, 1.0],
                         [0.96, 0.3, 0.25, 0.2, 0.15, 0.1, 0.1, 0.1])
    row = FU.claim_functional([run] * 3)
    assert row.value == pytest.approx(0.95, abs=1e-12) and row.verdict == S
    # tied seeds: the sd floored at one probe example, 1/256: ± 4.303 / 256 / √3 = ± 0.0097
    assert bounds(row.interval, "top-4 − random") == (0.74, 0.76)


def test_claim_22_reads_the_norm_matched_control_at_k_4():
    """Top-k accuracies as above; plain random 0.2 at k = 4, but the norm-matched control at
    k = 4 reaches 0.97, above the top-4's 0.95 (at other k: 0.1): the subspace does no better
    than random directions moved as far, *not supported*; with the matched control at 0.3 at
    k = 4 (0.99 elsewhere), *supported*, top-4 − norm-matched 0.65. The uncentred curve's
    drift share at k = 1 (0.8; 0.1 elsewhere) is printed beside its k*. Guards: the plain
    control read as the matched one; the matched control read at another k; the centred
    curve's drift share."""
    run = functional_run([0.1, 0.2, 0.3, 0.95, 0.97, 0.98, 0.99, 1.0], [0.2] * 8)
    run["centred"]["random_matched"] = [0.1, 0.1, 0.1, 0.97, 0.1, 0.1, 0.1, 0.1]
    run["uncentred"] = dict(run["uncentred"], drift_share=[0.8] + [0.1] * 7)
    row = FU.claim_functional([run] * 3)
    # tied seeds: the sd floored at 1/256, ± 0.0097
    assert row.verdict == N and bounds(row.interval, "top-4 − norm-matched random") == (-0.03, -0.01)
    assert "0.80 ± 0.00 of |θT − θ0|²" in row.measured
    run["centred"]["random_matched"] = [0.99, 0.99, 0.99, 0.3, 0.99, 0.99, 0.99, 0.99]
    row = FU.claim_functional([run] * 3)
    assert row.verdict == S and bounds(row.interval, "top-4 − norm-matched random") == (0.64, 0.66)


# ---- claim 19 (experiments/m_scaling.py) ----

def test_claim_19_an_interval_touching_minus_1_is_not_wholly_outside():
    """"Not supported if one lies wholly outside [−1, 1]": [−3, −1] touches −1, so it is not
    wholly outside (*inconclusive*); nor is [1, 3]. Guards: `< −1` turned into `<= −1`."""
    assert MS.m_scaling_rule([iv(-3.0, -1.0)]) == I
    assert MS.m_scaling_rule([iv(1.0, 3.0)]) == I
    assert MS.m_scaling_rule([iv(-3.0, -1.0 - 1e-9)]) == N


def test_claim_19_compares_every_M_with_the_smallest():
    """Seeds' r90 3 at M = 1, 3.5 at M = 2, 4.5 at M = 3 (handed over in the order 3, 1, 2):
    M=2 − M=1 is 0.5, M=3 − M=1 is 1.5. The seeds are tied, so each group's sd is floored at the
    step of a mean of 12 integer r90s, 1/12: se √(2 / 144 / 3) = 0.068 on 4 Welch df (t 2.776),
    ± 0.19: [0.31, 0.69] and [1.31, 1.69], wholly above 1: *not supported*; value [3, 3.5, 4.5]
    in M order. Guards: comparing with the largest M (−1.0 and 0.0); M in dict order."""
    def v(r):
        return {"r90": [r] * 3, "null": [6.0] * 3, "final_acc": [{1: 1.0}] * 3}
    row = MS.claim_m_scaling({3: v(4.5), 1: v(3.0), 2: v(3.5)})
    assert bounds(row.interval, "M=2 − M=1:") == (0.31, 0.69) and bounds(row.interval, "M=3 − M=1:") == (1.31, 1.69)
    assert row.value == [3.0, 3.5, 4.5] and row.verdict == N


def test_claim_19_reads_the_main_runs_for_their_own_M():
    """With the main runs trained on mixed:1,2,3,4, M = 4 is served by them and every other M
    by its variant. Guards: the main runs handed to the other M's (a KeyError or wrong runs)."""
    from types import SimpleNamespace as NS
    ctx = NS(preset=NS(m_scaling=(1, 2, 3, 4), train=NS(schedule="mixed:1,2,3,4")), runs=["main"],
             variants={f"m-scaling-M{M}": [f"M{M}"] for M in (1, 2, 3)})
    assert MS.runs_per_M(ctx) == {1: ["M1"], 2: ["M2"], 3: ["M3"], 4: ["main"]}


# ---- the optimizer control (experiments/optimizer.py; its claim 21 retired) ----

def test_optimizer_arms_are_labelled_by_their_weight_decay():
    """Each arm of OPTIMIZERS trains under its own label (report() files a variant's runs
    under label_of its training config). Guards: the no-weight-decay arm labelled "AdamW"."""
    from minimanifold.trajectories.training_loop import TrainConfig
    for label, (opt, lr, wd) in OP.OPTIMIZERS.items():
        assert OP.label_of(TrainConfig(optimizer=opt, lr=lr, weight_decay=wd)) == label
    assert OP.label_of(TrainConfig(optimizer="adamw", weight_decay=0.0)) == "AdamW, no weight decay"


def test_optimizer_summary_reads_the_matched_null():
    """Per seed, the attention matrices have r90 2, 3, 3, 8 (mean 4, median 3) and PR 1, 1,
    1, 5 (mean 2), matched null 5 (PR 2.5), constant null 6 (PR 2.6): the summary's r90 is 4,
    PR 2, nulls 5 and 2.5, its final accuracies the runs' own.
    Guards: the constant-step null in place of the matched one; a median over matrices."""
    mats = {f"blocks.0.attn.{W}": {"r90": r, "participation_ratio": pr, "r95": 9,
                                   "null": {"matched": {"mean": 5.0, "pr_mean": 2.5, "pr_sd": 0.5},
                                            "constant": {"mean": 6.0, "pr_mean": 2.6, "pr_sd": 0.6}}}
            for W, r, pr in (("W_Q", 2, 1.0), ("W_K", 3, 1.0), ("W_V", 3, 1.0), ("W_O", 8, 5.0))}

    class Ctx:
        n_layers = 1

        def per_run(self, measure, runs):
            assert measure is CO.cached_geometry
            return [mats for _ in runs]
    runs = [{"dir": f"r{i}", "summary": {"final_acc": {"1": 1.0, "2": 0.5 + i / 10}}} for i in range(3)]
    s = OP.summarize(Ctx(), runs)
    assert s["r90"] == [4.0] * 3 and s["null"] == [5.0] * 3
    assert s["pr"] == [2.0] * 3 and s["null_pr"] == [2.5] * 3
    assert s["final_acc"] == [{1: 1.0, 2: 0.5}, {1: 1.0, 2: 0.6}, {1: 1.0, 2: 0.7}]


def test_the_optimizer_report_draws_every_arm_and_decides_nothing(tmp_path, monkeypatch):
    """Claim 21 retired: the report returns no row and one figure, fed the main runs under
    the preset's own optimizer and each trained arm under its label (an arm whose runs all
    diverged is left out). Guards: a row returned; an arm's runs filed under the main label."""
    import dataclasses
    from minimanifold.trajectories.presets import PAPER
    drawn = {}
    monkeypatch.setattr(OP, "summarize", lambda ctx, runs: {"runs": runs})
    monkeypatch.setattr(OP, "fig_optimizer", lambda per_opt, caption, path, trains: drawn.update(per_opt) or path)

    class Ctx:
        preset, runs, extra_caption = PAPER, ["main"], "caption"
        variants = {"optimizer-adamw": ["adamw"], "optimizer-adamw-no-weight-decay": []}

        def path(self, name):
            return str(tmp_path / name)
    rows, figs = OP.report(Ctx())
    assert rows == {} and figs == [str(tmp_path / "fig_optimizer.png")]
    assert drawn == {"SGD": {"runs": ["main"]}, "AdamW": {"runs": ["adamw"]}}
    assert OP.EXPERIMENT.rules == {} and dataclasses.is_dataclass(OP.EXPERIMENT)


# ---- claim 17 (experiments/architecture.py) ----

def curriculum_run(a1, a2=1.0):
    return {"summary": {"final_acc": {"1": a1, "2": a2}, "config": {"train": {"n_probe": 256}}}}


def test_claim_17_forgetting_is_from_the_best_accuracy():
    """Each curriculum run's m = 1 accuracy goes 0.2 (step 0, chance) -> 1.0 -> 0.3 (final):
    it forgot 1.0 − 0.3 = 0.7 (*supported*, value 0.7); the mixed runs go 0.2 -> 1.0 -> 1.0.
    Guards: the first recorded accuracy for the best (0.2 − 0.3 < 0: *not supported*)."""
    hist = [[{"acc": {"1": 0.2, "2": 0.2}}, {"acc": {"1": 1.0, "2": 0.2}}, {"acc": {"1": 0.3, "2": 1.0}}]] * 3
    mixed = [[{"acc": {"1": 0.2, "2": 0.2}}, {"acc": {"1": 1.0, "2": 0.9}}, {"acc": {"1": 1.0, "2": 1.0}}]] * 3
    row = AR.claim_curriculum([curriculum_run(1.0)] * 3, [curriculum_run(0.3)] * 3, mixed, hist)
    assert row.value == pytest.approx(0.7) and row.verdict == S


def test_claim_17_reads_each_group_with_its_own_histories():
    """The mixed runs' m = 1 accuracy goes 0.2 -> 0.6 and ends at 0.6 (never learned well, never
    forgot: 0); the curriculum's goes 0.2 -> 1.0 -> 0.3 (0.7): *supported*. Guards: the
    histories swapped (curriculum 0.6 − 0.3 = 0.3, mixed 1.0 − 0.6 = 0.4: *not supported*);
    the first accuracy for the mixed runs' best (0.2 − 0.6 clipped to 0: the same verdict, so
    the next case): mixed runs at 0.2 -> 1.0 -> 0.5 forgot 0.5, *not supported*."""
    cur = [[{"acc": {"1": 0.2, "2": 0.2}}, {"acc": {"1": 1.0, "2": 0.2}}, {"acc": {"1": 0.3, "2": 1.0}}]] * 3
    low = [[{"acc": {"1": 0.2, "2": 0.2}}, {"acc": {"1": 0.6, "2": 0.9}}, {"acc": {"1": 0.6, "2": 1.0}}]] * 3
    row = AR.claim_curriculum([curriculum_run(0.6)] * 3, [curriculum_run(0.3)] * 3, low, cur)
    assert row.verdict == S and row.null_value == pytest.approx(0.0) and row.value == pytest.approx(0.7)
    forgot = [[{"acc": {"1": 0.2, "2": 0.2}}, {"acc": {"1": 1.0, "2": 0.9}}, {"acc": {"1": 0.5, "2": 1.0}}]] * 3
    row = AR.claim_curriculum([curriculum_run(0.5)] * 3, [curriculum_run(0.3)] * 3, forgot, cur)
    assert row.verdict == N and row.null_value == pytest.approx(0.5)
    # tied seeds: the sd floored at one of 256 probe examples, 0.5 ± 4.303 / 256 / √3 = [0.49, 0.51]
    assert bounds(row.interval, "mixed") == (0.49, 0.51)


def test_claim_17_a_mixed_run_that_never_learned_an_m_forgot_nothing():
    """Two of three mixed runs end at 0.5 on m = 2 and were never higher (they did not learn it,
    and did not forget m = 1): forgetting is what is tested, *supported*. The old conjunct
    "every mixed run ends ≥ 0.95" would have read *not supported*."""
    cur = [[{"acc": {"1": 1.0, "2": 0.2}}, {"acc": {"1": 0.3, "2": 1.0}}]] * 3
    mixed_h = [[{"acc": {"1": 1.0, "2": 0.5}}, {"acc": {"1": 1.0, "2": 0.5}}]] * 3
    mixed = [curriculum_run(1.0), curriculum_run(1.0, 0.5), curriculum_run(1.0, 0.5)]
    assert AR.claim_curriculum(mixed, [curriculum_run(0.3)] * 3, mixed_h, cur).verdict == S


# ---- claim 7 (experiments/bubbling.py) ----

def test_claim_7_gap_is_a_distance_either_way():
    """Entropy 3.4 at step 0, 1.2 at 10% (92% of its fall to 1.0: done at 0.1), then 1.1,
    1.0, ...; the top-k subspace settles (``angle_settled``) only at 0.9: a gap of |0.1 − 0.9|
    = 0.8 (tied seeds, the sd floored at the 10% grid: [0.55, 1]: *not supported*, value 0.8).
    Entropy 10, 5, 1 (exactly 90% fallen: done at 0.2), 0.5, 0, ...: against a subspace
    settled at 0.2, a gap of 0. The fall is from the first to the last checkpoint (as claim
    6's): entropy 10, 5, 1.5, 0.5, 0, ..., 0, 1 falls 9 in all, 8.5 of it (94%) by 0.2. The
    matched null's settling point (0.1 here) is not the collapse's. Guards: the signed gap
    (−0.8, clipped to [0, 0]: *supported*); `> 0.9` (0.3); the fall measured to the lowest
    entropy (10: 85% by 0.2, so 0.3); the null's settling point read as the collapse's."""
    steps = list(range(0, 1001, 100))
    ent = [3.4, 1.2, 1.1] + [1.0] * 8
    b = [{"steps": steps, "entropy": {1: [[e, e] for e in ent]}}] * 3
    row = BU.claim_bubbling_with_collapse(b, [{ALL: {"angle_settled": 0.9, "null_angle_settled": 0.1}}] * 3)
    assert row.value == pytest.approx(0.8) and row.verdict == N
    ent = [10.0, 5.0, 1.0, 0.5] + [0.0] * 7
    b = [{"steps": steps, "entropy": {1: [[e, e] for e in ent]}}] * 3
    row = BU.claim_bubbling_with_collapse(b, [{ALL: {"angle_settled": 0.2, "null_angle_settled": 0.1}}] * 3)
    assert row.value == 0.0 and "entropy 90% fallen at 20 ± 0%" in row.measured
    ent = [10.0, 5.0, 1.5, 0.5] + [0.0] * 6 + [1.0]          # dips below where it ends
    b = [{"steps": steps, "entropy": {1: [[e, e] for e in ent]}}] * 3
    row = BU.claim_bubbling_with_collapse(b, [{ALL: {"angle_settled": 0.2, "null_angle_settled": 0.1}}] * 3)
    assert row.value == 0.0


# ---- resuming (trajectories/training_loop.py) ----

def test_a_resumed_run_continues_its_step_size_schedule(tmp_path):
    """A 20-step run with a 16-step warmup, stopped after its step-10 checkpoint and resumed,
    equals the uninterrupted run bit for bit: step s uses eta_s whoever runs it.
    Guards: a resumed run restarting the schedule at its first step (steps 10–19 would warm
    up again from lr/16)."""
    from minimanifold.trajectories.presets import SMOKE
    spec = SMOKE.specs(seeds=[0], steps=20, ckpt_every=10, lr_schedule="warmup:16")[0]
    a, b = whole_and_resumed(tmp_path, spec)
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_optimizer_ticks_name_each_arm_schedule_and_seeds_plotted(tmp_path, monkeypatch):
    """The paper preset's tick labels ran into each other on one line ("lr 0.15, warmup 1000
    steps," beside "lr 0.0003, constant"), and a partial set plotted 1 seed of an arm under a
    caption of 3 per comparison: each tick is short lines ending in the seeds it plots."""
    import dataclasses

    import matplotlib.pyplot as plt
    from minimanifold.experiments import optimizer as OP
    from minimanifold.trajectories.presets import PAPER
    assert OP.arm_label("SGD", PAPER.train, 10) == "SGD\nlr 0.15\nwarmup 1000 steps,\nthen cosine decay to 0\n(10 seeds)"
    assert OP.arm_label("AdamW", dataclasses.replace(PAPER.train, lr=3e-4, lr_schedule="constant"), 1) \
        == "AdamW\nlr 0.0003\nconstant\n(1 seed)"
    drawn = []
    monkeypatch.setattr(OP, "save_figure", lambda fig, path: drawn.append(fig) or str(path))
    arm = lambda n: {"r90": [2.0] * n, "null": [3.0] * n, "pr": [1.5] * n, "null_pr": [2.0] * n,   # noqa: E731
                     "final_acc": [{1: 1.0}] * n}
    OP.fig_optimizer({"SGD": arm(10), "AdamW": arm(3)}, "caption", tmp_path / "f.png",
                     {"SGD": PAPER.train, "AdamW": PAPER.train})
    ticks = [t.get_text() for t in drawn[0].axes[0].get_xticklabels()]
    assert [t.splitlines()[-1] for t in ticks] == ["(10 seeds)", "(3 seeds)"]
    assert max(len(line) for t in ticks for line in t.splitlines()) <= 24
    plt.close(drawn[0])
