"""§4.1's per-run geometry (experiments/geometry.py) and claims 1–5's plumbing: known answers
for when a window's subspace settles, the common snapshot count, the exact null, the seeds'
orientation kept across a configuration, and the snapshot-count check (issue 23 §2, §3, §4)."""
import itertools
import os

import numpy as np
import pytest

from minimanifold.analysis import pca
from minimanifold.analysis.intervals import Interval
from minimanifold.experiments import collapse as CO, geometry as GE, snapshot_count as SC
from minimanifold.trajectories.rundir import ALL

S, N, I = "supported", "not supported", "inconclusive"


def corner(n_each=10, D=40):
    """0, e_0, ..., n e_0, then n e_0 + e_1, ..., n e_0 + n e_1: a path that turns once."""
    X = np.zeros((2 * n_each + 1, D))
    X[:n_each + 1, 0] = np.arange(n_each + 1)
    X[n_each + 1:, 0] = n_each
    X[n_each + 1:, 1] = np.arange(1, n_each + 1)
    return X


def test_a_straight_line_has_settled_from_the_first_window():
    X = np.zeros((21, 30))
    X[:, 0] = np.arange(21.0)
    angles = GE.subspace_windows(X, pca.FRACTIONS, 1)
    assert np.allclose(angles, 0, atol=1e-4) and GE.settled_from(angles) == 0.1


def test_a_path_that_turns_settles_once_its_window_holds_the_turn():
    """21 snapshots, the turn at index 10. Windows take ceil(f 21) snapshots: 50% is 11
    (0..10, still on e_0: one direction, so 90° from the whole run's two), 60% is 13 (past the
    turn: span{e_0, e_1}, the whole run's: 0°). Guards: floor for ceil (60% would be 12
    snapshots, still settled, but 50% 10), the fewer-directions case read as 0°, settling
    read from the first window below the angle instead of every later one."""
    angles = GE.subspace_windows(corner(), pca.FRACTIONS, 2)
    assert angles[:5] == [90.0] * 5
    assert np.allclose(angles[5:], 0, atol=1e-4)
    assert GE.settled_from(angles) == 0.6


def test_settling_needs_every_later_window_strictly_below_30_degrees():
    f = pca.FRACTIONS
    assert GE.settled_from([90, 10, 40, 10, 10, 10, 10, 10, 10, 0], f) == 0.4
    assert GE.settled_from([90, 10, 30.0, 10, 10, 10, 10, 10, 10, 0], f) == 0.4       # 30 is not below 30
    assert GE.settled_from([90, 10, 29.99, 10, 10, 10, 10, 10, 10, 0], f) == 0.2
    assert GE.settled_from([90] * 9 + [45], f) == 1.0


def test_common_snapshots_are_40_evenly_spaced_with_both_ends():
    idx = GE.common_snapshots(301)
    assert len(idx) == 40 and idx[0] == 0 and idx[-1] == 300
    assert set(np.diff(idx)) <= {7, 8}
    assert GE.common_snapshots(21).tolist() == list(range(21))        # fewer than 40: all of them
    assert GE.common_snapshots(40).tolist() == list(range(40))


def test_the_exact_null_is_the_closed_form():
    """Equal steps, n snapshots: r90 = 6 for n >= 20, participation ratio -> 5/2
    (Antognini & Sohl-Dickstein 2018); a single step is one direction."""
    assert GE.exact_null(np.ones(39)) == {"r90": 6, "participation_ratio": pytest.approx(2.493, abs=1e-3)}
    assert GE.exact_null(np.ones(1))["r90"] == 1


def test_geometry_records_both_counts_and_both_nulls():
    """301 snapshots of a walk: the common count sees 40 of them, and its exact null is that of
    the walk's 39 steps between them; the preset's own count keeps every snapshot."""
    X = pca.random_walk(np.ones(300), 600, np.random.default_rng(1))
    g = GE.geometry({"blocks.0.attn.W_Q": X, ALL: X})[ALL]
    idx = GE.common_snapshots(301)
    assert g["n"] == 301 and g["common"]["n"] == 40
    assert g["common"]["r90"] == pca.rank_at(pca.pca_spectrum(X[idx]), 0.9)
    assert g["common"]["exact_null"] == GE.exact_null(pca.step_norms(X[idx]))
    assert g["exact_null"] == GE.exact_null(pca.step_norms(X))
    assert g["angle_settled"] == GE.settled_from(g["angle_windows"]) and len(g["angle_windows"]) == 10


