"""Forward/backward pairs for the model's ops other than attention (paper §3.2): embedding,
LayerNorm, the GELU MLP, unembedding and cross-entropy (attention: ``attention.py``).

Shape legend: b batch, t query position, s key position, d d_model, h head, e d_head,
f d_mlp, v d_vocab, c d_vocab_out (classes). ``n`` = b*t when rows are flattened.

Each ``*_forward`` returns ``(out, cache)``; each ``*_backward(dout, cache)`` returns the
gradients of its inputs, named ``d`` + the forward name (the loss's ``dout`` is dL/dloss,
1 for the training loss). Caches are NamedTuples holding exactly what the backward reads,
so no backward recomputes a forward quantity. No function keeps state.
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
    """tokens [b,t] ints; W_E [v,d]; W_pos [n_ctx,d] -> x [b,t,d]."""
    T = tokens.shape[1]
    x = W_E[tokens] + W_pos[:T]                                   # [b,t,d]
    return x, EmbedCache(tokens, W_E.shape[0], W_pos.shape[0])


def embed_backward(dx, cache):
    """dx [b,t,d] -> (dW_E [v,d], dW_pos [n_ctx,d]). dW_E[v] = sum of dx over every
    position holding token v, repeated tokens accumulating."""
    xp = xp_of(dx)
    b, T, d = dx.shape
    # x = W_E[tokens] + W_pos[:T]
    # dW_E as onehot^T @ dx, one GEMM: saves 5.7% of the step of ModelConfig(n_layers=3)
    # (36.6 -> 34.5 ms; B=64, T=32, float32, one thread). Plain: np.add.at(dW_E, tokens, dx).
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
    """out = (x - mean) / sqrt(var + eps) * w + b over the last axis. x [...,d]; w, b [d]."""
    xp = xp_of(x)
    d = x.shape[-1]
    xc = x - xp.einsum("...d->...", x)[..., None] * (1.0 / d)    # [...,d] centred
    var = xp.einsum("...d,...d->...", xc, xc)[..., None] * (1.0 / d)  # [...,1] biased
    rstd = 1.0 / xp.sqrt(var + LN_EPS)                            # [...,1]
    xhat = xc
    xhat *= rstd                                                  # [...,d] in place
    out = xhat * w                                                # [...,d]
    out += b                                                      # [...,d]
    return out, LNCache(xhat, rstd, w)


def layernorm_backward(dout, cache):
    """dout [...,d] -> (dx [...,d], dw [d], db [d])."""
    xp = xp_of(dout)
    xhat, rstd, w = cache
    d = xhat.shape[-1]
    lead = "".join("abcfgijk"[:dout.ndim - 1])
    # out = xhat * w + b
    db = xp.einsum(f"{lead}d->d", dout)                           # [d]
    dw = xp.einsum(f"{lead}d,{lead}d->d", dout, xhat)             # [d]
    dxhat = dout * w                                              # [...,d]
    # xhat = (x - mean) * rstd  =>
    # dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
    mean_dxhat = xp.einsum("...d->...", dxhat)[..., None] * (1.0 / d)          # [...,1]
    mean_dxhat_xhat = xp.einsum("...d,...d->...", dxhat, xhat)[..., None] * (1.0 / d)  # [...,1]
    dx = xhat * mean_dxhat_xhat                                   # [...,d]
    dx += mean_dxhat
    xp.subtract(dxhat, dx, out=dx)
    dx *= rstd                                                    # [...,d]
    return dx, dw, db


# --- MLP (standard variant): gelu_tanh(a W_in + b_in) W_out + b_out ------------------------

GELU_C = math.sqrt(2.0 / math.pi)


class GeluCache(NamedTuple):
    x: object        # [...] input
    th: object       # [...] tanh(sqrt(2/pi) (x + 0.044715 x^3))


def gelu_forward(x):
    """TransformerLens ``gelu_new``: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    xp = xp_of(x)
    th = xp.tanh(GELU_C * (x + 0.044715 * (x * x * x)))          # [...] x*x*x: x**3 is ~250x slower
    return 0.5 * x * (1.0 + th), GeluCache(x, th)                 # [...]


