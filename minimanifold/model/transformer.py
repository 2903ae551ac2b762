"""The transformer of paper §3.2: parameters, forward, hand-written backward, loss.

Shape legend: b batch, t/s query/key position, d d_model, h head, e d_head, f d_mlp,
v d_vocab, c d_vocab_out.

    x = W_E[tokens] + W_pos[:T]
    for each layer l:
        a = LN(x; ln1.w, ln1.b)
        q, k, v = a W_Q, a W_K, a W_V                  # (h,d,e) per head (+ b_Q, b_K, b_V)
        pattern = softmax(q k^T / sqrt(e) + mask)
        x = x + (pattern v) W_O                         # W_O (h,e,d) (+ b_O)
        [standard variant] x = x + gelu_tanh(LN(x; ln2) W_in + b_in) W_out + b_out
    logits = LN(x[:, -1]; ln_final) W_U + b_U ;  loss = mean cross-entropy

Parameters are a flat dict with TransformerLens names; ``grads`` has the same keys.
The attention biases (b_Q, b_K, b_V [h,e], b_O [d]) exist only when ``cfg.attn_bias``.
``forward(params, tokens, cfg) -> (logits, cache)`` keeps every op's cache, and
``backward(dlogits, cache) -> grads`` walks them in reverse, like every op's pair.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import attention, layers
from .backend import to_device, xp_of
from .config import ModelConfig

ATTN_BIASES = ("b_Q", "b_K", "b_V", "b_O")   # TransformerLens's; present iff cfg.attn_bias
INIT_STD = 0.1   # measured: learns m in {1,2} on 5/5 seeds by step 800 (0.02: 4/5 by 2200)


def param_shapes(cfg: ModelConfig) -> dict:
    """Name -> shape for every parameter, in the fixed order used by ``flatten``."""
    d, h, e, f = cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp
    shapes = {"embed.W_E": (cfg.d_vocab, d), "pos_embed.W_pos": (cfg.n_ctx, d)}
    for l in range(cfg.n_layers):
        p = f"blocks.{l}."
        shapes.update({p + "ln1.w": (d,), p + "ln1.b": (d,),
                       p + "attn.W_Q": (h, d, e), p + "attn.W_K": (h, d, e),
                       p + "attn.W_V": (h, d, e), p + "attn.W_O": (h, e, d)})
        if cfg.attn_bias:
            shapes.update({p + "attn.b_Q": (h, e), p + "attn.b_K": (h, e),
                           p + "attn.b_V": (h, e), p + "attn.b_O": (d,)})
        if not cfg.attn_only:
            shapes.update({p + "ln2.w": (d,), p + "ln2.b": (d,),
                           p + "mlp.W_in": (d, f), p + "mlp.b_in": (f,),
                           p + "mlp.W_out": (f, d), p + "mlp.b_out": (d,)})
    shapes.update({"ln_final.w": (d,), "ln_final.b": (d,),
                   "unembed.W_U": (d, cfg.d_vocab_out), "unembed.b_U": (cfg.d_vocab_out,)})
    return shapes


def attention_param_names(cfg: ModelConfig) -> list:
    """The paper's "four attention weight matrices" of every layer."""
    return [f"blocks.{l}.attn.{W}" for l in range(cfg.n_layers) for W in ("W_Q", "W_K", "W_V", "W_O")]


def init_params(cfg: ModelConfig, seed: int, dtype=np.float32, xp=np, std: float = INIT_STD) -> dict:
    """Normal(0, std) (default 0.1, see README) for every matrix and embedding; LN gains 1;
    biases 0 (the attention biases too, as TransformerLens initialises them).

    Drawn on the host in float64 from ``default_rng([seed, 2])`` in ``param_shapes``
    order, then cast and moved to ``xp``: the same seed gives the same numbers on every
    backend. Biases draw nothing, so a model with attention biases starts from the same
    weights as the one without.
    """
    rng = np.random.default_rng([seed, 2])
    params = {}
    for name, shape in param_shapes(cfg).items():
        leaf = name.rsplit(".", 1)[1]
        if leaf == "w":
            value = np.ones(shape)
        elif leaf.startswith("b"):
            value = np.zeros(shape)
        else:
            value = rng.normal(0.0, std, size=shape)
        params[name] = to_device(value.astype(dtype), xp)
    return params


