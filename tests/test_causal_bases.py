"""Bases that do not know where training ends (issue 24 §2): the early window's PCA, another
seed's directions, K − 1 random directions plus θT − θ0, beside the run's own whole-trajectory
PCA, in restricted retraining (claim 23) and the functional dimension (claim 22). Known
answers on synthetic trajectories, the rule's boundaries, the jobs' dependencies, and two
tiny trained runs."""
import dataclasses
import json
import os

import numpy as np
import pytest

from minimanifold.analysis import causal_bases as B
from minimanifold.analysis.functional import random_directions
from minimanifold.analysis.intervals import Interval
from minimanifold.analysis.pca import pca_directions
from minimanifold.experiments import functional_dimension as FU
from minimanifold.experiments import restricted_jobs, restricted_training as RT
from minimanifold.files import save_json
from minimanifold.trajectories import records
from minimanifold.trajectories.presets import AUTHORS, PAPER, QUICK, SMOKE
from minimanifold.trajectories.sweep import run_dir

S, N, I = "supported", "not supported", "inconclusive"
E = 1e-9
TINY = dataclasses.replace(SMOKE, train=dataclasses.replace(SMOKE.train, steps=60, ckpt_every=10))


def iv(lo, hi, tied=False):
    return Interval((lo + hi) / 2, lo, hi, 3, "t", tied=tied)


# ---- analysis/causal_bases.py: known answers ----

def test_the_early_window_is_the_first_15_percent_and_at_least_k_plus_1_snapshots():
    """Checkpoints every 100 of 2,000 steps: steps <= 300 are 4 snapshots, too few for 4
    centred directions, so the window grows to 5 (step 400); every 100 of 30,000: 46 (step
    4,500). A snapshot exactly at the share is in. Guards: < for <=; the k + 1 floor
    dropped or made k; the window over all snapshots."""
    assert B.early_count(np.arange(0, 2001, 100), 4) == 5
    assert B.early_count(np.arange(0, 2001, 100), 2) == 4
    assert B.early_count(np.arange(0, 30001, 100), 4) == 46
    assert B.early_count(np.arange(0, 101, 10), 1, share=0.2) == 3            # 0, 10, 20: 20 <= 0.2 x 100
    assert B.early_count(np.arange(0, 101, 10), 1, share=0.15) == 2
    assert B.early_count(np.arange(0, 51, 10), 9) == 6                        # never more than there are
    assert B.EARLY_SHARE == 0.15


def two_phase(n=101, D=40, seed=0):
    """theta_0 + 4 t u for t <= 0.15 (then u stays), then a long drift 30 (t − 0.15) w with a
    wobble along z: early on the trajectory moves along u only, later along w and z."""
    rng = np.random.default_rng(seed)
    u, w, z = np.linalg.qr(rng.standard_normal((D, 3)))[0].T
    t = np.linspace(0, 1, n)[:, None]
    early = np.minimum(t, 0.15) / 0.15
    late = np.clip(t - 0.15, 0, None)
    X = rng.standard_normal(D) + 4 * early * u + 30 * late * w + 0.5 * np.sin(7 * np.pi * late) * z
    return X, np.linspace(0, 2000, n), (u, w, z)


def test_early_directions_see_only_the_start_and_the_whole_pca_sees_the_end():
    """The early basis's top direction is u (the only move in the first 15%); the whole
    trajectory's top direction is w (the long late drift), which the early basis lacks.
    Guards: the window taken from the end; the PCA of all snapshots."""
    X, steps, (u, w, z) = two_phase()
    V = B.early_directions(X, steps, 2)
    assert V.shape[1] == 1                                             # the early window is 1-D (u alone)
    assert abs(V[:, 0] @ u) > 1 - 1e-9 and abs(V[:, 0] @ w) < 1e-9
    top = pca_directions(X, 1)[:, 0]
    assert abs(top @ w) > 0.99
    np.testing.assert_allclose(B.early_directions(X, steps, 3, window_k=1),
                               pca_directions(X[:B.early_count(steps, 1)], 3))       # one window for a curve


def test_drift_and_random_is_the_unit_drift_then_k_minus_1_of_the_random_directions():
    """Column 0 is (θT − θ0)/|θT − θ0| with its sign; the columns are orthonormal; the span is
    that of the drift and R's first k − 1 columns (R's last column unused); nested in k; a
    matrix that did not move gets R. Guards: the drift not normalised; all k random columns
    used (k + 1 directions); the drift's sign flipped."""
    X, _, _ = two_phase()
    rng = np.random.default_rng(3)
    R = random_directions(X.shape[1], 4, rng)
    V = B.drift_and_random(X, R)
    d = (X[-1] - X[0]) / np.linalg.norm(X[-1] - X[0])
    assert V.shape == (40, 4)
    np.testing.assert_allclose(V[:, 0], d, atol=1e-12)
    np.testing.assert_allclose(V.T @ V, np.eye(4), atol=1e-12)
    M = np.column_stack([d, R[:, :3]])
    np.testing.assert_allclose(V @ (V.T @ M), M, atol=1e-12)                  # span{d, R[:, :3]}
    assert np.linalg.norm(R[:, 3] - V @ (V.T @ R[:, 3])) > 0.5                # R's last column is not in it
    np.testing.assert_allclose(B.drift_and_random(X, R[:, :2]), V[:, :2], atol=1e-12)   # nested
    np.testing.assert_allclose(B.drift_and_random(X, R[:, :1]), d[:, None], atol=1e-12)  # K = 1: the drift alone
    still = np.repeat(X[:1], 5, axis=0)
    np.testing.assert_array_equal(B.drift_and_random(still, R), R)