def test_seed_orientation_is_kept_in_the_configurations_folder(tmp_path):
    """Three runs' directions: the cached orientation holds each pair's angles (in
    combinations order), is named by the seeds, and is read back without the directions."""
    rng = np.random.default_rng(0)
    dirs = [np.linalg.qr(rng.standard_normal((50, 3)))[0] for _ in range(3)]
    dirs[2] = dirs[0]                                                  # seeds 0 and 2 agree
    runs = []
    for seed, V in enumerate(dirs):
        d = tmp_path / "add-x" / f"seed_{seed}"
        os.makedirs(d)
        summary(d, 0.1 * seed)
        GE.cached_dirs(str(d), lambda _, V=V: {"blocks.0.attn.W_Q": V})
        runs.append(str(d))
    o = GE.cached_orientation(runs)["blocks.0.attn.W_Q"]
    assert (tmp_path / "add-x" / GE.orientation_name(runs)).is_file()
    assert GE.orientation_name(runs).startswith(f"orientation_v{GE.ANALYSIS_VERSION}_seeds_0-1-2-")
    assert len(o["seed_pairs_deg"]) == 3 and max(o["seed_pairs_deg"][1]) < 1e-4     # the pair (0, 2)
    assert min(o["seed_pairs_deg"][0]) > 1.0
    M = CO.pair_matrix({"blocks.0.attn.W_Q": o})
    for value, (i, j) in zip(o["seed_pairs_deg"], itertools.combinations(range(3), 2)):
        assert M[i, j] == M[j, i] == min(value)
    assert np.isnan(np.diag(M)).all()
    with pytest.raises(ValueError, match="one configuration"):
        GE.cached_orientation([runs[0], str(tmp_path / "other" / "seed_1")])


def test_seed_orientation_over_the_run_cache_and_the_records_is_read_where_it_is(tmp_path):
    """Seed 0 in the run cache, seeds 1-2 in the records' folder of the same configuration
    (a sitting that retrained seed 0): the orientation cached in the records' folder is read,
    not recomputed (the records hold no directions); where neither folder holds it, it is
    computed in the first. Guards: the folders required to be one (the reported crash)."""
    from minimanifold.files import record_digest, save_json
    cache, rec = tmp_path / "runs" / "add-x", tmp_path / "records" / "add-x"
    dirs = [str(cache / "seed_0"), str(rec / "seed_1"), str(rec / "seed_2")]
    for i, d in enumerate(dirs):
        os.makedirs(d)
        summary(d, 0.1 * i)
    name = GE.orientation_name(dirs)
    save_json(str(rec / name), {"blocks.0.attn.W_Q": {"seed_pairs_deg": [[1.0]], "random_deg": [2.0], "D": 5}})
    record_digest(str(rec / name))
    assert GE.cached_orientation(dirs)["blocks.0.attn.W_Q"]["D"] == 5
    assert not (cache / name).exists()
    rng = np.random.default_rng(1)
    for d in dirs[:2]:
        GE.cached_dirs(d, lambda _: {"blocks.0.attn.W_Q": np.linalg.qr(rng.standard_normal((6, 3)))[0]})
    o = GE.cached_orientation(dirs[:2])                                   # seeds 0-1: in neither folder
    assert (cache / GE.orientation_name(dirs[:2])).is_file() and o["blocks.0.attn.W_Q"]["D"] == 6
    before = GE.orientation_name(dirs[:2])
    summary(dirs[1], 0.7)                                     # seed 1 retrained to another end: another run
    after = GE.orientation_name(dirs[:2])
    assert after != before and GE.orientation_name(dirs) != name and not (cache / after).exists()
    GE.cached_orientation(dirs[:2])                           # measured anew, not read from the replaced run's file
    assert (cache / after).is_file()


