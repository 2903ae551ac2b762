"""Functional dimension (issue 10 §3) on synthetic trajectories with a known answer."""
import numpy as np
import pytest

from minimanifold.analysis import functional as FD


def synthetic(k0, D=200, n=201, seed=0, noise=1e-4):
    """Snapshots whose drift lies in a k0-dimensional subspace (plus tiny noise), with
    every one of the k0 directions carrying a comparable share of theta_T - theta_0 and
    moving on its own time course (so the centred PCA also finds all k0)."""
    rng = np.random.default_rng(seed)
    U = np.linalg.qr(rng.standard_normal((D, k0)))[0]
    t = np.linspace(0, 1, n)[:, None]
    # sin((i + 1/2) pi t) are orthogonal on [0, 1] and end at +-1; distinct amplitudes give
    # distinct variances, so the PCA directions are the u_i themselves
    coef = np.hstack([(3.0 - 0.5 * i) * np.sin((i + 0.5) * np.pi * t) for i in range(k0)])   # [n,k0]
    theta0 = rng.standard_normal(D)
    return theta0 + coef @ U.T + noise * rng.standard_normal((n, D))


def make_accuracy(blocks):
    """1 at theta_T, falling with the distance from it (a stand-in for held-out accuracy)."""
    ends = {name: X[-1] for name, X in blocks.items()}

    def accuracy(thetas):
        d2 = sum(float(np.sum((thetas[n] - ends[n]) ** 2)) for n in ends)
        return float(np.exp(-d2 / 0.5))
    return accuracy


@pytest.mark.parametrize("centred", [True, False])
def test_k_star_is_the_drift_dimension_and_random_needs_more(centred):
    blocks = {"W_Q": synthetic(3, seed=1), "W_V": synthetic(3, seed=2)}
    acc = make_accuracy(blocks)
    out = FD.functional_curve(blocks, acc, ks=[1, 2, 3, 4, 6, 8], centred=centred)
    assert out["final"] == 1.0
    assert out["k_star"] == 3, out
    assert out["pca"][:2] == sorted(out["pca"][:2]) and out["pca"][1] < 0.9
    assert out["k_star_random"] is None and max(out["random"]) < 0.5
    assert all(0.0 <= a <= 1.0 for a in out["pca"] + out["random"])


def test_centred_and_uncentred_differ_where_they_should():
    """A drift that goes out along v and comes back along v (ending at theta_0 + small
    w) while going once along w: centred PCA ranks v first (variance), the drift's
    second moment too, but only w matters for theta_T, so k* = 2 for both, and the
    rebuilt end point from 1 direction misses it."""
    D, n = 100, 50
    rng = np.random.default_rng(3)
    v, w = np.linalg.qr(rng.standard_normal((D, 2)))[0].T
    t = np.linspace(0, 1, n)[:, None]
    X = 5.0 * np.sin(np.pi * t) * v + 0.8 * t * w
    acc = make_accuracy({"A": X})
    for centred in (True, False):
        out = FD.functional_curve({"A": X}, acc, ks=[1, 2, 3], centred=centred)
        assert out["k_star"] == 2 and out["pca"][0] < 0.9, (centred, out)


def drift_and_oscillation(D=100, n=201):
    """theta_0 + 8 t w + f(t) v, f = 2 (sin 2 pi t − 2 sin 4 pi t), for orthonormal v, w
    (seed 5): a straight drift and an oscillation that ends where it began."""
    rng = np.random.default_rng(5)
    v, w = np.linalg.qr(rng.standard_normal((D, 2)))[0].T
    t = np.linspace(0, 1, n)[:, None]
    return rng.standard_normal(D) + 8.0 * t * w + 2.0 * (np.sin(2 * np.pi * t) - 2 * np.sin(4 * np.pi * t)) * v


def test_centred_and_uncentred_pca_rank_a_drift_differently():
    """A straight drift 8 t w and an oscillation f(t) v that ends where it began,
    f = 2 (sin 2 pi t - 2 sin 4 pi t) (mean 0 and uncorrelated with t, so the principal
    axes are w and v exactly): the centred covariance ranks v first (variance 10 against
    64/12), so k* = 2; the drift's second moment ranks w first (64/3 against 10), k* = 1."""
    X = drift_and_oscillation()
    acc = make_accuracy({"A": X})
    centred = FD.functional_curve({"A": X}, acc, ks=[1, 2, 3], centred=True)
    uncentred = FD.functional_curve({"A": X}, acc, ks=[1, 2, 3], centred=False)
    assert (centred["k_star"], uncentred["k_star"]) == (2, 1), (centred, uncentred)


