"""The guards of issue 28 (owner check, digests, run lock, plan/run agreement, run_all's
up-front checks) at the points the broader tests leave open: each test here fails on a
plausible one-line bug in a guard that ``test_lost_data.py`` and ``test_run_all.py`` let
through. Fast: no subprocess, at most one 30-step run."""
import dataclasses
import importlib.util
import json
import os

import numpy as np
import pytest

from minimanifold.report.owner import OwnedByAnother, check_owner, identity
from minimanifold.trajectories.presets import PRESETS
from minimanifold.files import changed
from minimanifold.trajectories.sweep import run_dir, sweep

from test_lost_data import ROOT, TINY, _ledger, _rows, _tree


def _groups():
    """The groups API (``experiments.groups``, read from the experiments' contracts) and the
    restricted retraining's module, imported when a test needs it."""
    from minimanifold.experiments import groups, restricted_training
    return groups, restricted_training


def _retrainings(preset) -> list:
    """[Retrain] of restricted retraining: each its main run ``start`` and the ``cache`` file
    it writes in that run's directory."""
    G, restricted_training = _groups()
    return G.retrainings(preset)[restricted_training.GROUP][1]


def _finish(runs_dir, spec):
    """Mark ``spec`` finished in the cache the way ``groups.spec_finished`` and ``--plan`` read it."""
    os.makedirs(run_dir(runs_dir, spec), exist_ok=True)
    open(os.path.join(run_dir(runs_dir, spec), "summary.json"), "w").write("{}")


def _cache_restricted(runs_dir, preset):
    for job in _retrainings(preset):
        os.makedirs(run_dir(runs_dir, job.start), exist_ok=True)
        open(os.path.join(run_dir(runs_dir, job.start), job.cache), "w").write("{}")


# ---- report.owner ----

@pytest.mark.parametrize("content", [{"caption": "smoke preset, 2 seeds: L=2"},
                                     {"caption": "smoke preset, 2 seeds: L=2", "claims": {"1": "x"}}])
def test_a_caption_without_a_list_of_claims_is_no_ledger(tmp_path, content):
    """A claims.json whose caption happens to name this run but that holds no claims list is
    not a ledger this run wrote: refused like any other foreign file."""
    with pytest.raises(ValueError, match="no caption and claims"):
        identity(content)
    (tmp_path / "claims.json").write_text(json.dumps(content))
    with pytest.raises(OwnedByAnother, match="is not a claims ledger"):
        check_owner(str(tmp_path), content["caption"], False)


@pytest.mark.parametrize("preset", ["quick", "paper", "authors"])
def test_each_committed_ledger_is_its_own_presets(preset):
    """Each preset, run in place, may rewrite its committed ledger (written before the owner
    fields existed, so read from its caption): ``written_by`` is that caption's first line.
    A whole run may always replace it; a partial sitting only a partial one (the paper
    preset's, rebuilt sitting by sitting)."""
    from minimanifold.pipeline import written_by
    folder = os.path.join(ROOT, "figures", preset)
    if preset == "quick" and not os.path.exists(os.path.join(folder, "claims.json")):
        folder = os.path.join(ROOT, "figures")                       # the quick ledger's older place
    committed = json.load(open(os.path.join(folder, "claims.json"), encoding="utf-8"))
    me, partial = identity(committed)
    assert me == written_by(PRESETS[preset])
    check_owner(folder, me, False)                                   # a whole run: not refused
    if partial:
        check_owner(folder, me, True)                                # the next sitting's partial ledger
    else:
        with pytest.raises(OwnedByAnother, match="partial"):
            check_owner(folder, me, True)


# ---- the pipeline's second owner check, and what run_all.py hands it ----

def test_a_ledger_found_partial_after_training_is_refused_before_any_figure(tmp_path, monkeypatch):
    """The check before training predicts the ledger whole (here forced: a group named in
    --train whose runs all diverged comes back empty); the finished runs say partial: the
    second check refuses before a figure is written."""
    import minimanifold.pipeline as P
    monkeypatch.setattr(P, "will_be_partial", lambda *a: False)
    monkeypatch.setattr(P, "train_all", lambda *a, **kw: ([], {}))            # every group empty
    fig = tmp_path / "fig"
    _ledger(str(fig), written_by=P.written_by(TINY), partial=False)
    before = _tree(fig)
    with pytest.raises(OwnedByAnother, match="partial"):
        P.run(TINY, str(tmp_path / "runs"), str(fig), log=lambda s: None, train=frozenset({"main"}))
    assert _tree(fig) == before


