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
    sd_interval(x)             across-seed sd of x [seed, matrix] pooled over matrices (chi-square)
    pairs_interval(M)          the mean over seed pairs of M [seed, seed]: delete-one-seed jackknife

Ties. Tied values (3 seeds at accuracy 1.00) give sd 0 and a zero-width t interval: they say
only that the spread is below what the measurement resolves, not that it is 0. So a tied
interval is flagged (``Interval.tied``; its text says "all 5 values tied") and ``holds`` answers
None for it, unless the caller states the values' ``resolution`` (1 / n_examples for an accuracy,
1 for a count): then the sd is floored at it (conservative: a normal spread of sd one step puts
3 rounded seeds in one bin 8% of the time; 5 seeds 1%; sd two steps 2%) and it decides like any
other (Welch, log_t too; bootstrap, sd_interval, pairs_interval take none: tied, they decide nothing).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .chisquare import chi2_quantile

# Student t quantiles t_{0.975, df}, df = 1..30; beyond, the Cornish-Fisher expansion
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042)
Z975 = 1.959964
MIN_SEEDS = 3     # fewer seeds decide nothing: 2 seeds with tied values (integer counts, accuracies
                  # of 1.0) would give a zero-width interval that claims certainty
TIE = 1e-9        # values equal to 9 significant digits are tied (float noise is not a spread)


class Interval(NamedTuple):
    est: float      # the point estimate (the mean, or the statistic of all seeds)
    lo: float
    hi: float
    n: int          # seeds
    how: str        # "t" or "bootstrap"
    groups: tuple = ()   # seeds per group, for an interval over two groups (diff_interval)
    tied: bool = False   # the spread came out 0 (tied values): see "Ties" above
    note: str = ""       # why, for the reader: the tie, the resolution the sd was floored at

    def text(self, fmt="{:.2f}", unit="seeds") -> str:
        """``[lo, hi] (95% how, n unit)``; ``unit`` names what the n values are (seeds by default)."""
        if not math.isfinite(self.lo) or not math.isfinite(self.hi):
            if self.groups:
                return (f"undetermined ({' and '.join(map(str, self.groups))} seeds; "
                        f"{MIN_SEEDS} needed per group)")
            return f"undetermined ({self.n} seed{'s' if self.n != 1 else ''}; {MIN_SEEDS} needed per group)"
        note = f"; {self.note}" if self.note else ""
        return f"[{fmt.format(self.lo)}, {fmt.format(self.hi)}] (95% {self.how}, {self.n} {unit}{note})"


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


def tied(x) -> bool:
    """All values equal (to ``TIE`` relative to the largest): no spread to measure."""
    x = np.asarray(x, dtype=float)
    return bool(np.ptp(x) <= TIE * np.abs(x).max())


def _sd(v, is_tied: bool, floor: float) -> float:
    """The sd (ddof 1) of v, 0 for tied values (float noise is no spread), floored at ``floor``."""
    return max(0.0 if is_tied else float(np.std(v, ddof=1)), floor)


def _note(what: str, is_tied: bool, floored: bool, resolution: float) -> str:
    """What the reader must know: the tie, and the resolution the sd was floored at (1/12: 0.0833)."""
    if floored:
        return (f"{what} tied: " if is_tied else "") + f"sd floored at the resolution {resolution:.3g}"
    return f"{what} tied, so it decides nothing" if is_tied else ""


def t_interval(x, resolution: float = 0.0) -> Interval:
    """95% t interval of the mean of per-seed values x (NaN seeds left out); the sd is floored
    at ``resolution`` (the values' step, if known; tied values without one decide nothing)."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    m = float(x.mean()) if n else math.nan
    if n < MIN_SEEDS:
        return Interval(m, -math.inf, math.inf, n, "t")
    is_tied = tied(x)
    sd = _sd(x, is_tied, resolution)
    half = t975(n - 1) * sd / math.sqrt(n)
    note = _note(f"all {n} values", is_tied, sd > 0 and sd == resolution, resolution)
    return Interval(m, m - half, m + half, n, "t", tied=is_tied, note=note)


def log_t_interval(x, resolution: float = 0.0) -> Interval:
    """95% interval of the geometric mean of positive per-seed values x (ratios): the t
    interval of log x, exponentiated. It stays inside (0, inf), where a t interval of a
    heavy-tailed ratio can reach below 0. Non-positive or NaN seeds are left out. A
    ``resolution`` of x floors the sd of log x at resolution / (the geometric mean)."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x) & (x > 0)]
    n, lx = len(x), np.log(x)
    gm = math.exp(float(lx.mean())) if n else math.nan
    if n < MIN_SEEDS:
        return Interval(gm, -math.inf, math.inf, n, "t on log")
    is_tied = tied(x)
    floor = resolution / gm
    sd = _sd(lx, is_tied, floor)
    half = t975(n - 1) * sd / math.sqrt(n)
    note = _note(f"all {n} values", is_tied, sd > 0 and sd == floor, resolution)
    return Interval(gm, gm * math.exp(-half), gm * math.exp(half), n, "t on log", tied=is_tied, note=note)


