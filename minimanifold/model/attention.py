"""Causal self-attention as forward/backward pairs (paper §3.2), in TransformerLens's
form (the biases b_Q, b_K, b_V, b_O optional: all four or none):

    q, k, v = a W_Q + b_Q, a W_K + b_K, a W_V + b_V           (per head)
    out     = softmax(q kᵀ / √e + mask) v W_O + b_O            (summed over heads)

Shape legend: b batch, t query position, s key position, d d_model, h head, e d_head;
``n`` = b·t rows when positions are flattened.
Each ``*_forward`` returns ``(out, cache)``; each ``*_backward(dout, cache)`` returns the
gradients of its inputs, named ``d`` + the forward name. A cache (a NamedTuple) holds
exactly what its backward reads, so the backward recomputes nothing.

Speed tricks (issue 25 §4) were each timed against their plain form, alternating in one
process: on the training step of ModelConfig(n_layers=3), B=64, T=32, float32, one BLAS
thread (how run_all.py trains), and on the 2-thread steps of ``python -m
minimanifold.bench``. Three are kept, each with its share and the plain formula beside
it: the last layer's single query and one GEMM for K and V (``attention_forward``), and
dq, dk, dv written in the layout of the next GEMM (``heads_empty``). One rewrite is kept
for bits, not speed: 1/√e multiplies W_Q and b_Q before the query GEMM (the same maths;
±1% of the step, noise). Dividing the scores instead rounds differently for d_head = 32,
and the committed runs and records of every preset would no longer reproduce bit for bit
(tests/test_attn_bias.py pins the arithmetic to the code before the refactor).
"""
from __future__ import annotations

import math
from typing import NamedTuple

from .backend import matmul_into, xp_of


# --- causal softmax: pattern = softmax(scores + mask) over keys s ---------------------------

class SoftmaxCache(NamedTuple):
    pattern: object  # [...,t,s] the softmax's output


def causal_mask(n_query, T, dtype, xp):
    """[t,s] additive mask for the last ``n_query`` of T query positions: 0 where key
    s <= query position, -inf above the (shifted) diagonal."""
    return xp.triu(xp.full((n_query, T), -xp.inf, dtype=dtype), k=T - n_query + 1)


def causal_softmax_forward(scores):
    """softmax(scores + mask) over keys s. ``scores`` [...,t,s] holds the last t of s query
    positions and is overwritten (the model passes a fresh temporary)."""
    xp = xp_of(scores)
    p = scores
    p += causal_mask(scores.shape[-2], scores.shape[-1], scores.dtype, xp)  # [...,t,s] + mask
    p -= p.max(axis=-1, keepdims=True)                            # [...,t,s] row max is finite (s=0)
    xp.exp(p, out=p)                                              # [...,t,s] exact 0 where masked
    p /= xp.einsum("...s->...", p)[..., None]                     # [...,t,s] rows sum to 1
    return p, SoftmaxCache(p)


def causal_softmax_backward(dpattern, cache):
    """dscores = pattern * (dpattern - sum_s dpattern*pattern); the mask is a constant, and
    masked entries (pattern 0) get 0. ``dpattern`` is overwritten."""
    xp = xp_of(dpattern)
    p = cache.pattern
    # p = exp(scores + mask - max) / sum_s exp(...)
    dpattern -= xp.einsum("...s,...s->...", dpattern, p)[..., None]
    dpattern *= p
    return dpattern                                               # dscores [...,t,s]


# --- one linear map per head: y = a W + bias -----------------------------------------------

class HeadsCache(NamedTuple):
    a: object        # [n,d] the input rows
    W: object        # [d,he] the heads' matrices side by side
    biased: bool     # a bias was added (the backward returns its gradient)


def heads_forward(a, W, bias=None):
    """y[b,h,t,e] = a[b,t,d] W[h,d,e] + bias[h,e], as one GEMM with the heads side by side
    (TransformerLens's ``einsum("btd,hde->bhte")``; the [b,h,t,e] result is a view)."""
    b, t, d = a.shape
    h, _, e = W.shape
    a = a.reshape(b * t, d)                                       # [n,d]
    W = W.transpose(1, 0, 2).reshape(d, h * e)                    # [d,he] heads side by side
    y = a @ W                                                     # [n,he]
    if bias is not None:
        y += bias.reshape(h * e)                                  # [n,he]
    return y.reshape(b, t, h, e).transpose(0, 2, 1, 3), HeadsCache(a, W, bias is not None)  # [b,h,t,e]