def test_rebuilt_curve_projects_the_drift_onto_the_first_k_columns():
    """theta_0 = 0, θT = (3, 4, 0): basis e1, e2, e3 gives (3, 0, 0) at k = 1 and θT from k = 2;
    a basis holding the drift rebuilds θT at every k. Guards: the last k columns; theta_0 not
    added back; a basis narrower than k."""
    X = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [3.0, 4.0, 0.0]])
    seen = []

    def acc(mats):
        seen.append(mats["A"].copy())
        return float(np.linalg.norm(mats["A"]))
    out = B.rebuilt_curve({"A": X}, {"A": np.eye(3)}, acc, [1, 2, 3])
    assert out == [3.0, 5.0, 5.0]
    np.testing.assert_allclose(seen[0], [3.0, 0.0, 0.0])
    shifted = X + 1.0
    B.rebuilt_curve({"A": shifted}, {"A": np.eye(3)[:, :1]}, acc, [1, 4])    # only 1 column: all it has
    np.testing.assert_allclose(seen[-2], [4.0, 1.0, 1.0])
    np.testing.assert_allclose(seen[-1], [4.0, 1.0, 1.0])
    V = B.drift_and_random(X, random_directions(3, 2, np.random.default_rng(0)))
    B.rebuilt_curve({"A": X}, {"A": V}, acc, [1, 2])
    np.testing.assert_allclose(seen[-2], X[-1], atol=1e-12)                   # θT itself by construction


def test_partner_is_the_next_seed_cyclic_or_the_next_run_left():
    """Seed s borrows seed (s + 1) mod n; the last wraps to 0; a diverged partner is replaced
    by the next run left; a lone run has none. Guards: s − 1; no wrap; a run its own partner."""
    assert [B.partner_index([0, 1, 2, 3, 4], i, 5) for i in range(5)] == [1, 2, 3, 4, 0]
    assert [B.partner_index([0, 1, 2], i, 5) for i in range(3)] == [1, 2, 0]    # seed 3 not among the runs
    assert [B.partner_index([0, 2, 3], i, 5) for i in range(3)] == [1, 2, 0]    # seed 1 diverged: seed 2
    assert B.partner_index([3], 0, 5) is None and B.partner_index([0], 0, 1) is None
    runs = [{"seed": 0, "dir": "a/seed_0"}, {"seed": 1, "dir": "a/seed_1"}]
    assert FU.partner_dirs(runs, 2) == ["a/seed_1", "a/seed_0"]
    assert FU.seed_of("runs/add-1/seed_12") == 12 and FU.seed_of("runs/add-1/seed_3/") == 3


# ---- claim 23's rule and row ----

def test_restricted_rule_boundaries():
    """above 0.1: supported; an interval touching 0.1 from above: inconclusive; at or below
    0.1: not supported; a tied interval (no resolution) decides nothing."""
    r = RT.restricted_rule
    assert r(iv(0.1 + E, 0.5)) == S
    assert r(iv(0.1, 0.5)) == I
    assert r(iv(-0.2, 0.1)) == N
    assert r(iv(-0.2, 0.1 + E)) == I
    assert r(iv(0.05, 0.2)) == I
    assert r(iv(0.3, 0.3, tied=True)) == I
    assert RT.MARGIN == 0.1 and RT.DECIDES == "early"


def res(final, steps=(0, 10)):
    return {"steps": list(steps), "acc": {"1": [0.2, final], "2": [0.2, final]}}


def per_k_of(early, random, execution=(1.0, 1.0, 1.0), other=(0.5, 0.6, 0.7), drift=(0.9, 0.9, 0.95)):
    return {"execution": [res(a) for a in execution], "early": [res(a) for a in early],
            "other": [res(a) for a in other], "drift": [res(a) for a in drift], "random": [res(a) for a in random]}


def test_claim_23_is_decided_by_the_early_basis_against_random():
    """The execution basis (knows the end) far above random but the early basis not: not
    supported; the early basis 0.4 above random: supported. Every basis's final accuracy and
    its difference from random are in the row, the execution basis marked as knowing the end.
    Guards: the execution basis deciding; another basis deciding; the pairing of seeds."""
    row = RT.claim_restricted({4: per_k_of(early=(0.55, 0.6, 0.62), random=(0.5, 0.55, 0.6))}, 400)
    assert row.verdict == N and row.value == pytest.approx((0.05 + 0.05 + 0.02) / 3)
    assert "K=4 execution (knows the end) − random [" in row.interval
    for label in ("early (decides) − random", "another seed's − random", "random + drift − random"):
        assert label in row.interval
    assert "execution (knows the end) 1.00 ± 0.00" in row.measured and "another seed's 0.60" in row.measured
    assert "random + drift 0.92" in row.measured and "K=4 0.55 ± 0.04" in row.null
    row = RT.claim_restricted({4: per_k_of(early=(0.95, 1.0, 0.97), random=(0.5, 0.6, 0.6))}, 400)
    assert row.verdict == S and row.value == pytest.approx((0.45 + 0.4 + 0.37) / 3)
    row = RT.claim_restricted({4: per_k_of(early=(1.0, 1.0, 0.97), random=(0.5, 0.6, 0.6),
                                           execution=(0.5, 0.6, 0.6), other=(0.5, 0.6, 0.6))}, 400)
    assert row.verdict == S                                            # the early basis alone decides
    assert RT.claim_restricted({}, 400).verdict == I


