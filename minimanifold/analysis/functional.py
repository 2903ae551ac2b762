"""Functional dimension (issue 10 §3): variance is not function. Does the subspace where
the trajectory varies carry what the network computes?

For k = 1, 2, ...: rebuild each attention matrix as theta_0 + P_k (theta_T - theta_0),
P_k the projector onto the top-k trajectory PCA directions of that matrix's own
snapshots (other parameters at their final values), and measure accuracy. k* is the
smallest k that recovers ``share`` (0.9) of the final accuracy. Beside it, two controls:
k random orthonormal directions in the same blocks (the drift projected onto them, a
share of about sqrt(k/D) of its norm), and the same directions norm-matched (that
projection scaled to the norm of the PCA projection's, block by block: as far from
theta_0, in random directions). Two PCAs: centred (eq 1, variance about the mean
snapshot) and uncentred (the second moment of the drift theta_t - theta_0, whose top
direction is nearly theta_T - theta_0 itself when the drift runs mostly one way).

Shape letters: n snapshots, D one matrix's flattened entries, k directions.
"""
from __future__ import annotations

import numpy as np

from .pca import pca_directions


def drift_directions(X, k: int, centred: bool = True) -> np.ndarray:
    """[D,k'] orthonormal top directions (k' <= k, rounding-level ones dropped) of the
    snapshots X [n,D]: centred PCA, or uncentred PCA of the drift X - X[0]. The drift's
    second moment Y^T Y / n is the centred covariance of the symmetric set [Y; -Y] (its
    mean is 0), so both go through ``pca_directions``."""
    if centred:
        return pca_directions(X, k)
    Y = np.asarray(X, dtype=np.float64) - np.asarray(X[0], dtype=np.float64)
    return pca_directions(np.concatenate([Y, -Y]), k)


def random_directions(D: int, k: int, rng) -> np.ndarray:
    """[D,k] orthonormal, uniformly random (QR of a Gaussian matrix)."""
    Q, R = np.linalg.qr(rng.standard_normal((D, k)))
    return Q * np.sign(np.diag(R))


def rebuild(theta0, thetaT, V) -> np.ndarray:
    """theta_0 + V V^T (theta_T - theta_0) for orthonormal V [D,k]: the end point with the
    drift outside span(V) removed."""
    theta0 = np.asarray(theta0, dtype=np.float64)
    return theta0 + V @ (V.T @ (np.asarray(thetaT, dtype=np.float64) - theta0))


def rebuild_norm_matched(theta0, thetaT, R, V) -> np.ndarray:
    """theta_0 + s R R^T (theta_T - theta_0), s making the displacement as long as the one
    V V^T (theta_T - theta_0) that ``rebuild`` gives for V: random directions R carrying
    the PCA projection's drift norm. A zero projection onto R stays zero."""
    theta0 = np.asarray(theta0, dtype=np.float64)
    drift = np.asarray(thetaT, dtype=np.float64) - theta0
    d_rand, target = R @ (R.T @ drift), np.linalg.norm(V.T @ drift)       # |V V^T x| = |V^T x|
    norm = np.linalg.norm(d_rand)
    return theta0 + (d_rand * (target / norm) if norm > 0 else d_rand)


def functional_curve(blocks: dict, accuracy, ks, seed: int = 0, centred: bool = True) -> dict:
    """Accuracy of the rebuilt network for each k in ``ks``.

    blocks:   {name: X [n,D]}, each matrix's snapshots; X[0] is theta_0, X[-1] theta_T.
    accuracy: fn({name: flat matrix [D]}) -> accuracy of the network with those matrices
              (every other parameter at its final value).
    Returns {"k", "pca", "random", "random_matched", "drift_share" (lists over ks),
    "final", "k_star", "k_star_random", "k_star_random_matched"}: "random_matched" the
    same random directions norm-matched (``rebuild_norm_matched``), "drift_share" the
    share of |theta_T - theta_0|^2 (over all blocks) in the top-k directions. The random
    directions are drawn afresh per block and k from ``seed``.
    """
    ks = [int(k) for k in ks]
    rng = np.random.default_rng([seed, 7])
    final = float(accuracy({name: np.asarray(X[-1], dtype=np.float64) for name, X in blocks.items()}))
    top = {name: drift_directions(X, max(ks), centred) for name, X in blocks.items()}
    drift = {name: np.asarray(X[-1], dtype=np.float64) - np.asarray(X[0], dtype=np.float64)
             for name, X in blocks.items()}
    total = sum(float(d @ d) for d in drift.values())
    pca, rand, matched, share = [], [], [], []
    for k in ks:
        R = {name: random_directions(X.shape[1], k, rng) for name, X in blocks.items()}
        pca.append(float(accuracy({name: rebuild(X[0], X[-1], top[name][:, :k]) for name, X in blocks.items()})))
        rand.append(float(accuracy({name: rebuild(X[0], X[-1], R[name]) for name, X in blocks.items()})))
        matched.append(float(accuracy({name: rebuild_norm_matched(X[0], X[-1], R[name], top[name][:, :k])
                                       for name, X in blocks.items()})))
        share.append(sum(float(np.sum((top[n][:, :k].T @ d) ** 2)) for n, d in drift.items()) / total
                     if total > 0 else 1.0)
    return {"k": ks, "pca": pca, "random": rand, "random_matched": matched, "drift_share": share, "final": final,
            "k_star": k_star(ks, pca, final), "k_star_random": k_star(ks, rand, final),
            "k_star_random_matched": k_star(ks, matched, final)}


def k_star(ks, accs, final: float, share: float = 0.9):
    """The smallest k whose accuracy is >= share * final; None if none in ``ks`` is."""
    for k, a in zip(ks, accs):
        if a >= share * final:
            return k
    return None