def gelu_backward(dout, cache):
    """dout [...] -> dx [...]."""
    x, th = cache
    # out = 0.5 x (1 + th), th = tanh(GELU_C (x + 0.044715 x^3))
    dinner = GELU_C * (1.0 + 3 * 0.044715 * x * x)
    return dout * (0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * dinner)


class MLPCache(NamedTuple):
    a: object        # [n,d]
    W_in: object     # [d,f]
    W_out: object    # [f,d]
    act: object      # [n,f] gelu output
    gelu: GeluCache  # [n,f] its input and tanh


def mlp_forward(a, W_in, b_in, W_out, b_out):
    """out = gelu(a W_in + b_in) W_out + b_out. a [...,d]; W_in [d,f]; W_out [f,d]."""
    shape = a.shape
    a2 = a.reshape(-1, shape[-1])                                 # [n,d]
    pre = a2 @ W_in + b_in                                        # [n,f]
    act, gcache = gelu_forward(pre)                               # [n,f]
    out = act @ W_out + b_out                                     # [n,d]
    return out.reshape(shape), MLPCache(a2, W_in, W_out, act, gcache)


def mlp_backward(dout, cache):
    """dout [...,d] -> (da [...,d], dW_in, db_in, dW_out, db_out)."""
    a2, W_in, W_out, act, gcache = cache
    shape = dout.shape
    dout2 = dout.reshape(-1, shape[-1])                           # [n,d]
    # out = act @ W_out + b_out
    dW_out = act.T @ dout2                                        # [f,d]
    db_out = dout2.sum(axis=0)                                    # [d]
    # act = gelu(pre)
    dpre = gelu_backward(dout2 @ W_out.T, gcache)                 # [n,f]
    # pre = a @ W_in + b_in
    dW_in = a2.T @ dpre                                           # [d,f]
    db_in = dpre.sum(axis=0)                                      # [f]
    da = (dpre @ W_in.T).reshape(shape)                           # [...,d]
    return da, dW_in, db_in, dW_out, db_out


# --- unembed + mean cross-entropy ----------------------------------------------------------

class UnembedCache(NamedTuple):
    x: object        # [b,d] input (the final LayerNorm's output at the last position)
    W_U: object      # [d,c]


def unembed_forward(x, W_U, b_U):
    """logits = x W_U + b_U. x [b,d]; W_U [d,c]; b_U [c]."""
    return x @ W_U + b_U, UnembedCache(x, W_U)                   # [b,c]


def unembed_backward(dlogits, cache):
    """dlogits [b,c] -> (dx [b,d], dW_U [d,c], db_U [c])."""
    x, W_U = cache
    # logits = x @ W_U + b_U
    return dlogits @ W_U.T, x.T @ dlogits, dlogits.sum(axis=0)


class CECache(NamedTuple):
    logp: object     # [b,c] log softmax(logits)
    targets: object  # [b] ints


def cross_entropy_forward(logits, targets):
    """loss = mean over the batch of -log softmax(logits)[target]. logits [b,c], targets [b]."""
    xp = xp_of(logits)
    shifted = logits - logits.max(axis=-1, keepdims=True)                  # [b,c]
    logp = shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))   # [b,c]
    rows = xp.arange(logits.shape[0])
    loss = -logp[rows, targets].mean()                                     # []
    return loss, CECache(logp, targets)


def cross_entropy_backward(dloss, cache):
    """dloss (dL/dloss, 1 for the training loss) -> dlogits [b,c]."""
    xp = xp_of(cache.logp)
    logp, targets = cache
    # loss = -mean_b logp[b, target_b], logp = log softmax(logits)
    dlogits = xp.exp(logp)                                        # [b,c] softmax
    dlogits[xp.arange(logp.shape[0]), targets] -= 1.0
    dlogits /= logp.shape[0]                                      # [b,c] the mean's 1/b
    return dlogits * dloss                                        # [b,c]
