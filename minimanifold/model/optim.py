"""Optimizers. Plain SGD, theta <- theta - lr * grad, is the paper's (§3.2) and the one
its commutators (§3.3.2) are defined for. AdamW is offered because the authors' code
trained with it (lr 3e-4, weight decay 0.01); it is NOT the paper's stated optimizer.
Both update ``params`` in place; state is a plain dict of arrays (saved in checkpoints).

A step-size schedule keeps SGD plain: theta <- theta - eta_t * grad, with eta_t from
``lr_at`` (no momentum, no adaptive scaling), so the commutator at step t uses eta_t.
"""
from __future__ import annotations

import bisect
import math

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


LR_SCHEDULES = ("constant", "warmup", "cosine")


PER_STAGE = "/stage"


def parse_lr_schedule(spec: str) -> tuple:
    """'constant' | 'warmup:W' | 'cosine:W', the last two optionally with '/stage' (restart
    in every curriculum stage) -> (kind, W). Raises ValueError naming the field."""
    text = str(spec)
    if text.endswith(PER_STAGE) and text.partition(":")[0] in ("warmup", "cosine"):
        text = text[:-len(PER_STAGE)]
    kind, _, arg = text.partition(":")
    if kind == "constant" and not arg:
        return kind, 0
    if kind in ("warmup", "cosine") and arg.isdigit():
        return kind, int(arg)
    raise ValueError(f"lr_schedule must be 'constant', 'warmup:W' or 'cosine:W' (W warmup steps; "
                     f"'/stage' appended restarts it in every curriculum stage), got {spec!r}")


def lr_words(spec: str) -> str:
    """The step-size schedule in words, for captions: "constant", "warmup 1000 steps, then
    cosine decay to 0" ("..., restarted in each curriculum stage" with '/stage')."""
    kind, w = parse_lr_schedule(spec)
    words = {"constant": "constant", "warmup": f"warmup {w} steps, then constant",
             "cosine": f"warmup {w} steps, then cosine decay to 0"}[kind]
    return words + (", restarted in each curriculum stage" if str(spec).endswith(PER_STAGE) else "")


def lr_at(spec: str, lr: float, step: int, total: int, stage_starts=None) -> float:
    """eta for the update at ``step`` (0-based) of ``total``.

    constant   eta_t = lr
    warmup:W   eta_t = lr * (t+1)/W for t < W, then lr
    cosine:W   the same warmup, then lr * (1 + cos(pi * (t-W) / (total-W))) / 2: from lr at
               t = W down towards 0 at t = total (the last update is still positive)

    With '/stage' (e.g. 'cosine:1000/stage') the schedule restarts at each of
    ``stage_starts`` (a curriculum's stage boundaries, ``Schedule.boundaries()``): t counts
    from the stage's start and total is the stage's length, so every stage is trained as a
    run of its own length would be. Without stage starts it is the plain schedule.
    """
    kind, w = parse_lr_schedule(spec)
    if str(spec).endswith(PER_STAGE) and stage_starts is not None and len(stage_starts) > 1:
        i = max(0, bisect.bisect_right(stage_starts, step) - 1)
        end = stage_starts[i + 1] if i + 1 < len(stage_starts) else total
        step, total = step - stage_starts[i], max(1, end - stage_starts[i])
    if kind == "constant":
        return lr
    if step < w:
        return lr * (step + 1) / w
    if kind == "warmup" or total <= w:
        return lr
    return lr * 0.5 * (1.0 + math.cos(math.pi * (step - w) / (total - w)))
