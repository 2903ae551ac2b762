"""Nothing lost, nothing silently wrong: a figures folder another run owns, two writers of
one run, files of a cached run changed after they were written, stale temp files, and
the plan agreeing with what a run trains (issue 28)."""
import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from minimanifold.report import ledger
from minimanifold.report.owner import OwnedByAnother, check_owner, identity
from minimanifold.trajectories.presets import SMOKE
from minimanifold.trajectories.rundir import DamagedRun, run_lock, verify_run
from minimanifold.files import changed, record_digest, save_npz
from minimanifold.trajectories.sweep import run_dir, sweep

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HANG = 1800
TINY = dataclasses.replace(SMOKE, train=dataclasses.replace(SMOKE.train, steps=30, ckpt_every=10, batch_size=16))


def _ledger(folder, written_by=None, partial=False, caption="smoke preset, 2 seeds: L=2"):
    row = ledger.Row(claim="c", section="s", paper="p", measured="m", null="", interval="", verdict="inconclusive",
                     value=None)
    ledger.write([row], {}, caption, os.path.join(folder, "claims.md"), os.path.join(folder, "claims.json"),
                 written_by=written_by, partial=partial)


def _tree(folder) -> dict:
    return {os.path.relpath(os.path.join(d, f), folder): open(os.path.join(d, f), "rb").read()
            for d, _, fs in os.walk(folder) for f in fs}


# ---- a figures folder that holds another run's ledger ----

def test_another_presets_ledger_is_refused_before_anything_trains(tmp_path):
    """The reported loss: --preset smoke --figures-dir figures/paper replaced the committed
    paper ledger and figures. Now one line, exit 2, nothing trained, every file as it was."""
    fig = tmp_path / "paper"
    shutil.copytree(os.path.join(ROOT, "figures", "paper"), fig)
    before = _tree(fig)
    r = subprocess.run([sys.executable, "run_all.py", "--preset", "smoke", "--figures-dir", str(fig),
                        "--runs-dir", str(tmp_path / "runs")], cwd=ROOT, capture_output=True, text=True, timeout=HANG)
    assert r.returncode == 2, r.stderr
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "paper preset, 10 seeds" in err \
        and "--overwrite" in err
    assert _tree(fig) == before and not (tmp_path / "runs").exists()


def test_a_claims_file_that_is_no_ledger_is_refused(tmp_path):
    (tmp_path / "claims.json").write_text('{"not": "a ledger"}')
    with pytest.raises(OwnedByAnother, match="is not a claims ledger"):
        check_owner(str(tmp_path), "smoke preset, 2 seeds: L=2", False)
    (tmp_path / "claims.json").write_text('{"caption": "x", "claims": [')          # truncated
    with pytest.raises(OwnedByAnother, match="is not a claims ledger"):
        check_owner(str(tmp_path), "x", False)
    check_owner(str(tmp_path), "x", False, overwrite=True)                          # the user says so


def test_a_ledger_written_before_the_owner_fields_is_read_from_its_caption():
    old = {"caption": "paper preset, 10 seeds: L=3, d_model=128, T=32, C=8, mixed:1,2,3,4, sgd lr=0.15, 30000 "
                      "steps, checkpoints every 100\n\nmore caption", "claims": []}      # as committed at 890fe49
    assert identity(old) == ("paper preset, 10 seeds: L=3, d_model=128, T=32, C=8, mixed:1,2,3,4, sgd "
                             "lr=0.15, 30000 steps, checkpoints every 100", False)
    assert identity({"caption": "quick preset, 5 seeds: x\n\nPartial ledger (only ...)", "claims": []}) == \
        ("quick preset, 5 seeds: x", True)
    assert identity({"caption": "a\n\nb", "claims": [], "written_by": "w", "partial": True}) == ("w", True)


