"""Issue 23 §1: each committed ledger is what its committed records and the current rules give.

A preset's ``figures/<preset>/records/`` holds what its reports read of every run (the small
measurement caches, configs, summaries and metrics). Rebuilding the ledger from them alone
(no run cache, nothing trained) must give the committed ``claims.md`` byte for byte and
``claims.json`` to the last bit of its raw floats (``assert_same_ledger``): a rule changed
without its ledgers regenerated fails here. (The round trip of a whole run, records written
then read back byte for byte, figures included, is in test_run_all's smoke test.)
"""
import json
import os
import shutil

import pytest

from minimanifold.pipeline import run
from minimanifold.trajectories import records
from minimanifold.trajectories.presets import PRESETS
from minimanifold.trajectories.rundir import MissingRecord, cached_json
from tests.test_lost_data import assert_same_ledger

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WITH_RECORDS = [p for p in ("quick", "paper", "authors") if os.path.isdir(os.path.join(ROOT, "figures", p, "records"))]


@pytest.mark.parametrize("name", WITH_RECORDS)
def test_each_committed_ledger_is_what_its_records_and_the_rules_give(name, tmp_path):
    committed = os.path.join(ROOT, "figures", name)
    fig = tmp_path / "fig"
    shutil.copytree(os.path.join(committed, "records"), fig / "records")
    lines = []
    partial = json.load(open(os.path.join(committed, "claims.json"))).get("partial", False)
    run(PRESETS[name], str(tmp_path / "no-runs"), str(fig), jobs=1, log=lines.append,
        finished_only=partial)                        # a partial ledger: of the runs its sittings finished
    assert not (tmp_path / "no-runs").exists()                             # nothing trained
    assert any("read from the committed records" in str(line) for line in lines)
    assert (fig / "claims.md").read_text() == open(os.path.join(committed, "claims.md")).read()
    assert_same_ledger(json.loads((fig / "claims.json").read_text()),
                       json.load(open(os.path.join(committed, "claims.json"))))


def test_the_quick_preset_commits_its_records():
    """The default preset's ledger rebuilds from the repository alone (the README says so)."""
    assert "quick" in WITH_RECORDS


def test_a_record_holds_what_was_read_and_never_a_heavy_file(tmp_path):
    """export copies the config, summary, metrics and exactly the measurements read (with
    their digests); a file over MAX_BYTES is refused by name; a record is read back by
    ``cached`` without computing, and a measurement it lacks is a MissingRecord naming it."""
    run_dir = tmp_path / "runs" / "add-abc" / "seed_3"
    os.makedirs(run_dir)
    for name in ("config.json", "summary.json", "metrics.json", "trajectory.npz"):
        (run_dir / name).write_text("{}")
    assert cached_json(str(run_dir), "m_v1.json", lambda d: {"x": 1}) == {"x": 1}
    cached_json(str(run_dir), "unread_v1.json", lambda d: {"y": 2})
    read = {os.path.abspath(run_dir / "m_v1.json")}
    [dst] = records.export([{"dir": str(run_dir)}], str(tmp_path / "rec"), read)
    assert sorted(os.listdir(dst)) == ["config.json", "m_v1.json", "m_v1.json.sha256", "metrics.json",
                                       "record.json", "summary.json"]
    assert json.load(open(os.path.join(dst, "record.json")))["run"] == "add-abc/seed_3"
    assert cached_json(dst, "m_v1.json", lambda d: 1 / 0) == {"x": 1}
    with pytest.raises(MissingRecord, match="unread_v1.json is not in the committed records"):
        cached_json(dst, "unread_v1.json", lambda d: {"y": 2})
    (run_dir / "big_v1.json").write_text("0" * (records.MAX_BYTES + 1))
    (run_dir / "big_v1.json.sha256").write_text("x")
    with pytest.raises(records.RecordError, match="big_v1.json is 1.0 MiB: too large"):
        records.export([{"dir": str(run_dir)}], str(tmp_path / "rec"), read | {os.path.abspath(run_dir / "big_v1.json")})
    assert sorted(os.listdir(dst))[1] == "m_v1.json"                     # the refused export left it whole
    assert os.listdir(os.path.dirname(dst)) == ["seed_3"]                 # and no half-written copy