def summary(d, loss):
    """A finished run's summary: its end is what names it (``records.tag``)."""
    from minimanifold.files import save_json
    save_json(os.path.join(d, "summary.json"), {"final_step": 100, "final_loss": loss, "final_acc": {"1": 1.0}})


def test_a_run_tag_is_its_end(tmp_path):
    """``records.tag``: 8 hex digits of the run's final step, loss and accuracies; two runs that
    end alike share it, one that ends elsewhere has its own; other summary fields do not enter."""
    from minimanifold.files import save_json
    from minimanifold.trajectories import records
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    for d in (a, b):
        os.makedirs(d)
    summary(a, 0.25)
    save_json(os.path.join(b, "summary.json"), {"final_step": 100, "final_loss": 0.25, "final_acc": {"1": 1.0},
                                                "seconds": {"steps": 9.0}})
    assert records.tag(a) == records.tag(b) and len(records.tag(a)) == 8 and int(records.tag(a), 16) >= 0
    for change in ({"final_loss": 0.2500001}, {"final_step": 101}, {"final_acc": {"1": 0.99}}):
        save_json(os.path.join(b, "summary.json"), {"final_step": 100, "final_loss": 0.25, "final_acc": {"1": 1.0},
                                                    **change})
        assert records.tag(b) != records.tag(a), change


def iv(lo, hi, n=5):
    return Interval((lo + hi) / 2, lo, hi, n, "t")


def test_count_rule_keeps_a_verdict_only_when_both_counts_give_it():
    for v in (S, N, I):
        assert SC.count_rule(v, v) == v
    for a, b in ((S, N), (S, I), (N, S), (I, N)):
        assert SC.count_rule(a, b) == I


def geom(r90s, common_r90s, null=6.0, common_null=6):
    """A run's geometry with the given r90 per matrix (one layer) at both counts."""
    g = {f"blocks.0.attn.{W}": {"r90": r, "null": {"matched": {"mean": null}, "constant": {"mean": 7.0}},
                                "exact_null": {"r90": 6}, "common": {"r90": c, "exact_null": {"r90": common_null}}}
         for W, r, c in zip(("W_Q", "W_K", "W_V", "W_O"), r90s, common_r90s)}
    g[ALL] = {"common": {"n": 40}}
    return g


def test_claim_1_reads_the_headline_and_shows_the_other_ranges_and_the_count():
    """r90 means 3.25, 3.5 (4 seeds), 3.75: the interval [3.33, 3.67] lies inside 3–4 at both
    counts (supported), and outside 2–3 (not supported); from 40 snapshots the same. At 40
    snapshots r90 near 2 instead: the verdicts differ, so the row reads inconclusive and says
    why."""
    mid = [geom([3, 3, 4, 4], [3, 3, 4, 4])] * 4
    seeds = [geom([3, 3, 3, 4], [3, 3, 3, 4]), *mid, geom([3, 4, 4, 4], [3, 4, 4, 4])]
    row = CO.claim_r90_range(seeds, 1)
    assert row.verdict == S and row.value == pytest.approx(3.5)
    assert "under 2–3 (Fig 1's panel text): not supported" in row.interval
    assert "under 3–5 (Fig 1 caption): supported" in row.interval
    assert "from 40 evenly spaced snapshots: the same verdict" in row.interval
    assert "exact expected spectrum, no sampling: 6.00" in row.null
    flipped = [geom([3, 3, 3, 4], [2, 2, 2, 2]), *[geom([3, 3, 4, 4], [2, 2, 2, 3])] * 4, geom([3, 4, 4, 4], [2, 2, 3, 2])]
    row = CO.claim_r90_range(flipped, 1)
    assert row.verdict == I and "not supported (against supported from every checkpoint)" in row.interval


