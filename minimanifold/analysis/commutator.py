"""SGD commutators (paper §3.3.2, eq 3–5) and the second-order check.

    theta_A  = theta   - eta grad L(theta;   A)        (eq 4)
    theta_AB = theta_A - eta grad L(theta_A; B)        (eq 5)
    delta    = theta_AB - theta_BA                     (eq 3)

For small eta, delta / eta^2 -> H_B g_A - H_A g_B (H_X the Hessian of L(.; X) at theta,
g_X its gradient), which ``second_order`` computes with Hessian-vector products by
central differences of the hand-written gradient.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..model.transformer import loss_and_grads


def _axpy(params, grads, alpha):
    """params + alpha * grads, as a new dict."""
    return {k: params[k] + alpha * grads[k] for k in params}


def _norm(tree) -> float:
    return float(np.sqrt(sum(float((v.astype(np.float64) ** 2).sum()) for v in tree.values())))


class CommutatorSample(NamedTuple):
    delta: dict      # theta_AB - theta_BA, keyed like params
    g_A: dict        # grad L(theta; A)
    g_B: dict        # grad L(theta; B)
    norm: float      # ||delta||
    defect: float    # ||delta|| / (||eta g_A|| ||eta g_B||)
    cosine: float    # cos(g_A, g_B)


def commutator(params: dict, batch_A, batch_B, lr: float, cfg) -> CommutatorSample:
    """delta = theta_AB - theta_BA (eq 3–5) from four evaluations of the hand-written
    gradient. ``batch_X`` is (tokens, targets). Written as a difference of gradients,
    delta = eta [(g_B(theta) - g_B(theta_A)) - (g_A(theta) - g_A(theta_B))], which is the
    same number without subtracting two nearly equal parameter vectors."""
    def grad(p, batch):
        return loss_and_grads(p, batch[0], batch[1], cfg)[1]
    g_A, g_B = grad(params, batch_A), grad(params, batch_B)
    g_B_at_A = grad(_axpy(params, g_A, -lr), batch_B)
    g_A_at_B = grad(_axpy(params, g_B, -lr), batch_A)
    delta = {k: lr * ((g_B[k] - g_B_at_A[k]) - (g_A[k] - g_A_at_B[k])) for k in params}
    n, na, nb = _norm(delta), _norm(g_A), _norm(g_B)
    dot = sum(float((g_A[k].astype(np.float64) * g_B[k]).sum()) for k in params)
    return CommutatorSample(delta, g_A, g_B, n, n / (lr * na * lr * nb), dot / (na * nb))


def commutator_direct(params: dict, batch_A, batch_B, lr: float, cfg) -> dict:
    """theta_AB - theta_BA exactly as eq 3–5 write it (for checking ``commutator``)."""
    def step(p, batch):
        return _axpy(p, loss_and_grads(p, batch[0], batch[1], cfg)[1], -lr)
    ab = step(step(params, batch_A), batch_B)
    ba = step(step(params, batch_B), batch_A)
    return {k: ab[k] - ba[k] for k in params}


def hvp(params: dict, batch, v: dict, cfg, eps: float = 1e-4) -> dict:
    """H v for the Hessian of L(.; batch) at params, by central differences of the
    gradient: (g(theta + eps v) - g(theta - eps v)) / (2 eps). Use float64 params."""
    gp = loss_and_grads(_axpy(params, v, eps), batch[0], batch[1], cfg)[1]
    gm = loss_and_grads(_axpy(params, v, -eps), batch[0], batch[1], cfg)[1]
    return {k: (gp[k] - gm[k]) / (2 * eps) for k in params}


def second_order(params: dict, batch_A, batch_B, cfg) -> dict:
    """H_B g_A - H_A g_B: the limit of delta / eta^2 as eta -> 0."""
    g_A = loss_and_grads(params, batch_A[0], batch_A[1], cfg)[1]
    g_B = loss_and_grads(params, batch_B[0], batch_B[1], cfg)[1]
    hb, ha = hvp(params, batch_B, g_A, cfg), hvp(params, batch_A, g_B, cfg)
    return {k: hb[k] - ha[k] for k in params}
