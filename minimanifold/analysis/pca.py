"""Trajectory PCA (paper §3.3.1 eq 1–2, §4.1): PCA of parameter snapshots, effective rank
(eq 2) and its relatives, random-walk nulls, and principal angles between seeds.

Shape letters: n snapshots (checkpoints), D flattened parameters, k kept directions.

PCA goes through the n x n Gram matrix of the centred snapshots, never the D x D
covariance of eq 1: Sigma = Xc^T Xc / n and G = Xc Xc^T / n share their nonzero
eigenvalues, and D is 16,384 for one matrix and hundreds of thousands for all of them.
"""
from __future__ import annotations

import numpy as np

CHUNK = 1 << 16   # columns per Gram block: bounds the float64 working copy to n x 65,536
FRACTIONS = tuple(np.round(np.arange(0.1, 1.01, 0.1), 2))   # expanding windows: first 10%, 20%, ...


def gram(X) -> np.ndarray:
    """G = Xc Xc^T / n in float64 for snapshots X [n,D] (any float dtype), centred over
    snapshots, accumulated over column blocks so no float64 copy of X is made."""
    n, D = X.shape
    G = np.zeros((n, n))
    for j in range(0, D, CHUNK):
        block = np.asarray(X[:, j:j + CHUNK], dtype=np.float64)           # [n,c]
        block = block - block.mean(axis=0)
        G += block @ block.T
    return G / n


def pca_spectrum(X) -> np.ndarray:
    """Eigenvalues of the covariance of eq 1 (the nonzero ones; n of them), descending,
    clipped at 0."""
    w = np.linalg.eigh(gram(X))[0]
    return np.clip(w[::-1], 0.0, None)


RANK_TOL = 1e-9   # a direction whose variance is below this share of the largest is rounding
ROUNDING = 8      # ... and so is one below (ROUNDING * eps of the snapshots' dtype * their norm)^2


def pca_directions(X, k: int) -> np.ndarray:
    """Top principal directions [D,k'] (orthonormal columns) of snapshots X [n,D]:
    v_i = Xc^T u_i / sqrt(n lambda_i) from the Gram eigenvectors u_i (column blocks).

    k' <= k: only directions with variance above RANK_TOL times the largest, and above the
    rounding level of the snapshots themselves, are returned. n centred snapshots span at
    most n-1 directions, and dividing a zero-variance direction by sqrt(lambda) ~ 0 would
    amplify rounding into a non-unit "direction"."""
    n, D = X.shape
    w, U = np.linalg.eigh(gram(X))
    order = np.argsort(w)[::-1][:k]
    eps = np.finfo(X.dtype).eps if np.issubdtype(X.dtype, np.floating) else np.finfo(np.float64).eps
    mean_sq = sum(float(np.square(X[:, j:j + CHUNK], dtype=np.float64).sum()) for j in range(0, D, CHUNK)) / n
    floor = max(RANK_TOL * (w[order[0]] if len(order) else 0.0), (ROUNDING * eps) ** 2 * mean_sq)
    order = order[w[order] > floor]
    scale = np.sqrt(n * w[order])                                         # [k']
    U = U[:, order]                                                        # [n,k]
    V = np.empty((D, len(order)))
    for j in range(0, D, CHUNK):
        block = np.asarray(X[:, j:j + CHUNK], dtype=np.float64)
        V[j:j + CHUNK] = (block - block.mean(axis=0)).T @ U / scale
    return V


def expanding_window(X, fractions, threshold=0.90) -> list:
    """r_threshold of the first ceil(f * n) snapshots (at least 2) for each fraction f."""
    n = X.shape[0]
    return [rank_at(pca_spectrum(X[:max(2, int(np.ceil(f * n)))]), threshold) for f in fractions]


def stabilization_fraction(window_ranks, fractions=FRACTIONS):
    """First fraction of training from which the expanding-window r90 equals its final
    value at every later window."""
    final = window_ranks[-1]
    for i in range(len(window_ranks)):
        if all(r == final for r in window_ranks[i:]):
            return float(fractions[i])
    return 1.0


def explained_variance_ratio(lam) -> np.ndarray:
    lam = np.asarray(lam, dtype=np.float64)
    total = lam.sum()
    return lam / total if total > 0 else np.zeros_like(lam)


def rank_at(lam, threshold: float) -> int:
    """min{k : sum_{i<=k} lambda_i / sum lambda >= threshold} (eq 2 with 0.90)."""
    cum = np.cumsum(explained_variance_ratio(lam))
    return int(np.searchsorted(cum, threshold - 1e-12) + 1)


def participation_ratio(lam) -> float:
    """(sum lambda)^2 / sum lambda^2."""
    lam = np.asarray(lam, dtype=np.float64)
    return float(lam.sum() ** 2 / (lam ** 2).sum())


def entropy_rank(lam) -> float:
    """exp of the Shannon entropy of the explained-variance ratios."""
    p = explained_variance_ratio(lam)
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def summarize(lam) -> dict:
    return {"r90": rank_at(lam, 0.90), "r95": rank_at(lam, 0.95),
            "participation_ratio": participation_ratio(lam), "entropy_rank": entropy_rank(lam)}