@pytest.mark.parametrize("theirs, their_partial, mine, my_partial, refused", [
    ("smoke preset, 2 seeds: L=2", False, "smoke preset, 2 seeds: L=2", False, False),   # its own: rewritten
    ("smoke preset, 2 seeds: L=2", True, "smoke preset, 2 seeds: L=2", True, False),     # partial over partial
    ("smoke preset, 2 seeds: L=2", True, "smoke preset, 2 seeds: L=2", False, False),    # whole over partial
    ("smoke preset, 2 seeds: L=2", False, "smoke preset, 2 seeds: L=2", True, True),     # partial over whole
    ("smoke preset, 2 seeds: L=2", False, "smoke preset, 3 seeds: L=2", False, True),    # --seeds
    ("smoke preset, 2 seeds: L=2, lr=0.1", False, "smoke preset, 2 seeds: L=2, lr=0.2", False, True),   # --lr
    ("paper preset, 10 seeds: L=3", False, "smoke preset, 2 seeds: L=2", False, True),   # another preset
])
def test_who_may_write_a_figures_folder(tmp_path, theirs, their_partial, mine, my_partial, refused):
    _ledger(str(tmp_path), written_by=theirs, partial=their_partial)
    if refused:
        with pytest.raises(OwnedByAnother, match="--overwrite"):
            check_owner(str(tmp_path), mine, my_partial)
    else:
        check_owner(str(tmp_path), mine, my_partial)
    check_owner(str(tmp_path), mine, my_partial, overwrite=True)
    check_owner(str(tmp_path / "empty"), mine, my_partial)                           # nothing there yet


def test_a_partial_run_over_a_whole_ledger_is_refused_before_training(tmp_path):
    """--train mul with the other groups unfinished would write a partial ledger over the
    whole one: refused before the mul runs train (the run directory stays empty)."""
    from minimanifold.pipeline import run, written_by
    fig = tmp_path / "fig"
    _ledger(str(fig), written_by=written_by(TINY), partial=False)
    before = _tree(fig)
    with pytest.raises(OwnedByAnother, match="partial"):
        run(TINY, str(tmp_path / "runs"), str(fig), log=lambda s: None, train=frozenset({"mul"}))
    assert _tree(fig) == before and not (tmp_path / "runs").exists()
    assert json.load(open(fig / "claims.json"))["written_by"] == written_by(TINY)


# ---- two writers of one run ----

def test_a_second_sweep_of_a_run_waits_for_the_first_and_loads_its_result(tmp_path):
    spec = TINY.specs(seeds=[0])[0]
    d = run_dir(tmp_path, spec)
    held = threading.Event()
    lines, out = [], {}

    def first():                                              # another process holding the run
        with run_lock(d):
            held.set()
            time.sleep(1.0)                                   # the sweep must wait meanwhile
            out["released"] = time.monotonic()

    t = threading.Thread(target=first)
    t.start()
    held.wait(10)
    rec = sweep([spec], tmp_path, log=lines.append)[0]
    t.join()
    assert any("waiting for pid" in ln and "seed_0" in ln for ln in lines), lines
    assert time.monotonic() >= out["released"]                # it went on only after the lock was let go
    again = sweep([spec], tmp_path, log=lines.append)[0]
    assert again["cached"] and again["summary"] == rec["summary"]
    assert open(f"{d}.lock").read() == ""                     # released: no holder named


def test_two_run_all_processes_on_one_empty_cache_both_finish(tmp_path):
    """The reported failure: two smoke runs started together on one empty run cache both
    died (a checkpoint pruned under the other's feet). With the run lock each run is
    trained once, the other process waits and loads it; both ledgers agree. At the
    smallest step count the preset allows (``Preset.min_steps``), which runs end to end."""
    steps = str(SMOKE.min_steps())
    cmd = [sys.executable, "run_all.py", "--preset", "smoke", "--steps", steps, "--jobs", "1",
           "--runs-dir", str(tmp_path / "runs")]
    procs = [subprocess.Popen(cmd + ["--figures-dir", str(tmp_path / f"fig{i}")], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in (0, 1)]
    outs = [p.communicate(timeout=HANG) for p in procs]
    for p, (o, e) in zip(procs, outs):
        assert p.returncode == 0, e[-2000:]
    assert any("waiting for pid" in o for o, _ in outs)
    a, b = (json.loads((tmp_path / f"fig{i}" / "claims.json").read_text()) for i in (0, 1))
    assert_same_ledger(a, b)


def assert_same_ledger(a, b, path="claims"):
    """Two ledgers from one cache agree: every text, verdict and count exactly, every raw
    float to 1e-9 relative (NaN equal to NaN). Not bytes: the two processes hold the same
    checkpoints in differently aligned buffers, and NumPy's SIMD reductions round by
    alignment, so a raw value may differ in its last bit (CI, 5f60cc6: 85.62765556200483
    against ...485 for a principal angle); the printed ledger cannot."""
    if isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, (int, float)) and isinstance(b, (int, float)), (path, a, b)
        assert (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), (path, a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), (path, a, b)
        for k in a:
            assert_same_ledger(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), (path, a, b)
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_ledger(x, y, f"{path}[{i}]")
    else:
        assert type(a) is type(b) and a == b, (path, a, b)


