"""Causal self-attention as forward/backward pairs (paper §3.2): the causal softmax and
the attention layer (TransformerLens's biases b_Q, b_K, b_V, b_O optional: all or none).

Shape legend: b batch, t query position, s key position, d d_model, h head, e d_head.
Each ``*_forward`` returns ``(out, cache)``; each ``*_backward(dout, cache)`` returns the
gradients of its inputs, named ``d`` + the forward name.
"""
from __future__ import annotations

import math
from typing import NamedTuple

from .backend import matmul_into, xp_of


# --- causal softmax -----------------------------------------------------------------------

def causal_mask(n_query, T, dtype, xp):
    """[t,s] additive mask for the last ``n_query`` of T query positions: 0 where key
    s <= query position, -inf above the (shifted) diagonal."""
    return xp.triu(xp.full((n_query, T), -xp.inf, dtype=dtype), k=T - n_query + 1)


def causal_softmax_forward(scores):
    """Softmax over keys s with s > query position masked out. ``scores`` [...,t,s] holds
    the last t of s query positions and is overwritten (a fresh temporary in the model).
    Returns (pattern, pattern)."""
    xp = xp_of(scores)
    p = scores
    p += causal_mask(scores.shape[-2], scores.shape[-1], scores.dtype, xp)
    p -= p.max(axis=-1, keepdims=True)                            # row max is finite (s=0)
    xp.exp(p, out=p)                                              # exact 0 where masked
    p /= xp.einsum("...s->...", p)[..., None]
    return p, p


def causal_softmax_backward(dp, p):
    """d scores = p * (dp - sum_s dp*p); masked entries have p = 0 and get 0.
    ``dp`` is overwritten."""
    xp = xp_of(dp)
    dp -= xp.einsum("...s,...s->...", dp, p)[..., None]
    dp *= p
    return dp


# --- attention ----------------------------------------------------------------------------
# Queries come from the last ``n_query`` positions (all T by default). The readout only
# reads the last position, so the model's last layer needs n_query = 1: its keys and
# values still span every position, and the result is exactly that of the full layer.
# K and V are one fused GEMM; the 1/sqrt(e) scale is folded into the query weights so
# scores = q k^T needs no separate pass. The biases follow the same tricks: b_Q is scaled
# by 1/sqrt(e) like W_Q, [b_K, b_V] is added to the fused GEMM's output, and a model
# without biases (b_* None) runs exactly the bias-free code, with no zero arrays added.

class AttnCache(NamedTuple):
    a: object        # [b,s,d] input (the LN output)
    W_Qs: object     # [d,he] query weights scaled by 1/sqrt(e)
    W_KV: object     # [d,2he]
    W_O: object      # [h,e,d]
    q: object        # [b,h,t,e] scaled by 1/sqrt(e)
    k: object        # [b,h,s,e]
    v: object        # [b,h,s,e]
    pattern: object  # [b,h,t,s]
    z: object        # [b,t,h,e] pattern @ v, heads side by side
    biased: bool     # the layer has b_Q, b_K, b_V, b_O (the backward returns their grads)


def heads_to_columns(*Ws):
    """(h,d,e) matrices -> one (d, len(Ws)*h*e) matrix, heads side by side (a copy)."""
    xp = xp_of(Ws[0])
    h, d, e = Ws[0].shape
    return xp.concatenate(Ws, axis=0).transpose(1, 0, 2).reshape(d, len(Ws) * h * e)


