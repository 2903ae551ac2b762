"""``run_all.py --dask``: training and the per-run measurements on a Dask cluster (the
optional extra ``dist``) give the ledger a local run gives, every run names the worker that
trained it, a run whose worker is killed mid-training resumes from its checkpoint on
another, and what cannot work is one line. The cluster tests share one LocalCluster of 2
worker processes (one thread each) and run where dask.distributed is installed; the
one-line errors run everywhere."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np
import pytest

from minimanifold.trajectories.presets import SMOKE
from minimanifold.files import read_json
from minimanifold.trajectories.rundir import load_trajectory
from minimanifold.experiments.groups import planned_specs
from minimanifold.trajectories.sweep import run_dir, run_key, sweep
from tests.test_lost_data import assert_same_ledger

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HANG = 1800                 # subprocess limits only guard against a hang (a loaded machine is slow)


def env(**extra):
    e = {**os.environ, "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1", **extra}
    e["PYTHONPATH"] = ROOT + os.pathsep + e.get("PYTHONPATH", "")
    return e


def run_all(*args, **extra):
    return subprocess.run([sys.executable, "run_all.py", "--preset", "smoke", *args], cwd=ROOT, env=env(**extra),
                          capture_output=True, text=True, timeout=HANG)


def one_line_error(r, needle):
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], \
        r.stdout[-500:] + r.stderr[-2000:]


@pytest.fixture(scope="module")
def cluster():
    """(LocalCluster, Client): 2 worker processes with a nanny each, one thread each, their
    BLAS loaded with one thread (whatever this shell says). A nanny writes its workers'
    variables into this process's environment before it spawns one (Dask's
    pre-spawn-environ): the environment is restored afterwards."""
    distributed = pytest.importorskip("distributed")
    pytest.importorskip("threadpoolctl")
    saved = dict(os.environ)
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=":0") as c, distributed.Client(c) as client:
            client.get_task_stream()              # the scheduler records every task from now on
            yield c, client
    finally:
        os.environ.clear()
        os.environ.update(saved)


def workers_of(client) -> set:
    return set(client.nthreads())


def trainers(d) -> list:
    return read_json(os.path.join(d, "trained_by.json"))


# ---- what cannot work: one line, exit 2, nothing written ----

def test_without_the_extra_dask_is_one_line(tmp_path):
    fake = tmp_path / "site"
    fake.mkdir()
    (fake / "distributed.py").write_text("raise ModuleNotFoundError(\"No module named 'distributed'\")\n")
    r = run_all("--dask", "tcp://127.0.0.1:8786", "--runs-dir", str(tmp_path / "runs"),
                PYTHONPATH=f"{fake}{os.pathsep}{ROOT}")
    one_line_error(r, "--dask needs the dist extra: pip install minimanifold[dist]")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("address, needle", [
    ("tcp://127.0.0.1:9", "cannot reach a Dask scheduler there"),            # nothing listens (discard port)
    ("scheduler", "not a scheduler address like tcp://host:8786"),
    ("foo://host:1", "not a scheduler address"),
])
def test_a_scheduler_that_cannot_be_reached_is_one_line(tmp_path, address, needle):
    pytest.importorskip("distributed")
    pytest.importorskip("threadpoolctl")
    t0 = time.perf_counter()
    r = run_all("--dask", address, "--runs-dir", str(tmp_path / "runs"), DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="1")
    one_line_error(r, needle)
    assert address in r.stderr and not (tmp_path / "runs").exists()
    assert time.perf_counter() - t0 < 60                       # the connect timeout, not a hang at exit


def test_dask_and_jobs_exclude_each_other():
    r = subprocess.run([sys.executable, "run_all.py", "--dask", "tcp://h:1", "--jobs", "2"], cwd=ROOT, env=env(),
                       capture_output=True, text=True, timeout=HANG)
    assert r.returncode == 2 and "not allowed with argument" in r.stderr


def test_with_dask_the_runs_dir_is_the_absolute_path_every_worker_reads(monkeypatch, tmp_path):
    pytest.importorskip("distributed")
    pytest.importorskip("threadpoolctl")
    from minimanifold.options import configure, parser
    monkeypatch.chdir(tmp_path)
    a = parser("runs").parse_args(["--preset", "smoke", "--dask", "tcp://h:1", "--runs-dir", "cache"])
    configure(a)
    assert a.runs_dir == str(tmp_path / "cache")
    a = parser("runs").parse_args(["--preset", "smoke", "--runs-dir", "cache"])
    configure(a)
    assert a.runs_dir == "cache"                                           # a local run: as given


def test_a_lost_task_is_one_cluster_error():
    distributed = pytest.importorskip("distributed")
    from minimanifold.trajectories.cluster import ClusterError, _relay
    for fail in ("killed", "cancelled", "raised", "ok"):
        inner, out = Future(), Future()
        if fail == "killed":
            last = SimpleNamespace(address="tcp://10.0.0.1:1")             # the scheduler's WorkerState
            inner.set_exception(distributed.KilledWorker("on_worker-abc", last, 3))
        elif fail == "cancelled":
            inner.cancel()
        elif fail == "raised":
            inner.set_exception(KeyError("bug"))
        else:
            inner.set_result(7)
        _relay(inner, out)
        if fail == "ok":
            assert out.result() == 7
        elif fail == "raised":                                   # a task's own error is its own
            assert isinstance(out.exception(), KeyError)
        else:
            e = out.exception()
            assert isinstance(e, ClusterError) and "\n" not in str(e) and "rerun to resume" in str(e), e


def test_the_measurements_after_training_go_to_the_executor_too(monkeypatch):
    """What the reports need beyond the measurements queued during training (a diverged
    run shifts the seeds) goes to the same executor, not to a local pool."""
    from minimanifold import pipeline
    from minimanifold.experiments import measuring
    from minimanifold.experiments.contract import Call
    calls = [Call(len, ("abc",)), Call(len, ("de",))]
    monkeypatch.setattr(measuring, "prefetch_calls", lambda ctx, skip=(): calls)
    seen, lines = [], []

    class Recording(ThreadPoolExecutor):
        def submit(self, fn, /, *args):
            seen.append(args)                                  # (function, args, keep the result)
            return super().submit(fn, *args)
    with Recording(1) as ex:
        pipeline.prefetch(None, 1, lines.append, done={calls[0]}, executor=ex)
    assert seen == [(len, ("de",), False)]
    assert lines[0].startswith("per-run measurements: 1 on the training pool as their runs finished, 1 after, "
                               "on the cluster")


ONE_THREAD = """
import json, numpy, threadpoolctl
from minimanifold.trajectories.cluster import one_blas_thread
from minimanifold.trajectories.training_loop import blas_threads
before = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
one_blas_thread()
after = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
print(json.dumps([before, after, blas_threads()]))
"""


def test_a_worker_started_with_more_blas_threads_computes_with_one():
    """A worker whose OpenBLAS loaded with 2 threads (no nanny, or its shell says so) is cut
    to one at run time, and its runs record 1, as a local pool worker's do."""
    pytest.importorskip("threadpoolctl")
    r = subprocess.run([sys.executable, "-c", ONE_THREAD], cwd=ROOT, env=env(OPENBLAS_NUM_THREADS="2"),
                       capture_output=True, text=True, timeout=HANG)
    assert r.returncode == 0, r.stderr[-2000:]
    before, after, recorded = json.loads(r.stdout)
    assert before and after == [1] * len(before) and recorded == 1
    assert before == [2] * len(before) or os.cpu_count() == 1       # OpenBLAS caps threads at the cores


