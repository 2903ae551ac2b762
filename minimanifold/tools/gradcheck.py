"""Finite-difference gradient checking (cs231n style), float64, centred differences.

Used by the test suite; importable so a user can check their own edits the same way.
"""
from __future__ import annotations

import numpy as np

H = 1e-5


def rel_error(a, n) -> float:
    """Norm-wise relative error ||a - n|| / (||a|| + ||n||); inf if either holds a NaN or
    inf (so a check of all-NaN gradients fails instead of passing with 0)."""
    a, n = np.asarray(a, dtype=np.float64), np.asarray(n, dtype=np.float64)
    if not (np.isfinite(a).all() and np.isfinite(n).all()):
        return float("inf")
    denom = np.linalg.norm(a) + np.linalg.norm(n)
    return float(np.linalg.norm(a - n) / denom) if denom > 0 else 0.0


def max_elementwise_rel_error(a, n, floor=1e-12) -> float:
    a, n = np.asarray(a, dtype=np.float64), np.asarray(n, dtype=np.float64)
    if not (np.isfinite(a).all() and np.isfinite(n).all()):
        return float("inf")
    return float(np.max(np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), floor)))


def numerical_grad(f, x, idx=None, h=H):
    """Centred-difference gradient of the scalar f() w.r.t. array x (perturbed in place),
    at the flat indices ``idx`` (default all). Returns values at ``idx``."""
    flat = x.reshape(-1)
    idx = np.arange(flat.size) if idx is None else idx
    out = np.empty(len(idx))
    for j, i in enumerate(idx):
        old = flat[i]
        flat[i] = old + h
        fp = f()
        flat[i] = old - h
        fm = f()
        flat[i] = old
        out[j] = (fp - fm) / (2 * h)
    return out