def diff_interval(a, b, resolution: float = 0.0) -> Interval:
    """95% Welch interval of mean(a) - mean(b) for two independent groups of seeds
    (degrees of freedom by Welch-Satterthwaite, rounded down); each group's sd floored at
    ``resolution``; both groups constant without one: tied, it decides nothing."""
    a, b = (np.asarray(v, dtype=float) for v in (a, b))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    n = len(a) + len(b)
    if len(a) < MIN_SEEDS or len(b) < MIN_SEEDS:
        return Interval(float(a.mean() - b.mean()) if len(a) and len(b) else math.nan, -math.inf, math.inf, n,
                        "Welch t", (len(a), len(b)))
    d = float(a.mean() - b.mean())
    sa, sb = _sd(a, tied(a), resolution), _sd(b, tied(b), resolution)
    is_tied = tied(a) and tied(b)
    note = _note("each group's values", is_tied, resolution in (sa, sb) and resolution > 0, resolution)
    va, vb = sa ** 2 / len(a), sb ** 2 / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return Interval(d, d, d, n, "Welch t", (len(a), len(b)), is_tied, note)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = t975(max(1, int(df))) * se
    return Interval(d, d - half, d + half, n, "Welch t", (len(a), len(b)), is_tied, note)


def bootstrap_interval(x, stat, n_boot=2000, seed=0) -> Interval:
    """95% percentile bootstrap of stat(x[resampled seeds]); x [seed, ...]. When no resample
    moves the statistic (tied seeds) the interval is tied and decides nothing."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    est = float(stat(x))
    if n < MIN_SEEDS:
        return Interval(est, -math.inf, math.inf, n, "bootstrap")
    rng = np.random.default_rng(seed)
    draws = np.array([stat(x[rng.integers(0, n, n)]) for _ in range(n_boot)])
    if tied(np.append(draws, est)):
        return Interval(est, est, est, n, "bootstrap", tied=True,
                        note="no resample moves the statistic (tied seeds), so it decides nothing")
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return Interval(est, float(lo), float(hi), n, "bootstrap")


def sd_interval(x) -> Interval:
    """95% interval of the across-seed sd of x [seed, matrix] pooled over matrices: the root of
    V = the mean over matrices of the unbiased (ddof 1) variance across seeds, in a chi-square
    interval whose df is the smaller of (n − 1) (tr S)² / ‖S‖²_F (S: the matrices' covariance;
    n − 1 if they move together, m (n − 1) if independent) and 2 V² / the delete-one-seed
    jackknife variance of V (which sees non-normal tails). Seeds with a NaN are left out. The
    pooled sd is at least the mean of the per-matrix sds: an upper end below a threshold bounds both."""
    x = np.asarray(x, dtype=float).reshape(len(x), -1)
    x = x[np.isfinite(x).all(axis=1)]
    n, m = x.shape
    est = math.sqrt(float(x.var(axis=0, ddof=1).mean())) if n >= 2 else math.nan
    if n < MIN_SEEDS:
        return Interval(est, -math.inf, math.inf, n, "chi-square")
    if all(tied(col) for col in x.T):
        return Interval(0.0, 0.0, 0.0, n, "chi-square", (), True,
                        f"every matrix's {n} values tied, so it decides nothing")
    v = est ** 2
    S = np.atleast_2d(np.cov(x, rowvar=False, ddof=1))
    df_normal = (n - 1) * np.trace(S) ** 2 / float((S ** 2).sum())
    v_out = np.array([np.delete(x, i, axis=0).var(axis=0, ddof=1).mean() for i in range(n)])
    var_jack = (n - 1) / n * float(((v_out - v_out.mean()) ** 2).sum())
    df = max(1.0, min(df_normal, 2 * v ** 2 / var_jack if var_jack > 0 else math.inf))
    lo, hi = (math.sqrt(df * v / chi2_quantile(p, df)) for p in (0.975, 0.025))
    return Interval(est, lo, hi, n, f"chi-square, {df:.1f} effective df")


def pairs_interval(M) -> Interval:
    """95% interval of the mean over seed pairs of M: a symmetric [seed, seed] matrix (its
    diagonal unused) or the n (n − 1) / 2 pair values in itertools.combinations order. The
    pairs share seeds, so they are not independent: the uncertainty is the delete-one-seed
    jackknife's (each seed left out with all its pairs), with t_{0.975, n − 1}."""
    M = np.asarray(M, dtype=float)
    n = seeds_of_pairs(len(M)) if M.ndim == 1 else len(M)
    i, j = np.triu_indices(n, 1)
    vals = M if M.ndim == 1 else M[i, j]                                     # [pair]
    est = float(np.nanmean(vals)) if np.isfinite(vals).any() else math.nan
    if n < MIN_SEEDS or not math.isfinite(est):
        return Interval(est, -math.inf, math.inf, n, "jackknife t")
    if tied(vals[np.isfinite(vals)]):
        return Interval(est, est, est, n, "jackknife t", (), True,
                        f"all {len(vals)} pair values tied, so it decides nothing")
    out = np.array([np.nanmean(vals[(i != k) & (j != k)]) for k in range(n)])
    half = t975(n - 1) * math.sqrt((n - 1) / n * float(((out - out.mean()) ** 2).sum()))
    return Interval(est, est - half, est + half, n, "jackknife t")


def holds(iv, op: str, t: float):
    """'value op t' for an interval: True if the whole interval satisfies it, False if
    none of it does, None if it straddles t. op in {'>', '>=', '<', '<='}. A tied interval
    of zero width (tied values, no resolution stated) decides nothing: None."""
    lo, hi = iv.lo, iv.hi
    if op not in (">", ">=", "<", "<="):
        raise ValueError(f"op must be one of > >= < <=, got {op!r}")
    if getattr(iv, "tied", False) and not hi > lo:
        return None
    if op == ">":
        return True if lo > t else False if hi <= t else None
    if op == ">=":
        return True if lo >= t else False if hi < t else None
    if op == "<":
        return True if hi < t else False if lo >= t else None
    return True if hi <= t else False if lo > t else None


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
