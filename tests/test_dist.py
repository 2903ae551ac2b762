"""The sweep on a Dask cluster (optional extra ``dist``): the same runs as a serial sweep.
Runs where dask.distributed is installed; skipped elsewhere."""
import pytest

from minimanifold.trajectories.presets import SMOKE
from minimanifold.trajectories.rundir import load_trajectory
from minimanifold.trajectories.sweep import sweep

distributed = pytest.importorskip("distributed")


def test_dask_executor_gives_the_serial_runs(tmp_path):
    import numpy as np
    specs = SMOKE.specs(seeds=[0, 1], steps=30, ckpt_every=10)
    serial = sweep(specs, tmp_path / "serial", log=lambda s: None)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  env={"OPENBLAS_NUM_THREADS": "1"}) as cluster, distributed.Client(cluster) as client:
        remote = sweep(specs, tmp_path / "dask", executor=client.get_executor(), log=lambda s: None)
    assert [r["seed"] for r in remote] == [0, 1]
    for a, b in zip(serial, remote):
        assert a["summary"]["final_acc"] == b["summary"]["final_acc"]
        ta, tb = load_trajectory(a["dir"]), load_trajectory(b["dir"])
        assert all(np.array_equal(ta[k], tb[k]) for k in ta)
