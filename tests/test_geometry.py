"""Trajectory PCA, effective rank, nulls and principal angles: Hypothesis properties."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minimanifold.analysis import pca

seeds = st.integers(0, 2**32 - 1)


def random_orthogonal(D, rng):
    Q, R = np.linalg.qr(rng.standard_normal((D, D)))
    return Q * np.sign(np.diag(R))


@settings(deadline=None, max_examples=30)
@given(seeds, st.integers(3, 12), st.integers(2, 30))
def test_gram_equals_covariance_spectrum(seed, n, D):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, D)) * rng.uniform(0.1, 3, D)
    Xc = X - X.mean(0)
    cov = np.sort(np.clip(np.linalg.eigvalsh(Xc.T @ Xc / n), 0, None))[::-1]   # eq 1, D x D
    lam = pca.pca_spectrum(X)
    m = min(n, D)
    np.testing.assert_allclose(lam[:m], cov[:m], rtol=1e-9, atol=1e-10 * cov[0])
    assert np.all(lam[m:] <= 1e-10 * cov[0]) and np.all(cov[m:] <= 1e-10 * cov[0])


@settings(deadline=None, max_examples=25)
@given(seeds, st.integers(3, 10), st.integers(4, 20))
def test_spectrum_invariant_to_rotation_and_translation(seed, n, D):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, D))
    lam = pca.pca_spectrum(X)
    Q = random_orthogonal(D, rng)
    np.testing.assert_allclose(pca.pca_spectrum(X @ Q), lam, rtol=1e-8, atol=1e-10 * lam[0])
    np.testing.assert_allclose(pca.pca_spectrum(X + rng.standard_normal(D) * 10), lam,
                               rtol=1e-8, atol=1e-9 * lam[0])


@settings(deadline=None, max_examples=25)
@given(seeds, st.integers(1, 6), st.integers(0, 3))
def test_k_equal_variance_directions_give_rank_k(seed, k, extra_dims):
    rng = np.random.default_rng(seed)
    D = k + extra_dims + 3
    Q = random_orthogonal(D, rng)[:, :k]
    # 2k snapshots at +-e_i along k orthonormal directions: equal variance in each
    coords = np.concatenate([np.eye(k), -np.eye(k)]) * 3.0
    lam = pca.pca_spectrum(coords @ Q.T + rng.standard_normal(D))
    s = pca.summarize(lam)
    assert s["r90"] == k and s["r95"] == k
    assert abs(s["participation_ratio"] - k) < 1e-8 and abs(s["entropy_rank"] - k) < 1e-8


def test_directions_are_orthonormal_eigenvectors_of_the_covariance():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8, 40)) @ np.diag(np.linspace(3, 0.1, 40))
    V = pca.pca_directions(X, 3)
    np.testing.assert_allclose(V.T @ V, np.eye(3), atol=1e-10)
    Xc = X - X.mean(0)
    cov = Xc.T @ Xc / len(X)
    lam = pca.pca_spectrum(X)[:3]
    np.testing.assert_allclose(cov @ V, V * lam, atol=1e-9)          # residual, not vectors


@settings(deadline=None, max_examples=20)
@given(seeds, st.integers(5, 60), st.integers(1, 4))
def test_principal_angles(seed, D, k):
    rng = np.random.default_rng(seed)
    k = min(k, D // 2)
    A = rng.standard_normal((D, k))
    np.testing.assert_allclose(pca.principal_angles(A, A), 0, atol=1e-6)
    np.testing.assert_allclose(pca.principal_angles(A, A @ rng.standard_normal((k, k))), 0, atol=1e-5)
    Q = random_orthogonal(D, rng)
    B = rng.standard_normal((D, k))
    np.testing.assert_allclose(pca.principal_angles(Q @ A, Q @ B), pca.principal_angles(A, B), atol=1e-7)


@settings(deadline=None, max_examples=10)
@given(seeds, st.floats(1e-3, 1e3))
def test_null_r90_does_not_depend_on_step_scale(seed, scale):
    rng = np.random.default_rng(seed)
    norms = rng.uniform(0.5, 2.0, 20)
    a = pca.random_walk_null(norms, 500, n_draws=3, seed=seed)
    b = pca.random_walk_null(norms * scale, 500, n_draws=3, seed=seed)
    assert a["matched"]["draws"] == b["matched"]["draws"]
    assert a["constant"]["draws"] == b["constant"]["draws"]


def test_random_walk_is_low_dimensional():
    """The reason every r90 stands beside a null: a 30-snapshot random walk in 10^4
    dimensions has r90 = 6, not ~27 (the closed form's answer for n >~ 20, test_audit;
    every draw of the Monte-Carlo null lands on it)."""
    null = pca.random_walk_null(np.ones(29), 10_000, n_draws=5, seed=1)
    assert null["constant"]["draws"] == [6] * 5 == [pca.rank_at(pca.expected_walk_spectrum(np.ones(29)), 0.9)] * 5


def test_walk_step_norms_are_matched():
    norms = np.array([1.0, 2.0, 0.5])
    W = pca.random_walk(norms, 1000, np.random.default_rng(0))
    np.testing.assert_allclose(pca.step_norms(W), norms, rtol=1e-12)


def test_expanding_window_and_chunked_gram():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((20, 3)) @ rng.standard_normal((3, pca.CHUNK + 100))   # two blocks
    assert pca.expanding_window(X, [0.1, 1.0]) == [1, 3]
    Xc = X - X.mean(0)
    np.testing.assert_allclose(pca.gram(X.astype(np.float32)), Xc @ Xc.T / 20, rtol=1e-5)


def test_bench_command_runs(capsys):
    """The benchmark command prints its table (timings are reported, never asserted)."""
    from minimanifold import bench
    rows = bench.run(layers=(1,), reps=1, threads=(1,), peers=())
    assert {r["dtype"] for r in rows} == {"float32", "float64"} and all(r["numpy_ms"] > 0 for r in rows)
    assert "| 1 | float32 | 1 | NumPy (ours) |" in bench.format_table(rows)
    assert bench.pca_seconds(n=5, D=1000, reps=1) > 0


def test_random_walk_null_reports_its_participation_ratio():
    """The centred PCA of a long random walk in high dimension explains 6 / (pi k)^2 of the
    variance in its k-th direction (Antognini & Sohl-Dickstein, 2018), so its participation
    ratio is (pi^2/6)^2 / (pi^4/90) = 2.5: low, like the r90 of a walk. The null carries
    it beside r90."""
    from minimanifold.analysis.pca import random_walk_null
    null = random_walk_null(np.ones(300), 4000, n_draws=4, seed=1)
    for kind in ("matched", "constant"):
        assert abs(null[kind]["pr_mean"] - 2.5) < 0.1, null[kind]
        assert null[kind]["pr_sd"] >= 0


# ---- the shuffled-increments null (issue 24): the run's own steps, no temporal order ----

def test_shuffled_increments_keep_every_step_and_both_ends():
    rng = np.random.default_rng(0)
    X = np.cumsum(rng.standard_normal((12, 50)), axis=0)
    Y = pca.shuffled_increments(X, np.random.default_rng(1))
    assert Y.shape == X.shape
    np.testing.assert_array_equal(Y[0], X[0])
    np.testing.assert_allclose(Y[-1], X[-1], rtol=1e-12, atol=1e-12)        # the same sum of steps
    got, want = np.diff(Y, axis=0), np.diff(X, axis=0)
    match = [int(np.argmin(np.linalg.norm(want - g, axis=1))) for g in got]
    assert sorted(match) == list(range(11))                                  # a permutation of them
    np.testing.assert_allclose(got, want[match], atol=1e-12)
    assert match != list(range(11))                                          # and not the identity


def test_a_straight_line_stays_one_dimensional_however_its_steps_are_ordered():
    """Known answer: increments all along one direction (any lengths) sum to points on a line
    in any order, so r90 = 1 and the participation ratio is 1."""
    u = np.random.default_rng(2).standard_normal(300)
    X = np.cumsum(np.outer(np.r_[0, np.geomspace(1, 1e-3, 29)], u), axis=0)
    null = pca.shuffled_null(X, n_draws=4, seed=3)
    assert null["draws"] == [1, 1, 1, 1] and null["pr_mean"] == pytest.approx(1.0)


def test_shuffled_increments_stay_in_the_span_of_the_steps_and_leave_a_walk_a_walk():
    """Known answers: the increments of a curve in a plane sum, in any order, to points of
    that plane (rank 2: r90 <= 2, participation ratio <= 2); an isotropic walk's steps are
    exchangeable, so shuffling them leaves its r90 at the walk's 6 (5-7 for one draw)."""
    t = np.linspace(0, np.pi / 2, 60)
    X = np.stack([np.cos(t), np.sin(t)], axis=1) @ np.random.default_rng(4).standard_normal((2, 200))
    null = pca.shuffled_null(X, n_draws=3, seed=5)
    assert max(null["draws"]) <= 2 and null["pr_mean"] <= 2
    assert np.linalg.matrix_rank(pca.shuffled_increments(X, np.random.default_rng(0)) - X[0], tol=1e-9) == 2
    walk = pca.random_walk(np.ones(99), 5000, np.random.default_rng(6))
    null = pca.shuffled_null(walk, n_draws=3, seed=7)
    assert all(5 <= r <= 7 for r in null["draws"])
    assert null["pr_mean"] == pytest.approx(2.5, abs=0.1)                    # a walk's participation ratio
