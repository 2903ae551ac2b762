"""What every figure shares: the file backend, atomic PNG writes, and the median band
used by the commutator figures.

Importing this module leaves matplotlib's backend alone (a user's MPLBACKEND, a notebook's
inline backend still hold). The main job writes PNG files and needs no display, so
``pipeline.run`` calls ``use_file_backend()`` before it draws; ``save_figure`` writes PNG
under any backend.
"""
from __future__ import annotations

import warnings

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from ..files import atomic_write

__all__ = ["plt", "use_file_backend", "save_figure", "band", "sd_within", "plain_log_ticks", "step_ticks"]


def use_file_backend() -> None:
    """Draw with Agg, matplotlib's file backend: figures go to PNG files, no window opens and
    no display is needed (a server, CI). Called where figures are written
    (``pipeline.run``), never on import."""
    matplotlib.use("Agg")


def save_figure(fig, path) -> str:
    """Write ``fig`` to ``path`` as PNG, atomically, and close it. Any backend will do:
    savefig renders PNG with Agg whatever the figure was drawn with."""
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


def seeds(n: int) -> str:
    """'1 seed', '3 seeds': how many seeds a bar, curve or tick shows (a partial ledger
    plots fewer than the preset's caption names)."""
    return f"{n} seed{'s' * (n != 1)}"


def sd_within(vals, lo=0.0, hi=1.0):
    """Error bars of mean ± sd over axis 0 of vals, cut to the quantity's range [lo, hi]
    (an accuracy's bar must not reach above 1): a (2, ...) yerr for matplotlib, both rows
    >= 0, mean - yerr[0] >= lo and mean + yerr[1] <= hi."""
    vals = np.asarray(vals, dtype=float)
    mean, sd = vals.mean(0), vals.std(0)
    return np.stack([mean - np.maximum(mean - sd, lo), np.minimum(mean + sd, hi) - mean])


def plain_log_ticks(axis):
    """Plain numbers (1, 2, 3, 4, not 4×10^0) on every major and minor tick of a log axis that
    spans one or two decades (an enrichment ratio), where matplotlib's minor labels otherwise
    crowd into the axis label; over more decades every minor tick would be labelled."""
    from matplotlib.ticker import FuncFormatter
    fmt = FuncFormatter(lambda v, _: f"{v:g}")
    axis.set_major_formatter(fmt)
    axis.set_minor_formatter(fmt)


def step_ticks(ax):
    """Training steps on the x axis as 0, 5k, 10k, ... when the axis reaches 10,000 (five-digit
    labels ran into each other on a half-width panel); plain numbers below that."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    def label(v, _):
        if max(abs(x) for x in ax.get_xlim()) < 10000 or v == 0:
            return f"{v:g}"
        return f"{v / 1000:g}k"
    ax.xaxis.set_major_locator(MaxNLocator(6, steps=[1, 2, 5, 10], integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(label))
