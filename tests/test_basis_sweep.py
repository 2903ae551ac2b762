"""The basis and K sweep (issue 10 §5) on a real run: every projection is a ratio in
[0, 1] for every basis the sweep builds, the baseline is the block-matched one, and the
r90 subsets are the ones the figure names. And its enrichment on known answers (issue 23):
each matrix's random baseline has that matrix's own number of directions."""
import math
import dataclasses

import numpy as np

from minimanifold.analysis import execution
from minimanifold.experiments.commutators import bases
from minimanifold.experiments.commutators.measure import measure
from minimanifold.files import read_npz
from minimanifold.model.transformer import attention_param_names
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
    k = sw["k_used"][:, :, later]                                # [basis, K, point, matrix]
    assert (k <= np.array(bases.KS)[None, :, None, None]).all() and (k >= 1).all()
    assert (sw["k_used"][bases.BASES.index("trajectory PCA")] <= 12).all()   # 13 snapshots span 12 directions
    # the ratio is rho over the block-matched baseline of the same delta, each matrix its own k_b
    cfg = SMOKE.model
    data = read_npz(measure(str(d)))
    for b in range(len(bases.BASES)):
        i, q = int(np.nonzero(later)[0][-1]), bases.KS.index(4)
        delta = data["delta"][i, 0].astype(np.float64)
        off, names = execution.offsets(cfg), attention_param_names(cfg)
        base2 = sum(min(1.0, k_b / (off[n][1] - off[n][0])) * float(np.sum(delta[off[n][0]:off[n][1]] ** 2))
                    for n, k_b in zip(names, sw["k_used"][b, q, i]))
        assert abs(sw["ratio"][b, q, i, 0] - sw["rho"][b, q, i, 0] / np.sqrt(base2 / float(delta @ delta))) < 1e-12
        if len(set(sw["k_used"][b, q, i])) == 1:                 # one k for all: the project's own baseline
            base = execution.block_random_rho(delta, cfg, int(sw["k_used"][b, q, i, 0]))
            assert abs(sw["ratio"][b, q, i, 0] - sw["rho"][b, q, i, 0] / base) < 1e-12
    assert len(sw["r90_subsets"]) == len(bases.SUBSETS) and (sw["r90_subsets"] >= 1).all()
    w = bases.windows([sw])
    assert set(w) == {(kind, k) for kind in bases.BASES for k in bases.KS}
    assert "gradient SVD" in bases.summary_text([sw])


def test_enrichment_counts_each_matrixs_own_directions():
    """Issue 23's example: 32 directions in one 1000-entry matrix, 1 in another, delta all ones
    in both (||delta||² = 2000), the bases the first 32 and the first 1 coordinate vectors:
    ρ² = (32 + 1)/2000, the per-matrix baseline² = (32/1000 · 1000 + 1/1000 · 1000)/2000: the
    same, enrichment exactly 1. Guards: the fewest directions (1) in both baselines: √16.5;
    the most (32): √(33/64); a block's k_b capped at D_b dropped (a block of 8 with 32 wanted);
    the root (ratio² 16.5 → 16.5)."""
    proj2, block2, sizes = [32.0, 1.0], [1000.0, 1000.0], [1000, 1000]
    rho, ratio = bases.enrichment(proj2, block2, sizes, [32, 1], 2000.0)
    assert rho == math.sqrt(33 / 2000) and abs(ratio - 1.0) < 1e-12
    assert abs(bases.enrichment([8.0, 1.0], [8.0, 1000.0], [8, 1000], [32, 1], 1008.0)[1] - 1.0) < 1e-12
    rho, ratio = bases.enrichment([32.0, 0.0], [1000.0, 0.0], [1000, 1000], [32, 1], 1000.0)
    assert abs(ratio - 1.0) < 1e-12 and abs(rho - math.sqrt(0.032)) < 1e-12   # delta only in the 32 block
    assert all(np.isnan(bases.enrichment([0.0, 0.0], [5.0, 5.0], [10, 10], [0, 0], 10.0)))   # no directions
    rho, ratio = bases.enrichment([0.0, 0.0], [5.0, 0.0], [10, 10], [0, 3], 10.0)
    assert rho == 0.0 and np.isnan(ratio)           # delta only where the basis has nothing: no baseline


def test_enrichment_of_a_random_basis_is_one():
    """A random basis (orthonormalised Gaussian) of 32 directions in one 1000-entry matrix and 1 in
    another, a Gaussian delta in both: E ρ² = ρ_random² exactly, so over 60 draws the mean
    enrichment² is 1 (sd of one draw ≈ √(2·33)/33 = 0.25 at most: ±0.13 is 4 sd of the mean).
    The fewest-directions baseline gave about √16.5 = 4.06 (4.56 in the issue's draw).
    Guards: the fewest or the most directions in every matrix's baseline."""
    rng = np.random.default_rng(23)
    r2 = []
    for _ in range(60):
        delta = [rng.normal(size=1000), rng.normal(size=1000)]
        basis = [np.linalg.qr(rng.normal(size=(1000, k)))[0] for k in (32, 1)]
        proj2 = [float(np.sum((V.T @ v) ** 2)) for V, v in zip(basis, delta)]
        block2 = [float(v @ v) for v in delta]
        r2.append(bases.enrichment(proj2, block2, [1000, 1000], [32, 1], sum(block2))[1] ** 2)
    assert abs(np.mean(r2) - 1.0) < 0.13, np.mean(r2)
