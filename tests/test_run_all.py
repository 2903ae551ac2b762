"""End to end: the smoke preset of run_all.py, its cache, and the sweep's executors."""
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from minimanifold.experiments.restricted_training import KINDS
from minimanifold.trajectories.presets import SMOKE
from minimanifold.trajectories.sweep import run_dir, run_key, sweep

NB = len(KINDS)   # restricted retrainings per seed and K: one per basis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Subprocess limits only guard against a hang: the smoke preset takes about 40 s alone on
# 2 cores but several times that on a loaded machine, which must not fail the suite.
HANG = 1800


def test_smoke_preset_end_to_end_then_cached(tmp_path):
    cmd = [sys.executable, "run_all.py", "--preset", "smoke", "--runs-dir", str(tmp_path / "runs"),
           "--figures-dir", str(tmp_path / "fig")]
    readme = open(os.path.join(ROOT, "README.md"), "rb").read()
    first = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=HANG)
    assert first.returncode == 0, first.stderr[-2000:]
    assert open(os.path.join(ROOT, "README.md"), "rb").read() == readme    # figures elsewhere: README untouched
    assert "preset smoke" in first.stdout and "| run | seed |" in first.stdout
    shares = first.stdout.split("training time of 17 runs")[1].splitlines()[0]        # where the time went
    assert "steps" in shares and "evaluate" in shares and "checkpoint writes" in shares
    assert sum(int(p) for p in __import__("re").findall(r"\((\d+)%\)", shares)) in range(98, 103)
    for name in ("fig_training", "fig1_effective_rank", "fig2_attention_entropy", "fig_topk_attention",
                 "fig3_commutator_norm", "fig4_commutator_rho", "fig5_commutator_decomposition",
                 "fig6_sae_ablation", "fig_curriculum", "fig_mlp", "fig_multiplication", "fig_m_scaling",
                 "fig_compositional", "fig_optimizer", "fig_factorial", "fig_factorial_matrices", "fig_functional_dimension",
                 "fig_restricted_training", "fig_basis_sweep"):
        assert (tmp_path / "fig" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    import json
    claims = json.loads((tmp_path / "fig" / "claims.json").read_text())["claims"]
    assert [c["n"] for c in claims] == [n for n in range(1, 28) if n != 21] and all(c["verdict"] in ("supported", "not supported", "inconclusive") for c in claims)
    # claim 1's number, recomputed independently from the runs' trajectories: r90 of each
    # attention matrix from an SVD of its centred snapshots, averaged over matrices, then seeds
    import numpy as np
    r90s = []
    for spec in SMOKE.specs():
        traj = np.load(os.path.join(run_dir(tmp_path / "runs", spec), "trajectory.npz"))
        per = []
        for name in (f"blocks.{l}.attn.{W}" for l in range(SMOKE.model.n_layers) for W in ("W_Q", "W_K", "W_V", "W_O")):
            X = traj[name].reshape(len(traj["steps"]), -1).astype(np.float64)
            s2 = np.linalg.svd(X - X.mean(0), compute_uv=False) ** 2
            per.append(int(np.argmax(np.cumsum(s2) / s2.sum() >= 0.9 - 1e-12)) + 1)
        r90s.append(np.mean(per))
    assert claims[0]["n"] == 1 and claims[0]["value"] == pytest.approx(np.mean(r90s), abs=1e-12)
    assert 1 <= claims[0]["value"] <= len(traj["steps"]) - 1           # at most n - 1 centred directions
    # 2 seeds are fewer than an interval needs (intervals.MIN_SEEDS = 3): every interval is
    # undetermined and no claim may read supported on them
    assert all("undetermined" in c["interval"] for c in claims if c["interval"])
    assert not [c["n"] for c in claims if c["verdict"] == "supported"]
    counted = [c["n"] for c in claims if "evenly spaced snapshots:" in c["interval"]]   # the count check, wired in
    assert counted == [1, 2, 3, 4, 6, 7, 15, 18, 19, 24, 25, 26]
    second = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=HANG)
    assert second.returncode == 0
    assert "17 runs: 17 cached, 0 to train" in second.stdout          # main runs and variants, one sweep
    assert first.stdout.split("| run | seed |")[1].split("wall time")[0] == \
        second.stdout.split("| run | seed |")[1].split("wall time")[0]
    for out in (first.stdout, second.stdout):                           # where the wall time went, by phase
        assert re.search(r"^wall time: training \d+s, per-run measurements after training \d+s, "
                         r"reports \(analyses, figures, ledger\) \d+s; total \d+s$", out, re.M), out[-500:]
    rebuilt_from_the_records_alone(tmp_path, cmd)


def rebuilt_from_the_records_alone(tmp_path, cmd):
    """Issue 23 §1: the ledger and every figure are a function of the records the run wrote
    beside them (figures/<preset>/records/): with an empty run cache nothing trains and every
    file comes out byte for byte; a record missing a measurement is a one-line error naming it."""
    fig = tmp_path / "fig"
    before = {p.name: p.read_bytes() for p in fig.iterdir() if p.is_file()}
    records = [d for d in (fig / "records").glob("*/seed_*")]
    assert len(records) == 17 and all((d / "record.json").is_file() for d in records)
    assert not [p for p in (fig / "records").rglob("*") if p.name in ("trajectory.npz", "ckpt")
                or p.name.startswith(("commutators_v", "geometry_dirs_v"))]          # no heavy file
    assert sum(p.stat().st_size for p in (fig / "records").rglob("*") if p.is_file()) < 4 << 20
    assert list((fig / "records").glob("add-*/orientation_v*_seeds_0-1-????????.json"))     # claim 5, across seeds
    empty = [*cmd[:cmd.index("--runs-dir") + 1], str(tmp_path / "no-runs"), *cmd[cmd.index("--runs-dir") + 2:]]
    third = subprocess.run(empty, cwd=ROOT, capture_output=True, text=True, timeout=HANG)
    assert third.returncode == 0, third.stderr[-2000:]
    assert "17 runs read from the committed records" in third.stdout and not (tmp_path / "no-runs").exists()
    after = {p.name: p.read_bytes() for p in fig.iterdir() if p.is_file()}
    assert after.keys() == before.keys() and [k for k in before if after[k] != before[k]] == []
    planned = subprocess.run([*empty, "--plan"], cwd=ROOT, capture_output=True, text=True, timeout=HANG)
    assert re.search(r"^main +2 +0 +2 +0 ", planned.stdout, re.M), planned.stdout     # runs, done, reuse, train
    assert "to train: 0 steps" in planned.stdout and "read from the committed records" in planned.stdout
    victim = next(iter(sorted((fig / "records").glob("add-*/seed_0/geometry_v*.json"))))
    victim.unlink()
    fourth = subprocess.run(empty, cwd=ROOT, capture_output=True, text=True, timeout=HANG)
    assert fourth.returncode == 2 and fourth.stderr.count("\n") == 1, fourth.stderr[-2000:]
    assert f"{victim} is not in the committed records" in fourth.stderr


