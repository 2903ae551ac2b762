"""Figures drawn over the data they show: a legend that covers curves hides what the figure
is for (fig_curriculum's legend hid the curriculum runs' m=1 curve near 0.2)."""
import json

import numpy as np

from minimanifold.experiments import variants as V


def _run(tmp_path, name, final):
    """A run directory whose metrics.json holds accuracy curves ending at ``final`` per m."""
    d = tmp_path / name
    d.mkdir()
    steps = np.arange(0, 2001, 100)
    hist = [{"step": int(s), "acc": {str(m): float(0.1 + (f - 0.1) * s / 2000) for m, f in final.items()}}
            for s in steps]
    (d / "metrics.json").write_text(json.dumps(hist))
    return {"dir": str(d)}


def test_compare_legend_lies_outside_the_accuracy_axes(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(V, "save_figure", lambda fig, path: drawn.append(fig) or str(path))
    # curves end at every height, the lower right corner included
    runs = {"mixed": [_run(tmp_path, "a", {1: 1.0, 2: 0.6})],
            "curriculum": [_run(tmp_path, "b", {1: 0.15, 2: 1.0})]}
    summ = {k: {"r90": [2.0, 2.2], "null": [3.0, 3.1]} for k in runs}
    V.fig_compare(summ, runs, "Curriculum vs mixed", "caption", tmp_path / "f.png", [1000])
    fig = drawn[0]
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = ax.get_legend()
    assert len(legend.get_texts()) == 4                       # 2 variants x 2 values of m
    renderer = fig.canvas.get_renderer()
    box, frame = legend.get_window_extent(renderer), ax.get_window_extent(renderer)
    V.plt.close(fig)
    assert not box.overlaps(frame), (box, frame)


def test_functional_dimension_legend_lies_outside_its_axes(tmp_path, monkeypatch):
    """The random control runs along the bottom and the curves along the top: a legend in
    the axes covers one of them (it covered the control in the lower right)."""
    from minimanifold.experiments import functional_dimension as FD
    drawn = []
    monkeypatch.setattr(FD, "save_figure", lambda fig, path: drawn.append(fig) or str(path))
    curve = {"pca": [0.5 + 0.05 * i for i in range(len(FD.KS))], "random": [0.2] * len(FD.KS),
             "random_matched": [0.1] * len(FD.KS), "final": 0.95}
    FD.fig_functional([{"centred": curve, "uncentred": curve}] * 2, "caption", tmp_path / "f.png")
    fig = drawn[0]
    fig.canvas.draw()
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    box, frame = ax.get_legend().get_window_extent(renderer), ax.get_window_extent(renderer)
    FD.plt.close(fig)
    assert len(ax.get_legend().get_texts()) == 6 and not box.overlaps(frame), (box, frame)    # both controls


def test_compare_draws_each_m_in_a_clearly_different_colour(tmp_path, monkeypatch):
    """fig_curriculum drew m = 1 and m = 2 in two near-identical dark blues (viridis):
    every two m's curves must differ clearly in colour (RGB distance), for up to 6 m's."""
    drawn = []
    monkeypatch.setattr(V, "save_figure", lambda fig, path: drawn.append(fig) or str(path))
    ms = {m: 1.0 for m in range(1, 7)}
    runs = {"mixed": [_run(tmp_path, "a", ms)], "curriculum": [_run(tmp_path, "b", ms)]}
    V.fig_compare({k: {"r90": [2.0], "null": [3.0]} for k in runs}, runs, "t", "c", tmp_path / "f.png")
    lines = {ln.get_label(): ln.get_color() for ln in drawn[0].axes[0].get_lines()}
    V.plt.close(drawn[0])
    rgb = [np.array(V.plt.matplotlib.colors.to_rgb(lines[f"mixed, m = {m}"])) for m in ms]
    gaps = [np.linalg.norm(a - b) for i, a in enumerate(rgb) for b in rgb[i + 1:]]
    assert min(gaps) > 0.25, min(gaps)
    assert all(lines[f"curriculum, m = {m}"] == lines[f"mixed, m = {m}"] for m in ms)   # m's colour, not the run's


def test_the_training_figure_names_the_step_size_schedule(tmp_path, monkeypatch):
    """"lr=0.15" alone hid the paper preset's warmup and cosine decay to 0 (issue 23 §6)."""
    from minimanifold.experiments import training_curves as TC
    from minimanifold.trajectories.presets import PAPER, QUICK
    drawn = []
    monkeypatch.setattr(TC, "save_figure", lambda fig, path: drawn.append(fig) or str(path))
    d = tmp_path / "r"
    d.mkdir()
    (d / "metrics.json").write_text(json.dumps([{"step": s, "loss": 1.0, "acc": {"1": 0.5}} for s in (0, 100)]))
    for preset, words in ((PAPER, "lr=0.15 (warmup 1000 steps, then cosine decay to 0)"), (QUICK, "(constant)")):
        TC.training_figure([{"dir": str(d)}], preset, tmp_path / "f.png")
        assert words in drawn[-1]._suptitle.get_text()
        V.plt.close(drawn[-1])


def test_compositional_legend_names_the_seeds_each_group_plots(tmp_path, monkeypatch):
    """A partial ledger drew 3 mixed runs beside 1 curriculum run and 1 run without m = 3
    under a caption naming 3 seeds per comparison; each legend entry says what it plots."""
    from minimanifold.experiments import compositional as CO
    drawn = []
    monkeypatch.setattr(CO, "save_figure", lambda fig, path: drawn.append(fig) or str(path))
    g = {m: {"acc": 0.9, "acc_seen": 1.0, "acc_heldout": 0.1, "n_heldout": 50, "rank_heldout": 5.0,
             "rank_by_support": [float(int(m) + 1 - k) for k in range(int(m) + 1)]} for m in ("2", "3", "4")}
    CO.fig_compositional([g] * 3, [g], [{"3": {"acc": 0.2}}], 3, 8, "caption", tmp_path / "f.png")
    texts = [t.get_text() for t in drawn[0].axes[0].get_legend().get_texts()]
    ranks = [t.get_text() for t in drawn[0].axes[1].get_legend().get_texts()]
    ymax = drawn[0].axes[1].get_ylim()[1]
    drawn[0].canvas.draw()
    r = drawn[0].canvas.get_renderer()
    titles = [ax.title.get_window_extent(r) for ax in drawn[0].axes]
    ylabels = [ax.yaxis.label.get_window_extent(r) for ax in drawn[0].axes]
    support = drawn[0].axes[2]
    lines = {ln.get_label(): (list(map(float, ln.get_xdata())), list(map(float, ln.get_ydata())))
             for ln in support.get_lines()}
    support_legend = [t.get_text() for t in support.get_legend().get_texts()]
    legend_box, frame = support.get_legend().get_window_extent(r), support.get_window_extent(r)
    xlabel = support.xaxis.label.get_window_extent(r)
    CO.plt.close(drawn[0])
    for a, b in zip(titles, titles[1:]):
        assert a.x1 + 10 < b.x0, (a, b)                       # the panels' titles stand apart
    for t in titles:
        assert not any(y.overlaps(t) for y in ylabels), t     # and each axis label stays below them
    assert lines["mixed (3 seeds)"] == ([0, 1, 2, 3, 4], [5, 4, 3, 2, 1]) == lines["curriculum (1 seed)"]   # support k at k
    assert "a guess: 3.5" in support_legend and support.get_xlim()[1] < 5     # k = 0..4 at m = 4
    assert not legend_box.overlaps(frame) and not legend_box.overlaps(xlabel), (legend_box, frame, xlabel)
    assert ranks == ["a guess: (C - 1)/2 = 3.5", "mixed, held-out (3 seeds)", "curriculum, held-out (1 seed)"]
    assert ymax == 7                                           # ranks run 0..C-1
    assert "mixed, seen combinations (3 seeds)" in texts and "mixed, held-out combinations (3 seeds)" in texts
    assert "curriculum, seen (1 seed)" in texts and "curriculum, held-out (1 seed)" in texts
    assert "runs trained without m = 3: accuracy on m = 3 (mean of 1 seed)" in texts


def test_seed_counts_read_in_english():
    from minimanifold.report.plotting import seeds
    assert [seeds(n) for n in (0, 1, 2, 10)] == ["0 seeds", "1 seed", "2 seeds", "10 seeds"]


def test_m_scaling_ticks_name_the_seeds_each_M_plots(tmp_path, monkeypatch):
    """A partial ledger drew 2 runs for most M and 10 for the main runs' M under a caption
    naming 3 per comparison; each M's tick says how many seeds its dots are."""
    from minimanifold.experiments import m_scaling as MS
    drawn = []
    monkeypatch.setattr(MS, "save_figure", lambda fig, path: drawn.append(fig) or str(path))
    v = lambda n: {"r90": [2.0] * n, "null": [3.0] * n, "final_acc": [{1: 1.0, 2: 0.9}] * n}
    MS.fig_m_scaling({4: v(10), 1: v(2), 2: v(1)}, "caption", tmp_path / "f.png")
    for ax in drawn[0].axes:
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1\n2 seeds", "2\n1 seed", "4\n10 seeds"]
    MS.plt.close(drawn[0])