def test_rebuild_and_directions_are_projections():
    rng = np.random.default_rng(4)
    X = synthetic(4, D=60, n=20, seed=4)
    for centred in (True, False):
        V = FD.drift_directions(X, 10, centred)
        assert V.shape[1] <= 10
        np.testing.assert_allclose(V[:, :4].T @ V[:, :4], np.eye(4), atol=1e-10)   # the drift's own
        # the noise-level directions (variance 1e-8 of the top's 1e0) are orthonormal to ~eps/lambda
        np.testing.assert_allclose(V.T @ V, np.eye(V.shape[1]), atol=1e-6)
    R = FD.random_directions(60, 5, rng)
    np.testing.assert_allclose(R.T @ R, np.eye(5), atol=1e-12)
    full = np.linalg.qr(rng.standard_normal((60, 60)))[0]
    np.testing.assert_allclose(FD.rebuild(X[0], X[-1], full), X[-1], atol=1e-10)   # every direction: theta_T
    np.testing.assert_allclose(FD.rebuild(X[0], X[-1], full[:, :0]), X[0])         # none: theta_0
    drift = FD.rebuild(X[0], X[-1], R) - X[0]
    assert np.linalg.norm(drift) <= np.linalg.norm(X[-1] - X[0]) + 1e-12          # a projection shrinks
    assert FD.k_star([1, 2, 4], [0.1, 0.95, 1.0], 1.0) == 2 and FD.k_star([1], [0.5], 1.0) is None
    assert FD.k_star([1, 2], [0.40, 0.46], 0.5) == 2          # 90% of a final accuracy of 0.5
    assert FD.k_star([1, 2], [0.45, 0.5], 0.5) == 1 and 0.9 * 0.5 == 0.45     # exactly 90% is enough
    assert FD.k_star([1, 2], [np.nextafter(0.45, 0), 0.5], 0.5) == 2          # a hair below is not


def svd_directions(Z, tol=1e-9):
    """[D,r] right singular vectors of Z [n,D] with singular value above tol times the top."""
    _, S, Vt = np.linalg.svd(np.asarray(Z, dtype=np.float64), full_matrices=False)
    return Vt[S > tol * S[0]].T


def test_functional_of_a_real_run_ends_at_its_final_accuracy(tmp_path, monkeypatch):
    """On a trained run: rebuilding from every drift direction gives back the final
    accuracy the run recorded (the snapshots' last row is theta_T, the other parameters
    are final), accuracies are in [0, 1], and the result is cached. Each curve's network
    at each k is the one an independent SVD gives: theta_0 + P_k (theta_T - theta_0) with
    P_k onto the top-k right singular vectors of the snapshots minus their mean (centred)
    or of theta_t - theta_0 (uncentred); on this run the two differ by >= 10% of the drift
    at k = 1, so swapping, merging or mis-anchoring them fails."""
    import os
    from minimanifold.experiments import functional_dimension as FU
    from minimanifold.trajectories.presets import SMOKE
    from minimanifold.trajectories.training_loop import train
    import dataclasses
    s = train(tmp_path / "r", SMOKE.model, SMOKE.task, dataclasses.replace(SMOKE.train, steps=150, ckpt_every=10),
              log=lambda line: None)
    calls = {}                                  # kind -> [(blocks, [(matrices, accuracy), ...])]
    real_curve = FU.functional_curve

    def recording_curve(blocks, accuracy, ks, seed=0, centred=True):
        seen = []

        def recorded(mats):
            a = accuracy(mats)
            seen.append(({n: np.array(x, dtype=np.float64) for n, x in mats.items()}, a))
            return a
        calls.setdefault("centred" if centred else "uncentred", []).append((blocks, seen))
        return real_curve(blocks, recorded, ks, seed=seed, centred=centred)
    monkeypatch.setattr(FU, "functional_curve", recording_curve)
    out = FU.cached_functional(str(tmp_path / "r"))
    assert os.path.exists(tmp_path / "r" / f"functional_v{FU.VERSION}.json")
    assert FU.cached_functional(str(tmp_path / "r")) == out
    recorded = float(np.mean(list(s["final_acc"].values())))
    for kind in ("centred", "uncentred"):
        c = out[kind]
        assert abs(c["final"] - recorded) < 1e-12
        assert c["pca"][-1] == c["final"]       # 16 snapshots span <= 15 directions: all of them
        assert all(0.0 <= a <= 1.0 for a in c["pca"] + c["random"])
        assert c["k"] == list(FU.KS)
        assert c["k_star"] == next((k for k, a in zip(c["k"], c["pca"]) if a >= 0.9 * c["final"]), None)

    assert sorted(calls) == ["centred", "uncentred"] and all(len(v) == 1 for v in calls.values())
    blocks = calls["centred"][0][0]
    X = {n: np.asarray(b, dtype=np.float64) for n, b in blocks.items()}
    drift = {n: x[-1] - x[0] for n, x in X.items()}
    norm = np.sqrt(sum(float(d @ d) for d in drift.values()))
    V = {"centred": {n: svd_directions(x - x.mean(0)) for n, x in X.items()},
         "uncentred": {n: svd_directions(x - x[0]) for n, x in X.items()}}

    def expected(kind, k):
        return {n: X[n][0] + V[kind][n][:, :k] @ (V[kind][n][:, :k].T @ drift[n]) for n in X}

    def distance(a, b):
        return np.sqrt(sum(float(np.sum((a[n] - b[n]) ** 2)) for n in X)) / norm

    assert distance(expected("centred", 1), expected("uncentred", 1)) > 0.1     # the check can tell them apart
    for kind in ("centred", "uncentred"):
        seen = calls[kind][0][1]
        for k, acc in zip(FU.KS, out[kind]["pca"]):
            want = expected(kind, k)
            near = [a for mats, a in seen if distance(mats, want) < 1e-9]
            assert near and near[0] == acc, (kind, k, min(distance(mats, want) for mats, _ in seen))