def test_export_replaces_a_record_whole_and_drops_runs_no_longer_read(tmp_path):
    runs = []
    for seed in (0, 1):
        d = tmp_path / "runs" / "add-abc" / f"seed_{seed}"
        os.makedirs(d)
        (d / "config.json").write_text(json.dumps({"seed": seed}))
        runs.append({"dir": str(d)})
    rec = tmp_path / "rec"
    records.export(runs, str(rec), set())
    assert sorted(os.listdir(rec / "add-abc")) == ["seed_0", "seed_1"]
    (rec / "add-abc" / "seed_0" / "stale_v1.json").write_text("{}")
    records.export(runs[:1], str(rec), set())
    assert os.listdir(rec / "add-abc") == ["seed_0"]                      # seed 1 is no longer read
    assert "stale_v1.json" not in os.listdir(rec / "add-abc" / "seed_0")  # replaced whole
    assert json.load(open(rec / "add-abc" / "seed_0" / "config.json")) == {"seed": 0}


def test_a_partial_sitting_adds_to_the_records_and_removes_nothing(tmp_path):
    """``whole=False`` (``--train``/``--finished-only``: each sitting's finished runs are
    committed): other runs' records stay; a run's record keeps what an earlier sitting read
    of the same run beside what this one read; a retrained run (another summary) is new."""
    runs = []
    for seed in (0, 1):
        d = tmp_path / "runs" / "add-abc" / f"seed_{seed}"
        os.makedirs(d)
        (d / "summary.json").write_text(json.dumps({"seed": seed}))
        for m in ("a_v1.json", "b_v1.json"):
            cached_json(str(d), m, lambda _: {"m": m})
        runs.append({"dir": str(d)})
    rec = tmp_path / "rec"
    a_of = lambda r: os.path.abspath(os.path.join(r["dir"], "a_v1.json"))   # noqa: E731
    across = cached_json(str(tmp_path / "runs" / "add-abc"), "across_v1.json", lambda _: {"seeds": 2})
    b_of = lambda r: os.path.abspath(os.path.join(r["dir"], "b_v1.json"))   # noqa: E731
    records.export(runs, str(rec), {a_of(r) for r in runs} | {b_of(runs[0])} | {
        os.path.abspath(tmp_path / "runs" / "add-abc" / "across_v1.json")})
    assert across == {"seeds": 2} and "across_v1.json" in os.listdir(rec / "add-abc")
    for name in ("b_v1.json", "b_v1.json.sha256"):                      # recomputed since: this sitting's copy wins
        os.remove(os.path.join(runs[0]["dir"], name))
    cached_json(runs[0]["dir"], "b_v1.json", lambda _: {"m": "b, again"})
    records.export(runs[:1], str(rec), {os.path.abspath(os.path.join(runs[0]["dir"], "b_v1.json"))}, whole=False)
    assert sorted(os.listdir(rec / "add-abc")) == ["across_v1.json", "across_v1.json.sha256", "seed_0", "seed_1"]
    assert json.load(open(rec / "add-abc" / "seed_0" / "b_v1.json")) == {"m": "b, again"}
    seed0 = rec / "add-abc" / "seed_0"
    assert {"a_v1.json", "b_v1.json"} <= set(os.listdir(seed0))             # both sittings' reads
    files = json.load(open(seed0 / "record.json"))["files"]
    assert {"a_v1.json", "a_v1.json.sha256", "b_v1.json", "summary.json"} <= set(files)
    assert cached_json(str(seed0), "a_v1.json", lambda d: 1 / 0) == {"m": "a_v1.json"}
    (tmp_path / "runs" / "add-abc" / "seed_0" / "summary.json").write_text(json.dumps({"seed": 0, "again": 1}))
    records.export(runs[:1], str(rec), {os.path.abspath(os.path.join(runs[0]["dir"], "b_v1.json"))}, whole=False)
    assert "a_v1.json" not in os.listdir(seed0) and "b_v1.json" in os.listdir(seed0)   # retrained: new record
    records.export(runs[:1], str(rec), set())                               # a whole ledger: exactly its reads
    assert os.listdir(rec / "add-abc") == ["seed_0"] and "b_v1.json" not in os.listdir(seed0)


