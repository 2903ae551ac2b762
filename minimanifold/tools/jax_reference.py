"""An independent JAX implementation of the same model, written from the spec like
``torch_reference`` (not from model/), for the parity test and the benchmark's JAX peer.
Optional: only imported when JAX is installed (``pip install "minimanifold[jax]"``).
``jax.grad`` supplies its gradients; ``make_step`` is the jitted SGD step.

Shape legend: b batch, t query position, s key position, d d_model, h head, e d_head,
f d_mlp, c d_vocab_out. The parameters are the NumPy model's dict (TransformerLens names
and shapes); the attention biases ``blocks.{l}.attn.b_Q/b_K/b_V/b_O`` are used when ``p``
holds them, 0 otherwise, and q = a W_Q + b_Q is scaled by 1/sqrt(e) after the bias, as in
TransformerLens. Every position is computed (the plain formulation a JAX user writes).

Importing this module turns on ``jax_enable_x64`` (float64 needs it; arrays made here keep
the dtype they are given, so a float32 model stays float32).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ..model.config import ModelConfig

jax.config.update("jax_enable_x64", True)
LN_EPS = 1e-5


def to_jax(params: dict, dtype=jnp.float64) -> dict:
    """Cast on the host (a cast by jnp.asarray compiles a kernel per shape)."""
    return {k: jnp.asarray(np.asarray(v, dtype=dtype)) for k, v in params.items()}


def layer_norm(x, w, b):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)                # biased
    return (x - mean) / jnp.sqrt(var + LN_EPS) * w + b


def forward(p: dict, tokens, cfg: ModelConfig):
    """logits [b,c]."""
    T = tokens.shape[1]
    h, e, d = cfg.n_heads, cfg.d_head, cfg.d_model
    x = p["embed.W_E"][tokens] + p["pos_embed.W_pos"][:T]         # [b,t,d]
    mask = jnp.triu(jnp.ones((T, T), dtype=bool), k=1)            # [t,s] True above the diagonal
    for l in range(cfg.n_layers):
        pre = f"blocks.{l}."
        bias = lambda n, shape: p.get(pre + "attn." + n, jnp.zeros(shape, x.dtype))  # noqa: E731
        a = layer_norm(x, p[pre + "ln1.w"], p[pre + "ln1.b"])                  # [b,t,d]
        q = jnp.einsum("btd,hde->bhte", a, p[pre + "attn.W_Q"]) + bias("b_Q", (h, e))[:, None]
        k = jnp.einsum("btd,hde->bhte", a, p[pre + "attn.W_K"]) + bias("b_K", (h, e))[:, None]
        v = jnp.einsum("btd,hde->bhte", a, p[pre + "attn.W_V"]) + bias("b_V", (h, e))[:, None]
        scores = q @ k.swapaxes(-1, -2) / math.sqrt(e)                         # [b,h,t,s]
        pattern = jax.nn.softmax(jnp.where(mask, -jnp.inf, scores), axis=-1)   # [b,h,t,s]
        z = pattern @ v                                                        # [b,h,t,e]
        x = x + jnp.einsum("bhte,hed->btd", z, p[pre + "attn.W_O"]) + bias("b_O", (d,))
        if not cfg.attn_only:
            a2 = layer_norm(x, p[pre + "ln2.w"], p[pre + "ln2.b"])
            hid = jax.nn.gelu(a2 @ p[pre + "mlp.W_in"] + p[pre + "mlp.b_in"], approximate=True)  # gelu_new
            x = x + hid @ p[pre + "mlp.W_out"] + p[pre + "mlp.b_out"]          # [b,t,d]
    xf = layer_norm(x[:, -1], p["ln_final.w"], p["ln_final.b"])                # [b,d]
    return xf @ p["unembed.W_U"] + p["unembed.b_U"]                            # [b,c]


def loss_fn(p: dict, tokens, targets, cfg: ModelConfig):
    """Mean cross-entropy of the logits against ``targets`` [b]."""
    logp = jax.nn.log_softmax(forward(p, tokens, cfg), axis=-1)                # [b,c]
    return -jnp.take_along_axis(logp, targets[:, None], axis=1).mean()


def loss_grads_logits(params: dict, tokens, targets, cfg: ModelConfig, dtype=jnp.float64):
    """(loss, grads, logits) as NumPy, for comparison with the NumPy model."""
    p = to_jax(params, dtype)
    tok, tgt = jnp.asarray(np.asarray(tokens)), jnp.asarray(np.asarray(targets))
    loss, grads = jax.value_and_grad(loss_fn)(p, tok, tgt, cfg)
    return (float(loss), {k: np.asarray(g) for k, g in grads.items()},
            np.asarray(forward(p, tok, cfg)))


def make_step(cfg: ModelConfig, lr: float):
    """The jitted training step ``step(p, tokens, targets) -> (loss, p - lr * grad)``. The
    old parameters' buffers are donated to the new ones (an in-place update, like the NumPy
    model's ``sgd_step``): do not read ``p`` after the call."""
    def step(p, tokens, targets):
        loss, grads = jax.value_and_grad(loss_fn)(p, tokens, targets, cfg)
        return loss, {k: p[k] - lr * grads[k] for k in p}
    return jax.jit(step, donate_argnums=0)