def test_claim_23_reads_the_largest_k_up_to_4_and_floors_ties_at_one_probe_example():
    """Tied differences (early 1.0 and random 0.5 on every seed) decide with the resolution
    (1 / n_probe) and not without; K = 8 is shown, K = 4 decides. Guards: the resolution
    dropped; the largest K read."""
    per_k = {1: per_k_of(early=(0.3, 0.3, 0.3), random=(0.3, 0.3, 0.3)),
             4: per_k_of(early=(1.0, 1.0, 1.0), random=(0.5, 0.5, 0.5)),
             8: per_k_of(early=(0.5, 0.5, 0.5), random=(0.5, 0.5, 0.5))}
    assert RT.claim_restricted(per_k, 400, 1 / 256).verdict == S
    assert RT.claim_restricted(per_k, 400, 0.0).verdict == I
    row = RT.claim_restricted(per_k, 400, 1 / 256)
    assert row.interval.startswith("K=4 ") and "K=8 execution (knows the end)" in row.measured


def test_a_basis_measured_on_other_seeds_than_random_decides_nothing():
    finals = {"early": [0.9, 0.9], "random": [0.1, 0.2, 0.1]}
    assert RT.over_random(finals, "early", 1 / 256).text().startswith("undetermined")
    assert RT.over_random({"random": [0.1] * 3}, "other", 1 / 256).text().startswith("undetermined")
    rows = RT.claim_restricted({4: {k: v for k, v in per_k_of((1.0,) * 3, (0.2,) * 3).items() if k != "other"}}, 9)
    assert rows.verdict == S and "another seed's − random undetermined" in rows.interval


# ---- the retraining jobs and their dependencies ----

def test_jobs_cover_every_basis_and_another_seeds_waits_for_that_seed():
    """K x 5 bases per seed; "other" names its partner (seed + 1 mod the main runs) in its
    cache file and lists it in ``also``; the others read only their own run. Guards: the
    partner taken mod restrict_seeds; ``also`` left empty."""
    p = dataclasses.replace(TINY, n_seeds=3, restrict_seeds=3, restrict_k=(1, 4))
    jobs = RT.jobs(p)
    assert len(jobs) == 3 * 2 * len(RT.KINDS) and len({(j.start, j.cache) for j in jobs}) == len(jobs)
    other = [j for j in jobs if "_other-" in j.cache]
    assert [(j.start.train.seed, [a.train.seed for a in j.also]) for j in other] == \
        [(0, [1]), (0, [1]), (1, [2]), (1, [2]), (2, [0]), (2, [0])]
    assert other[0].cache == f"restricted_v{RT.VERSION}_K1_other-seed1_{RT.restricted_steps(p)}.json"
    assert all(j.also == () for j in jobs if j not in other)
    wide = dataclasses.replace(p, n_seeds=5)
    assert [a.train.seed for j in RT.jobs(wide) if "_other-" in j.cache for a in j.also][-1] == 3


def _finish(runs_dir, spec):
    os.makedirs(run_dir(runs_dir, spec), exist_ok=True)
    open(os.path.join(run_dir(runs_dir, spec), "summary.json"), "w").write("{}")


def test_the_retraining_trains_the_partner_run_too(tmp_path):
    """Seeds 0 and 2 finished (2 main runs, the starting run among them), seed 1 (seed 0's
    partner) not: --train restricted-retraining trains seed 1, no other, and --plan says so;
    not when the group is not named, nor once seed 1 is finished."""
    from minimanifold.experiments import groups as G
    p = dataclasses.replace(TINY, n_seeds=3, restrict_seeds=1)
    train = frozenset({RT.GROUP})
    _finish(tmp_path, p.specs()[0])
    _finish(tmp_path, p.specs()[2])
    assert G.retraining_needs(p, str(tmp_path), None, train) == {"main": {1}}
    assert G.retraining_needs(p, str(tmp_path), None, frozenset({"main"})) == {}
    _finish(tmp_path, p.specs()[1])
    assert G.retraining_needs(p, str(tmp_path), None, train) == {}


