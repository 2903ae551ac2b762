"""Subspace bases that do not know where training ends (issue 24 §2), for the controls of
claims 22 and 23, beside the run's own top-K PCA directions (which do: the whole
trajectory's PCA holds theta_T - theta_0 in its top directions).

    early            top-K centred PCA directions of the first ``EARLY_SHARE`` (15%) of the
                     run's snapshots: those at step <= 0.15 x the last step, and at least
                     K + 1 of them (n centred snapshots span at most n - 1 directions; with
                     checkpoints every 100 of 2,000 steps the window reaches step 400, 20%)
    another seed's   the top-K centred PCA directions of another run of the same model
                     (``drift_directions`` of its snapshots): the experiments' choice of run
    random + drift   the unit vector along theta_T - theta_0, then K - 1 of the K random
                     directions, orthonormalised in that order (QR): K directions, as many
                     as every other basis, and one of them knows the end exactly
    random           K random orthonormal directions (``functional.random_directions``)

Each basis is per matrix, V [D,K'] with orthonormal columns, K' <= K, nested: the first k
columns of a basis for K are that basis for k (so one basis for the largest k serves a
curve over k).

Shape letters: n snapshots, D one matrix's flattened entries, k directions.
"""
from __future__ import annotations

import numpy as np

from .functional import rebuild
from .pca import pca_directions

EARLY_SHARE = 0.15      # the "first 10-20% of the run"


def early_count(steps, k: int, share: float = EARLY_SHARE) -> int:
    """How many leading snapshots (at ``steps``, ascending) form the early window for k
    directions: those at step <= share x the last step, at least k + 1, at most all."""
    steps = np.asarray(steps)
    n = int(np.sum(steps <= share * steps[-1]))
    return int(min(len(steps), max(n, k + 1)))


def early_directions(X, steps, k: int, window_k: int | None = None, share: float = EARLY_SHARE) -> np.ndarray:
    """[D,k'] top-k centred PCA directions of the early snapshots X[:n] [n,D] (k' <= k and
    <= n - 1). The window is sized for ``window_k`` directions (default k): a curve over
    many k reads one window, sized for the k it decides at."""
    n = early_count(steps, k if window_k is None else window_k, share)
    return pca_directions(np.asarray(X)[:n], k)


def drift_and_random(X, R) -> np.ndarray:
    """[D,k] orthonormal: the unit vector along theta_T - theta_0 (X[-1] - X[0], X [n,D]),
    then the first k - 1 columns of the random R [D,k], by QR in that order (column 0 is
    the drift's direction, signed along it). A matrix that did not move: R itself."""
    drift = np.asarray(X[-1], dtype=np.float64) - np.asarray(X[0], dtype=np.float64)
    norm = float(np.linalg.norm(drift))
    if norm == 0.0:
        return np.asarray(R, dtype=np.float64)
    M = np.column_stack([drift / norm, R[:, :R.shape[1] - 1]])          # [D,k]
    Q, T = np.linalg.qr(M)
    return Q * np.sign(np.diag(T))


def rebuilt_curve(blocks: dict, bases: dict, accuracy, ks) -> list:
    """[accuracy at each k in ks] of the network with each matrix rebuilt as
    theta_0 + V_k V_k^T (theta_T - theta_0), V_k the first k columns of ``bases[name]``
    (all it has if fewer). blocks: {name: X [n,D]} (X[0] theta_0, X[-1] theta_T)."""
    return [float(accuracy({name: rebuild(X[0], X[-1], bases[name][:, :k]) for name, X in blocks.items()}))
            for k in ks]


def partner_index(seeds, i: int, n_seeds: int):
    """Which of the runs (their ``seeds``, in order) lends run i its basis: the one with seed
    (seeds[i] + 1) mod n_seeds, else the next run after i (cyclic) if that seed is missing
    (diverged); None when there is no other run."""
    want = (seeds[i] + 1) % n_seeds
    if want != seeds[i] and want in seeds:
        return list(seeds).index(want)
    j = (i + 1) % len(seeds)
    return None if j == i else j
