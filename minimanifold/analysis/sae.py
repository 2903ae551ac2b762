"""Sparse autoencoder (paper §3.4, eq 8), hand-differentiated, with SAELens's names.

Shape letters: n examples, d input width (d_model), f latents (d_sae).

    h     = ReLU(x W_enc + b_enc)                    # [n,f]   (eq 8's h = ReLU(W_e x + b_e))
    x_hat = h W_dec + b_dec                          # [n,d]
    L     = mean_n ||x_hat - x||^2 + lam * mean_n ||h||_1

Trained with Adam (lr 1e-3): the L1 term makes plain SGD slow and badly conditioned,
and Adam is what SAE practice (SAELens, Anthropic's dictionary-learning work) uses. The
rows of W_dec (the latent directions) are renormalised to unit norm after every step,
so the L1 penalty cannot be dodged by shrinking h and growing W_dec.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..model.optim import adamw_step, init_state


def init_sae(d: int, f: int, seed: int) -> dict:
    rng = np.random.default_rng([seed, 8])
    W_dec = rng.standard_normal((f, d))
    W_dec /= np.linalg.norm(W_dec, axis=1, keepdims=True)
    return {"W_enc": W_dec.T.copy(), "b_enc": np.zeros(f), "W_dec": W_dec, "b_dec": np.zeros(d)}


def encode(sae, x):
    return np.maximum(x @ sae["W_enc"] + sae["b_enc"], 0.0)                # [n,f]


def decode(sae, h):
    return h @ sae["W_dec"] + sae["b_dec"]                                 # [n,d]


class SAECache(NamedTuple):
    x: np.ndarray
    h: np.ndarray
    x_hat: np.ndarray


def sae_forward(sae, x, lam):
    """(loss, cache): eq 8 averaged over the n rows of x."""
    h = encode(sae, x)
    x_hat = decode(sae, h)
    loss = ((x_hat - x) ** 2).sum(axis=1).mean() + lam * np.abs(h).sum(axis=1).mean()
    return float(loss), SAECache(x, h, x_hat)


def sae_backward(sae, cache, lam) -> dict:
    x, h, x_hat = cache
    n = x.shape[0]
    dx_hat = 2.0 * (x_hat - x) / n                                         # [n,d]
    grads = {"W_dec": h.T @ dx_hat, "b_dec": dx_hat.sum(axis=0)}
    dpre = dx_hat @ sae["W_dec"].T                                        # [n,f]
    dpre += lam / n                         # d(lam |h|)/dh = lam for h > 0 (h >= 0 always)
    dpre *= h > 0                                                          # ReLU
    grads["W_enc"] = x.T @ dpre
    grads["b_enc"] = dpre.sum(axis=0)
    return grads


def train_sae(x, f: int, lam: float, seed: int, steps=1500, batch=256, lr=1e-3) -> dict:
    """An SAE with f latents fitted to rows of x [n,d], in x's dtype (float32 for the
    model's activations; the gradient check runs in float64)."""
    sae = {k: v.astype(x.dtype) for k, v in init_sae(x.shape[1], f, seed).items()}
    sae["b_dec"] = x.mean(axis=0)
    state = init_state("adamw", sae)
    rng = np.random.default_rng([seed, 9])
    for _ in range(steps):
        xb = x[rng.integers(0, x.shape[0], batch)]
        _, cache = sae_forward(sae, xb, lam)
        adamw_step(sae, sae_backward(sae, cache, lam), state, lr, 0.0)
        sae["W_dec"] /= np.linalg.norm(sae["W_dec"], axis=1, keepdims=True)
    return sae


def metrics(sae, x) -> dict:
    """SAELens's names: fraction of variance unexplained, L0, dead latents."""
    h = encode(sae, x)
    x_hat = decode(sae, h)
    fvu = ((x - x_hat) ** 2).sum() / ((x - x.mean(axis=0)) ** 2).sum()
    active = h > 0
    return {"fvu": float(fvu), "l0": float(active.sum(axis=1).mean()),
            "dead_latents": int((~active.any(axis=0)).sum()), "d_sae": int(h.shape[1])}


def splice(sae, x, ablate=()):
    """x' = x + (x_hat_ablated - x_hat): the SAE's error term is kept, so only the
    ablation changes the forward; with nothing ablated x' equals x exactly."""
    h = encode(sae, x)
    h_abl = h.copy()
    h_abl[:, list(ablate)] = 0.0
    return x + (decode(sae, h_abl) - decode(sae, h))


def correlations(h, factors: dict) -> tuple:
    """Pearson |corr| of every latent with every factor: h [n,f], factors {name: [n]}.
    Returns (|r| [f, n_factors], factor names); a constant column gives 0."""
    names = list(factors)
    F = np.stack([np.asarray(factors[k], dtype=float) for k in names], axis=1)       # [n,k]
    hc, Fc = h - h.mean(0), F - F.mean(0)
    denom = np.outer(np.linalg.norm(hc, axis=0), np.linalg.norm(Fc, axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(denom > 0, (hc.T @ Fc) / denom, 0.0)
    return np.abs(r), names


def count_strong(corr, alive, columns, r: float = 0.5) -> int:
    """How many of the ``alive`` latents have |r| > ``r`` with at least one factor of
    ``columns``: corr [f, factors] (|r|, from ``correlations``), alive [live] latent indices,
    columns bool [factors]."""
    return int((corr[np.ix_(alive, np.flatnonzero(columns))] > r).any(1).sum())


def top_latents(corr, alive, columns, top: int) -> np.ndarray:
    """The ``top`` latents of ``alive`` with the largest |r| with a factor of ``columns``
    (bool [factors]), largest first; ties in index order."""
    score = corr[alive][:, np.flatnonzero(columns)].max(1)                  # [live]
    return alive[np.argsort(-score, kind="stable")[:top]]


def describe_latents(corr, names, latents, columns) -> list:
    """[{"latent", "factor", "abs_corr"}] for each of ``latents``: its strongest factor among
    ``columns`` (bool [factors]) and that |r|."""
    cols = np.flatnonzero(columns)
    return [{"latent": int(j), "factor": names[int(cols[corr[j, cols].argmax()])],
             "abs_corr": float(corr[j, cols].max())} for j in latents]