def test_early_measurements_hand_out_a_two_run_call_when_both_runs_finished():
    """On the training pool: seed 0's calls that read seed 1 too (another seed's basis) wait
    for seed 1; each is handed out once. Guards: handed out with its first run; twice."""
    from minimanifold.experiments.measuring import EarlyMeasurements, planned_context
    early = EarlyMeasurements(TINY, "/runs")
    a, b = (r["dir"] for r in planned_context(TINY, "/runs").runs)
    first = early({"dir": a})
    two_run = [c for c in first if b in c.args[1:]]
    assert first and two_run == []
    assert all(c.args[0] == a for c in first)
    second = early({"dir": b})
    assert {(c.fn.__name__, c.args[0]) for c in second if len(c.args) > 1 and c.args[1] in (a, b)} >= {
        ("cached_causal", a), ("cached_causal", b)}
    assert any(c.fn is RT.cached_restricted and c.args[0] == a and c.args[4] == b for c in second)
    assert early({"dir": a}) == [] and early({"dir": b}) == []
    assert not (set(first) & set(second))


def test_runs_finishing_together_hand_out_every_seeds_decisive_pair_before_any_other_basis():
    """The paper preset's case: main runs cached, so they finish together; the pool
    (``pool.drain``) hands out each run's follow-ups position-first, and each run's list
    starts with its pair, so early and random of every seed run before any seed's other
    bases. Guards: the pair not first in a run's list; follow-ups handed out run by run."""
    from concurrent.futures import ThreadPoolExecutor
    from minimanifold.experiments.measuring import EarlyMeasurements, planned_context
    from minimanifold.trajectories import pool
    p = dataclasses.replace(TINY, n_seeds=3, restrict_seeds=3, restrict_k=(4,))
    early, ran = EarlyMeasurements(p, "/runs"), []
    dirs = [r["dir"] for r in planned_context(p, "/runs").runs]
    as_noted = lambda rec: [(ran.append, ((c.args[2], RT.seed_of(c.args[0])),)) for c in early(rec)
                            if c.fn is RT.cached_restricted]
    with ThreadPoolExecutor(max_workers=1) as ex:
        pool.drain(ex, [(dict, ({"dir": d},)) for d in dirs], lambda i, r, n: None, as_noted)
    assert sorted(ran) == sorted((k, s) for s in range(3) for k in RT.KINDS)
    assert {k for k, _ in ran[:6]} == {RT.DECIDES, "random"}


def test_a_partner_that_is_no_restricted_seed_does_not_put_its_basis_job_before_the_pairs():
    """The authors preset's case: 3 restricted seeds of 4 main runs, so seed 2's other-seed
    job reads seed 3, which finishes last and has no restricted job of its own. Released
    with seed 3 it keeps its place in seed 2's list, after the pair, not first in seed 3's
    (where it went beside the early jobs and before every random one). Guard: positions
    taken from the list a call is released in."""
    from concurrent.futures import ThreadPoolExecutor
    from minimanifold.experiments.measuring import EarlyMeasurements, planned_context
    from minimanifold.trajectories import pool
    p = dataclasses.replace(TINY, n_seeds=4, restrict_seeds=3, restrict_k=(4,))
    early, ran = EarlyMeasurements(p, "/runs"), []
    dirs = [r["dir"] for r in planned_context(p, "/runs").runs]
    note = lambda c: (ran.append, ((c.args[2], RT.seed_of(c.args[0])) if c.fn is RT.cached_restricted else None,))

    def as_noted(rec):
        calls = early(rec)
        return pool.Ranked([note(c) for c in calls], calls.positions)
    with ThreadPoolExecutor(max_workers=1) as ex:
        pool.drain(ex, [(dict, ({"dir": d},)) for d in dirs], lambda i, r, n: None, as_noted)
    jobs = [j for j in ran if j is not None]
    assert sorted(jobs) == sorted((k, s) for s in range(3) for k in RT.KINDS)
    assert {k for k, _ in jobs[:6]} == {RT.DECIDES, "random"}, jobs[:6]


def test_presets_retrain_over_the_main_runs_own_steps_and_the_quick_one_stays_cheap():
    assert PAPER.restrict_seeds >= 6 and RT.restricted_steps(PAPER) == PAPER.train.steps == 30000
    assert (QUICK.restrict_k, QUICK.restrict_seeds, RT.restricted_steps(QUICK)) == ((4,), 3, 300)
    assert len(RT.jobs(QUICK)) == 15 and len(RT.jobs(PAPER)) == 6 * 1 * 5          # paper: K = 4 only
    assert AUTHORS.restrict_seeds >= 3


# ---- on tiny trained runs ----