def test_bad_override_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, "run_all.py", "--preset", "smoke", "--lr", "-1",
                        "--runs-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().startswith("error: lr must be")


def test_sweep_on_any_executor_matches_serial(tmp_path):
    specs = SMOKE.specs(seeds=[0, 1], steps=50)
    serial = sweep(specs, tmp_path / "a", log=lambda s: None)
    with ThreadPoolExecutor(2) as ex:
        threaded = sweep(specs, tmp_path / "b", executor=ex, log=lambda s: None)
    assert [r["seed"] for r in threaded] == [0, 1]
    for a, b in zip(serial, threaded):
        assert a["summary"]["final_acc"] == b["summary"]["final_acc"]
        assert a["summary"]["final_loss"] == b["summary"]["final_loss"]
    assert run_key(specs[0]) == run_key(specs[1]) != run_key(SMOKE.specs(seeds=[0], lr=0.05)[0])
    assert run_dir(tmp_path, specs[1]).endswith("seed_1")


def test_sweep_local_process_pool(tmp_path):
    """Both workers train; their training lines reach the parent's log (a Board redraws
    them on a terminal), each run's live line is dropped when its run finishes."""
    specs = SMOKE.specs(seeds=[0, 1], steps=30, ckpt_every=10)
    lines, finished = [], []

    class Log:
        def __call__(self, s):
            lines.append(s)

        def finish(self, tag):
            finished.append(tag)
    out = sweep(specs, tmp_path, jobs=2, log=Log())
    assert all(os.path.exists(os.path.join(r["dir"], "trajectory.npz")) for r in out)
    for seed in (0, 1):
        steps = [ln for ln in lines if ln.startswith(f"[add seed {seed}] step")]
        assert [ln.split()[4] for ln in steps] == ["10/30", "20/30", "30/30"]
    assert sorted(finished) == ["add seed 0", "add seed 1"]


def test_a_serial_sweep_shows_training_lines_in_its_log(tmp_path):
    lines = []
    sweep(SMOKE.specs(seeds=[0], steps=20, ckpt_every=10), tmp_path, log=lines.append)
    assert [ln.split()[4] for ln in lines if ln.startswith("[add seed 0] step")] == ["10/20", "20/20"]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_diverging_run_is_reported_not_fatal(tmp_path):
    import dataclasses
    specs = SMOKE.specs(seeds=[0], steps=30) + [dataclasses.replace(SMOKE.specs(seeds=[1], steps=30)[0],
                                                                  train=dataclasses.replace(SMOKE.train, seed=1, steps=30, lr=1e30))]
    lines = []
    out = sweep(specs, tmp_path, log=lines.append)
    assert out[0]["summary"] is not None and out[0]["diverged"] is None
    assert out[1]["summary"] is None and "non-finite loss" in out[1]["diverged"]
    assert any("DIVERGED" in line for line in lines)


def test_run_all_when_every_run_diverges(tmp_path):
    r = subprocess.run([sys.executable, "run_all.py", "--preset", "smoke", "--lr", "1e30", "--steps", "200",
                        "--runs-dir", str(tmp_path / "r"), "--figures-dir", str(tmp_path / "f")],
                       cwd=ROOT, capture_output=True, text=True, timeout=HANG)
    assert r.returncode == 2
    assert "DIVERGED, left out of the analyses: add seed 0, add seed 1" in r.stdout
    assert r.stderr.strip().splitlines()[-1].startswith("error: fewer than 2 main runs trained without diverging")


@pytest.mark.parametrize("damage", ["truncate_trajectory", "delete_checkpoint", "truncate_summary",
                                    "delete_metrics", "change_config"])