def test_claim_2_and_4_are_checked_at_the_common_count_too():
    """Q, K above V, O by 2, 2, 2.5 (twice: 6 seeds) at the preset's count, below by 1, 1, 1.5 at the
    common count (sd floored at the resolution 1/(2L) = 0.5):
    claim 2 supported at one count and not at the other, so inconclusive. Claim 4: r90 that
    differs by up to 2 across seeds at the common count only."""
    seeds = [geom([5, 5, 3, 3], [3, 3, 4, 4]), geom([5, 4, 3, 2], [2, 3, 3, 4]), geom([5, 5, 2, 3], [3, 2, 4, 4])] * 2
    row = CO.claim_vo_below_qk(seeds, 1)
    assert "not supported (against supported from every checkpoint)" in row.interval
    assert row.verdict == I and "depends on the snapshot count" in row.interval
    same = [geom([3, 3, 3, 3], [1, 1, 1, 1]), geom([3, 4, 3, 3], [3, 3, 3, 3]), geom([3, 3, 3, 4], [5, 5, 5, 5])] * 2
    spread = CO.claim_same_dimension(same, 1)
    assert "depends on the snapshot count" in spread.interval and spread.verdict == I


def test_claim_3_reads_the_subspace_settling_against_the_walks():
    """Settling at 0.1–0.2 against the walk's 0.5–0.7 (6 seeds): supported. Settling at 0.5–0.7
    like the walk: later than 0.3 but no different from a walk, inconclusive (the old rule: not
    supported). Settling at 0.8–1.0, later than the walk's: not supported."""
    def g(s, sn, r=0.1):
        return {ALL: {"angle_settled": s, "null_angle_settled": sn, "stabilization": r}}
    row = CO.claim_early_collapse([g(0.2, 0.6), g(0.1, 0.7), g(0.2, 0.5)] * 2)
    assert row.verdict == S and row.value == pytest.approx(0.5 / 3)
    assert "integer r90 settles from 10 ± 0%" in row.measured
    late = CO.claim_early_collapse([g(0.6, 0.6), g(0.7, 0.5), g(0.5, 0.7)] * 2)
    assert late.verdict == I
    later = CO.claim_early_collapse([g(0.9, 0.5), g(1.0, 0.6), g(0.8, 0.5)] * 2)
    assert later.verdict == N


def test_a_comparison_is_decided_at_both_snapshot_counts():
    """variants.counted_claim: a claim that reads "supported" when the mean r90 exceeds 2 is
    supported from every checkpoint (r90 3) but not from the common count (r90 1): the row
    reads inconclusive and names both; a dict of summaries (claim 19) is mapped value
    by value; a summary without the common count (an older cache) keeps its verdict."""
    from minimanifold.experiments.variants import at_common, counted_claim
    from minimanifold.report.ledger import Row

    def claim(*summaries):
        vals = [np.mean(s["r90"]) for s in summaries]
        return Row("c", "s", "p", "m", "n", "iv", S if min(vals) > 2 else N, None)
    s = {"r90": [3.0, 3.0], "null": [5.0, 5.0], "common": {"n": 40, "r90": [1.0, 1.0], "null": [4.0, 4.0]}}
    assert at_common(s)["r90"] == [1.0, 1.0] and at_common(s)["null"] == [4.0, 4.0]
    row = counted_claim(claim, s, s)
    assert row.verdict == I and "from 40 evenly spaced snapshots: not supported (against supported" in row.interval
    same = {**s, "common": {"n": 40, "r90": [3.5, 3.5], "null": [4.0, 4.0]}}
    assert counted_claim(claim, same, same).verdict == S
    row = counted_claim(lambda d: claim(*d.values()), {1: s, 2: same})
    assert row.verdict == I
    old = {"r90": [3.0], "null": [5.0]}
    assert counted_claim(claim, old).verdict == S and counted_claim(claim, old).interval == "iv"


def test_a_window_takes_ceil_f_n_snapshots_so_it_sees_a_turn_at_its_last_one():
    """21 snapshots: 0..9 along e_0, then off it from index 10. The 50% window is ceil(10.5) =
    11 snapshots, so it holds the first point off the line and spans the whole run's plane
    (0°); 40% is ceil(8.4) = 9 (one direction: 90°). Guards: floor (10 snapshots at 50%:
    still on the line, 90°, settling at 0.6)."""
    X = np.zeros((21, 30))
    X[:10, 0] = np.arange(10)
    X[10:, 0] = 9
    X[10:, 1] = np.arange(1, 12)
    angles = GE.subspace_windows(X, pca.FRACTIONS, 2)
    assert angles[3] == 90.0 and abs(angles[4]) < 1e-4 and GE.settled_from(angles) == 0.5