@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two finished smoke runs (seeds 0 and 1) of 60 steps, checkpoints every 10: 7 snapshots."""
    from minimanifold.trajectories.sweep import sweep
    root = tmp_path_factory.mktemp("runs")
    return [r["dir"] for r in sweep(TINY.specs(), root, log=lambda s: None)]


def test_restriction_bases_of_a_run(two_runs):
    """early: the PCA of the first max(15%, K + 1) snapshots; other: the partner's whole PCA;
    drift: the unit drift plus random's first K − 1; random: as before (same stream). A partner
    that has not finished is refused, and so is an unknown kind."""
    from minimanifold.trajectories.rundir import attention_trajectories
    a, b = two_runs
    K = 2
    traj_a, traj_b = (attention_trajectories(d, TINY.model) for d in (a, b))
    got = {kind: RT.restriction_bases(a, K, kind, b if kind == "other" else None) for kind in RT.KINDS}
    rng = np.random.default_rng([0, 11, K])                                    # the old random stream
    for name, V in got["execution"].items():
        R = random_directions(V.shape[0], K, rng)
        np.testing.assert_array_equal(got["random"][name], R)
        np.testing.assert_array_equal(V, pca_directions(traj_a[name], K))
        np.testing.assert_array_equal(got["early"][name], pca_directions(traj_a[name][:3], K))   # steps 0, 10, 20
        np.testing.assert_array_equal(got["other"][name], pca_directions(traj_b[name], K))
        d = traj_a[name][-1].astype(np.float64) - traj_a[name][0]
        np.testing.assert_allclose(got["drift"][name][:, 0], d / np.linalg.norm(d), atol=1e-12)
        P = got["drift"][name] @ got["drift"][name].T
        np.testing.assert_allclose(P @ R[:, 0], R[:, 0], atol=1e-10)            # random's first K − 1 inside
        assert np.linalg.norm(R[:, 1] - P @ R[:, 1]) > 0.5                       # its last one not
    with pytest.raises(ValueError, match="needs a finished run"):
        RT.restriction_bases(a, K, "other", os.path.join(os.path.dirname(b), "seed_9"))
    with pytest.raises(ValueError, match="no basis 'bogus'"):
        RT.restriction_bases(a, K, "bogus")


def test_a_restricted_run_follows_the_main_runs_schedule_cut_short(tmp_path):
    """With every direction kept (V = I) and a cosine schedule, 20 restricted steps of a
    60-step run's schedule land on the run's own step-20 checkpoint; compressing the cosine
    into 20 steps (the old behaviour) does not. Guards: ``schedule_steps`` ignored."""
    from minimanifold.model.transformer import attention_param_names, param_shapes
    from minimanifold.trajectories.restricted import train_restricted
    from minimanifold.trajectories.rundir import load_trajectory
    from minimanifold.trajectories.training_loop import train
    tr = dataclasses.replace(TINY.train, lr_schedule="cosine:5")
    train(tmp_path / "r", TINY.model, TINY.task, tr, log=lambda s: None)
    traj = load_trajectory(tmp_path / "r")
    at20 = {k: v[list(traj["steps"]).index(20)] for k, v in traj.items() if k != "steps"}
    full = {n: np.eye(int(np.prod(s))) for n, s in param_shapes(TINY.model).items() if n in attention_param_names(TINY.model)}
    short = dataclasses.replace(tr, steps=20)
    cut = train_restricted(TINY.model, TINY.task, short, full, eval_every=20, schedule_steps=60)["params"]
    squeezed = train_restricted(TINY.model, TINY.task, short, full, eval_every=20)["params"]
    for name, value in at20.items():
        np.testing.assert_allclose(cut[name], value, rtol=1e-4, atol=1e-5, err_msg=name)
    assert max(float(np.abs(squeezed[n] - at20[n]).max()) for n in at20) > 1e-4


def test_restricted_of_run_passes_the_main_runs_step_count(two_runs, monkeypatch):
    seen = {}

    def fake(model, task, tr, bases, eval_every, schedule_steps, resume):
        seen.update(steps=tr.steps, schedule_steps=schedule_steps, K=min(V.shape[1] for V in bases.values()), resume=resume)
        return {"params": {}, "acc": {1: [0.5]}, "steps": [0]}
    monkeypatch.setattr(restricted_jobs, "train_restricted", fake)
    out = RT.restricted_of_run(two_runs[0], 2, "other", 20, two_runs[1], "x.resume.npz")
    assert seen == {"steps": 20, "schedule_steps": 60, "K": 2, "resume": "x.resume.npz"} and out["other_seed"] == 1


def test_causal_curves_of_a_run(two_runs, tmp_path):
    """The functional dimension's bases that do not know the end, on a trained run: the early
    curve is the rebuild from the early window's PCA; the drift basis gives the final accuracy
    at every k (θT by construction); another seed's curve uses the partner's PCA, named in the
    cache file; without a partner it is None."""
    import shutil
    a, b = two_runs
    cfg, train, accuracy = FU.probe_accuracy(a)
    steps, blocks = FU.snapshots(a, cfg)
    final = accuracy({n: X[-1].astype(np.float64) for n, X in blocks.items()})
    _, other = FU.snapshots(b, cfg)
    d = tmp_path / "seed_0"
    shutil.copytree(a, d)
    out = FU.cached_causal(str(d), b)
    named = d / f"functional_causal_v{FU.CAUSAL_VERSION}_other-seed1-{records.tag(b)}.json"    # that very run
    assert os.path.exists(named) and len(records.tag(b)) == 8
    assert out["k"] == list(FU.KS) and out["other_seed"] == 1 and out["early_step"] == 40
    assert out["drift"] == [final] * len(FU.KS)
    early = {n: pca_directions(X[:5], max(FU.KS)) for n, X in blocks.items()}        # K_CLAIM + 1 = 5 snapshots
    assert out["early"] == B.rebuilt_curve(blocks, early, accuracy, FU.KS)
    assert out["early_dims"] == min(V.shape[1] for V in early.values()) <= 4
    assert out["other"] == B.rebuilt_curve(blocks, {n: pca_directions(X, max(FU.KS)) for n, X in other.items()},
                                           accuracy, FU.KS)
    assert all(0 <= x <= 1 for x in out["early"] + out["other"])
    alone = FU.cached_causal(str(d))
    assert alone["other"] is None and os.path.exists(d / f"functional_causal_v{FU.CAUSAL_VERSION}.json")
    partner = tmp_path / "seed_1"                         # the partner retrained to another end: another run,
    shutil.copytree(b, partner)                           # measured anew (the stale file is not read)
    summary = json.load(open(partner / "summary.json"))
    save_json(str(partner / "summary.json"), {**summary, "final_loss": summary["final_loss"] * 1.5})
    FU.cached_causal(str(d), str(partner))
    assert records.tag(str(partner)) != records.tag(b) and named.exists()
    assert (d / f"functional_causal_v{FU.CAUSAL_VERSION}_other-seed1-{records.tag(str(partner))}.json").exists()


def functional_result(final=1.0, pca4=0.95, rand4=0.3):
    K = FU.KS
    rand = [rand4 if k == 4 else 0.05 for k in K]                         # k = 4 alone decides
    c = {"k": list(K), "pca": [pca4] * len(K), "random": rand, "random_matched": [0.01] * len(K),
         "final": final, "k_star": 4, "k_star_random": None, "k_star_random_matched": None,
         "drift_share": [0.9] * len(K)}
    return {"centred": c, "uncentred": c}


def causal_result(early4, other4):
    K = FU.KS
    return {"k": list(K), "early": [early4 if k == 4 else 0.2 if k < 4 else 0.99 for k in K],
            "other": [other4 if k == 4 else 0.02 for k in K],
            "drift": [1.0] * len(K), "early_dims": 4, "early_step": 400, "other_seed": 1}


def test_claim_22_shows_the_causal_bases_and_keeps_its_rule():
    """The causal bases at k = 4 (accuracy / final, k*, their difference from random) are in
    the row; the verdict is the rule's, with or without them. Guards: read at another k; the
    difference taken from the norm-matched control; the drift basis given an interval."""
    results = [functional_result(rand4=r) for r in (0.3, 0.35, 0.3)]
    causal = [causal_result(0.9, 0.4), causal_result(0.92, 0.45), causal_result(0.88, 0.4)]
    plain, row = FU.claim_functional(results), FU.claim_functional(results, 1 / 256, causal)
    assert row.verdict == plain.verdict == S and row.value == plain.value
    assert "early (first 15% of the checkpoints) PCA 0.90 ± 0.02 (k* 4.7 ± 0.9)" in row.measured
    assert "another seed's PCA 0.42 ± 0.02 (k* none" in row.measured
    assert "k − 1 random + θT − θ0 1.00 ± 0.00" in row.measured
    assert "not in the rule: top-4 early (first 15% of the checkpoints) PCA − random [0.5" in row.interval
    assert "top-4 another seed's PCA − random [0.09, 0.11]" in row.interval
    assert "θT − θ0 − random" not in row.interval
    assert FU.claim_functional(results, 1 / 256, [None] * 3).interval == plain.interval


def test_the_figures_show_every_basis(tmp_path):
    """Open both figures: the functional figure's legend (outside its axes) counts the three
    causal curves, the restricted figure's every basis at each K."""
    import matplotlib
    matplotlib.use("Agg")
    results = [functional_result(rand4=r) for r in (0.3, 0.35, 0.3)]
    for x, r in zip(results, (0.2, 0.25, 0.3)):
        x["centred"] = dict(x["centred"], pca=[0.2 + 0.1 * i for i in range(8)], random=[r] * 8)
    causal = [causal_result(0.9, 0.4), causal_result(0.92, 0.45), causal_result(0.88, 0.4)]
    path = FU.fig_functional(results, "caption, 3 seeds", str(tmp_path / "fd.png"), causal)
    assert os.path.getsize(path) > 10_000
    run = {"steps": list(range(0, 401, 20)), "acc": {"1": list(np.linspace(0.1, 1, 21)), "2": [0.5] * 21}}
    low = {"steps": run["steps"], "acc": {"1": list(np.linspace(0.1, 0.6, 21)), "2": [0.3] * 21}}
    per_k = {k: {kind: [run if kind in ("execution", "early") else low] * 3 for kind in RT.KINDS} for k in (1, 4)}
    labels = []
    orig = RT.save_figure
    RT.save_figure = lambda fig, p: labels.extend(t.get_text() for t in fig.axes[0].get_legend().get_texts()) or orig(fig, p)
    try:
        RT.fig_restricted(per_k, [], "caption, 3 seeds", str(tmp_path / "rt.png"))
    finally:
        RT.save_figure = orig
    assert len(labels) == 10 and labels[1] == "K=1, early subspace (mean of 3 seeds)"
    assert "K=4, another seed's subspace (mean of 3 seeds)" in labels and os.path.getsize(tmp_path / "rt.png") > 10_000