def test_the_ledger_comparison_tolerates_the_last_bit_and_nothing_else():
    row = {"verdict": "inconclusive", "value": 85.62765556200483, "null_value": float("nan"), "n": 5}
    assert_same_ledger([row], [dict(row, value=85.62765556200485)])
    for other in (dict(row, value=85.6277), dict(row, verdict="supported"), dict(row, n=6),
                  dict(row, null_value=1.0), {k: v for k, v in row.items() if k != "n"}):
        with pytest.raises(AssertionError):
            assert_same_ledger([row], [other])
    with pytest.raises(AssertionError):
        assert_same_ledger([row], [row, row])


# ---- files changed after their writer finished ----

def test_an_edited_summary_is_caught_and_the_run_retrained(tmp_path):
    spec = TINY.specs(seeds=[0])[0]
    rec = sweep([spec], tmp_path, log=lambda s: None)[0]
    path = os.path.join(rec["dir"], "summary.json")
    s = json.load(open(path))
    s["final_acc"] = {m: 1.0 for m in s["final_acc"]}                 # the reported edit
    open(path, "w").write(json.dumps(s, indent=1, sort_keys=True))
    with pytest.raises(DamagedRun, match="summary.json is not the file its writer wrote"):
        verify_run(rec["dir"])
    lines = []
    again = sweep([spec], tmp_path, log=lines.append)[0]
    assert lines[0] == "1 runs: 0 cached, 1 damaged (moved aside and retrained), 0 to train"   # said up front
    assert again["damaged"] and not again["cached"] and again["summary"]["final_acc"] == rec["summary"]["final_acc"]


def test_a_summary_from_before_digests_is_adopted_not_retrained(tmp_path):
    spec = TINY.specs(seeds=[0])[0]
    rec = sweep([spec], tmp_path, log=lambda s: None)[0]
    os.remove(os.path.join(rec["dir"], "summary.json.sha256"))
    assert verify_run(rec["dir"]) == rec["summary"]
    assert changed(os.path.join(rec["dir"], "summary.json")) is None          # recorded now
    assert sweep([spec], tmp_path, log=lambda s: None)[0]["cached"]


def _counting(calls):
    def compute(d):
        calls.append(d)
        return {"r90": 2.5, "steps": [1, 2]}
    return compute


@pytest.mark.parametrize("damage, why", [
    (lambda p: open(p, "w").write('{"r90": 9.0, "steps": [1, 2]}'), "is not the file its writer wrote (changed or truncated)"),
    (lambda p: open(p, "w").write('{"r90": 2.5, "ste'), "is not the file its writer wrote (changed or truncated)"),
    (lambda p: os.remove(p + ".sha256"), "has no recorded digest"),                # stored before digests
])
def test_a_changed_analysis_cache_is_named_and_recomputed(tmp_path, capsys, damage, why):
    from minimanifold.trajectories.rundir import cached_json
    calls = []
    assert cached_json(str(tmp_path), "m_v1.json", _counting(calls)) == {"r90": 2.5, "steps": [1, 2]}
    assert cached_json(str(tmp_path), "m_v1.json", _counting(calls)) == {"r90": 2.5, "steps": [1, 2]}
    assert len(calls) == 1                                                       # the second read the cache
    damage(str(tmp_path / "m_v1.json"))
    capsys.readouterr()
    assert cached_json(str(tmp_path), "m_v1.json", _counting(calls)) == {"r90": 2.5, "steps": [1, 2]}
    assert len(calls) == 2
    err = capsys.readouterr().err
    assert f"m_v1.json {why}: recomputed" in err
    assert changed(str(tmp_path / "m_v1.json")) is None