def test_a_damaged_cached_run_is_moved_aside_and_retrained(tmp_path, damage):
    """Damage is found by content hash, named, nothing is deleted (the damaged run and its
    analysis caches move aside), and the retrained run equals the original."""
    import json
    spec = SMOKE.specs(seeds=[0], steps=30, ckpt_every=10)[0]
    first = sweep([spec], tmp_path, log=lambda s: None)[0]
    d = first["dir"]
    (open(os.path.join(d, "geometry_v1.json"), "w")).write("{}")          # an analysis cache
    summary = json.load(open(os.path.join(d, "summary.json")))
    path = {"truncate_trajectory": "trajectory.npz", "delete_checkpoint": summary["final_checkpoint"],
            "truncate_summary": "summary.json", "delete_metrics": "metrics.json",
            "change_config": "config.json"}[damage]
    full = os.path.join(d, path)
    if damage.startswith("truncate"):
        data = open(full, "rb").read()
        open(full, "wb").write(data[:len(data) // 2])
    elif damage == "change_config":
        open(full, "a").write(" ")
    else:
        os.remove(full)
    lines = []
    again = sweep([spec], tmp_path, log=lines.append)[0]
    text = "\n".join(lines)
    assert "DAMAGED" in text and path.split("/")[-1] in text and not again["cached"]
    aside = [p for p in os.listdir(os.path.dirname(d)) if ".damaged-" in p]
    assert len(aside) == 1 and os.path.exists(os.path.join(os.path.dirname(d), aside[0], "geometry_v1.json"))
    assert not os.path.exists(os.path.join(d, "geometry_v1.json"))
    assert again["summary"]["final_acc"] == first["summary"]["final_acc"]
    assert again["summary"]["files"] == first["summary"]["files"]                     # bit-identical retrain
    third = sweep([spec], tmp_path, log=lambda s: None)[0]
    assert third["cached"]


def _one_line_error(r, needle):
    assert r.returncode == 2, r.stdout[-500:] + r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], r.stderr[-2000:]


@pytest.mark.parametrize("backend, needle", [("foo", "backend must be one of"), ("cupy", "CuPy")])
def test_bad_backend_is_one_line(tmp_path, backend, needle):
    import importlib.util
    if backend == "cupy" and importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed here")
    r = subprocess.run([sys.executable, "run_all.py", "--preset", "smoke", "--backend", backend,
                        "--runs-dir", str(tmp_path / "r")], cwd=ROOT, capture_output=True, text=True)
    _one_line_error(r, needle)
    assert not (tmp_path / "r").exists()


def test_paths_that_are_files_are_one_line(tmp_path):
    (tmp_path / "afile").write_text("keep")
    r = subprocess.run([sys.executable, "run_all.py", "--preset", "smoke", "--runs-dir",
                        str(tmp_path / "afile")], cwd=ROOT, capture_output=True, text=True)
    _one_line_error(r, "afile")
    r = subprocess.run([sys.executable, "-m", "minimanifold.train", str(tmp_path / "afile"), "--steps", "2"],
                       cwd=ROOT, capture_output=True, text=True)
    _one_line_error(r, "afile")
    assert (tmp_path / "afile").read_text() == "keep"


@pytest.mark.parametrize("name", ["config.json", "metrics.json"])
def test_a_corrupt_json_file_is_named(tmp_path, name):
    d = tmp_path / "run"
    args = [sys.executable, "-m", "minimanifold.train", str(d), "--steps", "4", "--ckpt-every", "2",
            "--T", "8", "--C", "5", "--n-markers", "2", "--d-vocab", "16", "--d-model", "8", "--n-heads", "2",
            "--d-head", "4", "--n-probe", "8"]
    assert subprocess.run(args, cwd=ROOT, capture_output=True, text=True).returncode == 0
    os.remove(d / "summary.json")
    (d / name).write_text("{not json")
    _one_line_error(subprocess.run(args, cwd=ROOT, capture_output=True, text=True), f"{name}: not valid JSON")


def test_disk_full_is_one_line(tmp_path, monkeypatch, capsys):
    """ENOSPC while writing a checkpoint: one line, exit 2 (the data written so far stays)."""
    import errno
    from minimanifold import train as cli
    from minimanifold.trajectories import training_loop as T
    calls = {"n": 0}
    real = T.save_npz

    def full_after_two(path, arrays):
        calls["n"] += 1
        if calls["n"] > 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, arrays)
    monkeypatch.setattr(T, "save_npz", full_after_two)
    code = cli.main([str(tmp_path / "run"), "--steps", "6", "--ckpt-every", "1", "--T", "8", "--C", "5",
                     "--n-markers", "2", "--d-vocab", "16", "--d-model", "8", "--n-heads", "2", "--d-head", "4",
                     "--n-probe", "8"])
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("[run]")]
    assert code == 2 and len(err) == 1 and err[0].startswith("error:") and "No space left on device" in err[0]
    assert sorted(os.listdir(tmp_path / "run" / "ckpt")) == ["step_00000000.npz", "step_00000001.npz"]


def test_killing_a_sweep_stops_its_workers(tmp_path):
    """kill -9 of a --jobs 2 sweep: its spawned workers exit too (an orphan used to keep
    training into a run directory that a restarted sweep then resumed: two writers)."""
    import signal
    import time
    script = ("import sys; from minimanifold.trajectories.presets import SMOKE; "
              "from minimanifold.trajectories.sweep import sweep; "
              f"sweep(SMOKE.specs(seeds=[0, 1], steps=100000, ckpt_every=1000), {str(tmp_path)!r}, jobs=2, log=print)")
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)

    def children():
        out = []
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    stat, cmd = open(f"/proc/{pid}/stat").read(), open(f"/proc/{pid}/cmdline").read()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == parent.pid and "spawn_main" in cmd:
                    out.append(int(pid))
        return out
    deadline = time.time() + 60
    while len(workers := children()) < 2 and time.time() < deadline:
        time.sleep(0.2)
    assert len(workers) == 2, "the sweep did not start two workers"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    def running(pid):
        try:
            return "zombie" not in open(f"/proc/{pid}/status").read().lower()
        except OSError:                                   # gone (and reaped)
            return False
    deadline = time.time() + 10
    while any(running(w) for w in workers) and time.time() < deadline:
        time.sleep(0.2)
    alive = [w for w in workers if running(w)]
    for w in alive:
        os.kill(w, signal.SIGKILL)
    assert not alive, f"workers {alive} kept running after their sweep was killed"


def test_a_finished_run_under_another_name_is_reused_not_retrained(tmp_path):
    """The key's hash leaves the name out: a preset adopting a recipe screen's run (the same
    configuration and seed) links it in instead of training it again; a run of another
    configuration, or another seed, is not taken."""
    import dataclasses
    import json
    screen = [dataclasses.replace(s, name="screen") for s in SMOKE.specs(seeds=[0], steps=30, ckpt_every=10)]
    first = sweep(screen, tmp_path, log=lambda s: None)[0]
    other_lr = [dataclasses.replace(s, name="other") for s in SMOKE.specs(seeds=[0], steps=30, ckpt_every=10, lr=0.05)]
    wanted = SMOKE.specs(seeds=[0, 1], steps=30, ckpt_every=10) + other_lr
    lines = []
    out = sweep(wanted, tmp_path, log=lines.append)
    assert "3 runs: 0 cached, 1 trained under another name (reused), 2 to train" in lines[0]
    reused, seed1, lr = out
    assert reused["cached"] and reused["twin"] == first["dir"] and reused["dir"] != first["dir"]
    assert "(reused screen-" in "\n".join(lines)
    assert not any(ln.startswith("[add seed 0] step") for ln in lines)             # not retrained
    assert not seed1["cached"] and seed1["twin"] is None and not lr["cached"] and lr["twin"] is None
    for name in json.load(open(os.path.join(first["dir"], "summary.json")))["files"]:
        a, b = os.path.join(first["dir"], name), os.path.join(reused["dir"], name)
        assert open(a, "rb").read() == open(b, "rb").read(), name
    assert reused["summary"] == first["summary"]
    again = sweep(wanted[:1], tmp_path, log=lambda s: None)[0]                       # now its own
    assert again["cached"] and again["twin"] is None


