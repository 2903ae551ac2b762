"""Known answers for measurements whose single-point bugs a re-computation would miss
(issue 11 §4): the defect's eta normalisation, the collapse's settling point, centring in
FVU and in latent-factor correlations, and AdamW resuming with its optimizer state."""
import numpy as np
import pytest

from minimanifold.analysis import sae as S
from minimanifold.analysis.commutator import commutator
from minimanifold.analysis.pca import stabilization_fraction
from tests.conftest import small_setup, whole_and_resumed


def test_defect_is_second_order_normalised():
    """delta ~ eta^2 (H_B g_A - H_A g_B), so D = ||delta|| / (||eta g_A|| ||eta g_B||) tends to a
    constant as eta -> 0; without the eta^2 it would shrink 100x from 1e-3 to 1e-4."""
    cfg, params, tokens, targets = small_setup(seed=3)
    A, B = (tokens[:3], targets[:3]), (tokens[3:], targets[3:])
    d3, d4 = (commutator(params, A, B, eta, cfg).defect for eta in (1e-3, 1e-4))
    assert abs(d3 / d4 - 1) < 0.05 and d4 > 0


def test_settling_point_is_counted_from_the_start():
    ranks = [5, 4, 3, 3, 2, 3, 3, 3, 3, 3]          # final 3; stays 3 from the 6th window on
    assert stabilization_fraction(ranks) == 0.6
    assert stabilization_fraction([2] * 10) == 0.1 and stabilization_fraction([1] * 9 + [2]) == 1.0


def test_fvu_is_centred():
    """An SAE that outputs the data's mean explains none of its variance: FVU = 1, however
    far the mean is from 0 (uncentred, it would be ~0 here)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 6)) + 100.0
    sae = S.init_sae(6, 4, 0)
    sae.update(W_enc=np.zeros((6, 4)), b_enc=np.zeros(4), b_dec=x.mean(0))
    assert S.metrics(sae, x)["fvu"] == pytest.approx(1.0)


def test_correlations_are_centred():
    rng = np.random.default_rng(1)
    f = rng.standard_normal(300)
    h = np.stack([3 * f + 50.0, -f + 7.0, rng.standard_normal(300)], axis=1)    # offsets must not matter
    r, names = S.correlations(h, {"f": f, "const": np.ones(300)})
    np.testing.assert_allclose(r[:2, 0], 1.0, rtol=1e-12)
    assert r[2, 0] < 0.2 and (r[:, 1] == 0).all() and names == ["f", "const"]


def test_adamw_resumes_with_its_optimizer_state(tmp_path):
    """A run stopped after its step-10 checkpoint and resumed equals an uninterrupted one
    (Adam's moments and step count come back from the checkpoint)."""
    from minimanifold.trajectories.presets import SMOKE
    spec = SMOKE.specs(seeds=[0], steps=20, ckpt_every=10, optimizer="adamw", lr=3e-3)[0]
    a, b = whole_and_resumed(tmp_path, spec)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_attention_bias_gradients_have_their_known_answers():
    """Without torch, for zero and for random nonzero biases: (1) db_K = 0 (q.b_K shifts
    a whole softmax row); (2) db_V[h] = W_O[h] @ db_O (pattern rows sum to 1, so b_V[h]
    adds b_V[h] W_O[h] everywhere); (3) db_O is the derivative of the loss along a constant
    added to hook_resid_post (attention-only: the residual right after the attention), by
    central differences."""
    import dataclasses
    from minimanifold.model import forward, loss_and_grads
    from minimanifold.model.layers import cross_entropy_forward
    for spread in (0.0, 0.3):
        cfg, params, tokens, targets = small_setup(n_layers=2, seed=8, batch=7, attn_bias=True)
        params = {k: v * (spread / 0.3) if k.rsplit(".", 1)[1] in ("b_Q", "b_K", "b_V", "b_O") else v
                  for k, v in params.items()}
        _, g = loss_and_grads(params, tokens, targets, cfg)
        plain = {k for k in params if k.rsplit(".", 1)[1] not in ("b_Q", "b_K", "b_V", "b_O")}
        assert set(g) - plain == {f"blocks.{l}.attn.{n}" for l in range(2) for n in ("b_Q", "b_K", "b_V", "b_O")}
        assert set(loss_and_grads({k: params[k] for k in plain}, tokens, targets,
                                  dataclasses.replace(cfg, attn_bias=False))[1]) == plain
        rng = np.random.default_rng(0)
        for l in range(2):
            p = f"blocks.{l}.attn."
            scale = np.abs(g[p + "b_O"]).max()
            assert scale > 1e-4 and np.abs(g[p + "b_Q"]).max() > 1e-6
            assert np.abs(g[p + "b_K"]).max() < 1e-12 * max(1.0, scale)
            np.testing.assert_allclose(g[p + "b_V"], np.einsum("hed,d->he", params[p + "W_O"], g[p + "b_O"]),
                                       rtol=1e-10, atol=1e-14)
            u, eps = rng.normal(size=cfg.d_model), 1e-6

            def loss(t):
                hook = {f"blocks.{l}.hook_resid_post": lambda x: x + t * u}
                return float(cross_entropy_forward(forward(params, tokens, cfg, hooks=hook)[0], targets)[0])
            fd = (loss(eps) - loss(-eps)) / (2 * eps)
            assert abs(fd - u @ g[p + "b_O"]) < 1e-7 * max(1.0, abs(fd))
