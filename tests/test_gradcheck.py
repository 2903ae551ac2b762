"""Finite-difference checks of every op and every parameter tensor, in float64.

Norm-wise bound: the largest error measured on these models was 2.4e-9 (h=1e-5,
centred differences); the bar below leaves a ~10x margin and still fails on any real
mistake (a dropped term gives errors of order 1e-2..1).
"""
import numpy as np
import pytest

from minimanifold.model import attention as A, backward, flatten, forward, layers, loss_and_grads, unflatten
from minimanifold.tools.gradcheck import max_elementwise_rel_error, numerical_grad, rel_error
from tests.conftest import small_setup

BOUND = 2e-8
rng0 = np.random.default_rng


def assert_gradient(g, num, scale, zero=False, what=""):
    """Norm-wise relative error below BOUND; or, for a gradient known to be exactly zero
    (``zero``: b_K, since q.b_K adds the same number to a whole softmax row), both the
    analytic and the numerical one zero up to rounding, relative to ``scale`` (the
    largest gradient entry of the check): a relative error of two roundings means nothing."""
    if zero:
        assert np.abs(g).max() <= 1e-12 * scale, f"{what}: analytic gradient {np.abs(g).max():.1e} is not 0"
        assert np.abs(num).max() <= 1e-8 * scale, f"{what}: numerical gradient {np.abs(num).max():.1e} is not 0"
        return
    err = rel_error(g, num)
    assert err < BOUND, f"{what}: rel error {err:.2e} (max elementwise {max_elementwise_rel_error(g, num):.2e})"