def test_plan_counts_finished_reusable_and_remaining_runs_and_trains_nothing(tmp_path):
    import dataclasses
    import shutil
    from minimanifold.pipeline import planned_specs
    from minimanifold.planning import plan
    preset = dataclasses.replace(SMOKE, train=dataclasses.replace(SMOKE.train, steps=30, ckpt_every=10, batch_size=32))
    own, twin = preset.specs()
    sweep([own, dataclasses.replace(twin, name="screen")], tmp_path, log=lambda s: None)
    before = sorted(os.listdir(tmp_path))
    text = plan(preset, str(tmp_path))
    rows = {ln.split()[0]: ln.split()[1:] for ln in text.splitlines() if ln.split() and ln.split()[-1][0].isdigit()}
    assert rows["main"][:4] == ["2", "1", "1", "0"]                     # runs, done, reuse, train
    assert rows["curriculum"][:4] == ["1", "0", "0", "1"] and rows["mlp"][4] == "30"
    assert rows["main"][5:] == ["0", "-", "0.00"]                       # nothing left: not timed, 0 h
    assert rows["mlp"][5] == "30" and float(rows["mlp"][6]) > 0         # timed: it has runs to train
    restricted = next(ln for ln in text.splitlines() if ln.startswith("restricted-retraining"))
    assert restricted.split()[1:6] == [str(NB), "0", "0", str(NB), "15"]   # NB bases x K=4 x 1 seed, half the steps
    full = sum(int(r[3]) for name, r in rows.items() if name != "restricted-retraining")   # 30 steps each
    assert f"to train: {full * 30 + NB * 15:,} steps" in text
    assert sorted(os.listdir(tmp_path)) == before                         # trained nothing
    from minimanifold.experiments import restricted_training as RT
    open(os.path.join(own_dir := run_dir(tmp_path, own), RT.cache_name(4, "execution", 15)), "w").write("{}")
    restricted = next(ln for ln in plan(preset, str(tmp_path)).splitlines() if ln.startswith("restricted"))
    assert restricted.split()[1:5] == [str(NB), "1", "0", str(NB - 1)]    # one retraining cached
    from minimanifold.trajectories import records                         # one more, only in the records:
    rec = records.record_dir(str(tmp_path / "records"), own_dir)          # reusable, not done (no run cache)
    os.makedirs(rec)
    for name in ("record.json", RT.cache_name(4, "early", 15)):
        open(os.path.join(rec, name), "w").write("{}")
    restricted = next(ln for ln in plan(preset, str(tmp_path), records_root=str(tmp_path / "records")).splitlines()
                      if ln.startswith("restricted"))
    assert restricted.split()[1:5] == [str(NB), "1", "1", str(NB - 2)]
    shutil.rmtree(tmp_path / "records")
    os.remove(os.path.join(own_dir, RT.cache_name(4, "execution", 15)))
    mlp = planned_specs(preset)["mlp"][0]                                 # resumed from step 20 of 30
    os.makedirs(os.path.join(run_dir(tmp_path, mlp), "ckpt"))
    open(os.path.join(run_dir(tmp_path, mlp), "ckpt", "step_00000020.npz"), "wb").close()
    text = plan(preset, str(tmp_path))
    assert next(ln for ln in text.splitlines() if ln.startswith("mlp")).split()[5:7] == ["30", "10"]
    assert f"to train: {full * 30 - 20 + NB * 15:,} steps" in text
    # the floor counts the same steps: the resumed MLP run's 10, each other run's 30, the retrainings' 15
    from minimanifold.model.config import step_flops
    from minimanifold.planning import floor_hours
    todo = [s for name, g in planned_specs(preset).items() if name != "main" for s in g]
    flops = sum((10 if s == mlp else 30) * step_flops(s.model, s.train.batch_size, s.task.T) for s in todo)
    flops += NB * 15 * step_flops(preset.model, preset.train.batch_size, preset.task.T)
    tiny = plan(preset, str(tmp_path), roofline=1e-6)        # a tiny roofline: hours large enough to read
    assert tiny.splitlines()[-1].endswith(f"less than {floor_hours(flops, 1e-6):.1f} h")
    only = plan(preset, str(tmp_path), roofline=1e-6, train=frozenset({"mlp", "restricted-retraining"}))
    assert [ln.split()[0] for ln in only.splitlines() if ln.split() and ln.split()[-1][0].isdigit()] == \
        ["mlp", "restricted-retraining"]                                   # --train: only those groups
    retrain = NB * 15 * step_flops(preset.model, preset.train.batch_size, preset.task.T)
    assert f"to train: {10 + NB * 15:,} steps" in only
    assert only.splitlines()[-1].endswith(
        f"less than {floor_hours(10 * step_flops(mlp.model, mlp.train.batch_size, mlp.task.T) + retrain, 1e-6):.1f} h")
    shutil.rmtree(os.path.dirname(run_dir(tmp_path, mlp)))                # its key directory too
    r = subprocess.run([sys.executable, "run_all.py", "--preset", "smoke", "--plan", "--runs-dir", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=HANG)
    assert r.returncode == 0 and sorted(os.listdir(tmp_path)) == before
    from minimanifold.trajectories.pool import usable_cores
    assert f"steps with --jobs {usable_cores()} " in r.stdout               # the default: one run per core


SERIAL_LEDGER = """
import dataclasses, json, os, sys
from minimanifold.experiments.context import Context
from minimanifold.pipeline import analyse, train_all
from minimanifold.trajectories.presets import SMOKE
preset = dataclasses.replace(SMOKE, train=dataclasses.replace(SMOKE.train, steps=60, ckpt_every=10))
ctx = Context(preset, *train_all(preset, sys.argv[1], log=lambda s: None), sys.argv[2], "c")
os.makedirs(sys.argv[2])
claims, _, _ = analyse(ctx, log=lambda s: None)
print(json.dumps({"claims": [c.to_dict() for c in claims], "threads": [r["summary"]["blas_threads"] for r in ctx.runs]}))
"""


def test_prefetch_on_a_pool_fills_exactly_what_the_reports_read(tmp_path):
    """With --jobs > 1 the per-run measurements run on the training pool, each queued as
    soon as its run is trained, and whatever the final runs ask for beyond that before
    the reports: the reports then compute no per-run measurement (no run-directory file is
    added or changed; only the seeds' orientation, a measurement across runs, is added beside
    them) and the ledger equals the one trained and computed serially with the same
    BLAS thread count (one, as each pool worker has: on some kernels, OpenBLAS's Haswell
    one, 1 and 2 threads differ in the 7th digit; the count is each run's recorded
    ``blas_threads``)."""
    import dataclasses
    import json
    from minimanifold.experiments.context import Context
    from minimanifold.experiments import geometry as GE
    from minimanifold.experiments.measuring import EarlyMeasurements, prefetch, prefetch_calls
    from minimanifold.pipeline import analyse, train_all
    preset = dataclasses.replace(SMOKE, train=dataclasses.replace(SMOKE.train, steps=60, ckpt_every=10))
    early = EarlyMeasurements(preset, str(tmp_path / "a"))
    pooled = Context(preset, *train_all(preset, str(tmp_path / "a"), jobs=2, log=lambda s: None, then=early),
                     str(tmp_path / "fig_a"), "c")
    calls = prefetch_calls(pooled)
    names = [fn.__name__ for fn, _ in calls]
    assert len({(n, repr(a)) for n, (_, a) in zip(names, calls)}) == len(calls)   # asked by several modules, done once
    assert names.count("cached_geometry") == len(pooled.runs) + sum(len(v) for k, v in pooled.variants.items()
                                                                    if not k.startswith("held-out"))
    assert names[0] == "cached_restricted" and {"sae_experiment", "measure_run", "cached_bubbling",
                                                 "cached_functional", "cached_geometry"} <= set(names)
    assert early.done == set(calls) and not early.by_dir                      # all of them while training
    lines = []
    prefetch(pooled, 2, lines.append, done=early.done)
    assert lines[0].startswith(f"per-run measurements: {len(calls)} on the training pool as their runs finished, 0 after, on 2 processes")

    def files():
        return {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
                for d, _, fs in os.walk(tmp_path / "a") for f in fs}
    before = files()
    os.makedirs(pooled.fig_dir)
    claims_pooled, _, _ = analyse(pooled, log=lambda s: None)
    added = {os.path.relpath(p, tmp_path / "a") for p in set(files()) - set(before)}
    assert {k: v for k, v in files().items() if k in before} == before    # every per-run measurement was there
    key = os.path.basename(os.path.dirname(pooled.runs[0]["dir"]))         # only the seeds' orientation, across
    name = GE.orientation_name([r["dir"] for r in pooled.runs])
    assert added == {os.path.join(key, f"{name}{x}") for x in ("", ".sha256")} and "_seeds_0-1-" in name
    assert [r["summary"]["blas_threads"] for r in pooled.runs] == [1, 1]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env["OPENBLAS_NUM_THREADS"] = "1"                         # like with like: the workers' one thread
    r = subprocess.run([sys.executable, "-c", SERIAL_LEDGER, str(tmp_path / "b"), str(tmp_path / "fig_b")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=HANG)
    assert r.returncode == 0, r.stderr[-2000:]
    serial = json.loads(r.stdout.strip().splitlines()[-1])
    assert serial["threads"] == [1, 1]
    assert json.dumps([c.to_dict() for c in claims_pooled], sort_keys=True) == \
        json.dumps(serial["claims"], sort_keys=True)                                   # NaN too
    prefetch(pooled, 1, lines.append)                          # jobs 1: nothing on a pool
    assert len(lines) == 1


def test_measurements_of_a_run_that_diverged_are_left_to_the_final_pass(tmp_path):
    """The early measurements are planned for every run; when one diverges, the runs the
    analyses then use (the first seeds that trained, say) differ, and the final pass
    computes exactly what the early one did not."""
    import dataclasses
    from minimanifold.experiments.context import Context
    from minimanifold.experiments.measuring import EarlyMeasurements, planned_context, prefetch_calls
    preset = dataclasses.replace(SMOKE, n_extra_seeds=1)
    early = EarlyMeasurements(preset, str(tmp_path))
    plan = planned_context(preset, str(tmp_path))
    seed0 = plan.runs[0]
    assert early({"dir": seed0["dir"]}) and early({"dir": seed0["dir"]}) == []          # handed out once
    for rs in plan.variants.values():
        for r in rs:
            early(r)
    ctx = Context(preset, plan.runs[1:], plan.variants, "", "")                       # seed 0 diverged
    left = [c for c in prefetch_calls(ctx) if c not in early.done]
    assert left and all(args[0] != seed0["dir"] for _, args in left)
    assert {fn.__name__ for fn, args in left if args[0] == plan.runs[1]["dir"]} >= {"sae_experiment", "cached_geometry"}


def test_measurements_are_asked_heaviest_first_each_once():
    """prefetch_calls reads each experiment's ``measurements`` and ``weight``: every call
    asked for, ordered by the heaviest weight among the experiments asking for it, each
    once; an experiment in ``skip`` (a retraining not trained now) is left out."""
    from minimanifold.experiments import EXPERIMENTS, restricted_training
    from minimanifold.experiments.contract import Call
    from minimanifold.experiments.measuring import planned_context, prefetch_calls
    from minimanifold.pipeline import not_retrained
    ctx = planned_context(SMOKE, "/runs")
    weight = {}
    for e in EXPERIMENTS:
        for call in e.measurements(ctx):
            weight[Call(*call)] = max(weight.get(Call(*call), 0), e.weight)
    calls = prefetch_calls(ctx)
    assert len(calls) == len(set(calls)) and set(calls) == set(weight) and len(calls) < sum(
        len(e.measurements(ctx)) for e in EXPERIMENTS)                     # the geometry is asked for twice
    assert [weight[c] for c in calls] == sorted(weight.values(), reverse=True)
    assert calls[0].fn is restricted_training.cached_restricted
    RT = restricted_training.EXPERIMENT
    assert not_retrained(None) == [] and not_retrained(frozenset({"main", RT.retraining.group})) == []
    assert not_retrained(frozenset({"main"})) == [RT] and not_retrained(frozenset()) == [RT]
    left = prefetch_calls(ctx, skip=[RT])
    assert left == [c for c in calls if c.fn is not restricted_training.cached_restricted] and len(left) < len(calls)


def test_a_preset_without_retraining_has_no_such_group(tmp_path):
    import dataclasses
    from minimanifold.experiments.groups import group_names, retrainings, will_be_partial
    from minimanifold.planning import plan
    none = dataclasses.replace(SMOKE, restrict_k=())
    assert retrainings(none) == {} and "restricted-retraining" not in group_names(none)
    assert list(retrainings(SMOKE)) == ["restricted-retraining"] == group_names(SMOKE)[-1:]
    assert "restricted-retraining" not in plan(none, str(tmp_path), train=frozenset({"main"}), roofline=100.0)
    everything = frozenset(group_names(SMOKE))
    assert not will_be_partial(none, str(tmp_path), everything - {"restricted-retraining"})
    assert will_be_partial(SMOKE, str(tmp_path), everything - {"restricted-retraining"})   # not cached
    assert not will_be_partial(SMOKE, str(tmp_path), everything)


def test_a_follow_up_that_fails_fails_the_sweep_after_training(tmp_path):
    specs = SMOKE.specs(seeds=[0, 1], steps=20, ckpt_every=10)
    with pytest.raises(ZeroDivisionError):
        sweep(specs, tmp_path, jobs=2, log=lambda s: None, then=lambda rec: [(divmod, (1, 0))])
    assert all(os.path.exists(os.path.join(run_dir(tmp_path, s), "summary.json")) for s in specs)
    seen = []
    sweep(specs, tmp_path, log=lambda s: None, then=lambda rec: [(seen.append, (rec["seed"],))])   # serially
    assert seen == [0, 1]


def test_plan_estimates_wall_time_for_the_jobs_it_is_given(tmp_path, monkeypatch):
    """Each group's hours: its steps x the timed step / jobs (jobs runs at once), and the
    total line says so; the step is timed the way the run will train (with jobs)."""
    import dataclasses
    import minimanifold.planning as P
    seen = []
    monkeypatch.setattr(P, "timed_step", lambda spec, jobs: (seen.append(jobs), 0.036)[1])
    monkeypatch.setattr(P, "usable_cores", lambda: 8)                  # --jobs 2 is not capped
    preset = dataclasses.replace(SMOKE, train=dataclasses.replace(SMOKE.train, steps=100_000))
    text = P.plan(preset, str(tmp_path), jobs=2)
    mlp = next(ln for ln in text.splitlines() if ln.startswith("mlp"))
    assert mlp.split()[-2:] == ["36.0", "0.50"]                         # 100,000 x 36 ms / 2 runs at once
    lines = text.splitlines()
    table = lines[next(i for i, ln in enumerate(lines) if ln.startswith("group")) + 1:
                  next(i for i, ln in enumerate(lines) if ln.startswith("to train"))]
    n = sum(int(ln.split()[4]) for ln in table if not ln.startswith("restricted"))
    assert f"about {(n * 100_000 + NB * 50_000) * 0.036 / 2 / 3600:.1f} h of steps with --jobs 2" in text
    assert set(seen) == {2}
    # the floor: every step's GEMM FLOPs (config.step_flops) at the roofline given
    from minimanifold.model.config import step_flops
    from minimanifold.experiments.groups import planned_specs
    specs = [s for group in planned_specs(preset).values() for s in group]
    flops = sum(s.train.steps * step_flops(s.model, s.train.batch_size, s.task.T) for s in specs)
    flops += NB * 50_000 * step_flops(preset.model, preset.train.batch_size, preset.task.T)   # restricted
    text = P.plan(preset, str(tmp_path), jobs=2, roofline=50.0)
    assert text.splitlines()[-1].endswith(f"less than {flops / 50e9 / 3600:.1f} h")
    assert f"{flops / 1e12:,.0f} TFLOP" in text and "(50 GFLOP/s" in text


def test_floor_hours_known_answer_and_refusal():
    from minimanifold.planning import floor_hours
    assert floor_hours(3.6e14, 100.0) == pytest.approx(1.0)        # 100 GFLOP/s for an hour
    assert floor_hours(0.0, 100.0) == 0.0
    with pytest.raises(ValueError, match="roofline must be positive"):
        floor_hours(1e12, 0.0)


def test_plan_floor_lies_below_the_measured_estimate(tmp_path):
    """Measured, not patched: no real step beats the GEMM roofline, so the floor of a preset
    is below its timed estimate (a floor above it means the FLOPs or the roofline are wrong)."""
    import dataclasses
    import re
    from minimanifold.planning import plan
    preset = dataclasses.replace(SMOKE, train=dataclasses.replace(SMOKE.train, steps=10_000_000))  # hours, not 0.0
    text = plan(preset, str(tmp_path))
    est = float(re.search(r"about ([0-9.]+) h of steps", text).group(1))
    floor = float(re.search(r"less than ([0-9.]+) h", text).group(1))
    assert 0 < floor < est


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this OS")
def test_the_default_jobs_follow_the_cores_this_process_may_use():
    """A container or taskset narrowing the CPUs narrows --jobs' default and the thread split."""
    code = ("import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
            "from minimanifold.trajectories.pool import usable_cores; print(usable_cores())")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=HANG)
    assert r.returncode == 0 and r.stdout.strip() == "1"


def test_a_sweep_hands_the_costliest_runs_out_first(tmp_path):
    """Longest first keeps a worker from training one long run alone at the end: the order
    of submission follows steps x FLOPs per step (an MLP costs more than attention only),
    finished runs go first, and the records still come back in the order given."""
    import dataclasses
    from minimanifold.trajectories.sweep import run_cost
    base = SMOKE.specs(seeds=[0], steps=20, ckpt_every=10)[0]
    short = dataclasses.replace(base, name="short")
    long_ = dataclasses.replace(base, name="long", train=dataclasses.replace(base.train, steps=40))
    mlp = dataclasses.replace(base, name="mlp", model=dataclasses.replace(base.model, attn_only=False))
    done = dataclasses.replace(base, name="done", train=dataclasses.replace(base.train, steps=60))
    assert run_cost(mlp) > run_cost(short) and run_cost(long_) == 2 * run_cost(short)
    sweep([done], tmp_path, log=lambda s: None)
    submitted = []

    class Recording(ThreadPoolExecutor):
        def submit(self, fn, args):
            submitted.append(args[1].name)
            return super().submit(fn, args)
    specs = [short, done, mlp, long_]
    with Recording(1) as ex:
        out = sweep(specs, tmp_path, executor=ex, log=lambda s: None)
    expect = ["done"] + sorted(["short", "mlp", "long"], key=lambda n: -run_cost({"short": short, "mlp": mlp, "long": long_}[n]))
    assert submitted == expect and expect[-1] == "short"
    assert [r["name"] for r in out] == ["short", "done", "mlp", "long"]


def test_a_resumed_run_counts_the_steps_it_has_left(tmp_path):
    """A run checkpointed at step 30 of 40 has 10 steps left: it goes after a fresh run of
    20 steps; a finished run and one reusable under another name have none left."""
    import dataclasses
    from minimanifold.trajectories.sweep import steps_left, submit_order
    base = SMOKE.specs(seeds=[0], steps=20, ckpt_every=10)[0]
    resumed = dataclasses.replace(base, name="resumed", train=dataclasses.replace(base.train, steps=40))
    fresh = dataclasses.replace(base, name="fresh")
    os.makedirs(os.path.join(run_dir(tmp_path, resumed), "ckpt"))
    open(os.path.join(run_dir(tmp_path, resumed), "ckpt", "step_00000030.npz"), "wb").close()
    assert steps_left(tmp_path, resumed) == 10 and steps_left(tmp_path, fresh) == 20
    assert submit_order([(tmp_path, resumed, None), (tmp_path, fresh, None)]) == [1, 0]
    sweep([fresh], tmp_path, log=lambda s: None)
    twin = dataclasses.replace(fresh, name="twin")
    assert steps_left(tmp_path, fresh) == 0 == steps_left(tmp_path, twin)


def test_runs_of_equal_cost_go_seed_major(tmp_path):
    """Groups listed one after another (a's seeds 0-2, then b's) go to the workers seed 0 of
    each first: a sitting stopped after two runs has one in each group, not a's 0 and 1."""
    import dataclasses
    from minimanifold.trajectories.sweep import submit_order
    base = SMOKE.specs(seeds=[0], steps=20, ckpt_every=10)[0]
    specs = [dataclasses.replace(base, name=g, train=dataclasses.replace(base.train, seed=s))
             for g in ("a", "b") for s in (0, 1, 2)]
    order = submit_order([(tmp_path, s, None) for s in specs])
    assert [(specs[i].name, specs[i].train.seed) for i in order] == [
        ("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]


def test_finished_only_analyses_the_finished_runs_and_trains_nothing(tmp_path):
    """--finished-only: a partial ledger of the claims the finished runs decide (here the
    main runs and the mul comparison), numbered as in the full ledger; the claims whose runs
    are not trained, and restricted retraining (which trains), left out and named in the
    caption; no run trained, no retraining cached."""
    import dataclasses
    import json
    from minimanifold.pipeline import PipelineError, planned_specs, run
    from minimanifold.report import ledger
    preset = dataclasses.replace(SMOKE, train=dataclasses.replace(SMOKE.train, steps=300))
    runs, fig = tmp_path / "runs", tmp_path / "fig"
    with pytest.raises(PipelineError, match="--finished-only trains nothing"):
        run(preset, str(runs), str(fig), log=lambda s: None, finished_only=True)
    sweep(preset.specs() + planned_specs(preset)["mul"] + planned_specs(preset)["curriculum"][:1], runs,
          log=lambda s: None)                                 # one curriculum run: claims 15-17 still left out

    def listing():
        return sorted(os.path.relpath(os.path.join(d, f), runs) for d, _, fs in os.walk(runs) for f in fs)
    before = listing()
    earlier = fig / "records" / "other-0123456789" / "seed_0"          # an earlier sitting's record
    os.makedirs(earlier)
    (earlier / "record.json").write_text(json.dumps({"run": "other-0123456789/seed_0", "files": {}}))
    run(preset, str(runs), str(fig), jobs=2, log=lambda s: None, finished_only=True)   # a pool: prefetch too
    assert (earlier / "record.json").exists()                          # a partial sitting adds, removes nothing
    recorded = {os.path.relpath(os.path.dirname(d), fig / "records") for d, _, fs in os.walk(fig / "records")
                if "record.json" in fs}
    assert len(recorded) == 4 and {"other-0123456789"} < recorded      # main's, mul's and curriculum's added
    [cur] = [k for k in recorded if k.startswith("curriculum")]        # its experiment is left out, yet its
    assert any(f.startswith("geometry_") for f in os.listdir(fig / "records" / cur / "seed_0"))   # measurement is kept
    assert [f for f in listing() if f not in before and "restricted" in f] == []       # retrained nothing
    assert {os.path.dirname(f) for f in listing()} == {os.path.dirname(f) for f in before}   # trained nothing
    claims = json.loads((fig / "claims.json").read_text())["claims"]
    assert [c["n"] for c in claims] == [*range(1, 15), 18, 22, 27]
    md = (fig / "claims.md").read_text()
    assert "| 18 | multiplication needs r90" in md and "| 15 |" not in md
    assert "- claims 15, 16, 17: runs not trained yet: mlp\n" in md
    assert "- claim 23: its measurement trains\n" in md and "- claim 18: runs not trained" not in md
    table = ledger.side_by_side_markdown({"partial": claims, "full": None}).splitlines()
    assert [ln.split(" | ")[0] for ln in table[2:]] == [f"| {n}" for n in [*range(1, 15), 18, 22, 27]]


def test_train_trains_only_the_groups_it_names(tmp_path, monkeypatch):
    """--train: the groups named train now (here main and mul, on a pool), the others give
    only their finished runs (none), restricted retraining only when named; the ledger is
    partial as --finished-only's. Then --train restricted-retraining adds claim 23 and
    trains no run; the retrainings then outlive the run cache (``_a_retraining_spans_sittings``)."""
    import dataclasses
    import json
    from minimanifold.experiments.restricted_training import GROUP as RESTRICTED
    from minimanifold.pipeline import PipelineError, planned_specs, run
    preset = dataclasses.replace(SMOKE, train=dataclasses.replace(SMOKE.train, steps=300))
    runs, fig = tmp_path / "runs", tmp_path / "fig"
    with pytest.raises(PipelineError, match="add main"):
        run(preset, str(runs), str(fig), log=lambda s: None, train=frozenset({"mul"}))

    def listing():
        return sorted(os.path.relpath(os.path.join(d, f), runs) for d, _, fs in os.walk(runs) for f in fs)
    run(preset, str(runs), str(fig), jobs=2, log=lambda s: None, train=frozenset({"main", "mul"}))
    trained = {os.path.dirname(os.path.relpath(run_dir(runs, s), runs)) for s in preset.specs() + planned_specs(preset)["mul"]}
    assert {f.split(os.sep)[0] for f in listing()} == trained                       # those groups, no other
    assert [f for f in listing() if "restricted" in f] == []
    claims = json.loads((fig / "claims.json").read_text())["claims"]
    assert [c["n"] for c in claims] == [*range(1, 15), 18, 22, 27]
    md = (fig / "claims.md").read_text()
    assert "- claims 15, 16, 17: runs not trained yet: curriculum, mlp\n" in md
    assert "- claim 23: its measurement trains\n" in md
    before = listing()
    run(preset, str(runs), str(fig), log=lambda s: None, train=frozenset({RESTRICTED}))
    new = [f for f in listing() if f not in before]
    assert new and all("restricted" in f for f in new)                             # retrained, no new run
    claims = json.loads((fig / "claims.json").read_text())["claims"]
    assert [c["n"] for c in claims] == [*range(1, 15), 18, 22, 23, 27]
    assert "- claim 23: its measurement trains" not in (fig / "claims.md").read_text()
    _a_retraining_spans_sittings(preset, runs, fig, monkeypatch)


def _a_retraining_spans_sittings(preset, runs, fig, monkeypatch):
    """The retrainings are in the records; with the run cache's copies gone (another machine)
    a sitting that names the group copies them back and retrains none, and the ledger is the
    same; with one job lost from both, a ledger that trains nothing still shows claim 23,
    inconclusive and saying which seeds it waits for."""
    import json
    from minimanifold.experiments import restricted_jobs
    from minimanifold.experiments.restricted_training import GROUP as RESTRICTED
    from minimanifold.pipeline import run
    cached = sorted(os.path.join(d, f) for d, _, fs in os.walk(runs) for f in fs if f.startswith("restricted_"))
    recorded = {os.path.basename(f) for d, _, fs in os.walk(fig / "records") for f in fs if f.startswith("restricted_")}
    assert cached and recorded == {os.path.basename(f) for f in cached}
    ledger = (fig / "claims.json").read_text()
    for f in cached:
        os.remove(f)
    monkeypatch.setattr(restricted_jobs, "restricted_of_run", lambda *a: pytest.fail("retrained"))
    run(preset, str(runs), str(fig), log=lambda s: None, train=frozenset({RESTRICTED}))
    assert all(os.path.exists(f) for f in cached) and (fig / "claims.json").read_text() == ledger
    for f in [f for f in cached if "_random_" in f and f.endswith(".json")]:
        os.remove(f)
        os.remove(f + ".sha256")
        for d, _, fs in os.walk(fig / "records"):
            for g in fs:
                if g.startswith(os.path.basename(f)):
                    os.remove(os.path.join(d, g))
    run(preset, str(runs), str(fig), log=lambda s: None, finished_only=True)
    row = {c["n"]: c for c in json.loads((fig / "claims.json").read_text())["claims"]}[23]
    assert row["verdict"] == "inconclusive" and "partial: 0 of the 1 seeds retrained with both" in row["interval"]
    assert json.loads((fig / "claims.json").read_text())["partial"] is True          # a job still to train
    assert "restricted-retraining 4 of 5" in (fig / "claims.md").read_text()
    assert "- claim 23: its measurement trains" not in (fig / "claims.md").read_text()


@pytest.mark.parametrize("args, needle", [
    (["--train", "main,bogus"], "no group 'bogus' in the smoke preset (its groups: main, "),
    (["--train", " , "], "--train names no group"),
])
def test_train_bad_group_is_one_line(tmp_path, args, needle):
    r = subprocess.run([sys.executable, "run_all.py", "--preset", "smoke", "--runs-dir", str(tmp_path / "runs"),
                        "--figures-dir", str(tmp_path / "fig"), *args], cwd=ROOT, capture_output=True, text=True)
    _one_line_error(r, needle)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "fig").exists()       # nothing written


def test_train_and_finished_only_exclude_each_other(tmp_path):
    r = subprocess.run([sys.executable, "run_all.py", "--preset", "smoke", "--train", "main", "--finished-only",
                        "--runs-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "not allowed with argument" in r.stderr


@pytest.mark.parametrize("args, folder, page", [
    ([], "figures/quick", True),                        # every preset in its own folder, quick too
    (["--preset", "paper", "--train", "main"], "figures/paper", True),
    (["--figures-dir", "elsewhere"], "elsewhere", False),
])
def test_the_main_job_writes_under_its_figures_folder_only(monkeypatch, args, folder, page):
    """run_all.py hands ``run`` figures/<preset>/ by default and regenerates figures/ledgers.md
    only for a committed preset folder; it never writes README.md. ``run`` itself and the
    page writer are replaced here, so nothing trains and nothing is written."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("run_all_cli", os.path.join(ROOT, "run_all.py"))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    seen, pages = {}, []
    monkeypatch.setattr(cli, "run", lambda *a, **kw: seen.update(fig_dir=a[2], **kw))
    monkeypatch.setattr(cli, "write_ledgers_page", pages.append)
    readme = open(os.path.join(ROOT, "README.md"), "rb").read()
    assert cli.main(args) == 0
    assert os.path.relpath(os.path.abspath(seen["fig_dir"]), ROOT) == folder
    assert pages == ([os.path.join(ROOT, "figures")] if page else [])
    assert "readme" not in seen and open(os.path.join(ROOT, "README.md"), "rb").read() == readme
    assert seen["train"] == (frozenset({"main"}) if "--train" in args else None)


def test_a_finished_twin_wins_over_an_unfinished_run_of_its_own(tmp_path):
    """A run interrupted under one name and finished under another (same configuration and
    seed) is not resumed: the finished twin is linked in, the interrupted checkpoints moved
    aside, and --plan's count of steps left (0) is what the sweep then trains."""
    import dataclasses
    from minimanifold.trajectories.sweep import steps_left
    spec = SMOKE.specs(seeds=[0], steps=30, ckpt_every=10)[0]
    screen = dataclasses.replace(spec, name="screen")
    done = sweep([screen], tmp_path, log=lambda s: None)[0]
    d = run_dir(tmp_path, spec)
    os.makedirs(os.path.join(d, "ckpt"))
    for f in ("config.json", "ckpt/step_00000010.npz"):                          # interrupted at step 10
        src = os.path.join(done["dir"], f) if f == "config.json" else os.path.join(done["dir"], summary_ckpt(done))
        open(os.path.join(d, f), "wb").write(open(src, "rb").read())
    assert steps_left(tmp_path, spec) == 0
    lines = []
    rec = sweep([spec], tmp_path, log=lines.append)[0]
    assert "1 trained under another name (reused), 0 to train" in lines[0]
    assert rec["cached"] and rec["twin"] == done["dir"] and rec["summary"] == done["summary"]
    assert not any(ln.startswith("[add seed 0] step") for ln in lines)             # not resumed
    aside = [p for p in os.listdir(os.path.dirname(d)) if ".superseded-" in p]
    assert len(aside) == 1 and os.listdir(os.path.join(os.path.dirname(d), aside[0], "ckpt")) == ["step_00000010.npz"]


def summary_ckpt(rec) -> str:
    """A checkpoint file of a finished run (its last), relative to its directory."""
    import json
    return json.load(open(os.path.join(rec["dir"], "summary.json")))["final_checkpoint"]