# ---- a retraining over several sittings: partial reads, seeds paired, records adopted ----

def seeded(finals, seeds):
    return [{**res(a), "seed": s} for a, s in zip(finals, seeds)]


def test_claim_23_pairs_the_bases_seed_by_seed():
    """Early on seeds 0-2, random on 1-3 (each sitting loses different jobs): the difference
    pairs seeds 1 and 2 only. Known answer: early 0.9 / 0.8 against random 0.3 / 0.4 on
    them, 0.5 on average (position pairing would give (0.9 - 0.1 + 0.8 - 0.3 + 0.7 - 0.4) / 3)."""
    per_k = {4: {"early": seeded((0.7, 0.9, 0.8), (0, 1, 2)), "random": seeded((0.3, 0.4, 0.1), (1, 2, 3))}}
    assert RT.claim_restricted(per_k, 400, 1 / 256).value == pytest.approx(0.5)
    iv = RT.over_random({"early": {0: 0.7, 1: 0.9, 2: 0.8}, "random": {1: 0.3, 2: 0.4, 3: 0.1}}, "early", 1 / 256)
    assert iv.n == 2 and iv.est == pytest.approx(0.5)
    assert RT.paired({"early": {5: 1.0}, "random": {4: 0.0}}, "early") == ([], [])
    row = RT.claim_restricted({4: {"early": seeded((0.9,), (0,))}}, 400, 1 / 256, 6)   # random not retrained yet
    assert row.verdict == I and "early (decides) − random undetermined" in row.interval
    assert row.null == "K random directions per matrix: not retrained yet"


