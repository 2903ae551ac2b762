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


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3), min_size=1, max_size=8))
def test_error_bars_stay_inside_an_accuracys_range(rows):
    """The authors' top-k figure drew mean + sd above an accuracy of 1; sd_within cuts each bar
    to [0, 1] and never moves the mean."""
    from minimanifold.report.plotting import sd_within
    vals = np.array(rows)
    mean, err = vals.mean(0), sd_within(vals)
    assert err.shape == (2, 3) and (err >= -1e-12).all()
    assert (mean - err[0] >= -1e-12).all() and (mean + err[1] <= 1 + 1e-12).all()
    inside = (mean - vals.std(0) >= 0) & (mean + vals.std(0) <= 1)       # untouched where it fits
    assert np.allclose(err[:, inside], vals.std(0)[inside])


def test_step_ticks_shorten_five_digit_steps_only():
    from minimanifold.report.plotting import plt, step_ticks
    fig, (a, b) = plt.subplots(1, 2)
    a.plot([0, 20000], [0, 1])
    b.plot([0, 2000], [0, 1])
    for ax in (a, b):
        step_ticks(ax)
    fig.canvas.draw()
    def shown(ax):
        lo, hi = ax.get_xlim()
        return [t.get_text() for t in ax.get_xticklabels() if t.get_text() and lo <= t.get_position()[0] <= hi]
    long, short = shown(a), shown(b)
    plt.close(fig)
    assert "0" in long and "10k" in long and "20k" in long and all(len(s) <= 4 for s in long)
    assert "1000" in short and not any(s.endswith("k") for s in short)
