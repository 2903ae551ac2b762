"""Intervals over seeds, and comparisons of an interval with a threshold.

A verdict must not move when the machine does: another CPU or BLAS thread count changes
the low bits, training amplifies them, and a mean over 5 seeds moves. So every ledger
rule compares a 95% interval over seeds with its threshold, in three-valued logic:
True when the whole interval is on the claim's side, False when the whole interval is
on the other side, None (undecided) when it straddles the threshold.

    t_interval(x)              mean of per-seed values: mean +- t_{0.975, n-1} sd / sqrt(n)
                               (every interval needs MIN_SEEDS = 3 seeds per group; fewer: undetermined)
    log_t_interval(x)          geometric mean of positive per-seed ratios: the t interval of log x,
                               mapped back, so it stays above 0 (a ratio of norms cannot be negative)
    diff_interval(a, b)        mean(a) - mean(b) of two groups of seeds (Welch)
    bootstrap_interval(x, f)   any statistic f of the seeds: percentile bootstrap, fixed seed
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

# Student t quantiles t_{0.975, df}, df = 1..30; beyond, the Cornish-Fisher expansion
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042)
Z975 = 1.959964
MIN_SEEDS = 3     # fewer seeds decide nothing: 2 seeds with tied values (integer counts, accuracies
                  # of 1.0) would give a zero-width interval that claims certainty


class Interval(NamedTuple):
    est: float      # the point estimate (the mean, or the statistic of all seeds)
    lo: float
    hi: float
    n: int          # seeds
    how: str        # "t" or "bootstrap"
    groups: tuple = ()   # seeds per group, for an interval over two groups (diff_interval)

    def text(self, fmt="{:.2f}", unit="seeds") -> str:
        """``[lo, hi] (95% how, n unit)``; ``unit`` names what the n values are (seeds by default)."""
        if not math.isfinite(self.lo) or not math.isfinite(self.hi):
            if self.groups:
                return (f"undetermined ({' and '.join(map(str, self.groups))} seeds; "
                        f"{MIN_SEEDS} needed per group)")
            return f"undetermined ({self.n} seed{'s' if self.n != 1 else ''}; {MIN_SEEDS} needed per group)"
        return f"[{fmt.format(self.lo)}, {fmt.format(self.hi)}] (95% {self.how}, {self.n} {unit})"


def within(iv: Interval, lo: float, hi: float) -> Interval:
    """``iv`` cut to [lo, hi], the values its quantity can take (a t interval of a mean of
    accuracies near 0 reaches below 0); an undetermined (infinite) interval stays so."""
    if not (math.isfinite(iv.lo) and math.isfinite(iv.hi)):
        return iv
    return iv._replace(lo=min(max(iv.lo, lo), hi), hi=max(min(iv.hi, hi), lo))


def seeds_of_pairs(n_pairs: int) -> int:
    """The n with n (n − 1) / 2 == ``n_pairs``: how many seeds an interval over all their pairs
    rests on (the pairs share seeds, so they are not independent)."""
    n = round((1 + math.sqrt(1 + 8 * n_pairs)) / 2)
    if n * (n - 1) // 2 != n_pairs:
        raise ValueError(f"{n_pairs} is not the number of pairs of any number of seeds")
    return n


def t975(df: int) -> float:
    if df < 1:
        return math.inf
    if df <= len(T975):
        return T975[df - 1]
    z = Z975
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


def t_interval(x) -> Interval:
    """95% t interval of the mean of per-seed values x (NaN seeds left out)."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return Interval(math.nan, -math.inf, math.inf, 0, "t")
    m = float(x.mean())
    if n < MIN_SEEDS:
        return Interval(m, -math.inf, math.inf, n, "t")
    half = t975(n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    return Interval(m, m - half, m + half, n, "t")


def log_t_interval(x) -> Interval:
    """95% interval of the geometric mean of positive per-seed values x (ratios): the t
    interval of log x, exponentiated. It stays inside (0, inf), where a t interval of a
    heavy-tailed ratio can reach below 0. Non-positive or NaN seeds are left out."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x) & (x > 0)]
    iv = t_interval(np.log(x))
    est = math.exp(iv.est) if math.isfinite(iv.est) else math.nan
    if not math.isfinite(iv.lo):
        return Interval(est, -math.inf, math.inf, iv.n, "t on log")
    return Interval(est, math.exp(iv.lo), math.exp(iv.hi), iv.n, "t on log")


def diff_interval(a, b) -> Interval:
    """95% Welch interval of mean(a) - mean(b) for two independent groups of seeds
    (degrees of freedom by Welch-Satterthwaite, rounded down)."""
    a, b = (np.asarray(v, dtype=float) for v in (a, b))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    n = len(a) + len(b)
    if len(a) < MIN_SEEDS or len(b) < MIN_SEEDS:
        return Interval(float(a.mean() - b.mean()) if len(a) and len(b) else math.nan, -math.inf, math.inf, n,
                        "Welch t", (len(a), len(b)))
    d = float(a.mean() - b.mean())
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return Interval(d, d, d, n, "Welch t", (len(a), len(b)))
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = t975(max(1, int(df))) * se
    return Interval(d, d - half, d + half, n, "Welch t", (len(a), len(b)))


def bootstrap_interval(x, stat, n_boot=2000, seed=0) -> Interval:
    """95% percentile bootstrap of stat(x[resampled seeds]); x [seed, ...]."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    est = float(stat(x))
    if n < MIN_SEEDS:
        return Interval(est, -math.inf, math.inf, n, "bootstrap")
    rng = np.random.default_rng(seed)
    draws = np.array([stat(x[rng.integers(0, n, n)]) for _ in range(n_boot)])
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return Interval(est, float(lo), float(hi), n, "bootstrap")


def holds(iv, op: str, t: float):
    """'value op t' for an interval: True if the whole interval satisfies it, False if
    none of it does, None if it straddles t. op in {'>', '>=', '<', '<='}."""
    lo, hi = iv.lo, iv.hi
    if op == ">":
        return True if lo > t else False if hi <= t else None
    if op == ">=":
        return True if lo >= t else False if hi < t else None
    if op == "<":
        return True if hi < t else False if lo >= t else None
    if op == "<=":
        return True if hi <= t else False if lo > t else None
    raise ValueError(f"op must be one of > >= < <=, got {op!r}")


def all_of(*conds):
    """Three-valued AND: False if any is False, True if all are True, else None."""
    if any(c is False for c in conds):
        return False
    return True if all(c is True for c in conds) else None


def any_of(*conds):
    """Three-valued OR: True if any is True, False if all are False, else None."""
    if any(c is True for c in conds):
        return True
    return False if all(c is False for c in conds) else None
