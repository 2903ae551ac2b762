"""The chi-square distribution, for an interval of a variance (intervals.sd_interval): its
cdf, the regularized lower incomplete gamma P(df/2, q/2), and its quantiles. NumPy only."""
from __future__ import annotations

import math

import numpy as np


def chi2_cdf(q: float, df: float) -> float:
    """P(chi-square with df degrees of freedom <= q): the regularized lower incomplete gamma
    P(df/2, q/2) by its power series, summed in logs (tables matched to 1e-10 up to df 1000)."""
    if q <= 0:
        return 0.0
    a, x = df / 2, q / 2
    k = np.arange(1, int(x + 12 * math.sqrt(x) + 40))
    logs = np.concatenate(([0.0], np.cumsum(math.log(x) - np.log(a + k))))   # log x^k / ((a+1)...(a+k))
    top = logs.max()
    log_sum = top + math.log(float(np.exp(logs - top).sum()))
    return min(1.0, math.exp(a * math.log(x) - x - math.lgamma(a + 1) + log_sum))


def chi2_quantile(p: float, df: float) -> float:
    """The q with chi2_cdf(q, df) = p, by bisection (to 1e-10 relative)."""
    lo, hi = 0.0, df + 20 * math.sqrt(2 * df) + 40
    while hi - lo > 1e-10 * hi:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if chi2_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2
