"""The basis and K sweep (issue 10 §5) on a real run: every projection is a ratio in
[0, 1] for every basis the sweep builds, the baseline is the block-matched one, and the
r90 subsets are the ones the figure names."""
import dataclasses

import numpy as np

from minimanifold.analysis import execution
from minimanifold.experiments.commutators import bases
from minimanifold.experiments.commutators.measure import measure
from minimanifold.files import read_npz
from minimanifold.trajectories.presets import SMOKE
from minimanifold.trajectories.training_loop import train


def test_sweep_of_a_run(tmp_path):
    d = tmp_path / "r"
    train(d, SMOKE.model, SMOKE.task, dataclasses.replace(SMOKE.train, steps=120, ckpt_every=10),
          log=lambda s: None)
    sw = bases.cached_sweep(str(d))
    n_pts = len(sw["steps"])
    assert sw["ratio"].shape == (len(bases.BASES), len(bases.KS), n_pts, 4) and sw["rho"].shape == sw["ratio"].shape
    later = sw["steps"] > 0
    rho = sw["rho"][:, :, later]
    assert np.isfinite(rho).all() and (rho >= 0).all() and (rho <= 1 + 1e-9).all()
    drift = bases.BASES.index("drift SVD")                      # at step 0 there is no drift to decompose
    assert np.isnan(sw["rho"][drift][:, ~later]).all() and (sw["k_used"][drift][:, ~later] == 0).all()
    others = [b for b in range(len(bases.BASES)) if b != drift]   # the whole-run PCA, W_0 and g_A exist there
    assert np.isfinite(sw["rho"][others][:, :, ~later]).all()
    k = sw["k_used"][:, :, later]
    assert (k <= np.array(bases.KS)[None, :, None]).all() and (k >= 1).all()
    assert (sw["k_used"][bases.BASES.index("trajectory PCA")] <= 12).all()   # 13 snapshots span 12 directions
    # the ratio is rho over the block-matched baseline of the same delta and K
    cfg = SMOKE.model
    data = read_npz(measure(str(d)))
    i, q, b = int(np.nonzero(later)[0][-1]), bases.KS.index(4), bases.BASES.index("gradient SVD")
    delta = data["delta"][i, 0]
    base = execution.block_random_rho(delta, cfg, int(sw["k_used"][b, q, i]))
    assert abs(sw["ratio"][b, q, i, 0] - sw["rho"][b, q, i, 0] / base) < 1e-12
    assert len(sw["r90_subsets"]) == len(bases.SUBSETS) and (sw["r90_subsets"] >= 1).all()
    w = bases.windows([sw])
    assert set(w) == {(kind, k) for kind in bases.BASES for k in bases.KS}
    assert "gradient SVD" in bases.summary_text([sw])
