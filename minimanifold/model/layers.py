"""Forward/backward pairs for the model's ops other than attention (paper §3.2): embedding,
LayerNorm, the GELU MLP, unembedding and cross-entropy (attention: ``attention.py``).

Shape legend: b batch, t query position, s key position, d d_model, h head, e d_head,
f d_mlp, v d_vocab, c d_vocab_out (classes). ``n`` = b*t when rows are flattened.

Each ``*_forward`` returns ``(out, cache)``; each ``*_backward(dout, cache)`` returns the
gradients of its inputs, named ``d`` + the forward name. Caches hold exactly what the
backward reads. No function keeps state.
"""
from __future__ import annotations

import math
from typing import NamedTuple

from .backend import xp_of

LN_EPS = 1e-5


# --- embedding: x = W_E[tokens] + W_pos[:T] ---------------------------------------------

class EmbedCache(NamedTuple):
    tokens: object   # [b,t]
    d_vocab: int
    n_ctx: int


def embed_forward(tokens, W_E, W_pos):
    T = tokens.shape[1]
    x = W_E[tokens] + W_pos[:T]                                   # [b,t,d]
    return x, EmbedCache(tokens, W_E.shape[0], W_pos.shape[0])


def embed_backward(dx, cache):
    """dW_E[v] = sum of dx over every position holding token v. Written as onehot^T @ dx,
    which accumulates repeated tokens like np.add.at but runs as one GEMM (~10x faster)."""
    xp = xp_of(dx)
    b, T, d = dx.shape
    onehot = (cache.tokens.reshape(1, b * T) == xp.arange(cache.d_vocab)[:, None])  # [v,n]
    dW_E = onehot.astype(dx.dtype) @ dx.reshape(b * T, d)         # [v,d]
    dW_pos = xp.zeros((cache.n_ctx, d), dtype=dx.dtype)
    dW_pos[:T] = xp.einsum("btd->td", dx)
    return dW_E, dW_pos


# --- layer norm (eps 1e-5, biased variance) -----------------------------------------------
# Row sums use einsum: for short rows it is ~5x faster than x.sum(-1) in NumPy.

class LNCache(NamedTuple):
    xhat: object     # [...,d] normalised input
    rstd: object     # [...,1] 1/sqrt(var + eps)
    w: object        # [d]


def layernorm_forward(x, w, b):
    xp = xp_of(x)
    d = x.shape[-1]
    xc = x - xp.einsum("...d->...", x)[..., None] * (1.0 / d)    # [...,d] centred
    var = xp.einsum("...d,...d->...", xc, xc)[..., None] * (1.0 / d)  # [...,1] biased
    rstd = 1.0 / xp.sqrt(var + LN_EPS)                            # [...,1]
    xhat = xc
    xhat *= rstd                                                  # [...,d] in place
    out = xhat * w
    out += b
    return out, LNCache(xhat, rstd, w)


def layernorm_backward(dout, cache):
    xp = xp_of(dout)
    xhat, rstd, w = cache
    d = xhat.shape[-1]
    lead = "".join("abcfgijk"[:dout.ndim - 1])
    db = xp.einsum(f"{lead}d->d", dout)                           # [d]
    dw = xp.einsum(f"{lead}d,{lead}d->d", dout, xhat)             # [d]
    dxhat = dout * w                                              # [...,d]
    # out = xhat*w + b, xhat = (x - mean) * rstd  =>
    # dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
    mean_dxhat = xp.einsum("...d->...", dxhat)[..., None] * (1.0 / d)
    mean_dxhat_xhat = xp.einsum("...d,...d->...", dxhat, xhat)[..., None] * (1.0 / d)
    dx = xhat * mean_dxhat_xhat
    dx += mean_dxhat
    xp.subtract(dxhat, dx, out=dx)
    dx *= rstd
    return dx, dw, db


# --- MLP (standard variant): gelu_tanh(a W_in + b_in) W_out + b_out ------------------------

GELU_C = math.sqrt(2.0 / math.pi)


def gelu_forward(x):
    """TransformerLens ``gelu_new``: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    xp = xp_of(x)
    th = xp.tanh(GELU_C * (x + 0.044715 * (x * x * x)))          # x*x*x: x**3 is ~250x slower
    return 0.5 * x * (1.0 + th), (x, th)


def gelu_backward(dout, cache):
    x, th = cache
    dinner = GELU_C * (1.0 + 3 * 0.044715 * x * x)
    return dout * (0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * dinner)


class MLPCache(NamedTuple):
    a: object        # [n,d]
    W_in: object     # [d,f]
    W_out: object    # [f,d]
    act: object      # [n,f] gelu output
    gelu: tuple      # gelu cache


def mlp_forward(a, W_in, b_in, W_out, b_out):
    shape = a.shape
    a2 = a.reshape(-1, shape[-1])                                 # [n,d]
    pre = a2 @ W_in + b_in                                        # [n,f]
    act, gcache = gelu_forward(pre)                               # [n,f]
    out = act @ W_out + b_out                                     # [n,d]
    return out.reshape(shape), MLPCache(a2, W_in, W_out, act, gcache)


def mlp_backward(dout, cache):
    a2, W_in, W_out, act, gcache = cache
    shape = dout.shape
    dout2 = dout.reshape(-1, shape[-1])                           # [n,d]
    dW_out = act.T @ dout2                                        # [f,d]
    db_out = dout2.sum(axis=0)
    dpre = gelu_backward(dout2 @ W_out.T, gcache)                 # [n,f]
    dW_in = a2.T @ dpre                                           # [d,f]
    db_in = dpre.sum(axis=0)
    da = (dpre @ W_in.T).reshape(shape)                           # [...,d]
    return da, dW_in, db_in, dW_out, db_out


# --- unembed + mean cross-entropy ----------------------------------------------------------

def unembed_forward(x, W_U, b_U):
    return x @ W_U + b_U, x                                       # [b,c]


def unembed_backward(dlogits, x, W_U):
    return dlogits @ W_U.T, x.T @ dlogits, dlogits.sum(axis=0)    # dx, dW_U, db_U


def cross_entropy_forward(logits, targets):
    """Mean over the batch of -log softmax(logits)[target]. logits [b,c], targets [b]."""
    xp = xp_of(logits)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    logp = shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))   # [b,c]
    rows = xp.arange(logits.shape[0])
    loss = -logp[rows, targets].mean()
    return loss, (logp, targets)


def cross_entropy_backward(cache):
    xp = xp_of(cache[0])
    logp, targets = cache
    dlogits = xp.exp(logp)                                        # softmax
    dlogits[xp.arange(logp.shape[0]), targets] -= 1.0
    return dlogits / logp.shape[0]