@pytest.mark.parametrize("planned, verdict", [(4, S), (5, I), (0, S)])
def test_claim_23_waits_for_every_planned_seed(planned, verdict):
    """Early far above random on 4 seeds: supported when 4 are planned (or no count given),
    inconclusive while 4 of 5 are in, and the interval says so. Guards: the wait dropped;
    ``<=`` for ``<`` (4 of 4 would wait)."""
    per_k = {4: {"early": seeded((1.0, 0.95, 1.0, 0.97), range(4)), "random": seeded((0.2, 0.3, 0.25, 0.2), range(4)),
                 "execution": seeded((1.0,) * 3, range(3))}}
    row = RT.claim_restricted(per_k, 400, 1 / 256, planned)
    assert row.verdict == verdict and row.value == pytest.approx((0.8 + 0.65 + 0.75 + 0.77) / 4)
    assert ("partial: 4 of the 5 seeds retrained with both" in row.interval) == (planned == 5)
    assert ("3 of 5 seeds" in row.measured) == (planned == 5)
    assert ("3 of 4 seeds" in row.measured) == (planned == 4)


def test_a_recorded_retraining_is_copied_back_never_retrained(tmp_path, monkeypatch):
    """A job in the committed record of the same run (an earlier sitting, maybe another
    machine) is copied, with its digest, into the run directory and read, not retrained; one
    already there is not overwritten; a record without the digest, or of a run that ended
    otherwise (retrained on another kernel), is not taken. Guards: the copy skipped (it
    would retrain); an existing file overwritten; the digest not required; the end not
    compared."""
    import json
    from minimanifold.files import record_digest, save_json
    from minimanifold.trajectories import records
    rec, run = tmp_path / "records" / "k" / "seed_0", tmp_path / "runs" / "k" / "seed_0"
    os.makedirs(rec)
    os.makedirs(run)
    end = {"final_step": 20, "final_loss": 0.125, "final_acc": {"1": 1.0}}
    (rec / "summary.json").write_text(json.dumps({**end, "seconds": {"steps": 1.0}}))
    (run / "summary.json").write_text(json.dumps({**end, "seconds": {"steps": 2.0}}))   # timings differ
    (rec / "record.json").write_text("{}")
    name = RT.cache_name(4, "early", 20)
    save_json(str(rec / name), {"steps": [0], "acc": {"1": [0.75]}})
    record_digest(str(rec / name))
    monkeypatch.setattr(restricted_jobs, "restricted_of_run", lambda *a: pytest.fail("retrained"))
    assert RT.cached_restricted(str(run), 4, "early", 20, None, str(rec)) == {"steps": [0], "acc": {"1": [0.75]}}
    assert (run / name).read_bytes() == (rec / name).read_bytes() and (run / (name + ".sha256")).exists()
    assert records.adopt(str(rec), str(run), [name]) == []              # there already: left as it is
    save_json(str(rec / name), {"steps": [0], "acc": {"1": [0.1]}})     # the record changed since
    record_digest(str(rec / name))
    assert RT.cached_restricted(str(run), 4, "early", 20, None, str(rec))["acc"]["1"] == [0.75]
    other = RT.cache_name(4, "random", 20)
    save_json(str(rec / other), {})                                     # no digest beside it
    assert records.adopt(str(rec), str(run), [other]) == [] and not (run / other).exists()
    record_digest(str(rec / other))
    (run / "summary.json").write_text(json.dumps({**end, "final_loss": 0.126}))   # another end: another run
    assert records.adopt(str(rec), str(run), [other]) == []
    (run / "summary.json").write_text(json.dumps(end))
    assert records.adopt(None, str(run), [other]) == [] and records.adopt(str(run), str(run), [other]) == []
    assert records.adopt(str(rec), str(run), [other]) == [other]
    assert not [f for f in os.listdir(run) if "tmp" in f]