def check_op(fwd, bwd, inputs, seed=0, out_index=0, zero=()):
    """Test loss sum(out * dout) with a random dout (never ones: sum(softmax) is flat).
    ``zero``: indices of the inputs whose gradient is known to be exactly zero."""
    rng = rng0(seed)
    out, cache = fwd(*inputs)
    dout = rng.standard_normal(out.shape)
    grads = bwd(dout.copy(), cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    scale = max(np.abs(g).max() for g in grads if g is not None)
    for i, (x, g) in enumerate(zip(inputs, grads)):
        if g is None:
            continue
        num = numerical_grad(lambda: float((fwd(*inputs)[0] * dout).sum()), x).reshape(x.shape)
        assert_gradient(g, num, scale, zero=i in zero, what=f"input {i}")


def test_layernorm():
    r = rng0(1)
    check_op(layers.layernorm_forward, layers.layernorm_backward,
             [r.standard_normal((3, 4, 7)), r.standard_normal(7), r.standard_normal(7)])


def test_causal_softmax():
    r = rng0(2)
    check_op(lambda s: A.causal_softmax_forward(s.copy()), A.causal_softmax_backward,
             [r.standard_normal((2, 3, 5, 5))])


def test_causal_softmax_last_rows():
    r = rng0(3)
    check_op(lambda s: A.causal_softmax_forward(s.copy()), A.causal_softmax_backward,
             [r.standard_normal((2, 3, 2, 6))])


@pytest.mark.parametrize("biased", [False, True])
@pytest.mark.parametrize("n_query", [None, 1, 3])
def test_attention(n_query, biased):
    """With ``biased``, random nonzero b_Q, b_K, b_V [h,e] and b_O [d] are checked too
    (check_op pairs the 9 inputs with the 9 gradients the backward returns)."""
    r = rng0(4)
    b, T, d, h, e = 2, 5, 6, 3, 4
    inputs = [r.standard_normal((b, T, d)), r.standard_normal((h, d, e)), r.standard_normal((h, d, e)),
              r.standard_normal((h, d, e)), r.standard_normal((h, e, d))]
    if biased:
        inputs += [r.standard_normal((h, e)), r.standard_normal((h, e)), r.standard_normal((h, e)),
                   r.standard_normal(d)]
    assert len(A.attention_backward(rng0(0).standard_normal((b, n_query or T, d)),
                                    A.attention_forward(*inputs, n_query=n_query)[1])) == len(inputs)
    check_op(lambda *a: A.attention_forward(*a, n_query=n_query), A.attention_backward, inputs,
             zero=(6,))                                               # b_K


def test_heads_empty_holds_a_product_laid_out_heads_side_by_side():
    """A product written into heads_empty equals x @ y exactly, and its memory is [b,t,h,e]:
    what makes heads_backward's reshape to [n, h*e] a view, the speed it is kept for."""
    from minimanifold.model.backend import matmul_into
    r = rng0(11)
    x, y = r.standard_normal((2, 3, 5, 4)), r.standard_normal((2, 3, 4, 6))
    out = matmul_into(x, y, A.heads_empty(x, 2, 3, 5, 6))
    assert out.shape == (2, 3, 5, 6) and np.array_equal(out, x @ y)
    assert out.transpose(0, 2, 1, 3).flags.c_contiguous
    assert np.shares_memory(out.transpose(0, 2, 1, 3).reshape(10, 18), out)


def test_gelu_and_mlp():
    r = rng0(5)
    check_op(layers.gelu_forward, layers.gelu_backward, [r.standard_normal((4, 6)) * 2])
    check_op(layers.mlp_forward, layers.mlp_backward,
             [r.standard_normal((2, 3, 5)), r.standard_normal((5, 7)), r.standard_normal(7),
              r.standard_normal((7, 5)), r.standard_normal(5)])


def test_embed_repeated_tokens():
    r = rng0(6)
    tokens = np.array([[1, 1, 2, 1], [0, 2, 2, 3]])      # repeats must accumulate
    W_E, W_pos = r.standard_normal((5, 3)), r.standard_normal((6, 3))
    check_op(lambda a, b: layers.embed_forward(tokens, a, b), layers.embed_backward, [W_E, W_pos])


def test_unembed_cross_entropy():
    r = rng0(7)
    x, W_U, b_U = r.standard_normal((4, 6)), r.standard_normal((6, 5)), r.standard_normal(5)
    targets = np.array([0, 4, 2, 2])

    def loss():
        return float(layers.cross_entropy_forward(layers.unembed_forward(x, W_U, b_U)[0], targets)[0])
    logits, unembed = layers.unembed_forward(x, W_U, b_U)
    _, ce = layers.cross_entropy_forward(logits, targets)
    grads = layers.unembed_backward(layers.cross_entropy_backward(1.0, ce), unembed)
    for arr, g in zip((x, W_U, b_U), grads):
        assert rel_error(g, numerical_grad(loss, arr).reshape(arr.shape)) < BOUND
    dloss = 2.5                                          # dL/dloss scales dlogits
    np.testing.assert_allclose(layers.cross_entropy_backward(dloss, ce), dloss * layers.cross_entropy_backward(1.0, ce),
                               rtol=1e-15)


@pytest.mark.parametrize("attn_bias", [False, True])
@pytest.mark.parametrize("attn_only", [True, False])
def test_every_parameter_tensor(attn_only, attn_bias):
    """Every tensor, the nonzero attention biases of ``attn_bias`` included."""
    cfg, params, tokens, targets = small_setup(attn_only=attn_only, attn_bias=attn_bias)
    assert attn_bias == ("blocks.1.attn.b_O" in params)
    _, grads = loss_and_grads(params, tokens, targets, cfg)
    assert list(grads) == list(params)
    assert all(grads[k].shape == params[k].shape for k in params)
    sel = rng0(8)
    worst = 0.0
    scale = max(np.abs(g).max() for g in grads.values())
    for name, p in params.items():
        idx = sel.choice(p.size, size=min(p.size, 40), replace=False)
        num = numerical_grad(lambda: float(loss_and_grads(params, tokens, targets, cfg)[0]), p, idx)
        assert_gradient(grads[name].reshape(-1)[idx], num, scale, zero=name.endswith("attn.b_K"), what=name)
        if not name.endswith("attn.b_K"):
            worst = max(worst, rel_error(grads[name].reshape(-1)[idx], num))
    assert worst > 0.0          # the check compared real numbers
    if attn_bias:               # the biases' gradients are real numbers, not zeros
        assert min(np.abs(grads[f"blocks.{l}.attn.{n}"]).max() for l in range(cfg.n_layers)
                   for n in ("b_Q", "b_V", "b_O")) > 1e-3 * scale


@pytest.mark.parametrize("attn_bias", [False, True])
@pytest.mark.parametrize("attn_only", [True, False])
def test_directional_derivative_of_theta(attn_only, attn_bias):
    cfg, params, tokens, targets = small_setup(attn_only=attn_only, seed=3, attn_bias=attn_bias)
    shapes = {k: v.shape for k, v in params.items()}
    theta = flatten(params)
    _, grads = loss_and_grads(params, tokens, targets, cfg)
    u = rng0(9).standard_normal(theta.shape)
    u /= np.linalg.norm(u)
    h = 1e-5

    def f(t):
        return float(loss_and_grads(unflatten(t, shapes), tokens, targets, cfg)[0])
    numeric = (f(theta + h * u) - f(theta - h * u)) / (2 * h)
    analytic = float(flatten(grads) @ u)
    assert abs(numeric - analytic) / (abs(numeric) + abs(analytic)) < BOUND


@pytest.mark.parametrize("attn_bias", [False, True])
@pytest.mark.parametrize("attn_only", [True, False])
def test_last_position_shortcut_is_exact(attn_only, attn_bias):
    """The default forward computes the last layer at the last position only; the
    all-positions forward must give the same logits and (through backward) the same grads."""
    cfg, params, tokens, targets = small_setup(attn_only=attn_only, seed=5, attn_bias=attn_bias)
    short, cache_s = forward(params, tokens, cfg)
    full, cache_f = forward(params, tokens, cfg, all_positions=True)
    np.testing.assert_allclose(short, full, rtol=1e-12, atol=1e-12)
    last = f"blocks.{cfg.n_layers - 1}."
    assert cache_s.hooks[last + "attn.hook_pattern"].shape[2] == 1
    assert cache_f.hooks[last + "attn.hook_pattern"].shape[2] == tokens.shape[1]
    np.testing.assert_allclose(cache_s.hooks[last + "attn.hook_pattern"][:, :, -1],
                               cache_f.hooks[last + "attn.hook_pattern"][:, :, -1], rtol=1e-12)
    dlogits = rng0(10).standard_normal(short.shape)
    gs, gf = backward(dlogits, cache_s), backward(dlogits, cache_f)
    for k in params:
        np.testing.assert_allclose(gs[k], gf[k], rtol=1e-10, atol=1e-13, err_msg=k)


def test_rel_error_fails_on_non_finite_gradients():
    g = np.array([1.0, 2.0])
    assert rel_error(g, g) == 0.0 and rel_error(np.zeros(2), np.zeros(2)) == 0.0
    for bad in (np.nan, np.inf):
        assert rel_error(np.array([bad, 2.0]), g) == np.inf
        assert rel_error(g, np.array([1.0, bad])) == np.inf
        assert max_elementwise_rel_error(np.full(2, bad), np.full(2, bad)) == np.inf


def test_known_values_gelu_and_layernorm():
    """Constants changed consistently in a forward and its backward pass every gradient
    check; known answers catch them (TransformerLens gelu_new; LayerNorm eps 1e-5)."""
    out, cache = layers.gelu_forward(np.array([1.0, -2.0]))
    np.testing.assert_allclose(out, [0.8411919906082768, -0.04540230591222494], rtol=1e-13)
    np.testing.assert_allclose(layers.gelu_backward(np.array([1.0, 0.0]), cache)[0], 1.0829640838457826, rtol=1e-12)
    x = np.array([[0.0, 0.01]])                         # variance 2.5e-5: the eps term matters
    y, _ = layers.layernorm_forward(x, np.ones(2), np.zeros(2))
    np.testing.assert_allclose(y, [[-0.8451542547285165, 0.8451542547285165]], rtol=1e-12)
    y, _ = layers.layernorm_forward(np.array([[1.0, 2.0, 3.0, 6.0]]), np.array([2.0, 1.0, 1.0, 1.0]), np.full(4, 0.5))
    mean, var = 3.0, (4 + 1 + 0 + 9) / 4
    np.testing.assert_allclose(y, [[2 * (1 - mean) / np.sqrt(var + 1e-5) + 0.5, *((np.array([2.0, 3.0, 6.0]) - mean)
                                                                                 / np.sqrt(var + 1e-5) + 0.5)]], rtol=1e-12)
