"""Claims 15 and 18 (experiments/architecture.py, multiplication.py; issue 23 §2): each
variant against its own matched null, and multiplication's majority-class baseline. Known
answers on synthetic summaries; the rules' thresholds are in test_verdict_rules.py."""
import itertools
import json
import re

import numpy as np
import pytest

from minimanifold.experiments import architecture as AR, multiplication as MU, variants as V

SUP, NOT, INC = "supported", "not supported", "inconclusive"


def bounds(text, label):
    m = re.search(re.escape(label) + r" \[(\S+), (\S+)\]", text)
    assert m, f"no interval after {label!r} in {text!r}"
    return float(m.group(1)), float(m.group(2))


def summary(r90, null, acc=1.0):
    return {"r90": list(r90), "null": list(null), "final_acc": [{1: acc, 2: acc, 3: acc, 4: acc}] * len(r90)}


def test_excess_over_null_is_per_seed():
    """r90 2.5 and 2.6 against nulls 3.8 and 4.0: −1.3 and −1.4 (seed by seed, not against
    the mean null). Guards: null − r90; the nulls' mean."""
    assert V.excess_over_null(summary([2.5, 2.6], [3.8, 4.0])).tolist() == pytest.approx([-1.3, -1.4])


def test_claim_15_compares_each_arm_with_its_own_null():
    """Attention-only: r90 2.0, 2.1, 1.9 against nulls 3.5, 3.6, 3.4 (1.5 below each); MLP:
    r90 3.0, 3.1, 2.9 against nulls 3.0 (at its null on average, sd 0.1). The raw r90 rises by
    exactly 1.0 (not above 1: the old rule's *inconclusive*); relative to the nulls the MLP runs
    sit 1.5 closer, ± 4.303 · 0.1 / √3 (Welch: 2 df, the attention runs' excess tied) = [1.25,
    1.75]: *supported*. Then the paper preset's numbers: attention 2.51 against 3.84, MLP 2.17
    against 3.05: raw r90 falls (the old *not supported*), relative to its null the MLP is 0.45
    less collapsed: *inconclusive*. Guards: raw r90; null − r90 (−1.5: *not supported*)."""
    attn = summary([2.0, 2.1, 1.9], [3.5, 3.6, 3.4])
    mlp = summary([3.0, 3.1, 2.9], [3.0, 3.0, 3.0])
    row = AR.claim_mlp_rank(attn, mlp)
    assert row.verdict == SUP and row.value == pytest.approx(1.5)
    assert bounds(row.interval, "MLP − attention-only of r90 − null") == (1.25, 1.75)
    assert "attention matrices only" in row.measured
    attn = summary([2.51, 2.71, 2.31], [3.84, 4.04, 3.64])
    mlp = summary([2.17, 2.19, 2.15], [3.05, 3.06, 3.04])
    row = AR.claim_mlp_rank(attn, mlp)
    assert row.verdict == INC and row.value == pytest.approx(1.33 - 0.88)


def test_claim_18_a_rise_the_null_explains_is_not_a_rise():
    """Addition r90 2.5 against nulls 3.5; multiplication r90 3.6 against nulls 4.8 (1.2, 1.15,
    1.25 below them per seed): raw r90 rises 1.1 (the old rule's *supported*), but
    multiplication sits 1.2 below its null and addition 1.0 below its: −0.2 ± 4.303 · 0.05 / √3
    = [−0.32, −0.08], *not supported*. Guards: raw r90."""
    add = summary([2.5, 2.6, 2.4], [3.5, 3.6, 3.4])
    mul = summary([3.6, 3.7, 3.5], [4.8, 4.85, 4.75])
    row = MU.claim_multiplication(add, mul, 8)
    assert row.verdict == NOT and row.value == pytest.approx(-0.2)
    assert bounds(row.interval, "mul − add of r90 − null") == (-0.32, -0.08)
    mul = summary([3.6, 3.7, 3.5], [3.1, 3.25, 2.95])                    # above its null: +1.5 over add's
    assert MU.claim_multiplication(add, mul, 8).verdict == SUP