def heads_backward(dy, cache):
    """dy [b,h,t,e] -> (da [b,t,d], dW [h,d,e], dbias [h,e] or None without a bias)."""
    xp = xp_of(dy)
    a, W, biased = cache
    b, h, t, e = dy.shape
    d = a.shape[1]
    dy = dy.transpose(0, 2, 1, 3).reshape(b * t, h * e)           # [n,he]
    # y = a @ W + bias
    dW = xp.ascontiguousarray((a.T @ dy).reshape(d, h, e).transpose(1, 0, 2))  # [h,d,e]
    da = (dy @ W.T).reshape(b, t, d)                              # [b,t,d]
    return da, dW, dy.sum(axis=0).reshape(h, e) if biased else None


def heads_empty(like, b, h, t, e):
    """An uninitialised [b,h,t,e] array laid out in memory as [b,t,h,e] (the heads side by
    side), for the backward's dq, dk, dv: a product written into it (``matmul_into``)
    reaches heads_backward's GEMMs as [n,he] through a view. Plain: dq = dscores @ k, then
    a transposed copy in heads_backward; that copy is single-threaded while the GEMMs are
    not, and avoiding it saves 2-5% of the 2-thread steps of ``python -m
    minimanifold.bench`` (L=2 and 5, float32 and 64; up to 13% on a busy machine), nothing
    measurable (0.3%) on one thread."""
    xp = xp_of(like)
    return xp.empty((b, t, h, e), dtype=like.dtype).transpose(0, 2, 1, 3)   # [b,h,t,e] view


# --- attention -----------------------------------------------------------------------------

class AttnCache(NamedTuple):
    q_in: HeadsCache     # a[:, -t:] and W_Q [d,he]
    kv_in: HeadsCache    # a and [W_K W_V] [d,2he]
    q: object            # [b,h,t,e]
    k: object            # [b,h,s,e]
    v: object            # [b,h,s,e]
    softmax: SoftmaxCache  # the pattern [b,h,t,s]
    z: object            # [n,he] pattern @ v, heads side by side
    W_O: object          # [h,e,d]
    biased: bool         # the layer has b_Q, b_K, b_V, b_O (the backward returns their grads)

    @property
    def pattern(self):   # blocks.{l}.attn.hook_pattern
        return self.softmax.pattern


def attention_forward(a, W_Q, W_K, W_V, W_O, b_Q=None, b_K=None, b_V=None, b_O=None,
                      n_query=None, pattern_override=None):
    """out = softmax(q kᵀ / √e + mask) v W_O + b_O, for the last t = ``n_query`` query
    positions (default all).

    a [b,s,d]; W_Q, W_K, W_V [h,d,e]; W_O [h,e,d]; b_Q, b_K, b_V [h,e] and b_O [d], all
    four or none (None: a layer without biases). Returns out [b,t,d]. ``pattern_override``
    [b,h,t,s] replaces the computed pattern (analyses that edit attention; the backward
    does not apply to an edited pattern).
    """
    xp = xp_of(a)
    biased = b_Q is not None
    if any((bias is not None) != biased for bias in (b_K, b_V, b_O)):
        raise ValueError("attention biases b_Q, b_K, b_V, b_O: give all four or none")
    b, T, d = a.shape
    h, _, e = W_Q.shape
    t = T if n_query is None else n_query
    # Queries at the last t positions only; keys and values at every position. The model's
    # last layer takes t = 1, since the readout reads only the last position (the same
    # logits): that saves 15% of the step of ModelConfig(n_layers=3) (40.4 -> 34.5 ms;
    # B=64, T=32, float32, one thread). Plain: t = s, q = a W_Q + b_Q.
    # scores = q kᵀ / √e, with 1/√e applied to W_Q and b_Q (q here is q/√e): the arithmetic
    # the committed runs were trained with (module docstring). Plain: q = a W_Q + b_Q, then
    # scores = q kᵀ / √e.
    scale = 1.0 / math.sqrt(e)
    q, q_in = heads_forward(a[:, T - t:], W_Q * scale, None if b_Q is None else b_Q * scale)  # [b,h,t,e] q/√e
    # k and v as one GEMM, W_K and W_V stacked as 2h heads: saves 0-4% of the 2-thread
    # steps of python -m minimanifold.bench (up to 7% on a busy machine) but costs 2% on
    # one thread. Plain: k = a W_K + b_K and v = a W_V + b_V, by heads_forward each.
    b_KV = None if b_K is None else xp.concatenate((b_K, b_V))    # [2h,e]
    kv, kv_in = heads_forward(a, xp.concatenate((W_K, W_V)), b_KV)  # [b,2h,s,e]
    k, v = kv[:, :h], kv[:, h:]                                   # [b,h,s,e] each
    scores = q @ k.swapaxes(-1, -2)                               # [b,h,t,s] q kᵀ / √e
    pattern, softmax = causal_softmax_forward(scores)             # [b,h,t,s] softmax(scores + mask)
    if pattern_override is not None:
        pattern = xp.asarray(pattern_override, dtype=a.dtype)
        softmax = SoftmaxCache(pattern)
    z = (pattern @ v).transpose(0, 2, 1, 3).reshape(b * t, h * e)  # [n,he] heads side by side
    out = z @ W_O.reshape(h * e, d)                               # [n,d] sum over heads of z_h W_O[h]
    if biased:
        out += b_O                                                # [n,d]
    return out.reshape(b, t, d), AttnCache(q_in, kv_in, q, k, v, softmax, z, W_O, biased)