def test_a_sitting_with_runs_still_to_train_writes_a_partial_ledger_and_adds_records(tmp_path, monkeypatch):
    """Nothing left out (the factorial reports from some cells) yet a group still training:
    the ledger is partial, the records are added to (``whole=False``), and a whole ledger in
    the folder refuses it; ``not_measured`` is handed a context that knows which retrainings
    may train and where the records are (a retraining held only in the records counts)."""
    import minimanifold.pipeline as P
    seen = {}
    monkeypatch.setattr(P, "will_be_partial", lambda *a: False)
    monkeypatch.setattr(P, "train_all", lambda *a, **kw: ([{"dir": "m", "summary": {"final_acc": {"1": 1.0}}}], {}))
    monkeypatch.setattr(P, "not_measured", lambda ctx, train: seen.update(retrains=ctx.retrains, fig=ctx.fig_dir) or {})
    monkeypatch.setattr(P, "unfinished", lambda ctx, train: {"mlp": (1, 2)})
    monkeypatch.setattr(P, "prefetch", lambda *a, **kw: None)
    monkeypatch.setattr(P, "analyse", lambda ctx, log, skip: ([], {}, []))
    monkeypatch.setattr(P.records, "export", lambda runs, root, whole=True: seen.update(whole=whole) or [])
    monkeypatch.setattr(P, "summary_table", lambda main: "")
    fig = tmp_path / "fig"
    P.run(TINY, str(tmp_path / "runs"), str(fig), log=lambda s: None, train=frozenset({"mlp"}))
    assert seen == {"retrains": frozenset({"mlp"}), "fig": str(fig), "whole": False}
    assert json.load(open(fig / "claims.json"))["partial"] is True and "mlp 1 of 2" in (fig / "claims.md").read_text()
    _ledger(str(fig), written_by=P.written_by(TINY), partial=False)
    with pytest.raises(OwnedByAnother, match="partial"):
        P.run(TINY, str(tmp_path / "runs"), str(fig), log=lambda s: None, train=frozenset({"mlp"}))


def _cli(monkeypatch):
    spec = importlib.util.spec_from_file_location("run_all_cli", os.path.join(ROOT, "run_all.py"))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    seen = {}
    monkeypatch.setattr(cli, "run", lambda *a, **kw: seen.update(kw))
    monkeypatch.setattr(cli, "plan", lambda *a, **kw: seen.update(plan_jobs=a[2]) or "planned")
    return cli, seen                  # --figures-dir under tmp_path: no committed ledger page is touched


def test_run_all_accepts_exactly_the_fewest_steps_the_analyses_need(tmp_path, monkeypatch):
    cli, _ = _cli(monkeypatch)
    n = PRESETS["smoke"].min_steps()
    base = ["--preset", "smoke", "--runs-dir", str(tmp_path / "r"), "--figures-dir", str(tmp_path / "f")]
    assert cli.main(base + ["--steps", str(n)]) == 0
    assert cli.main(base + ["--steps", str(n - 1)]) == 2


def test_run_all_hands_the_run_capped_jobs_and_overwrite(tmp_path, monkeypatch, capsys):
    from minimanifold.trajectories.pool import usable_cores
    cli, seen = _cli(monkeypatch)
    base = ["--preset", "smoke", "--runs-dir", str(tmp_path / "r"), "--figures-dir", str(tmp_path / "f")]
    assert cli.main(base + ["--jobs", "100000"]) == 0
    assert seen["jobs"] == usable_cores() and seen["overwrite"] is False
    assert f"capped at {usable_cores()}" in capsys.readouterr().err
    assert cli.main(base + ["--jobs", "1", "--overwrite"]) == 0
    assert seen["jobs"] == 1 and seen["overwrite"] is True
    assert cli.main(base + ["--jobs", "100000", "--plan"]) == 0
    assert seen["plan_jobs"] == usable_cores()


# ---- experiments.groups: what is done, what waits, what will be partial ----

def test_restricted_retraining_reads_only_the_main_seeds_the_preset_trains(tmp_path):
    """--seeds below restrict_seeds (the paper preset retrains 3 seeds; --seeds 2): the
    retrainings are those of seeds 0 and 1, the ones the report reads (``ctx.runs[:3]``)."""
    G, RT = _groups()
    p = dataclasses.replace(TINY, n_seeds=2, restrict_seeds=3)
    assert sorted({job.start.train.seed for job in _retrainings(p)}) == [0, 1]
    for spec in p.specs():
        _finish(tmp_path, spec)
    _cache_restricted(tmp_path, p)
    assert G.retrained(RT.EXPERIMENT, p, str(tmp_path))
    assert G.retraining_needs(p, str(tmp_path), None, frozenset({RT.GROUP})) == {}