# ---- on the cluster ----

def test_the_sweep_on_the_cluster_gives_the_serial_runs_and_names_its_workers(cluster, tmp_path):
    from minimanifold.trajectories.cluster import Workers
    _, client = cluster
    specs = SMOKE.specs(seeds=[0, 1], steps=30, ckpt_every=10)
    serial = sweep(specs, tmp_path / "serial", log=lambda s: None)
    remote = sweep(specs, tmp_path / "dask", executor=Workers(client), log=lambda s: None)
    assert [r["seed"] for r in remote] == [0, 1]
    for a, b in zip(serial, remote):
        assert a["summary"]["final_acc"] == b["summary"]["final_acc"] and b["summary"]["blas_threads"] == 1
        ta, tb = load_trajectory(a["dir"]), load_trajectory(b["dir"])
        assert all(np.array_equal(ta[k], tb[k]) for k in ta)
        assert [t["worker"] for t in trainers(a["dir"])] == [None]             # a local process
        (t,) = trainers(b["dir"])
        assert t["worker"] in workers_of(client) and t["pid"] != os.getpid() and t["from_step"] == 0
        assert b["worker"] == t["worker"]


def test_run_all_on_the_cluster_writes_the_local_ledger(cluster, tmp_path):
    """The smoke preset at its fewest steps, once on 2 local processes and once with --dask
    on the 2 workers: the same claims.md, claims.json to 1e-9 (the last bit may differ
    between processes: tests/test_lost_data.py), the same figures; every run was trained
    on a worker of the cluster, and the per-run measurements were computed there too (the
    scheduler saw a task for each run and each measurement the log counts)."""
    _, client = cluster
    steps = str(SMOKE.min_steps())
    local = run_all("--steps", steps, "--jobs", "2", "--runs-dir", str(tmp_path / "local"),
                    "--figures-dir", str(tmp_path / "fig_local"))
    assert local.returncode == 0, local.stderr[-2000:]
    t0 = time.time()
    remote = run_all("--steps", steps, "--dask", c_address(cluster), "--runs-dir", str(tmp_path / "dask"),
                     "--figures-dir", str(tmp_path / "fig_dask"))
    assert remote.returncode == 0, remote.stderr[-2000:]
    a, b = tmp_path / "fig_local", tmp_path / "fig_dask"
    assert (a / "claims.md").read_text(encoding="utf-8") == (b / "claims.md").read_text(encoding="utf-8")
    assert_same_ledger(json.loads((a / "claims.json").read_text()), json.loads((b / "claims.json").read_text()))
    assert sorted(os.listdir(a)) == sorted(os.listdir(b)) and any(f.endswith(".png") for f in os.listdir(b))
    runs = [os.path.join(k, s) for k in os.listdir(tmp_path / "dask") if os.path.isdir(tmp_path / "dask" / k)
            for s in os.listdir(tmp_path / "dask" / k) if s.startswith("seed_") and "." not in s]
    specs = [s for group in planned_specs(SMOKE).values() for s in group]
    trained = {(run_key(s).rsplit("-", 1)[1], s.train.seed) for s in specs}   # a twin (same config) is adopted, not trained
    assert len(runs) == len(specs) == 17 and len(trained) == 16
    used = {t["worker"] for r in runs for t in trainers(tmp_path / "dask" / r)}
    assert used and used <= workers_of(client), (used, workers_of(client))
    assert all(t["worker"] is None for r in runs for t in trainers(tmp_path / "local" / r))
    m = re.search(r"^per-run measurements: (\d+) on the training pool as their runs finished, (\d+) after, "
                  r"on the cluster in", remote.stdout, re.M)
    measured = int(m.group(1)) + int(m.group(2))
    assert int(m.group(1)) > 0                 # queued behind the training, as on a local pool
    tasks = [t for t in client.get_task_stream(start=t0) if str(t["key"]).startswith("on_worker")]
    assert len({t["key"] for t in tasks}) == len(specs) + measured and {t["worker"] for t in tasks} <= workers_of(client)


