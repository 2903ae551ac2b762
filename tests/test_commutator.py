"""Commutators (eq 3–5): antisymmetry, zero on equal batches, the difference-of-gradients
form equals the direct one, and the second-order limit delta / eta^2 -> H_B g_A - H_A g_B."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minimanifold.analysis.commutator import commutator, commutator_direct, second_order
from minimanifold.tools.gradcheck import rel_error
from minimanifold.model import flatten
from minimanifold import make_batch, TaskConfig
from tests.conftest import small_setup

TASK = TaskConfig(T=8, C=5, n_markers=2, d_vocab=16)


def two_batches(seed, b=6):
    rng = np.random.default_rng(seed)
    A, B = make_batch(rng, TASK, [1, 2], b), make_batch(rng, TASK, [1, 2], b)
    return (A.tokens, A.targets), (B.tokens, B.targets)


@settings(deadline=None, max_examples=15)
@given(st.integers(0, 2**32 - 1), st.floats(1e-3, 0.5))
def test_antisymmetry_and_zero_on_equal_batches(seed, lr):
    cfg, params, _, _ = small_setup(seed=seed % 1000)
    A, B = two_batches(seed)
    ab, ba = commutator(params, A, B, lr, cfg), commutator(params, B, A, lr, cfg)
    np.testing.assert_allclose(flatten(ab.delta), -flatten(ba.delta), rtol=1e-12, atol=1e-18)
    assert abs(ab.defect - ba.defect) <= 1e-12 * ab.defect
    aa = commutator(params, A, A, lr, cfg)
    assert aa.norm == 0.0 and aa.cosine > 1 - 1e-12


def test_difference_form_equals_direct_form():
    cfg, params, _, _ = small_setup(seed=4)
    A, B = two_batches(1)
    for lr in (0.3, 0.01):
        fast = flatten(commutator(params, A, B, lr, cfg).delta)
        direct = flatten(commutator_direct(params, A, B, lr, cfg))
        assert rel_error(fast, direct) < 1e-8 * (0.3 / lr) ** 2     # direct form cancels digits


def test_second_order_limit():
    """||delta/eta^2 - (H_B g_A - H_A g_B)|| / ||.|| shrinks linearly with eta."""
    cfg, params, _, _ = small_setup(seed=7, spread=0.2)
    A, B = two_batches(3)
    target = flatten(second_order(params, A, B, cfg))
    errs = []
    for lr in (1e-2, 1e-3, 1e-4):        # measured: 0.23, 0.024, 0.0024
        d = flatten(commutator(params, A, B, lr, cfg).delta) / lr ** 2
        errs.append(np.linalg.norm(d - target) / np.linalg.norm(target))
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-2
    for a, b in zip(errs, errs[1:]):
        assert 5 < a / b < 20                                         # O(eta) convergence


def test_basis_orthonormal_inside_attention_blocks():
    from minimanifold.analysis import execution as E
    from minimanifold.model import attention_param_names
    cfg, params, _, _ = small_setup(seed=1)
    rng = np.random.default_rng(0)
    snaps = {n: rng.standard_normal((6, params[n].size)) for n in attention_param_names(cfg)}
    basis = E.execution_basis(snaps, cfg, k=3)
    M = E.embed(basis, cfg)
    assert M.shape == (E.n_params(cfg), 3 * 4 * cfg.n_layers)
    np.testing.assert_allclose(M.T @ M, np.eye(M.shape[1]), atol=1e-10)
    off = E.offsets(cfg)
    inside = np.zeros(M.shape[0], bool)
    for n in attention_param_names(cfg):
        inside[off[n][0]:off[n][1]] = True
    assert np.all(M[~inside] == 0)
    v = rng.standard_normal(M.shape[0])
    assert abs(E.projected_norm(basis, v, cfg) - np.linalg.norm(M.T @ v)) < 1e-10
    assert np.isclose(E.rho(basis, M[:, 2] * 5.0, cfg), 1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_baselines_match_their_expected_values(seed):
    """The project's baselines(): a random K-subspace of all P parameters captures
    sqrt(K/P) of a vector; one of k directions inside each attention matrix captures, in
    expectation of rho^2, sum_m (k / D_m) ||v_m||^2 / ||v||^2. Seeded; the bounds are 5
    standard deviations of the mean over 40 bases, so a correct baseline never fails."""
    from minimanifold.analysis import execution as E
    from minimanifold.model import attention_param_names
    cfg, params, _, _ = small_setup(seed=1)
    rng = np.random.default_rng(seed)
    P, k, names = E.n_params(cfg), 2, attention_param_names(cfg)
    K = k * len(names)
    off = E.offsets(cfg)
    v = rng.standard_normal(P) * np.linspace(0.2, 3.0, P)        # uneven across blocks
    blocks = [E.random_block_basis(cfg, k, rng) for _ in range(40)]
    fulls = [E.random_full_basis(P, K, rng) for _ in range(40)]
    b = E.baselines(v, cfg, k, blocks, fulls)
    assert b["analytic"] == np.sqrt(K / P)
    assert abs(b["full"] / np.sqrt(K / P) - 1) < 5 / np.sqrt(2 * K * 40) + 0.02
    rho2 = [E.projected_norm(B, v, cfg) ** 2 / (v @ v) for B in blocks]
    expected = sum(k / (off[n][1] - off[n][0]) * float(v[off[n][0]:off[n][1]] @ v[off[n][0]:off[n][1]])
                   for n in names) / float(v @ v)
    assert abs(np.mean(rho2) / expected - 1) < 5 * np.std(rho2) / expected / np.sqrt(40) + 0.02
    assert all(B[n].shape == (off[n][1] - off[n][0], k) for B in blocks[:1] for n in names)


def _snapshots(rng, n, D, rank, scale, dtype):
    """n snapshots of dimension D whose centred span has at most ``rank`` directions (in
    float64; a float32 cast adds rounding in every coordinate), steps tiny to large."""
    basis = rng.standard_normal((rank, D)) if rank else np.zeros((1, D))
    coef = rng.standard_normal((n, max(rank, 1))) * scale
    return (rng.standard_normal(D) + coef @ basis).astype(dtype)


@settings(deadline=None, max_examples=60, derandomize=True)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.integers(1, 5), st.integers(0, 4),
       st.sampled_from([1e-6, 1e-2, 1.0, 100.0]), st.sampled_from([np.float32, np.float64]))
def test_rho_is_a_ratio_for_every_basis_the_code_builds(seed, n, k, rank, scale, dtype):
    """rho = ||P v|| / ||v|| lies in [0, 1] for the execution basis from any window of a
    trajectory (shorter than k, rank-deficient, constant), for the random baselines, and
    the basis never has more columns than the window's rank, each of unit length."""
    from minimanifold.analysis import execution as E
    from minimanifold.model import attention_param_names
    cfg, params, _, _ = small_setup(seed=1)
    rng = np.random.default_rng(seed)
    names = attention_param_names(cfg)
    snaps = {nm: _snapshots(rng, n, params[nm].size, rank, scale, dtype) for nm in names}
    basis = E.execution_basis(snaps, cfg, k)
    for nm, V in basis.items():
        assert V.shape[1] <= min(k, n - 1, rank if dtype == np.float64 else k)
        np.testing.assert_allclose(V.T @ V, np.eye(V.shape[1]), atol=1e-6)
    P = E.n_params(cfg)
    block = [E.random_block_basis(cfg, k, rng)]
    full = [E.random_full_basis(P, k * len(names), rng)]
    for v in (rng.standard_normal(P), E.embed(basis, cfg).sum(1) if sum(V.shape[1] for V in basis.values())
              else rng.standard_normal(P)):
        r = E.rho(basis, v, cfg)
        assert 0.0 <= r <= 1.0 + 1e-9, r
        for key, val in E.baselines(v, cfg, k, block, full).items():
            assert 0.0 <= val <= 1.0 + 1e-9, (key, val)


