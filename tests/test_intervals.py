"""Intervals over seeds and three-valued comparisons (analysis/intervals.py)."""
import math
import warnings

import numpy as np
import pytest

from hypothesis import given, settings, strategies as st

from minimanifold.analysis.intervals import (Interval, all_of, any_of, bootstrap_interval, diff_interval,
                                             holds, log_t_interval, t975, t_interval)


def test_t_quantiles_known_values():
    assert t975(1) == 12.706 and t975(4) == 2.776 and t975(30) == 2.042
    assert abs(t975(60) - 2.0003) < 1e-3 and abs(t975(120) - 1.9799) < 1e-3    # Cornish-Fisher beyond the table
    assert t975(0) == math.inf
    assert all(t975(d) > t975(d + 1) for d in range(1, 200))                   # monotone, no seam at 30/31


def test_t_interval_known_answer():
    iv = t_interval([1.0, 2.0, 3.0])                        # mean 2, sd 1, n 3
    assert iv.est == 2.0 and iv.n == 3
    assert iv.hi - 2.0 == pytest.approx(4.303 / math.sqrt(3)) and 2.0 - iv.lo == pytest.approx(4.303 / math.sqrt(3))
    tied = t_interval([5.0, np.nan, 5.0, 5.0])                  # NaN seeds left out; the 3 left are tied
    assert tied[:5] == (5.0, 5.0, 5.0, 3, "t") and tied.tied and holds(tied, ">", 0) is None
    one = t_interval([4.0])
    assert one.lo == -math.inf and one.hi == math.inf and "undetermined" in one.text()


def test_two_seeds_decide_nothing_even_when_tied():
    """Two seeds with the same integer count gave [26, 26]: certainty from a tie."""
    for iv in (t_interval([26.0, 26.0]), diff_interval([1.0, 1.0], [1.0] * 5),
               bootstrap_interval([3.0, 4.0], np.mean)):
        assert iv.lo == -math.inf and iv.hi == math.inf and "3 needed" in iv.text()
        assert holds(iv, ">=", 0) is None


def test_t_interval_covers_the_mean_95_percent_of_the_time():
    """Seeded: 4,000 samples of 5 normal seeds; coverage 0.95 +- 0.015 (4.4 binomial sd)."""
    rng = np.random.default_rng(123)
    hits = [(lambda iv: iv.lo <= 1.0 <= iv.hi)(t_interval(rng.normal(1.0, 2.0, 5))) for _ in range(4000)]
    assert abs(np.mean(hits) - 0.95) < 0.015


def test_welch_known_answer():
    a, b = [1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 3.0]
    va, vb = np.var(a, ddof=1) / 4, np.var(b, ddof=1) / 3           # 0.41667, 1.0
    df = (va + vb) ** 2 / (va ** 2 / 3 + vb ** 2 / 2)                 # 3.32 -> 3
    iv = diff_interval(a, b)
    assert int(df) == 3 and iv.est == pytest.approx(1.5)
    assert iv.hi - iv.est == pytest.approx(3.182 * math.sqrt(va + vb))
    tied = diff_interval([2.0] * 3, [1.0] * 3)                  # both groups constant: decides nothing
    assert tied[:6] == (1.0, 1.0, 1.0, 6, "Welch t", (3, 3)) and tied.tied and holds(tied, ">", 0) is None
    assert diff_interval([2.0, 2.0], [1.0, 3.0, 2.0]).hi == math.inf             # 2 seeds in a group


def test_undetermined_two_group_interval_names_each_group():
    """'7 seeds; 3 needed per group' read as if 7 were too few: name the group that is short."""
    text = diff_interval([1.0, 2.0], [1.0, 2.0, 3.0, 4.0, 5.0]).text()
    assert text == "undetermined (2 and 5 seeds; 3 needed per group)"
    assert t_interval([1.0, 2.0]).text() == "undetermined (2 seeds; 3 needed per group)"


def test_log_t_interval_known_answer():
    """Seeds 1, 10, 100: log10 mean 1, sd 1, so 10^(1 +- 4.303/sqrt 3) around a geometric mean of 10."""
    iv = log_t_interval([1.0, 10.0, 100.0])
    half = 4.303 / math.sqrt(3) * math.log(10)
    assert iv.est == pytest.approx(10.0) and iv.n == 3 and iv.how == "t on log"
    assert iv.lo == pytest.approx(10.0 * math.exp(-half)) and iv.hi == pytest.approx(10.0 * math.exp(half))
    with warnings.catch_warnings():                     # non-positive seeds left out before the log,
        warnings.simplefilter("error")                  # not turned into -inf/NaN with a warning
        tied = log_t_interval([2.0, 0.0, -1.0, np.nan, 2.0, 2.0])
        assert tied[:5] == (2.0, 2.0, 2.0, 3, "t on log") and tied.tied and holds(tied, ">", 1) is None
    assert log_t_interval([3.0, 4.0]).lo == -math.inf                            # 2 seeds decide nothing


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(1e-12, 1e6), min_size=3, max_size=20))
def test_log_t_interval_of_positive_ratios_stays_positive(x):
    """A t interval of [5e-4, 1e-5, 1e-3] reaches below 0; a ratio of norms cannot."""
    iv = log_t_interval(x)
    assert 0 < iv.lo <= iv.est * (1 + 1e-9) and iv.est <= iv.hi * (1 + 1e-9)
    assert min(x) * (1 - 1e-9) <= iv.est <= max(x) * (1 + 1e-9)                 # a geometric mean


def test_bootstrap_is_deterministic_and_brackets_the_estimate():
    x = np.arange(10.0)
    a, b = bootstrap_interval(x, np.mean), bootstrap_interval(x, np.mean)
    assert a == b and a.lo < a.est == 4.5 < a.hi
    assert bootstrap_interval([3.0], np.mean).lo == -math.inf


@pytest.mark.parametrize("op, lo, hi, expected", [
    (">", 1.0, 2.0, None), (">", 1.0 + 1e-9, 2.0, True), (">", 0.0, 1.0, False),
    (">=", 1.0, 2.0, True), (">=", 0.0, 1.0 - 1e-9, False), (">=", 0.0, 1.0, None),
    ("<", 0.0, 1.0, None), ("<", 0.0, 1.0 - 1e-9, True), ("<", 1.0, 2.0, False),
    ("<=", 0.0, 1.0, True), ("<=", 1.0 + 1e-9, 2.0, False), ("<=", 1.0, 2.0, None),
])
def test_holds_at_the_threshold(op, lo, hi, expected):
    assert holds(Interval((lo + hi) / 2, lo, hi, 5, "t"), op, 1.0) is expected


def test_three_valued_logic():
    assert all_of(True, True) is True and all_of(True, None) is None and all_of(None, False) is False
    assert any_of(False, True) is True and any_of(False, None) is None and any_of(False, False) is False
    with pytest.raises(ValueError, match="op"):
        holds(Interval(0, 0, 0, 1, "t"), "==", 0)


def test_bootstrap_width_is_that_of_a_95_percent_interval():
    """For 400 normal seeds the percentile bootstrap of the mean has half-width 1.96 se (+-6%)."""
    x = np.random.default_rng(7).normal(0.0, 1.0, 400)
    iv = bootstrap_interval(x, np.mean, n_boot=4000)
    se = x.std(ddof=1) / math.sqrt(len(x))
    assert abs((iv.hi - iv.lo) / 2 / (1.96 * se) - 1) < 0.06
