"""The execution subspace and the commutator decomposition (paper eq 6–7, 10).

Basis: the top-k PCA directions of each attention matrix's trajectory, embedded in the
full flattened parameter vector (zeros outside that matrix). Directions of different
matrices live in disjoint coordinate blocks, so the embedded set is orthonormal as it
is; K = k x 4 x n_layers. Projections are computed block by block, never as a P x K
matrix: ||P v||^2 = sum over blocks of ||V_m^T v_m||^2.

    rho = ||P delta|| / ||delta||            (the parallel share, eq 10)
    perpendicular share = sqrt(1 - rho^2)    (the authors' figures plot 1 - rho)

Baselines for the same K: the analytic sqrt(K/P); random K-subspaces of all P
parameters; and random subspaces with the same block structure (k random directions
inside each attention matrix) — the fair comparison, since the basis lives there.
"""
from __future__ import annotations

import numpy as np

from . import pca
from ..model.transformer import attention_param_names, param_shapes


def offsets(cfg) -> dict:
    """name -> (start, stop) of each parameter in the flattened theta."""
    out, i = {}, 0
    for name, shape in param_shapes(cfg).items():
        size = int(np.prod(shape))
        out[name] = (i, i + size)
        i += size
    return out


def n_params(cfg) -> int:
    return sum(int(np.prod(s)) for s in param_shapes(cfg).values())


def execution_basis(snapshots: dict, cfg, k: int = 3) -> dict:
    """{attention matrix name: V [D_m, k]} from snapshots {name: [n, D_m]} (n >= 2)."""
    return {name: pca.pca_directions(snapshots[name], k) for name in attention_param_names(cfg)}


def embed(basis: dict, cfg) -> np.ndarray:
    """The basis as one dense [P, K] matrix (for tests and small models)."""
    off = offsets(cfg)
    cols = []
    for name, V in basis.items():
        for j in range(V.shape[1]):
            col = np.zeros(n_params(cfg))
            col[off[name][0]:off[name][1]] = V[:, j]
            cols.append(col)
    return np.stack(cols, axis=1)


def projected_norm(basis: dict, v, cfg) -> float:
    """||P v|| for a flattened vector v [P]."""
    off = offsets(cfg)
    return float(np.sqrt(sum(float(((V.T @ v[off[n][0]:off[n][1]].astype(np.float64)) ** 2).sum())
                             for n, V in basis.items())))


def rho(basis: dict, v, cfg) -> float:
    """rho = ||P v|| / ||v|| (eq 10)."""
    return projected_norm(basis, v, cfg) / float(np.linalg.norm(v.astype(np.float64)))


def random_block_basis(cfg, k: int, rng) -> dict:
    """k uniformly random orthonormal directions inside each attention matrix."""
    off = offsets(cfg)
    return {name: np.linalg.qr(rng.standard_normal((off[name][1] - off[name][0], k)))[0]
            for name in attention_param_names(cfg)}


def random_full_basis(P: int, K: int, rng) -> np.ndarray:
    """K uniformly random orthonormal directions in all P parameters [P, K]."""
    return np.linalg.qr(rng.standard_normal((P, K)))[0]


def baselines(v, cfg, k: int, block_bases: list, full_bases: list) -> dict:
    """rho of v for the three baselines (MC ones averaged over the given bases)."""
    P, K = n_params(cfg), k * len(attention_param_names(cfg))
    nv = float(np.linalg.norm(v.astype(np.float64)))
    return {"analytic": float(np.sqrt(K / P)),
            "full": float(np.mean([np.linalg.norm(Q.T @ v) / nv for Q in full_bases])),
            "block": float(np.mean([projected_norm(B, v, cfg) / nv for B in block_bases]))}


# ---- other bases for the same projection (issue 10 §5): a matrix's top-K singular pairs ----
# A weight matrix W with SVD sum_i s_i u_i v_i^T has, in its own parameter space, the
# orthonormal directions vec(u_i v_i^T) (Frobenius inner products <u_i v_i^T, u_j v_j^T> =
# delta_ij). W_Q, W_K, W_V [h,d,e] are read as d x (h e) matrices (d_model rows), W_O
# [h,e,d] as (h e) x d: the map each computes.

def matrix_view(name: str, W) -> np.ndarray:
    """The 2-D matrix an attention weight computes: [d, h*e] for W_Q/K/V, [h*e, d] for W_O."""
    W = np.asarray(W, dtype=np.float64)
    if name.endswith("W_O"):
        h, e, d = W.shape
        return W.reshape(h * e, d)
    h, d, e = W.shape
    return W.transpose(1, 0, 2).reshape(d, h * e)


def svd_basis(name: str, W, k: int) -> np.ndarray:
    """[D, k'] orthonormal: vec(u_i v_i^T) of the top-k' singular pairs of ``matrix_view``
    (k' <= k: directions of a zero singular value are dropped), in W's flattened layout."""
    W = np.asarray(W, dtype=np.float64)
    U, s, Vt = np.linalg.svd(matrix_view(name, W), full_matrices=False)
    keep = min(k, int(np.sum(s > s[0] * 1e-12))) if s.size and s[0] > 0 else 0
    cols = []
    for i in range(keep):
        M = np.outer(U[:, i], Vt[i])
        if name.endswith("W_O"):
            cols.append(M.reshape(W.shape).ravel())
        else:
            h, d, e = W.shape
            cols.append(M.reshape(d, h, e).transpose(1, 0, 2).ravel())
    return np.stack(cols, axis=1) if cols else np.zeros((W.size, 0))


def block_random_rho(v, cfg, k: int) -> float:
    """The root-mean-square rho of v over uniformly random k-subspaces inside each
    attention matrix (exact: E||P_b v_b||^2 = (k / D_b) ||v_b||^2 per block): the
    block-matched baseline without sampling."""
    off = offsets(cfg)
    v = np.asarray(v, dtype=np.float64)
    expected = sum(min(1.0, k / (off[n][1] - off[n][0])) * float(np.sum(v[off[n][0]:off[n][1]] ** 2))
                   for n in attention_param_names(cfg))
    return float(np.sqrt(expected) / np.linalg.norm(v))