def test_svd_basis_is_the_matrix_own_top_directions():
    """vec(u_i v_i^T) are orthonormal, in W's own layout: projecting W onto its top-k gives
    the rank-k truncation of the map it computes, whose norm is sqrt(sum of s_i^2)."""
    from minimanifold.analysis import execution as E
    rng = np.random.default_rng(0)
    for name, shape in (("blocks.0.attn.W_Q", (3, 8, 4)), ("blocks.0.attn.W_O", (3, 4, 8))):
        W = rng.standard_normal(shape)
        s = np.linalg.svd(E.matrix_view(name, W), compute_uv=False)
        for k in (1, 3, 12):
            V = E.svd_basis(name, W, k)
            kk = min(k, len(s))
            assert V.shape == (W.size, kk)
            np.testing.assert_allclose(V.T @ V, np.eye(kk), atol=1e-12)
            assert abs(np.linalg.norm(V.T @ W.ravel()) - np.sqrt(np.sum(s[:kk] ** 2))) < 1e-10
        top = (V[:, :1] @ (V[:, :1].T @ W.ravel())).reshape(shape)       # rank 1 as a map
        assert np.linalg.matrix_rank(E.matrix_view(name, top), tol=1e-9) == 1
    assert E.svd_basis("blocks.0.attn.W_V", np.zeros((2, 3, 4)), 3).shape == (24, 0)


def test_block_random_rho_is_the_average_of_random_block_bases():
    """The analytic block baseline equals the Monte Carlo mean of ||P v||^2 over random
    block bases (to sampling error), and lies in [0, 1]."""
    from minimanifold import ModelConfig
    from minimanifold.analysis import execution as E
    cfg = ModelConfig(d_model=16, n_heads=2, d_head=8, n_layers=1, d_vocab=10, d_vocab_out=4, n_ctx=8)
    rng = np.random.default_rng(1)
    v = rng.standard_normal(E.n_params(cfg)) * np.linspace(0.1, 3, E.n_params(cfg))
    for k in (1, 5):
        mc = np.mean([E.projected_norm(E.random_block_basis(cfg, k, rng), v, cfg) ** 2 for _ in range(400)])
        an = E.block_random_rho(v, cfg, k)
        assert 0 <= an <= 1
        assert abs(an ** 2 / (mc / np.sum(v ** 2)) - 1) < 0.08