def test_the_walks_settling_is_the_walks_not_the_runs():
    """A straight line settles at the first window (0.1); the matched walk of its equal steps
    turns at random and does not (its windows are the walk's, not the run's). Guards: the
    null's angles read from the run's own snapshots."""
    X = np.zeros((21, 500))
    X[:, 0] = np.arange(21.0)
    g = GE.geometry({"blocks.0.attn.W_Q": X, ALL: X})[ALL]
    assert g["angle_settled"] == 0.1 and g["null_angle_settled"] > 0.1
    assert max(g["null_angle_windows"]) > 30 and max(g["angle_windows"]) < 1e-3


def test_settling_at_the_common_count_has_a_known_answer():
    """A trajectory along e1 for its first half, then along e2 (a little noise: r90 = 2): a
    window spans both directions only past the turn, so the top-2 subspace settles from 60%
    of training, from 100 snapshots and from the 40 evenly spaced ones alike; 30 snapshots
    are all kept. The walk is drawn as ``geometry`` draws ALL's (seed index) and repeats."""
    rng = np.random.default_rng(0)

    def turn(n):
        t = np.linspace(0, 1, n)
        X = np.zeros((n, 50))
        X[:, 0], X[:, 1] = np.minimum(t, 0.5), np.maximum(t - 0.5, 0)
        return X + 1e-4 * rng.standard_normal(X.shape)
    out = GE.settling_at_common(turn(100), 4)
    assert (out["n"], out["r90"], out["angle_settled"]) == (40, 2, 0.6)
    assert out["angle_windows"][4] > 80 and max(out["angle_windows"][5:]) < 1.0          # before the turn: noise
    assert out["null_angle_settled"] in pca.FRACTIONS or out["null_angle_settled"] == 1.0
    assert GE.settling_at_common(turn(30), 4)["n"] == 30
    X = turn(100)
    assert GE.settling_at_common(X, 4) == GE.settling_at_common(X, 4) != GE.settling_at_common(X, 5)
    X[:, 2] = 0.09 * np.sin(6 * np.pi * np.linspace(0, 1, 100))       # a third direction with 6% of the variance
    lam = pca.pca_spectrum(X[GE.common_snapshots(100)])
    assert (pca.rank_at(lam, 0.90), pca.rank_at(lam, 0.95)) == (2, 3) and GE.settling_at_common(X, 4)["r90"] == 2


def test_claim_3_is_decided_again_from_the_common_count():
    """Settled from 10–20% of training against a walk's 70–90% (supported) from every
    checkpoint, but from 70–90% against 10–20% at 40 snapshots (not supported there): the
    verdict depends on the count, inconclusive, both shown. The same settling at both:
    supported and 'the same verdict'."""
    def geoms(s, sn):
        return [{ALL: {"angle_settled": a, "null_angle_settled": b, "stabilization": 0.5}} for a, b in zip(s, sn)]

    def settling(s, sn):
        return [{"n": 40, "angle_settled": a, "null_angle_settled": b} for a, b in zip(s, sn)]
    early, late = [0.1, 0.2] * 4, [0.8, 0.7, 0.9, 0.8] * 2      # 8 seeds: the sd floored at 0.1 still decides
    row = CO.claim_early_collapse(geoms(early, late), settling(late, early))
    assert row.verdict == I and row.interval.endswith(
        "; from 40 evenly spaced snapshots: not supported (against supported from every checkpoint): "
        "the verdict depends on the snapshot count")
    same = CO.claim_early_collapse(geoms(early, late), settling(early, late))
    assert same.verdict == S and same.interval.endswith("; from 40 evenly spaced snapshots: the same verdict")
    assert CO.claim_early_collapse(geoms(early, late)).verdict == S          # no settling given: no check