def test_rebuild_norm_matched_moves_as_far_as_the_pca_rebuild_along_the_random_projection():
    """theta_0 = 0, drift (3, 4, 0, 0): V = e1 gives a PCA displacement of norm 3; R = e2
    projects the drift to (0, 4, 0, 0), scaled to norm 3: (0, 3, 0, 0). R = e3 projects it to
    0, which stays 0 (theta_0). With theta_0 = (1, 1, 1, 1) everything shifts by it.
    Guards: the scale taken from the whole drift (5) or from the random projection (4); the
    displacement not anchored at theta_0."""
    e = np.eye(4)
    drift = np.array([3.0, 4.0, 0.0, 0.0])
    for theta0 in (np.zeros(4), np.ones(4)):
        got = FD.rebuild_norm_matched(theta0, theta0 + drift, e[:, [1]], e[:, [0]])
        np.testing.assert_allclose(got, theta0 + [0.0, 3.0, 0.0, 0.0], atol=1e-12)
        np.testing.assert_allclose(FD.rebuild_norm_matched(theta0, theta0 + drift, e[:, [2]], e[:, [0]]), theta0)
    got = FD.rebuild_norm_matched(np.zeros(4), drift, e[:, [1, 2]], e[:, [0, 1]])     # PCA keeps all 5
    np.testing.assert_allclose(got, [0.0, 5.0, 0.0, 0.0], atol=1e-12)


def test_functional_curve_norm_matched_control_uses_the_random_directions_at_the_pca_norm():
    """Every accuracy call of functional_curve, in order per k: the top-k rebuild, k random
    directions, the same directions norm-matched. Per block the norm-matched displacement is
    the random one scaled up to the PCA displacement's length (parallel to it, same norm as
    the PCA's). Guards: fresh random directions for the matched control; a norm matched over
    all blocks at once instead of block by block; the plain control's scale."""
    blocks = {"W_Q": synthetic(3, D=80, seed=1), "W_V": 3.0 * synthetic(2, D=60, seed=2)}
    calls = []
    acc = make_accuracy(blocks)

    def recording(mats):
        calls.append({n: np.array(x) for n, x in mats.items()})
        return acc(mats)
    ks = [1, 2, 4]
    out = FD.functional_curve(blocks, recording, ks, centred=True)
    assert len(calls) == 1 + 3 * len(ks) and len(out["random_matched"]) == len(ks)
    for j in range(len(ks)):
        pca, rand, matched = calls[1 + 3 * j: 4 + 3 * j]
        for n, X in blocks.items():
            d_p, d_r, d_m = (m[n] - X[0] for m in (pca, rand, matched))
            np.testing.assert_allclose(np.linalg.norm(d_m), np.linalg.norm(d_p), rtol=1e-10)
            cos = d_r @ d_m / (np.linalg.norm(d_r) * np.linalg.norm(d_m))
            assert cos == pytest.approx(1.0, abs=1e-10)
            assert np.linalg.norm(d_r) < 0.5 * np.linalg.norm(d_p)          # the plain one barely moves
    assert out["k_star_random_matched"] == FD.k_star(ks, out["random_matched"], out["final"])


def test_drift_share_of_the_top_directions():
    """The drift 8 t w + f(t) v of the test above ends at theta_0 + 8 w (f(1) = 0): the
    uncentred top direction is w, so it holds all of |theta_T − theta_0|^2 (share 1 at k = 1);
    the centred top direction is v, orthogonal to the drift (share 0 at k = 1, 1 at k = 2).
    Guards: the share of theta_T instead of the drift; centred and uncentred swapped."""
    X = drift_and_oscillation()
    acc = make_accuracy({"A": X})
    unc = FD.functional_curve({"A": X}, acc, ks=[1, 2], centred=False)["drift_share"]
    cen = FD.functional_curve({"A": X}, acc, ks=[1, 2], centred=True)["drift_share"]
    np.testing.assert_allclose(unc, [1.0, 1.0], atol=1e-6)             # sampled at 201 points: not exact
    np.testing.assert_allclose(cen, [0.0, 1.0], atol=1e-6)