def test_a_whole_ledger_read_from_records_keeps_only_what_it_read(tmp_path):
    """No run cache: the runs are their records (src is dst). A whole ledger rewrites each
    record with only what it read (an earlier sitting's kept file, a configuration-level
    file no longer read: removed); a partial one leaves them as they are. A file listed in
    an earlier record but lost from disk is not carried (nor does it stop the export)."""
    rec = tmp_path / "rec"
    d = tmp_path / "runs" / "add-abc" / "seed_0"
    os.makedirs(d)
    (d / "summary.json").write_text("{}")
    for m in ("a_v1.json", "old_v1.json"):
        cached_json(str(d), m, lambda _: {"m": m})
    cached_json(str(d.parent), "across_v1.json", lambda _: 1)
    records.export([{"dir": str(d)}], str(rec), {os.path.abspath(d / m) for m in ("a_v1.json", "old_v1.json")}
                   | {os.path.abspath(d.parent / "across_v1.json")})
    seed0 = rec / "add-abc" / "seed_0"
    os.remove(seed0 / "old_v1.json.sha256")                             # lost from disk since
    os.remove(d / "a_v1.json.sha256")
    os.remove(d / "a_v1.json")
    cached_json(str(d), "a_v1.json", lambda _: {"m": "again"})
    records.export([{"dir": str(d)}], str(rec), {os.path.abspath(d / "a_v1.json")}, whole=False)
    assert "old_v1.json" in os.listdir(seed0) and "old_v1.json.sha256" not in json.load(open(seed0 / "record.json"))["files"]
    records.export([{"dir": str(seed0)}], str(rec), set(), whole=False)   # partial, from the records: as it was
    assert "old_v1.json" in os.listdir(seed0) and "across_v1.json" in os.listdir(rec / "add-abc")
    records.export([{"dir": str(seed0)}], str(rec), {os.path.abspath(seed0 / "a_v1.json")})
    assert sorted(os.listdir(seed0)) == ["a_v1.json", "a_v1.json.sha256", "record.json", "summary.json"]
    assert json.load(open(seed0 / "a_v1.json")) == {"m": "again"}
    assert sorted(json.load(open(seed0 / "record.json"))["files"]) == ["a_v1.json", "a_v1.json.sha256", "summary.json"]
    assert os.listdir(rec / "add-abc") == ["seed_0"]                      # the unread configuration file too


def test_a_large_intermediate_is_never_recorded(tmp_path):
    """``cached_npz(..., record=False)`` (the 3 MB of PCA directions a smaller cached
    orientation summarises) is computed and cached but not marked for the record."""
    import numpy as np
    from minimanifold.trajectories.rundir import READ, cached_npz
    READ.clear()
    cached_npz(str(tmp_path), "dirs_v1.npz", lambda d: {"a": np.zeros(2)}, record=False)
    cached_npz(str(tmp_path), "kept_v1.npz", lambda d: {"a": np.zeros(2)})
    assert READ == {os.path.abspath(tmp_path / "kept_v1.npz")}


def test_records_stand_in_for_runs_except_in_the_groups_train_names(tmp_path, monkeypatch):
    """Every planned run has a record and none is in the run cache: nothing is swept (trained)
    and every run is its record; with ``--train main`` the main group is swept (retrained)
    and the other groups still come from their records."""
    import minimanifold.pipeline as PL
    from minimanifold.experiments.groups import planned_specs
    from minimanifold.trajectories.presets import SMOKE
    from minimanifold.trajectories.sweep import run_dir
    root = tmp_path / "records"
    for group in planned_specs(SMOKE).values():
        for spec in group:
            d = records.record_dir(str(root), run_dir(str(tmp_path / "runs"), spec))
            os.makedirs(d)
            json.dump({"final_acc": {"1": 1.0, "2": 1.0}, "config": {"task": {"labels": "task"},
                                                                      "train": {"schedule": "mixed:1,2"}}},
                      open(os.path.join(d, "summary.json"), "w"))
            json.dump({"run": "x", "files": {}}, open(os.path.join(d, "record.json"), "w"))
    from minimanifold.experiments.groups import retrainings
    jobs = [j for _, js in retrainings(SMOKE).values() for j in js]
    for j in jobs:                                          # the retrainings' results are recorded too
        open(os.path.join(records.record_dir(str(root), run_dir(str(tmp_path / "runs"), j.start)), j.cache), "w").write("{}")
    swept = []

    def fake_sweep(specs, runs_dir, **kw):
        swept.extend(specs)
        return [{"name": s.name, "seed": s.train.seed, "dir": "trained", "summary": {
            "final_acc": {"1": 1.0, "2": 1.0}, "config": {"task": {}, "train": {"schedule": "mixed:1,2"}}}}
            for s in specs]
    monkeypatch.setattr(PL, "sweep", fake_sweep)
    main, variants = PL.train_all(SMOKE, str(tmp_path / "runs"), log=lambda s: None, records_root=str(root))
    assert swept == [] and all(r.get("record") for r in main + [r for v in variants.values() for r in v])
    main, variants = PL.train_all(SMOKE, str(tmp_path / "runs"), log=lambda s: None, records_root=str(root),
                                  train=frozenset({"main"}))
    assert swept == SMOKE.specs() and [r["dir"] for r in main] == ["trained"] * len(main)
    assert all(r.get("record") for v in variants.values() for r in v)
    os.remove(os.path.join(records.record_dir(str(root), run_dir(str(tmp_path / "runs"), jobs[0].start)), jobs[0].cache))
    swept.clear()                                           # a retraining to do: the runs it starts from train
    main, _ = PL.train_all(SMOKE, str(tmp_path / "runs"), log=lambda s: None, records_root=str(root))
    assert swept == [jobs[0].start] and [r["dir"] == "trained" for r in main] == [True, False]