def attention_backward(dout, cache):
    """dout [b,t,d] -> (da [b,s,d], dW_Q, dW_K, dW_V, dW_O), followed by
    (db_Q [h,e], db_K [h,e], db_V [h,e], db_O [d]) when the layer has biases.
    db_K is 0 up to rounding (adding q.b_K to every score of a row leaves the softmax
    unchanged)."""
    q_in, kv_in, q, k, v, softmax, z, W_O, biased = cache
    b, h, t, e = q.shape
    s = k.shape[2]
    d = W_O.shape[2]
    dout = dout.reshape(b * t, d)                                 # [n,d]
    # out = z @ W_O (+ b_O)
    dW_O = (z.T @ dout).reshape(h, e, d)                          # [h,e,d]
    dz = (dout @ W_O.reshape(h * e, d).T).reshape(b, t, h, e).transpose(0, 2, 1, 3)  # [b,h,t,e]
    # z = pattern @ v
    dpattern = dz @ v.swapaxes(-1, -2)                            # [b,h,t,s]
    dkv = heads_empty(dz, b, 2 * h, s, e)                         # [b,2h,s,e]
    dk, dv = dkv[:, :h], dkv[:, h:]                               # [b,h,s,e] views
    matmul_into(softmax.pattern.swapaxes(-1, -2), dz, dv)         # dv = pattern^T @ dz
    # pattern = softmax(scores + mask)
    dscores = causal_softmax_backward(dpattern, softmax)          # [b,h,t,s]
    # scores = (q/√e) @ k^T: dk and dq below are for k and for q/√e
    matmul_into(dscores.swapaxes(-1, -2), q, dk)                  # dk = dscores^T @ q
    dq = matmul_into(dscores, k, heads_empty(dz, b, h, t, e))     # dq = dscores @ k
    # kv = a [W_K W_V] + [b_K b_V] ; q/√e = a[:, -t:] (W_Q/√e) + b_Q/√e
    da, dW_KV, db_KV = heads_backward(dkv, kv_in)                 # [b,s,d]
    da_q, dW_Q, db_Q = heads_backward(dq, q_in)                   # [b,t,d]; grads of W_Q/√e, b_Q/√e
    da[:, s - t:] += da_q
    dW_Q *= 1.0 / math.sqrt(e)                                    # [h,d,e] chain rule through the scale
    if biased:
        db_Q *= 1.0 / math.sqrt(e)                                # [h,e]
    dW_K, dW_V = dW_KV[:h], dW_KV[h:]                             # [h,d,e] each
    if not biased:
        return da, dW_Q, dW_K, dW_V, dW_O
    db_K, db_V = db_KV[:h], db_KV[h:]                             # [h,e] each
    db_O = dout.sum(axis=0)                                       # [d]
    return da, dW_Q, dW_K, dW_V, dW_O, db_Q, db_K, db_V, db_O