def c_address(cluster) -> str:
    return cluster[0].scheduler_address


def test_a_scheduler_or_worker_without_the_code_is_named(cluster, monkeypatch):
    """The scheduler unpickles the tasks and the workers run them: each must import
    minimanifold (checked when run_all.py connects, before anything trains)."""
    from minimanifold.trajectories.cluster import cannot_import
    _, client = cluster
    assert cannot_import(client) == []
    lacking = cannot_import(client, code="minimanifold.no_such_module", worker_only=("no_such_package",))
    assert lacking[0] == "the scheduler (minimanifold.no_such_module)"
    assert sorted(lacking[1:]) == sorted(f"worker {w} ({m})" for w in workers_of(client)
                                         for m in ("minimanifold.no_such_module", "no_such_package"))
    from minimanifold.trajectories import cluster as C
    workers = C.connect(c_address(cluster))                  # what run_all.py does: it checks, then uses
    try:
        assert workers.slots == 2
    finally:
        workers.shutdown(wait=False)
    monkeypatch.setattr(C, "cannot_import", lambda client: [f"the scheduler ({C.__name__})"])
    with pytest.raises(C.ClusterError, match=r"cannot import minimanifold's cluster code there: the scheduler "
                                             r"\(minimanifold.trajectories.cluster\); install"):
        C.connect(c_address(cluster))


COUNTS = "[i['num_threads'] for i in __import__('threadpoolctl').threadpool_info() if i['user_api'] == 'blas']"


def test_a_worker_that_loaded_more_blas_threads_computes_with_one(cluster):
    """A worker started without the nanny, in a shell that says OPENBLAS_NUM_THREADS=2 (the
    nanny's default would have given it one): a plain task there sees 2 threads, a task
    sent by ``Workers`` (through ``on_worker``) computes with one."""
    from minimanifold.trajectories.cluster import on_worker
    _, client = cluster
    before = set(client.nthreads())
    extra = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", c_address(cluster), "--no-nanny",
                              "--nthreads", "1", "--no-dashboard", "--name", "two-threads"],
                             cwd=ROOT, env=env(OPENBLAS_NUM_THREADS="2"), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        client.wait_for_workers(len(before) + 1, timeout=120)
        (address,) = set(client.nthreads()) - before
        plain = client.submit(eval, COUNTS, workers=[address], pure=False).result()
        assert plain and (set(plain) == {2} or os.cpu_count() == 1)     # OpenBLAS caps threads at the cores
        assert set(client.submit(on_worker, eval, COUNTS, workers=[address], pure=False).result()) == {1}
    finally:
        extra.terminate()
        extra.wait(timeout=60)
    deadline = time.time() + 60
    while set(client.nthreads()) != before and time.time() < deadline:   # the other tests see their 2
        time.sleep(0.1)
    assert set(client.nthreads()) == before


