"""What every figure shares: matplotlib on Agg, atomic PNG writes, and the median band
used by the commutator figures."""
from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..model.io import atomic_write  # noqa: E402

__all__ = ["plt", "save_figure", "band"]


def save_figure(fig, path) -> str:
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return str(path)


def band(ax, x, vals, color, label, q=90):
    """Median over axis 1 of vals [point, sample] as a line, shaded up to the q-th percentile."""
    with warnings.catch_warnings():          # a point may hold only NaN (no causal basis at step 0)
        warnings.simplefilter("ignore", RuntimeWarning)
        med, hi = np.nanmedian(vals, axis=1), np.nanpercentile(vals, q, axis=1)
    ax.plot(x, med, color=color, lw=2, marker="o", ms=3, label=f"{label}: median")
    ax.fill_between(x, med, hi, color=color, alpha=0.2, label=f"{label}: median to {q}th percentile")
