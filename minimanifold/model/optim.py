"""Optimizers. Plain SGD, theta <- theta - lr * grad, is the paper's (§3.2) and the one
its commutators (§3.3.2) are defined for. AdamW is offered because the authors' code
trained with it (lr 3e-4, weight decay 0.01); it is NOT the paper's stated optimizer.
Both update ``params`` in place; state is a plain dict of arrays (saved in checkpoints).
"""
from __future__ import annotations

from .backend import xp_of

OPTIMIZERS = ("sgd", "adamw")
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


def init_state(name: str, params: dict) -> dict:
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
    if name == "sgd":
        return {}
    xp = xp_of(next(iter(params.values())))
    state = {"t": xp.zeros((), dtype="int64")}
    for k, v in params.items():
        state["m." + k] = xp.zeros_like(v)
        state["v." + k] = xp.zeros_like(v)
    return state


def sgd_step(params: dict, grads: dict, lr: float) -> None:
    """theta <- theta - lr * grad (paper §3.2)."""
    for k, g in grads.items():
        params[k] -= lr * g


def adamw_step(params: dict, grads: dict, state: dict, lr: float, weight_decay: float) -> None:
    """Decoupled weight decay Adam (Loshchilov & Hutter), PyTorch's AdamW semantics:
    theta <- theta - lr * (m_hat / (sqrt(v_hat) + eps) + wd * theta)."""
    xp = xp_of(next(iter(params.values())))
    b1, b2 = ADAM_BETAS
    state["t"] = state["t"] + 1
    t = int(state["t"])
    c1, c2 = 1.0 - b1 ** t, 1.0 - b2 ** t
    for k, g in grads.items():
        m, v, p = state["m." + k], state["v." + k], params[k]
        m *= b1
        m += (1.0 - b1) * g
        v *= b2
        v += (1.0 - b2) * (g * g)
        p *= 1.0 - lr * weight_decay
        p -= (lr / c1) * m / (xp.sqrt(v / c2) + ADAM_EPS)


def step(name: str, params: dict, grads: dict, state: dict, lr: float, weight_decay: float) -> None:
    if name == "sgd":
        sgd_step(params, grads, lr)
    else:
        adamw_step(params, grads, state, lr, weight_decay)