def test_an_unreadable_cache_with_a_valid_digest_is_recomputed(tmp_path, capsys):
    """Valid digest, unparseable content (written so by a bug): named with the parser's
    message, recomputed; never a traceback."""
    from minimanifold.trajectories.rundir import cached_npz
    path = tmp_path / "x_v1.npz"
    path.write_bytes(b"not an npz")
    record_digest(str(path))
    out = cached_npz(str(tmp_path), "x_v1.npz", lambda d: {"a": __import__("numpy").arange(3)})
    assert list(out["a"]) == [0, 1, 2] and "x_v1.npz is unreadable" in capsys.readouterr().err


def test_geometry_cache_recomputes_only_the_changed_file(tmp_path, monkeypatch):
    import numpy as np
    from minimanifold.experiments import geometry
    calls = []
    geom = {"W": {"r90": 2.0, "dirs": np.eye(3)[:, :2]}, "all attention": {"r90": 3.0}}
    monkeypatch.setattr(geometry, "geometry_of_run", lambda d: (calls.append(d), geom)[1])
    monkeypatch.setattr(geometry, "directions_of_run", lambda d: 1 / 0)     # kept when computed: never again
    first = geometry.cached_geometry(str(tmp_path))
    assert len(calls) == 1 and first["W"]["r90"] == 2.0 and "dirs" not in first["W"]
    assert np.array_equal(geometry.cached_dirs(str(tmp_path), geometry.directions_of_run)["W"], np.eye(3)[:, :2])
    jpath = tmp_path / f"geometry_v{geometry.ANALYSIS_VERSION}.json"
    jpath.write_text(jpath.read_text().replace("2.0", "7.0"))                   # the reported edit of r90
    again = geometry.cached_geometry(str(tmp_path))
    assert len(calls) == 2 and again["W"]["r90"] == 2.0
    assert geometry.cached_geometry(str(tmp_path))["W"]["r90"] == 2.0 and len(calls) == 2


# ---- stale temp files, and what a plan says ----

def test_temp_files_a_killed_worker_left_in_a_cached_run_are_removed(tmp_path):
    spec = TINY.specs(seeds=[0])[0]
    rec = sweep([spec], tmp_path, log=lambda s: None)[0]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = [os.path.join(rec["dir"], f"geometry_v2.json.pid{dead.stdout.strip()}.abc.tmp"),
             os.path.join(rec["dir"], "ckpt", f"step_00000030.npz.pid{dead.stdout.strip()}.x.tmp")]
    live = os.path.join(rec["dir"], f"bubbling_v1.json.pid{os.getpid()}.abc.tmp")   # a writer still running
    for p in stale + [live]:
        open(p, "w").write("partial")
    assert sweep([spec], tmp_path, log=lambda s: None)[0]["cached"]
    assert not any(os.path.exists(p) for p in stale) and os.path.exists(live)


def _rows(text) -> dict:
    return {ln.split()[0]: ln.split()[1:] for ln in text.splitlines() if ln.split() and ln.split()[-1][0].isdigit()}


def test_plan_and_run_agree_on_restricted_retraining_without_main(tmp_path):
    """The reported disagreement: on an empty cache --plan --train restricted-retraining
    counted 2 runs to train, the run trained nothing and stopped with "add main". Now both
    train the main runs the retrainings start from or read (seeds 0 and 1 of 3), no other.
    Guards: every main seed trained; the plan not counting them."""
    import dataclasses
    from minimanifold.experiments.groups import retrainings
    from minimanifold.pipeline import train_all
    from minimanifold.planning import plan
    p = dataclasses.replace(TINY, n_seeds=3)
    train = frozenset({"restricted-retraining"})
    text = plan(p, str(tmp_path), train=train, roofline=100.0)
    n = str(len(retrainings(p)["restricted-retraining"][1]))            # one per basis
    assert _rows(text)["restricted-retraining"][:4] == [n, "0", "0", n]
    assert _rows(text)["main"][:4] == ["2", "0", "0", "2"] and "add main" not in text
    assert "main: seeds 0, 1 train for the retrainings that start from them or read them" in text
    assert "main: seeds" not in plan(p, str(tmp_path), train=train | {"main"}, roofline=100.0)   # named: its row says it
    main, _ = train_all(p, str(tmp_path), log=lambda s: None, train=train)
    assert [r["seed"] for r in main] == [0, 1]
    key = os.path.dirname(run_dir(tmp_path, p.specs()[0]))
    assert sorted(f for f in os.listdir(key) if not f.endswith(".lock")) == ["seed_0", "seed_1"]
    after = plan(p, str(tmp_path), train=train, roofline=100.0)
    assert "main" not in _rows(after) and "main: seeds" not in after
    (_, jobs), = retrainings(p).values()                  # a job a sitting began: only its steps left
    assert int(_rows(after)["restricted-retraining"][5]) == sum(j.steps for j in jobs)
    save_npz(os.path.join(run_dir(tmp_path, jobs[1].start), jobs[1].resume), {"step": np.array(5)})
    assert int(_rows(plan(p, str(tmp_path), train=train, roofline=100.0))["restricted-retraining"][5]) == \
        sum(j.steps for j in jobs) - 5