def cast_params(params: dict, dtype) -> dict:
    return {k: v.astype(dtype) for k, v in params.items()}


def flatten(params: dict, names=None):
    """theta: every parameter raveled and concatenated in ``names`` order (default:
    the dict's order, which ``param_shapes`` fixes)."""
    names = list(params) if names is None else names
    xp = xp_of(params[names[0]])
    return xp.concatenate([params[n].ravel() for n in names])


def unflatten(theta, shapes: dict) -> dict:
    """Inverse of ``flatten``: ``shapes`` is name -> shape in flatten order."""
    out, i = {}, 0
    for name, shape in shapes.items():
        size = int(np.prod(shape))
        out[name] = theta[i:i + size].reshape(shape)
        i += size
    if i != theta.shape[0]:
        raise ValueError(f"theta has {theta.shape[0]} entries but the shapes need {i}")
    return out


class BlockCache(NamedTuple):
    ln1: layers.LNCache
    attn: attention.AttnCache
    ln2: layers.LNCache | None    # None in an attention-only model
    mlp: layers.MLPCache | None


class ModelCache(NamedTuple):
    hooks: dict              # TransformerLens hook name -> activation (for analyses)
    embed: layers.EmbedCache
    blocks: list             # a BlockCache per layer
    ln_final: layers.LNCache
    unembed: layers.UnembedCache
    x_shape: tuple           # [b,t',d] the residual stream after the last layer
    names: tuple             # the parameter names, in params' order (that of the grads)


def forward(params: dict, tokens, cfg: ModelConfig, hooks=None, all_positions=False):
    """logits [b,c] and a ModelCache. ``tokens`` [b,t] ints on the params' device.

    The readout reads only the last position, so by default the last layer computes its
    queries (and everything after them) at that position alone: its
    ``blocks.{L-1}.attn.hook_pattern`` is [b,h,1,s] and its ``hook_resid_post`` [b,1,d].
    ``all_positions=True`` computes every position of every layer, giving the
    TransformerLens shapes [b,h,t,s] and [b,t,d] throughout; the logits are identical.

    ``hooks`` (analyses only): {hook name: fn(activation) -> activation} applied at
    ``blocks.{l}.attn.hook_pattern`` and ``blocks.{l}.hook_resid_post``. The backward
    assumes no hook changed anything.
    """
    hooks = hooks or {}
    acts = {}
    x, ecache = layers.embed_forward(tokens, params["embed.W_E"], params["pos_embed.W_pos"])  # [b,t,d]
    blocks = []
    for l in range(cfg.n_layers):
        p = f"blocks.{l}."
        # the last layer's queries at the last position only, all the readout reads
        # (its share of the step: attention.attention_forward); plain: n_query = None
        n_query = 1 if (l == cfg.n_layers - 1 and not all_positions) else None
        W = [params[p + "attn." + n] for n in ("W_Q", "W_K", "W_V", "W_O")]
        if cfg.attn_bias:
            W += [params[p + "attn." + n] for n in ATTN_BIASES]
        a, ln1 = layers.layernorm_forward(x, params[p + "ln1.w"], params[p + "ln1.b"])   # [b,t,d]
        name = p + "attn.hook_pattern"
        override = None
        if name in hooks:   # compute the pattern once, hand it to the hook, use its result
            override = hooks[name](attention.attention_forward(a, *W, n_query=n_query)[1].pattern)
        attn_out, attn = attention.attention_forward(a, *W, n_query=n_query,
                                             pattern_override=override)         # [b,t',d]
        acts[name] = attn.pattern                                                # [b,h,t',s]
        x = x[:, x.shape[1] - attn_out.shape[1]:] + attn_out                     # [b,t',d]
        ln2 = mlp = None
        if not cfg.attn_only:
            a2, ln2 = layers.layernorm_forward(x, params[p + "ln2.w"], params[p + "ln2.b"])
            mlp_out, mlp = layers.mlp_forward(a2, params[p + "mlp.W_in"], params[p + "mlp.b_in"],
                                         params[p + "mlp.W_out"], params[p + "mlp.b_out"])
            x = x + mlp_out                                                      # [b,t',d]
        name = p + "hook_resid_post"
        if name in hooks:
            x = hooks[name](x)
        acts[name] = x                                                           # [b,t',d]
        blocks.append(BlockCache(ln1, attn, ln2, mlp))
    xf, lnf = layers.layernorm_forward(x[:, -1], params["ln_final.w"], params["ln_final.b"])  # [b,d]
    logits, unembed = layers.unembed_forward(xf, params["unembed.W_U"], params["unembed.b_U"])  # [b,c]
    return logits, ModelCache(acts, ecache, blocks, lnf, unembed, x.shape, tuple(params))