def step_norms(X) -> np.ndarray:
    """||x_{i+1} - x_i|| of consecutive snapshots [n-1]."""
    X = np.asarray(X, dtype=np.float64)
    return np.linalg.norm(np.diff(X, axis=0), axis=1)


def random_walk(norms, D: int, rng) -> np.ndarray:
    """A walk from the origin in R^D whose i-th step has length norms[i] and a uniformly
    random direction: snapshots [len(norms)+1, D]."""
    steps = rng.standard_normal((len(norms), D))
    steps *= (np.asarray(norms) / np.linalg.norm(steps, axis=1))[:, None]
    return np.concatenate([np.zeros((1, D)), np.cumsum(steps, axis=0)])


def expected_walk_spectrum(norms) -> np.ndarray:
    """The exact null, no sampling: eigenvalues (descending) of the expected centred Gram
    matrix of a walk from the origin whose i-th step has length norms[i] and an isotropic
    direction in D >> n dimensions, E[G] = C L diag(s^2) L^T C / n (L [n, n-1] the
    cumulative sum, L[t, i] = 1 for i < t; C the centring), to which a single walk's
    spectrum concentrates. With constant steps the k-th explained variance is
    3 csc^2(pi k / 2n) / (2 (n^2 - 1)) (Antognini & Sohl-Dickstein 2018), so r90 = 6 for
    n >~ 20 and the participation ratio tends to 5/2."""
    s2 = np.asarray(norms, dtype=np.float64) ** 2
    n = len(s2) + 1
    L = np.tril(np.ones((n, n - 1)), -1)                                  # [n, n-1]
    Lc = L - L.mean(axis=0)                                               # C L
    w = np.linalg.eigvalsh((Lc * s2) @ Lc.T / n)
    return np.clip(w[::-1], 0.0, None)


def random_walk_null(norms, D: int, n_draws: int = 5, seed: int = 0, threshold=0.90) -> dict:
    """r_threshold of random walks with the given step norms ("matched") and with every
    step the mean norm ("constant"): mean and sd over ``n_draws`` walks; and their
    participation ratios ("pr_mean", "pr_sd"; about 2.5 for a long walk in high dimension)."""
    rng = np.random.default_rng([seed, 3])
    norms = np.asarray(norms, dtype=np.float64)
    out = {}
    for kind, ns in (("matched", norms), ("constant", np.full_like(norms, norms.mean()))):
        lams = [pca_spectrum(random_walk(ns, D, rng)) for _ in range(n_draws)]
        r = [rank_at(lam, threshold) for lam in lams]
        pr = [participation_ratio(lam) for lam in lams]
        out[kind] = {"mean": float(np.mean(r)), "sd": float(np.std(r)), "draws": r,
                     "pr_mean": float(np.mean(pr)), "pr_sd": float(np.std(pr))}
    return out


def shuffled_increments(X, rng) -> np.ndarray:
    """The run's own increments x_{t+1} - x_t in a random order, summed from x_0: snapshots
    [n,D] with the same step norms and directions and the same end point, and no temporal
    order. A null for "the order of training makes the collapse": a trajectory that only
    drifts along few directions keeps its low r90 under it (a straight line keeps r90 = 1)."""
    X = np.asarray(X, dtype=np.float64)
    steps = np.diff(X, axis=0)[rng.permutation(len(X) - 1)]                # [n-1,D]
    return np.concatenate([X[:1], X[0] + np.cumsum(steps, axis=0)])


def shuffled_null(X, n_draws: int = 5, seed: int = 0, threshold=0.90) -> dict:
    """r_threshold and participation ratio of ``n_draws`` shuffled-increment trajectories of
    snapshots X [n,D]: {"mean", "sd", "draws", "pr_mean", "pr_sd"}, as ``random_walk_null``."""
    rng = np.random.default_rng([seed, 5])
    lams = [pca_spectrum(shuffled_increments(X, rng)) for _ in range(n_draws)]
    r = [rank_at(lam, threshold) for lam in lams]
    pr = [participation_ratio(lam) for lam in lams]
    return {"mean": float(np.mean(r)), "sd": float(np.std(r)), "draws": r,
            "pr_mean": float(np.mean(pr)), "pr_sd": float(np.std(pr))}


def principal_angles(A, B) -> np.ndarray:
    """Principal angles (radians, ascending) between span(A) and span(B), A [D,k], B [D,k']."""
    Qa, _ = np.linalg.qr(A)
    Qb, _ = np.linalg.qr(B)
    s = np.linalg.svd(Qa.T @ Qb, compute_uv=False)
    return np.arccos(np.clip(s, -1.0, 1.0))


def random_subspace_angles(D: int, k: int, n_draws: int = 5, seed: int = 0) -> np.ndarray:
    """Principal angles between pairs of uniformly random k-subspaces of R^D [n_draws,k]."""
    rng = np.random.default_rng([seed, 4])
    return np.stack([principal_angles(rng.standard_normal((D, k)), rng.standard_normal((D, k)))
                     for _ in range(n_draws)])