def test_claim_18_shows_the_majority_class_beside_the_accuracy():
    """Multiplication mod 8 at 0.70 on every m: the row shows each m's majority class (0.125,
    0.3125, 0.5, 0.65625) beside it. Guards: the addition baseline (1/8) for every m."""
    add = summary([2.5, 2.6, 2.4], [3.5, 3.6, 3.4])
    row = MU.claim_multiplication(add, summary([3.6, 3.7, 3.5], [4.8, 4.9, 4.7], acc=0.7), 8)
    for m, share in zip((1, 2, 3, 4), ("0.125", "0.312", "0.500", "0.656")):
        assert f"m={m} 0.700 (majority class {share})" in row.measured, row.measured


@pytest.mark.parametrize("C, m", [(8, 1), (8, 2), (8, 3), (6, 3), (5, 2), (4, 4), (7, 3)])
def test_majority_share_matches_enumeration(C, m):
    """Against counting every one of the C^m value tuples (mul and add)."""
    for op, f in (("mul", lambda t: int(np.prod(t)) % C), ("add", lambda t: sum(t) % C)):
        counts = np.bincount([f(t) for t in itertools.product(range(C), repeat=m)], minlength=C)
        assert MU.majority_share(C, m, op) == pytest.approx(counts.max() / C ** m, abs=1e-12)


def test_majority_share_known_answers():
    """Mod 8: 1/8, 5/16, 1/2, 21/32 for m = 1..4 (the issue's 31–66%); addition 1/8 always;
    mod 5 (prime), m = 2: P(0) = 1 − (4/5)^2 = 9/25. Guards: the empty product 0 (every
    class 0: share 1); a sum for the product."""
    assert [MU.majority_share(8, m) for m in (1, 2, 3, 4)] == pytest.approx([1 / 8, 5 / 16, 1 / 2, 21 / 32])
    assert MU.baselines(8, [2, 4]) == pytest.approx({2: 5 / 16, 4: 21 / 32})
    assert MU.majority_share(8, 3, "add") == pytest.approx(1 / 8)
    assert MU.majority_share(5, 2) == pytest.approx(9 / 25)


def _run(tmp_path, name, final):
    d = tmp_path / name
    d.mkdir()
    hist = [{"step": int(s), "acc": {str(m): float(0.1 + (f - 0.1) * s / 2000) for m, f in final.items()}}
            for s in np.arange(0, 2001, 100)]
    (d / "metrics.json").write_text(json.dumps(hist))
    return {"dir": str(d)}


def test_fig_compare_draws_the_majority_baseline_in_each_ms_colour(tmp_path, monkeypatch):
    """The multiplication figure's baselines: a horizontal line per m at its majority share,
    in the colour of that m's accuracy curves, in the legend below the axes.
    Each r90 bar carries its mean r90 − null. Guards: the lines at the wrong m (colours
    crossed); no legend entry; r90 − null of the means of another variant."""
    drawn = []
    monkeypatch.setattr(V, "save_figure", lambda fig, path: drawn.append(fig) or str(path))
    runs = {"addition": [_run(tmp_path, "a", {1: 1.0, 2: 0.9})],
            "multiplication": [_run(tmp_path, "b", {1: 1.0, 2: 0.6})]}
    summ = {"addition": {"r90": [2.0, 2.2], "null": [3.0, 3.1]},
            "multiplication": {"r90": [3.0, 3.2], "null": [3.0, 3.0]}}
    V.fig_compare(summ, runs, "Multiplication vs addition", "caption", tmp_path / "f.png",
                  baselines=("multiplication", {1: 0.125, 2: 0.3125}))
    fig = drawn[0]
    ax = fig.axes[0]
    curves = {ln.get_label(): ln for ln in ax.get_lines()}
    for m, y in ((1, 0.125), (2, 0.3125)):
        line = curves[f"multiplication majority class, m = {m} ({y:.2f})"]
        assert set(line.get_ydata()) == {y}
        assert np.allclose(line.get_color(), curves[f"multiplication, m = {m}"].get_color())
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(texts) == 6 and "multiplication majority class, m = 2 (0.31)" in texts
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert not ax.get_legend().get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))
    bars = [t.get_text() for t in fig.axes[1].texts]
    assert bars == ["r90 − null −0.95", "r90 − null +0.10"]              # per seed, then the mean
    V.plt.close(fig)