def attention_forward(a, W_Q, W_K, W_V, W_O, b_Q=None, b_K=None, b_V=None, b_O=None,
                      n_query=None, pattern_override=None):
    """q, k, v = a W_Q + b_Q, a W_K + b_K, a W_V + b_V (per head);
    pattern = softmax(q k^T / sqrt(e), causal); out = (pattern v) W_O summed over heads + b_O.

    a [b,s,d]; W_Q, W_K, W_V [h,d,e]; W_O [h,e,d]; b_Q, b_K, b_V [h,e] and b_O [d], all
    four or none (None: a layer without biases). Returns out [b,t,d] for the last
    t = n_query positions (default all). ``pattern_override`` [b,h,t,s] replaces the
    computed pattern (analyses that edit attention; the backward does not apply to an
    edited pattern).
    """
    xp = xp_of(a)
    biased = b_Q is not None
    if any((bias is not None) != biased for bias in (b_K, b_V, b_O)):
        raise ValueError("attention biases b_Q, b_K, b_V, b_O: give all four or none")
    b, T, d = a.shape
    h, _, e = W_Q.shape
    tq = T if n_query is None else n_query
    W_Qs = heads_to_columns(W_Q)
    W_Qs *= 1.0 / math.sqrt(e)                                    # [d,he]
    W_KV = heads_to_columns(W_K, W_V)                             # [d,2he]
    kv = a.reshape(b * T, d) @ W_KV                               # [bs,2he]
    if biased:                                                    # beside the fused GEMM
        kv += xp.concatenate((b_K.reshape(h * e), b_V.reshape(h * e)))  # + [b_K, b_V]
    k, v = kv.reshape(b, T, 2, h, e).transpose(2, 0, 3, 1, 4)     # [b,h,s,e] views
    a_q = a[:, T - tq:].reshape(b * tq, d)                        # [n,d]
    q = a_q @ W_Qs                                                # [n,he]
    if biased:                                                    # b_Q scaled like W_Q:
        q += b_Q.reshape(h * e) * (1.0 / math.sqrt(e))            # (a W_Q + b_Q) / sqrt(e)
    q = q.reshape(b, tq, h, e).transpose(0, 2, 1, 3)              # [b,h,t,e]
    pattern, _ = causal_softmax_forward(q @ k.swapaxes(-1, -2))   # [b,h,t,s]
    if pattern_override is not None:
        pattern = xp.asarray(pattern_override, dtype=a.dtype)
    z = xp.empty((b, tq, h, e), dtype=a.dtype)
    matmul_into(pattern, v, z.transpose(0, 2, 1, 3))              # [b,h,t,e] into [b,t,h,e]
    out = z.reshape(b * tq, h * e) @ W_O.reshape(h * e, d)        # [n,d]
    if biased:
        out += b_O                                                # [n,d]
    return out.reshape(b, tq, d), AttnCache(a, W_Qs, W_KV, W_O, q, k, v, pattern, z, biased)


def attention_backward(dout, cache):
    """dout [b,t,d] -> (da [b,s,d], dW_Q, dW_K, dW_V, dW_O), followed by
    (db_Q [h,e], db_K [h,e], db_V [h,e], db_O [d]) when the layer has biases.
    db_K is 0 up to rounding (adding q.b_K to every score of a row leaves the softmax
    unchanged)."""
    xp = xp_of(dout)
    a, W_Qs, W_KV, W_O, q, k, v, pattern, z, biased = cache
    b, T, d = a.shape
    h, e, _ = W_O.shape
    tq = q.shape[2]
    dout = dout.reshape(b * tq, d)
    # out = z @ W_O (+ b_O)
    dW_O = (z.reshape(b * tq, h * e).T @ dout).reshape(h, e, d)   # [h,e,d]
    dz = (dout @ W_O.reshape(h * e, d).T).reshape(b, tq, h, e).transpose(0, 2, 1, 3)  # [b,h,t,e]
    # z = pattern @ v ; pattern = softmax(q k^T)
    dkv = xp.empty((b, T, 2, h, e), dtype=a.dtype)                # [b,s,2,h,e]
    dk, dv = dkv.transpose(2, 0, 3, 1, 4)                         # [b,h,s,e] views
    matmul_into(pattern.swapaxes(-1, -2), dz, dv)                 # dv [b,h,s,e]
    dscores = causal_softmax_backward(dz @ v.swapaxes(-1, -2), pattern)  # [b,h,t,s]
    matmul_into(dscores.swapaxes(-1, -2), q, dk)                  # dk [b,h,s,e]
    dq = (dscores @ k).transpose(0, 2, 1, 3).reshape(b * tq, h * e)  # [n,he]
    # kv = a @ W_KV (+ [b_K, b_V]) ; q = a[:, -t:] @ W_Qs (+ b_Q / sqrt(e))
    dkv = dkv.reshape(b * T, 2 * h * e)
    a2 = a.reshape(b * T, d)
    dW_KV = a2.T @ dkv                                            # [d,2he]
    da = (dkv @ W_KV.T).reshape(b, T, d)                          # [b,s,d]
    a_q = a[:, T - tq:].reshape(b * tq, d)
    dW_Qs = a_q.T @ dq                                            # [d,he]
    da[:, T - tq:] += (dq @ W_Qs.T).reshape(b, tq, d)
    dW_Qs *= 1.0 / math.sqrt(e)                                   # undo the folded scale
    dW_Q = xp.ascontiguousarray(dW_Qs.reshape(d, h, e).transpose(1, 0, 2))
    dW_K, dW_V = dW_KV.reshape(d, 2 * h, e).transpose(1, 0, 2).reshape(2, h, d, e)
    if not biased:
        return da, dW_Q, dW_K, dW_V, dW_O
    db_Q = dq.sum(axis=0).reshape(h, e) * (1.0 / math.sqrt(e))   # dq is d(q / sqrt(e))
    db_K, db_V = dkv.sum(axis=0).reshape(2, h, e)                 # [h,e] each
    db_O = dout.sum(axis=0)                                       # [d]
    return da, dW_Q, dW_K, dW_V, dW_O, db_Q, db_K, db_V, db_O
