"""Forward/backward pairs for every op of the model (paper §3.2).

Shape legend: b batch, t query position, s key position, d d_model, h head, e d_head,
f d_mlp, v d_vocab, c d_vocab_out (classes). ``n`` = b*t when rows are flattened.

Each ``*_forward`` returns ``(out, cache)``; each ``*_backward(dout, cache)`` returns the
gradients of its inputs, named ``d`` + the forward name. Caches hold exactly what the
backward reads. No function keeps state.
"""
from __future__ import annotations

import math
from typing import NamedTuple

from .backend import index_add, xp_of

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
    xp = xp_of(dx)
    b, T, d = dx.shape
    dW_E = xp.zeros((cache.d_vocab, d), dtype=dx.dtype)
    index_add(dW_E, cache.tokens.reshape(-1), dx.reshape(b * T, d))  # repeats accumulate
    dW_pos = xp.zeros((cache.n_ctx, d), dtype=dx.dtype)
    dW_pos[:T] = dx.sum(axis=0)                                   # [t,d]
    return dW_E, dW_pos


# --- layer norm (eps 1e-5, biased variance) -----------------------------------------------

class LNCache(NamedTuple):
    xhat: object     # [..., d] normalised input
    rstd: object     # [..., 1] 1/sqrt(var + eps)
    w: object        # [d]


def layernorm_forward(x, w, b):
    mean = x.mean(axis=-1, keepdims=True)                         # [...,1]
    xc = x - mean                                                 # [...,d]
    var = (xc * xc).mean(axis=-1, keepdims=True)                  # [...,1] biased
    rstd = 1.0 / (var + LN_EPS) ** 0.5                            # [...,1]
    xhat = xc * rstd                                              # [...,d]
    return xhat * w + b, LNCache(xhat, rstd, w)


def layernorm_backward(dout, cache):
    xhat, rstd, w = cache
    lead = tuple(range(dout.ndim - 1))
    db = dout.sum(axis=lead)                                      # [d]
    dw = (dout * xhat).sum(axis=lead)                             # [d]
    dxhat = dout * w                                              # [...,d]
    # out = xhat*w + b, xhat = (x - mean) * rstd  =>
    # dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
    dx = rstd * (dxhat - dxhat.mean(axis=-1, keepdims=True)
                 - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))
    return dx, dw, db


# --- causal softmax -----------------------------------------------------------------------

def causal_softmax_forward(scores):
    """Softmax over the last axis with key s > query t masked out. scores [...,t,s]."""
    xp = xp_of(scores)
    T = scores.shape[-1]
    future = xp.triu(xp.ones((T, T), dtype=bool), k=1)            # [t,s] True above diagonal
    scores = xp.where(future, -xp.inf, scores)
    scores = scores - scores.max(axis=-1, keepdims=True)
    p = xp.exp(scores)                                            # exact 0 above diagonal
    p /= p.sum(axis=-1, keepdims=True)
    return p, p


def causal_softmax_backward(dp, p):
    # d scores = p * (dp - sum_s dp*p); masked entries have p = 0, so get 0
    return p * (dp - (dp * p).sum(axis=-1, keepdims=True))


# --- attention (no biases): one fused QKV matmul -----------------------------------------

class AttnCache(NamedTuple):
    a: object        # [b,t,d] input (the LN output)
    W_QKV: object    # [d,3he] fused
    W_O: object      # [h,e,d]
    q: object        # [b,h,t,e]
    k: object        # [b,h,s,e]
    v: object        # [b,h,s,e]
    pattern: object  # [b,h,t,s]
    z: object        # [b,t,he] pattern @ v, heads side by side


def fuse_qkv(W_Q, W_K, W_V):
    """(h,d,e) x3 -> (d, 3*h*e): columns [Q heads | K heads | V heads]."""
    xp = xp_of(W_Q)
    h, d, e = W_Q.shape
    return xp.concatenate([W.transpose(1, 0, 2).reshape(d, h * e) for W in (W_Q, W_K, W_V)],
                          axis=1)


def attention_forward(a, W_Q, W_K, W_V, W_O, pattern_override=None):
    """pattern = softmax(q k^T / sqrt(e), causal); out = (pattern v) W_O summed over heads.

    ``pattern_override`` ([b,h,t,s]) replaces the computed pattern (used by analyses that
    edit attention); gradients then do not flow into W_Q/W_K through the pattern.
    """
    xp = xp_of(a)
    b, T, d = a.shape
    h, _, e = W_Q.shape
    W_QKV = fuse_qkv(W_Q, W_K, W_V)                               # [d,3he]
    qkv = (a.reshape(b * T, d) @ W_QKV).reshape(b, T, 3, h, e)    # [b,t,3,h,e]
    qkv = qkv.transpose(2, 0, 3, 1, 4)                            # [3,b,h,t,e]
    q, k, v = qkv[0], qkv[1], qkv[2]                              # [b,h,t,e] each
    scores = (q @ k.swapaxes(-1, -2)) * (1.0 / math.sqrt(e))      # [b,h,t,s]
    pattern, _ = causal_softmax_forward(scores)                   # [b,h,t,s]
    if pattern_override is not None:
        pattern = xp.asarray(pattern_override, dtype=a.dtype)
    z = (pattern @ v).transpose(0, 2, 1, 3).reshape(b, T, h * e)  # [b,t,he]
    out = z @ W_O.reshape(h * e, d)                               # [b,t,d]
    return out, AttnCache(a, W_QKV, W_O, q, k, v, pattern, z)


def attention_backward(dout, cache, pattern_fixed=False):
    xp = xp_of(dout)
    a, W_QKV, W_O, q, k, v, pattern, z = cache
    b, T, d = a.shape
    h, e, _ = W_O.shape
    # out = z @ W_O
    dW_O = (z.reshape(b * T, h * e).T @ dout.reshape(b * T, d)).reshape(h, e, d)
    dz = (dout @ W_O.reshape(h * e, d).T).reshape(b, T, h, e).transpose(0, 2, 1, 3)  # [b,h,t,e]
    # z = pattern @ v
    dv = pattern.swapaxes(-1, -2) @ dz                            # [b,h,s,e]
    if pattern_fixed:
        dq = xp.zeros_like(q)
        dk = xp.zeros_like(k)
    else:
        dpattern = dz @ v.swapaxes(-1, -2)                        # [b,h,t,s]
        # pattern = softmax(scores), scores = q k^T / sqrt(e)
        dscores = causal_softmax_backward(dpattern, pattern) * (1.0 / math.sqrt(e))
        dq = dscores @ k                                          # [b,h,t,e]
        dk = dscores.swapaxes(-1, -2) @ q                         # [b,h,s,e]
    # qkv = a @ W_QKV
    dqkv = xp.stack([dq, dk, dv]).transpose(1, 3, 0, 2, 4).reshape(b * T, 3 * h * e)
    dW_QKV = a.reshape(b * T, d).T @ dqkv                         # [d,3he]
    da = (dqkv @ W_QKV.T).reshape(b, T, d)                        # [b,t,d]
    dW_Q, dW_K, dW_V = (dW_QKV[:, i * h * e:(i + 1) * h * e].reshape(d, h, e).transpose(1, 0, 2)
                        for i in range(3))
    return da, dW_Q, dW_K, dW_V, dW_O


# --- MLP (standard variant): gelu_tanh(a W_in + b_in) W_out + b_out ------------------------

GELU_C = math.sqrt(2.0 / math.pi)


def gelu_forward(x):
    """TransformerLens ``gelu_new``: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    xp = xp_of(x)
    th = xp.tanh(GELU_C * (x + 0.044715 * x ** 3))
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