def test_a_record_keeps_only_its_own_runs_reads(tmp_path):
    """Two runs both hold other_v1.json; only run B's was read: run A's record must not
    carry its unread copy (what was read is matched by directory, not by file name)."""
    runs = []
    for name in ("seed_0", "seed_1"):
        d = tmp_path / "runs" / "add-abc" / name
        os.makedirs(d)
        (d / "config.json").write_text("{}")
        cached_json(str(d), "other_v1.json", lambda _: {"x": 1})
        runs.append({"dir": str(d)})
    read = {os.path.abspath(tmp_path / "runs" / "add-abc" / "seed_1" / "other_v1.json")}
    a, b = records.export(runs, str(tmp_path / "rec"), read)
    assert "other_v1.json" not in os.listdir(a) and "other_v1.json" in os.listdir(b)


def test_a_whole_ledger_over_runs_from_the_cache_and_the_records_keeps_what_it_read_of_both(tmp_path):
    """Seed 0 retrained into the run cache, seed 1 read from its record (a retraining trained
    the runs it starts from): the measurement across seeds read from the records' folder is
    kept by a whole ledger, one read from the cache's folder is copied in, one read from
    neither is removed. Guards: only the first run's folder looked at (the records' file
    removed: lost data)."""
    rec = tmp_path / "rec"
    cache0 = tmp_path / "runs" / "add-abc" / "seed_0"
    os.makedirs(cache0)
    (cache0 / "summary.json").write_text("{}")
    seed1 = rec / "add-abc" / "seed_1"
    os.makedirs(seed1)
    (seed1 / "summary.json").write_text("{}")
    (seed1 / "record.json").write_text(json.dumps({"run": "add-abc/seed_1", "files": {}}))
    from minimanifold.files import record_digest, save_json
    for name, value in (("across_v1.json", {"seeds": [0, 1]}), ("stale_v1.json", 3)):   # an earlier sitting's
        save_json(str(rec / "add-abc" / name), value)
        record_digest(str(rec / "add-abc" / name))
    across = cached_json(str(rec / "add-abc"), "across_v1.json", lambda _: 1 / 0)
    fresh = cached_json(str(cache0.parent), "fresh_v1.json", lambda _: 2)
    records.export([{"dir": str(cache0)}, {"dir": str(seed1)}], str(rec),
                   {os.path.abspath(rec / "add-abc" / "across_v1.json"), os.path.abspath(cache0.parent / "fresh_v1.json")})
    kept = sorted(os.listdir(rec / "add-abc"))
    assert kept == ["across_v1.json", "across_v1.json.sha256", "fresh_v1.json", "fresh_v1.json.sha256",
                    "seed_0", "seed_1"]
    assert cached_json(str(rec / "add-abc"), "across_v1.json", lambda _: 1 / 0) == across and fresh == 2


def test_a_run_retrained_takes_what_its_record_holds_of_it(tmp_path):
    """A main run retrained into the run cache (for a retraining that starts from it) ending
    as its record did: every measurement the record lists comes back with its digest, so
    one that reads a run only a record holds (another seed's basis) is not computed again;
    the pipeline does this for each run it sweeps. Guards: not called by the pipeline."""
    import dataclasses
    import shutil
    from minimanifold.pipeline import train_all
    from minimanifold.trajectories.presets import SMOKE
    from minimanifold.trajectories.sweep import run_dir, sweep
    p = dataclasses.replace(SMOKE, n_seeds=2, train=dataclasses.replace(SMOKE.train, steps=30, ckpt_every=10,
                                                                        batch_size=16))
    runs, root = tmp_path / "runs", tmp_path / "records"
    spec = p.specs()[0]
    d = sweep([spec], runs, log=lambda s: None)[0]["dir"]
    cached_json(d, "geometry_v9.json", lambda _: {"r90": 2})
    records.export([{"dir": d}], str(root), {os.path.abspath(os.path.join(d, "geometry_v9.json"))})
    shutil.rmtree(runs)                                                  # a new machine
    rec = records.record_dir(str(root), run_dir(str(runs), spec))
    assert records.adopt(rec, str(tmp_path / "nowhere")) == []
    main, _ = train_all(p, str(runs), log=lambda s: None, train=frozenset({"main"}), records_root=str(root))
    assert not main[0].get("record") and os.path.exists(os.path.join(main[0]["dir"], "geometry_v9.json.sha256"))
    assert cached_json(main[0]["dir"], "geometry_v9.json", lambda _: 1 / 0) == {"r90": 2}