def test_a_sitting_reads_the_finished_jobs_and_starts_with_the_decisive_pair(tmp_path):
    """The jobs in order: every seed's early and random, seed by seed, before any seed's
    other bases; a context that may not retrain gets those finished, in the run cache or
    the committed record. Guards: the order of the kinds; the record not looked at; every
    job handed to a partial sitting."""
    import dataclasses
    from minimanifold.experiments.measuring import planned_context
    p = dataclasses.replace(TINY, n_seeds=3, restrict_seeds=3, restrict_k=(4,))
    ctx = planned_context(p, str(tmp_path / "runs"), str(tmp_path / "fig"))
    every = RT.calls(ctx)
    assert [(kind, RT.seed_of(args[0])) for _, kind, (_, args) in every] == [
        (kind, s) for s in range(3) for kind in ("early", "random")] + [
        (kind, s) for s in range(3) for kind in ("execution", "other", "drift")]
    partial = dataclasses.replace(ctx, retrains=frozenset())
    assert RT.calls(partial) == []
    (_, _, (_, a)), (_, _, (_, b)) = every[2], every[5]                  # early seed 1 cached, random seed 2 recorded
    os.makedirs(a[0])
    open(os.path.join(a[0], RT.cache_name(4, "early", a[3])), "w").write("{}")
    rec = os.path.join(tmp_path, "fig", "records", *b[0].split(os.sep)[-2:])
    os.makedirs(rec)
    open(os.path.join(rec, "record.json"), "w").write("{}")
    open(os.path.join(rec, RT.cache_name(4, "random", b[3])), "w").write("{}")
    got = RT.calls(dataclasses.replace(ctx, retrains=frozenset()))
    assert [(kind, RT.seed_of(args[0])) for _, kind, (_, args) in got] == [("early", 1), ("random", 2)]
    assert got[1][2][1][5] == rec and got[0][2][1][5] is None


def test_the_figure_draws_the_main_runs_of_the_seeds_retrained_only(monkeypatch, tmp_path):
    """A partial sitting retrained seeds 0 and 2 of 3: the unrestricted curve averages those
    two main runs, not every planned one, and the row waits for the third. Guards: every
    main run drawn; the planned count from the runs in hand."""
    import dataclasses
    from minimanifold.experiments.context import Context
    p = dataclasses.replace(TINY, n_seeds=3, restrict_seeds=3, restrict_k=(4,))
    runs = [{"seed": s, "dir": str(tmp_path / "k" / f"seed_{s}")} for s in range(3)]
    done = [(4, kind, (lambda *a: res(1.0 if a[2] == "early" else 0.2), (runs[s]["dir"], 4, kind, 5, None, None)))
            for kind in ("early", "random") for s in (0, 2)]
    monkeypatch.setattr(RT, "calls", lambda ctx: done)
    monkeypatch.setattr(RT, "load_metrics", lambda d: [{"step": 0, "acc": {"1": float(RT.seed_of(d))}}])
    seen = {}
    monkeypatch.setattr(RT, "fig_restricted", lambda per_k, hist, *a: seen.update(hist=hist) or "f.png")
    rows, _ = RT.report(Context(p, runs, {}, str(tmp_path), "c"))
    assert [h[0]["acc"]["1"] for h in seen["hist"]] == [0.0, 2.0]
    assert rows[23].verdict == I and "partial: 2 of the 3 seeds" in rows[23].interval


def test_another_seeds_basis_is_of_that_very_run(two_runs, tmp_path):
    """A retraining on seed 1's directions records which run of seed 1 lent them
    (``records.tag``); once the run cache holds another run of seed 1 (retrained to another
    end), the cached job is refused with a line naming both, not read as this one's. A job
    cached before the tag was kept is read as it is."""
    import shutil
    from minimanifold.files import record_digest
    a = tmp_path / "seed_0"
    b = tmp_path / "seed_1"
    shutil.copytree(two_runs[0], a)
    shutil.copytree(two_runs[1], b)
    out = RT.cached_restricted(str(a), 2, "other", 10, str(b))
    assert out["other_tag"] == records.tag(str(b)) and out["other_seed"] == 1
    lent = records.tag(str(b))
    summary = json.load(open(b / "summary.json"))
    save_json(str(b / "summary.json"), {**summary, "final_loss": summary["final_loss"] * 1.5})
    with pytest.raises(ValueError, match=f"earlier run of it \\(tag {lent}\\), which .*seed_1 replaced"):
        RT.cached_restricted(str(a), 2, "other", 10, str(b))
    path = a / RT.cache_name(2, "other", 10, 1)
    save_json(str(path), {k: v for k, v in json.load(open(path)).items() if k != "other_tag"})
    record_digest(str(path))                                    # a result from before the tag: read
    assert RT.cached_restricted(str(a), 2, "other", 10, str(b))["other_seed"] == 1