def test_a_retraining_held_in_the_records_counts_as_done(tmp_path):
    """The runs cache gone, each job's result in its main run's committed record: retrained
    (a partial ledger rebuilt from the records shows claim 23); one job's missing: not."""
    import shutil
    from minimanifold.trajectories import records
    G, RT = _groups()
    p = dataclasses.replace(TINY, n_seeds=2, restrict_seeds=3)
    runs, root = tmp_path / "runs", tmp_path / "records"
    for spec in p.specs():
        _finish(runs, spec)
    _cache_restricted(runs, p)
    jobs = _retrainings(p)
    for spec in p.specs():
        d = records.record_dir(str(root), run_dir(str(runs), spec))
        shutil.copytree(run_dir(str(runs), spec), d)
        open(os.path.join(d, "record.json"), "w").write('{"run": "x", "files": {}}')
    shutil.rmtree(runs)
    assert not G.retrained(RT.EXPERIMENT, p, str(runs))
    assert G.retrained(RT.EXPERIMENT, p, str(runs), str(root))
    os.remove(os.path.join(records.record_dir(str(root), run_dir(str(runs), jobs[0].start)), jobs[0].cache))
    assert not G.retrained(RT.EXPERIMENT, p, str(runs), str(root))


def test_restricted_retraining_trains_each_of_its_unfinished_main_runs(tmp_path):
    """Every main run a job starts from or reads and that is not finished trains; a job held
    in the records needs none."""
    from minimanifold.trajectories import records
    G, RT = _groups()
    p = dataclasses.replace(TINY, n_seeds=2, restrict_seeds=2)
    train = frozenset({RT.GROUP})
    assert G.retraining_needs(p, str(tmp_path), None, train) == {"main": {0, 1}}
    _finish(tmp_path, p.specs()[0])                                   # seed 0 finished, seed 1 not
    assert G.retraining_needs(p, str(tmp_path), None, train) == {"main": {1}}
    assert G.retraining_needs(p, str(tmp_path), None, None) == {"main": {1}}   # a whole run too
    root = tmp_path / "records"
    for job in _retrainings(p):                                       # every job recorded: nothing to train
        d = records.record_dir(str(root), run_dir(str(tmp_path), job.start))
        os.makedirs(d, exist_ok=True)
        open(os.path.join(d, "record.json"), "w").write("{}")
        open(os.path.join(d, job.cache), "w").write("{}")
    assert G.retraining_needs(p, str(tmp_path), str(root), train) == {}


def test_will_be_partial_looks_only_at_what_train_leaves_out(tmp_path):
    """A whole run (train None) is never partial; a --train ledger is partial only if a group
    it does not name is unfinished, or restricted retraining is neither named nor cached."""
    G, RT = _groups()
    RESTRICTED, planned_specs, will_be_partial = RT.GROUP, G.planned_specs, G.will_be_partial
    runs = str(tmp_path)
    assert not will_be_partial(TINY, runs, None)
    for group, specs in planned_specs(TINY).items():
        if group != "mul":
            for spec in specs:
                _finish(runs, spec)
    assert will_be_partial(TINY, runs, frozenset({"mul"}))             # retrainings not cached
    assert not will_be_partial(TINY, runs, frozenset({"mul", RESTRICTED}))   # mul unfinished: it trains now
    assert will_be_partial(TINY, runs, frozenset({RESTRICTED}))         # mul neither named nor finished
    for spec in planned_specs(TINY)["mul"]:
        _finish(runs, spec)
    assert not will_be_partial(TINY, runs, frozenset({RESTRICTED}))     # it retrains what is missing
    assert will_be_partial(TINY, runs, frozenset())                     # --finished-only: claim 23 left out
    _cache_restricted(runs, TINY)
    assert not will_be_partial(TINY, runs, frozenset({"mul"}))
    assert not will_be_partial(TINY, runs, frozenset())


# ---- planning: counts from the cache's listing ----

@pytest.fixture
def planner(monkeypatch):
    import minimanifold.planning as P
    seen = []
    monkeypatch.setattr(P, "timed_step", lambda spec, jobs: (seen.append(jobs), 0.001)[1])
    return P, seen