def test_a_ledger_that_trains_nothing_shows_restricted_retraining_from_what_is_cached(tmp_path):
    """--finished-only (or --train of another group) leaves claim 23 out only when none of its
    retrainings is in the cache; with some, it reads those (a retraining takes several
    sittings); naming the group reads every one. Guards: every job required again; the
    context's ``retrains`` ignored."""
    import dataclasses
    from minimanifold.experiments import restricted_training
    from minimanifold.experiments.groups import retrainings
    from minimanifold.experiments.measuring import planned_context
    from minimanifold.pipeline import not_measured
    planned = planned_context(TINY, str(tmp_path))
    ctx = dataclasses.replace(planned, retrains=frozenset())
    exp = restricted_training.EXPERIMENT
    assert not_measured(ctx, frozenset())[exp] == "its measurement trains"
    assert exp.measurements(ctx) == [] and len(exp.measurements(planned)) == len(TINY.restrict_k) * 5
    (_, jobs), = retrainings(TINY).values()
    assert [(j.start, j.cache) for j in jobs] == [                      # cached in its main run's directory
        (spec, restricted_training.cache_name(k, kind, 15, 1 if kind == "other" else None))   # seed 1's basis
        for spec in TINY.specs(seeds=[0]) for k in TINY.restrict_k for kind in restricted_training.KINDS]
    os.makedirs(run_dir(tmp_path, jobs[0].start), exist_ok=True)
    open(os.path.join(run_dir(tmp_path, jobs[0].start), jobs[0].cache), "w").write("{}")
    assert exp not in not_measured(ctx, frozenset())      # one finished: read
    assert [c[1] for c in exp.measurements(ctx)] == [(run_dir(tmp_path, jobs[0].start), TINY.restrict_k[0],
                                                      "execution", 15, None, None)]
    named = dataclasses.replace(planned, retrains=frozenset({"restricted-retraining"}))
    assert exp not in not_measured(named, frozenset({"restricted-retraining"}))
    assert exp.measurements(named) == exp.measurements(planned)          # named: every job, to train