def test_a_blas_library_that_ignores_the_limit_is_one_line(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from minimanifold.trajectories.cluster import ClusterError, one_blas_thread
    for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(k, os.environ.get(k, "1"))                # restored after: the test's own
    monkeypatch.setattr(threadpoolctl, "threadpool_limits", lambda *a, **k: None)   # ignored
    monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda: [
        {"user_api": "openmp", "num_threads": 2, "filepath": "/lib/libgomp.so"},
        {"user_api": "blas", "num_threads": 2, "filepath": "/lib/libopenblas.so"}])
    with pytest.raises(ClusterError, match=r"^cannot limit BLAS to one thread in this worker \(/lib/libopenblas.so\)"):
        one_blas_thread()
    monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda: [
        {"user_api": "openmp", "num_threads": 2, "filepath": "/lib/libgomp.so"},     # not BLAS: left alone
        {"user_api": "blas", "num_threads": 1, "filepath": "/lib/libopenblas.so"}])
    one_blas_thread()


def test_plan_with_an_executor_estimates_for_its_slots(tmp_path):
    """--plan --dask divides by the cluster's worker threads (``Workers.slots``), not by the
    cores here; its steps are timed by the executor's workers."""
    import dataclasses
    from minimanifold.planning import plan
    preset = dataclasses.replace(SMOKE, train=dataclasses.replace(SMOKE.train, steps=30, ckpt_every=10, batch_size=16))
    timed = []

    class Three(ThreadPoolExecutor):
        slots = 3

        def submit(self, fn, /, *args):
            timed.append(args[0].__name__)
            return super().submit(fn, *args)
    with Three(3) as ex:
        text = plan(preset, str(tmp_path), jobs=1, roofline=1.0, executor=ex)
    assert "steps with 3 Dask worker threads (ms/step timed now, 3 at once" in text
    assert timed and set(timed) == {"seconds_per_step"} and len(timed) % 3 == 0
    assert "floor (this machine alone, not the cluster)" in text and not os.listdir(tmp_path)


def test_plan_on_the_cluster_estimates_for_its_workers(cluster, tmp_path):
    r = run_all("--plan", "--dask", c_address(cluster), "--runs-dir", str(tmp_path / "runs"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "steps with 2 Dask worker threads (ms/step timed now, 2 at once" in r.stdout
    assert "floor (this machine alone, not the cluster)" in r.stdout and not (tmp_path / "runs").exists()


def test_a_worker_killed_mid_training_resumes_its_run_on_another(cluster, tmp_path):
    """kill -9 of the worker training a run, once its first checkpoint after step 0 is
    written: the scheduler gives the task to another worker, which resumes from the last
    checkpoint (its trained_by.json entry starts there, not at step 0), and the run ends
    bit-identical to one trained without interruption."""
    from minimanifold.trajectories.cluster import Workers
    _, client = cluster
    spec = SMOKE.specs(seeds=[0], steps=600, ckpt_every=20)
    d = run_dir(tmp_path / "dask", spec[0])
    pids = set(client.run(os.getpid).values())
    with ThreadPoolExecutor(1) as bg:
        job = bg.submit(sweep, spec, tmp_path / "dask", executor=Workers(client), log=lambda s: None)
        deadline = time.time() + 120
        while not os.path.exists(os.path.join(d, "ckpt", "step_00000020.npz")) and time.time() < deadline:
            assert not job.done(), job.result()
            time.sleep(0.02)
        (first,) = trainers(d)
        assert first["pid"] in pids and first["from_step"] == 0          # one of our workers: kill it
        os.kill(first["pid"], signal.SIGKILL)
        (rec,) = job.result(timeout=300)
    uninterrupted = sweep(spec, tmp_path / "serial", log=lambda s: None)[0]
    assert rec["summary"]["final_step"] == 600
    first, again = trainers(d)
    assert again["pid"] != first["pid"] and again["worker"] in workers_of(client)
    assert 20 <= again["from_step"] < 600 and again["from_step"] % 20 == 0
    ta, tb = load_trajectory(uninterrupted["dir"]), load_trajectory(d)
    assert all(np.array_equal(ta[k], tb[k]) for k in ta)