def backward(dlogits, cache: ModelCache) -> dict:
    """dlogits [b,c] (dL/dlogits) -> the gradient of every parameter, keyed and ordered as
    the ``params`` of the forward. Walks the forward in reverse."""
    xp = xp_of(dlogits)
    grads = {}
    # logits = xf @ W_U + b_U
    dxf, grads["unembed.W_U"], grads["unembed.b_U"] = layers.unembed_backward(dlogits, cache.unembed)
    # xf = LN(x[:, -1]; ln_final)
    dx_last, grads["ln_final.w"], grads["ln_final.b"] = layers.layernorm_backward(dxf, cache.ln_final)
    dx = xp.zeros(cache.x_shape, dtype=dlogits.dtype)                            # [b,t',d]
    dx[:, -1] = dx_last
    for l in reversed(range(len(cache.blocks))):
        p = f"blocks.{l}."
        ln1, attn, ln2, mlp = cache.blocks[l]
        if mlp is not None:
            # x = x + mlp(LN(x; ln2))
            da2, grads[p + "mlp.W_in"], grads[p + "mlp.b_in"], grads[p + "mlp.W_out"], \
                grads[p + "mlp.b_out"] = layers.mlp_backward(dx, mlp)
            dxa, grads[p + "ln2.w"], grads[p + "ln2.b"] = layers.layernorm_backward(da2, ln2)
            dx += dxa
        # x[:, -t':] = x[:, -t':] + attn(LN(x; ln1))  (t' = T except in a last-position layer)
        da, grads[p + "attn.W_Q"], grads[p + "attn.W_K"], grads[p + "attn.W_V"], \
            grads[p + "attn.W_O"], *biases = attention.attention_backward(dx, attn)
        grads.update({p + "attn." + n: g for n, g in zip(ATTN_BIASES, biases)})      # [] without biases
        dx_in, grads[p + "ln1.w"], grads[p + "ln1.b"] = layers.layernorm_backward(da, ln1)  # [b,t,d]
        dx_in[:, dx_in.shape[1] - dx.shape[1]:] += dx
        dx = dx_in
    # x = W_E[tokens] + W_pos[:T]
    grads["embed.W_E"], grads["pos_embed.W_pos"] = layers.embed_backward(dx, cache.embed)
    return {name: grads[name] for name in cache.names}                           # params' order


def loss_grads_logits(params: dict, tokens, targets, cfg: ModelConfig):
    """(mean cross-entropy, grads, logits [b,c]); ``grads`` keyed and shaped as ``params``."""
    logits, cache = forward(params, tokens, cfg)
    loss, ce = layers.cross_entropy_forward(logits, targets)
    return loss, backward(layers.cross_entropy_backward(1.0, ce), cache), logits


def loss_and_grads(params: dict, tokens, targets, cfg: ModelConfig):
    """(mean cross-entropy, grads) with ``grads`` keyed and shaped exactly as ``params``."""
    loss, grads, _ = loss_grads_logits(params, tokens, targets, cfg)
    return loss, grads