def test_plan_cost_does_not_grow_with_seeds_or_jobs(tmp_path):
    """--plan --seeds 100000000 and --jobs 100000 each ran past 300 s (one spec per seed;
    one timing worker per job). Both now answer at once: the seeds by arithmetic over the
    cache's listing, the workers capped at the cores this process may use."""
    from minimanifold.trajectories.pool import usable_cores
    sweep(TINY.specs(seeds=[1]), tmp_path, log=lambda s: None)        # one finished main run on disk
    cmd = [sys.executable, "run_all.py", "--preset", "smoke", "--plan", "--runs-dir", str(tmp_path)]
    t0 = time.monotonic()
    r = subprocess.run(cmd + ["--seeds", "100000000", "--jobs", "100000"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 60
    assert _rows(r.stdout)["main"][:4] == ["100000000", "0", "0", "100000000"]   # seed 1 on disk is another config
    assert f"with --jobs {usable_cores()} " in r.stdout and f"capped at {usable_cores()}" in r.stderr
    from minimanifold.planning import plan
    tiny = dataclasses.replace(TINY, n_seeds=10**8)
    assert _rows(plan(tiny, str(tmp_path), roofline=100.0))["main"][:4] == ["100000000", "1", "0", "99999999"]


@pytest.mark.parametrize("steps", ["1", "2", str(SMOKE.min_steps() - 1)])
def test_a_step_count_the_analyses_cannot_use_is_refused_up_front(tmp_path, steps):
    r = subprocess.run([sys.executable, "run_all.py", "--preset", "smoke", "--steps", steps,
                        "--runs-dir", str(tmp_path / "r"), "--figures-dir", str(tmp_path / "f")],
                       cwd=ROOT, capture_output=True, text=True, timeout=HANG)
    assert r.returncode == 2 and r.stderr.strip() == (
        f"error: --steps {steps}: the smoke preset needs at least {SMOKE.min_steps()} steps (4 checkpoints "
        f"of 25 steps in each curriculum stage its analyses compare)")
    assert not (tmp_path / "r").exists() and not (tmp_path / "f").exists()
    assert SMOKE.min_steps() == 200 and dataclasses.replace(
        SMOKE, train=dataclasses.replace(SMOKE.train, schedule="mixed:1,2,3,4")).min_steps() == 400


def test_plan_and_run_agree_when_fewer_than_two_main_runs_are_finished(tmp_path):
    """Found by the planted-bug pass: with main seed 0 finished (the seed restricted
    retraining starts from) but not 2 main runs, --plan counted the retrainings to train
    and the run stopped with "fewer than 2 main runs ... add main". Now both train seed 1
    (seed 0's partner), which the retrainings then start from."""
    from minimanifold.pipeline import train_all
    from minimanifold.planning import plan
    sweep(TINY.specs(seeds=[0]), tmp_path, log=lambda s: None)
    train = frozenset({"restricted-retraining"})
    text = plan(TINY, str(tmp_path), train=train, roofline=100.0)
    assert _rows(text)["main"][:4] == ["1", "0", "0", "1"] and "main: seeds 1 train" in text
    main, _ = train_all(TINY, str(tmp_path), log=lambda s: None, train=train)
    assert [(r["seed"], r["cached"]) for r in main] == [(0, True), (1, False)]


def test_a_run_a_retraining_starts_from_trains_even_when_its_record_is_committed(tmp_path):
    """Every main run has a committed record (the paper preset's case on a new machine), no
    retraining has: seeds 0 and 1, which the jobs start from or read, train (a record holds
    no trajectory); seed 2 is read from its record. Guards: the needed runs read from their
    records (the jobs would then stop on a missing trajectory)."""
    import dataclasses
    import shutil
    from minimanifold.pipeline import train_all
    from minimanifold.trajectories import records
    p = dataclasses.replace(TINY, n_seeds=3)
    scratch, runs, root = tmp_path / "scratch", tmp_path / "runs", tmp_path / "records"
    for rec in sweep(p.specs(), scratch, log=lambda s: None):
        d = records.record_dir(str(root), rec["dir"])
        shutil.copytree(rec["dir"], d, ignore=shutil.ignore_patterns("ckpt", "trajectory.npz"))
        open(os.path.join(d, "record.json"), "w").write('{"run": "x", "files": {}}')
    main, _ = train_all(p, str(runs), log=lambda s: None, train=frozenset({"restricted-retraining"}),
                        records_root=str(root))
    assert [(r["seed"], bool(r.get("record"))) for r in main] == [(0, False), (1, False), (2, True)]


def test_who_trained_a_run_records_the_gemm_kernel(tmp_path):
    """trained_by.json names OpenBLAS's kernel per training process: paper seeds 4-7 ended
    elsewhere than their records because another kernel trained them, which nothing said.
    ``OPENBLAS_CORETYPE`` picks it, so a subprocess under Haswell records Haswell."""
    code = ("import sys; from minimanifold.trajectories.rundir import record_trainer; "
            "print(record_trainer(sys.argv[1])['blas_core'])")
    env = {**os.environ, "OPENBLAS_CORETYPE": "Haswell", "PYTHONPATH": ROOT}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "Haswell"
    assert json.load(open(tmp_path / "trained_by.json"))[0]["blas_core"] == "Haswell"