def test_plan_counts_a_run_finished_both_here_and_under_another_name_once(tmp_path, planner):
    P, _ = planner
    mlp = _groups()[0].planned_specs(TINY)["mlp"][0]
    _finish(tmp_path, mlp)
    _finish(tmp_path, dataclasses.replace(mlp, name="screen"))
    assert _rows(P.plan(TINY, str(tmp_path), roofline=100.0))["mlp"][:6] == ["1", "1", "0", "0", "30", "0"]


def test_plan_ignores_checkpoints_of_a_run_superseded_by_its_finished_twin(tmp_path, planner):
    """Interrupted here at step 20, finished under another name: reused (0 steps), as the
    sweep adopts the twin and moves the checkpoints aside."""
    P, _ = planner
    mlp = _groups()[0].planned_specs(TINY)["mlp"][0]
    os.makedirs(os.path.join(run_dir(tmp_path, mlp), "ckpt"))
    open(os.path.join(run_dir(tmp_path, mlp), "ckpt", "step_00000020.npz"), "wb").close()
    assert _rows(P.plan(TINY, str(tmp_path), roofline=100.0))["mlp"][:6] == ["1", "0", "0", "1", "30", "10"]
    _finish(tmp_path, dataclasses.replace(mlp, name="screen"))
    assert _rows(P.plan(TINY, str(tmp_path), roofline=100.0))["mlp"][:6] == ["1", "0", "1", "0", "30", "0"]


def test_plan_does_not_resume_a_run_from_another_configurations_checkpoints(tmp_path, planner):
    """Checkpoints of an unfinished run under another name (same configuration) are not this
    run's: sweep.steps_left reads only its own directory, so --plan counts every step."""
    from minimanifold.trajectories.sweep import steps_left
    P, _ = planner
    mlp = _groups()[0].planned_specs(TINY)["mlp"][0]
    other = dataclasses.replace(mlp, name="screen")
    os.makedirs(os.path.join(run_dir(tmp_path, other), "ckpt"))
    open(os.path.join(run_dir(tmp_path, other), "ckpt", "step_00000020.npz"), "wb").close()
    assert steps_left(tmp_path, mlp) == 30
    assert _rows(P.plan(TINY, str(tmp_path), roofline=100.0))["mlp"][:6] == ["1", "0", "0", "1", "30", "30"]


def test_plan_caps_the_jobs_it_times_with_at_the_usable_cores(tmp_path, planner):
    from minimanifold.trajectories.pool import usable_cores
    P, seen = planner
    text = P.plan(TINY, str(tmp_path), jobs=10**6, roofline=100.0)
    assert set(seen) == {usable_cores()} and f"steps with --jobs {usable_cores()} " in text


# ---- sweep: a cached run is hashed once; commutators carry a digest ----

def test_a_cached_run_is_verified_once_per_sweep(tmp_path, monkeypatch):
    """The sweep checks every cached run up front (its header counts the damaged ones) and
    hands the result to the worker: the run's files are hashed once, not twice."""
    import minimanifold.trajectories.sweep as S
    spec = TINY.specs(seeds=[0])[0]
    sweep([spec], tmp_path, log=lambda s: None)
    calls = []
    real = S.verify_run
    monkeypatch.setattr(S, "verify_run", lambda d: (calls.append(d), real(d))[1])
    assert sweep([spec], tmp_path, log=lambda s: None)[0]["cached"]
    assert calls == [run_dir(tmp_path, spec)]


def test_the_commutator_cache_is_checked_against_its_digest(tmp_path, capsys):
    from minimanifold.experiments.commutators.measure import measure
    from minimanifold.files import read_npz, save_npz
    rec = sweep(TINY.specs(seeds=[0]), tmp_path, log=lambda s: None)[0]
    kw = dict(n_points=2, n_mixed=1, batch_size=8)
    path = measure(rec["dir"], **kw)
    assert changed(path) is None                                      # its digest recorded
    first, stamp = read_npz(path), os.stat(path).st_mtime_ns
    capsys.readouterr()
    assert measure(rec["dir"], **kw) == path and os.stat(path).st_mtime_ns == stamp   # read, not recomputed
    assert "recomputed" not in capsys.readouterr().err
    save_npz(path, {**first, "norm": first["norm"] * 2})               # an edited cache
    measure(rec["dir"], **kw)
    assert "is not the file its writer wrote (changed or truncated): recomputed" in capsys.readouterr().err
    again = read_npz(path)
    assert all(np.array_equal(again[k], first[k]) for k in first) and changed(path) is None
