import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minimanifold import forward
from minimanifold.analysis.patterns import topk_accuracy, topk_mass, truncate_topk
from minimanifold.model.attention import causal_softmax_forward
from minimanifold.trajectories.task import probe_set
from tests.conftest import small_setup


@settings(deadline=None, max_examples=30)
@given(st.integers(0, 2**32 - 1), st.integers(1, 8))
def test_truncation(seed, k):
    rng = np.random.default_rng(seed)
    p, _ = causal_softmax_forward(rng.standard_normal((2, 3, 8, 8)) * 3)
    cut = truncate_topk(p, k)
    np.testing.assert_allclose(cut.sum(-1), 1.0, rtol=1e-12)
    nz = (cut > 0).sum(-1)
    assert np.all(nz == np.minimum(k, (p > 0).sum(-1)))                # causal zeros stay zero
    kept = cut > 0                                                     # the kept are the largest
    assert np.all(p[kept].reshape(-1) >= 0)
    lowest_kept = np.where(kept, p, np.inf).min(-1)
    highest_cut = np.where(~kept, p, -np.inf).max(-1)
    assert np.all(lowest_kept >= highest_cut)
    np.testing.assert_allclose(cut, np.where(kept, p, 0) / topk_mass(p, k)[..., None], rtol=1e-12)
    assert np.all(topk_mass(p, 8) > 1 - 1e-12)


def test_topk_accuracy_at_full_k_equals_plain_forward():
    cfg, params, tokens, targets = small_setup(seed=2)
    from minimanifold import TaskConfig
    task = TaskConfig(T=8, C=5, n_markers=2, d_vocab=16)
    probe = probe_set(task, [1, 2], 32, 0)
    full = topk_accuracy(params, probe, cfg, [8, 1])
    for m, b in probe.items():
        logits, _ = forward(params, b.tokens, cfg)
        assert full[m][0] == float((logits.argmax(-1) == b.targets).mean())


def test_entropy_and_topk_figures_draw_every_layer_of_a_deep_model(tmp_path, monkeypatch):
    """Figure 2 draws one entropy panel per layer, every m in each (coloured by m; a shared
    line style once dropped layers beyond the fifth), titled by its layer, with one legend
    entry per m; then the settling panel (the runs' and the walk's angles, the 30° line).
    The top-k figure styles curves by layer: one legend entry per m and per layer."""
    import minimanifold.experiments.bubbling as Bub
    from minimanifold.analysis.pca import FRACTIONS
    from minimanifold.trajectories.rundir import ALL, MATS
    L, ms, n, ks = 7, ["1", "2"], 6, [4, 3, 2, 1]
    rng = np.random.default_rng(0)
    bubbles = [{"steps": list(range(0, 100 * n, 100)), "T": 16, "ks": ks,
                "entropy": {m: rng.random((n, L)).tolist() for m in ms},
                "topk_acc": {m: rng.random(len(ks)).tolist() for m in ms},
                "topk_mass": {m: rng.random((L, len(ks))).tolist() for m in ms}} for _ in range(2)]
    angles = list(np.linspace(80, 0, len(FRACTIONS)))
    geoms = [{ALL: {"n": n, "windows": list(range(len(FRACTIONS))), "angle_windows": angles,
                    "null_angle_windows": angles[::-1]},
              **{f"blocks.{l}.attn.{W}": {"windows": list(range(len(FRACTIONS)))} for l in range(L) for W in MATS}}
             for _ in range(2)]
    figs = []
    monkeypatch.setattr(Bub, "save_figure", lambda fig, path: (figs.append(fig), path)[1])
    Bub.fig2_entropy_and_rank(bubbles, geoms, "c", str(tmp_path / "a.png"))
    Bub.fig_topk(bubbles, "c", str(tmp_path / "b.png"))
    fig2, topk = figs
    for l in range(L):
        ax = fig2.axes[l]
        assert ax.get_title() == f"layer {l}"
        assert len([ln for ln in ax.get_lines() if len(ln.get_xdata()) == n]) == len(ms)
    labels = [t.get_text() for t in fig2.axes[L - 1].get_legend().get_texts()]
    assert labels == [f"m = {m}" for m in ms] + ["uniform attention (ln T)"]
    settle = fig2.axes[L]
    assert [ln.get_ydata()[0] for ln in settle.get_lines() if len(ln.get_xdata()) == 2] == [30.0]   # the 30° line
    assert len([ln for ln in settle.get_lines() if len(ln.get_xdata()) == len(FRACTIONS)]) == 2 + 2   # seeds, mean, walk
    ax = topk.axes[1]
    curves = [ln for ln in ax.get_lines() if len(ln.get_xdata()) > 2]
    assert len(curves) == len(ms) * L
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [f"m = {m}" for m in ms] + [f"layer {l}" for l in range(L)]

@pytest.mark.parametrize("L", [2, 3, 5])
def test_figure_2s_bottom_panels_keep_their_labels_apart(tmp_path, monkeypatch, L):
    """The expanding-window panel's two-line y label ran into the settling panel's axes at
    L = 3 (the paper preset): no axes' y label overlaps another axes; and the entropy
    panels' key sits beside them, not over any panel."""
    import minimanifold.experiments.bubbling as Bub
    from minimanifold.analysis.pca import FRACTIONS
    from minimanifold.trajectories.rundir import ALL, MATS
    n, ks = 6, [2, 1]
    bubbles = [{"steps": list(range(0, 100 * n, 100)), "T": 16, "ks": ks,
                "entropy": {"1": np.ones((n, L)).tolist()}}]
    angles = list(np.linspace(80, 0, len(FRACTIONS)))
    r90 = list(np.linspace(2.0, 3.8, len(FRACTIONS)))             # tick labels as wide as a real run's (0.0 … 3.5)
    geoms = [{ALL: {"n": n, "windows": r90, "angle_windows": angles, "null_angle_windows": angles},
              **{f"blocks.{l}.attn.{W}": {"windows": r90} for l in range(L) for W in MATS}}]
    figs = []
    monkeypatch.setattr(Bub, "save_figure", lambda fig, path: (figs.append(fig), path)[1])
    Bub.fig2_entropy_and_rank(bubbles, geoms, "c", str(tmp_path / "a.png"))
    fig = figs[0]
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    settle, windows = fig.axes[L], fig.axes[L + 1]
    assert not windows.yaxis.label.get_window_extent(r).overlaps(settle.get_window_extent(r))
    # the key sat inside the last layer's panel, over the uniform-attention line and the curves
    key = fig.axes[L - 1].get_legend().get_window_extent(r)
    assert not any(key.overlaps(ax.get_window_extent(r)) for ax in fig.axes), key
    Bub.plt.close(fig)
