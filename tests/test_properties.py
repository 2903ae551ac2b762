"""Hypothesis properties of the numerics: causal softmax and theta flatten/unflatten."""
import numpy as np
from hypothesis import given, settings, strategies as st

from minimanifold import ModelConfig, flatten, init_params, param_shapes, unflatten
from minimanifold.model.attention import causal_softmax_forward

seeds = st.integers(0, 2**32 - 1)


@settings(deadline=None, max_examples=50)
@given(seeds, st.integers(1, 6), st.integers(1, 9), st.floats(-50, 50))
def test_causal_softmax(seed, n_query_off, T, shift):
    rng = np.random.default_rng(seed)
    tq = max(1, T - n_query_off + 1)
    s = rng.standard_normal((2, 3, tq, T)) * 5
    p, _ = causal_softmax_forward(s.copy())
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-12)                # rows sum to one
    t_abs = np.arange(T - tq, T)[:, None]                                  # query positions
    future = np.arange(T)[None, :] > t_abs
    assert np.all(p[..., future] == 0.0)                                   # exact zeros
    assert np.all(p[..., ~future] > 0.0)
    p2, _ = causal_softmax_forward(s + shift)                              # shift invariance
    np.testing.assert_allclose(p2, p, rtol=1e-9, atol=1e-15)
    p3, _ = causal_softmax_forward(s + np.where(future, 1e3, 0.0))         # masked scores ignored
    np.testing.assert_allclose(p3, p, rtol=1e-12, atol=1e-15)


@settings(deadline=None, max_examples=25)
@given(seeds, st.integers(1, 3), st.integers(1, 3), st.booleans(), st.sampled_from([np.float32, np.float64]))
def test_flatten_round_trip(seed, n_layers, n_heads, attn_only, dtype):
    cfg = ModelConfig(d_vocab=11, d_vocab_out=3, n_ctx=7, d_model=6, n_heads=n_heads, d_head=2,
                      n_layers=n_layers, attn_only=attn_only, d_mlp=5)
    params = init_params(cfg, seed, dtype)
    shapes = param_shapes(cfg)
    theta = flatten(params)
    assert theta.shape == (sum(int(np.prod(s)) for s in shapes.values()),)
    assert theta.dtype == dtype
    back = unflatten(theta, shapes)
    assert list(back) == list(params)
    for k in params:
        assert back[k].shape == params[k].shape and np.array_equal(back[k], params[k])
    assert np.array_equal(flatten(back), theta)
