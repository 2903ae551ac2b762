"""An independent PyTorch implementation of the same model, written from the spec (not
from model.py), for the parity test and the benchmark. Optional: only imported when
torch is installed. Autograd supplies its gradients. TransformerLens's attention biases
(``blocks.{l}.attn.b_Q/b_K/b_V/b_O``, a model with ``cfg.attn_bias``) are used when ``p``
holds them, 0 otherwise; q = a W_Q + b_Q is scaled by 1/sqrt(d_head) after the bias, as in
TransformerLens.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..model.config import ModelConfig


def to_torch(params: dict, dtype=torch.float64, requires_grad=True) -> dict:
    return {k: torch.tensor(np.asarray(v), dtype=dtype, requires_grad=requires_grad)
            for k, v in params.items()}


def forward(p: dict, tokens: torch.Tensor, cfg: ModelConfig) -> torch.Tensor:
    """logits [b, d_vocab_out]."""
    T = tokens.shape[1]
    x = p["embed.W_E"][tokens] + p["pos_embed.W_pos"][:T]
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    for l in range(cfg.n_layers):
        pre = f"blocks.{l}."
        a = F.layer_norm(x, (cfg.d_model,), p[pre + "ln1.w"], p[pre + "ln1.b"], eps=1e-5)
        b, _, d = a.shape
        h, e = cfg.n_heads, cfg.d_head
        heads = lambda W: W.permute(1, 0, 2).reshape(d, h * e)          # (h,d,e) -> (d,he)
        bias = lambda n, shape: p.get(pre + "attn." + n, torch.zeros(shape, dtype=a.dtype))
        q = (a @ heads(p[pre + "attn.W_Q"]) + bias("b_Q", (h, e)).reshape(h * e)).view(b, T, h, e).transpose(1, 2)
        k = (a @ heads(p[pre + "attn.W_K"]) + bias("b_K", (h, e)).reshape(h * e)).view(b, T, h, e).transpose(1, 2)
        v = (a @ heads(p[pre + "attn.W_V"]) + bias("b_V", (h, e)).reshape(h * e)).view(b, T, h, e).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(e)                        # [b,h,t,s]
        pattern = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
        z = (pattern @ v).transpose(1, 2).reshape(b, T, h * e)                 # [b,t,he]
        x = x + z @ p[pre + "attn.W_O"].reshape(h * e, d) + bias("b_O", (d,))
        if not cfg.attn_only:
            a2 = F.layer_norm(x, (cfg.d_model,), p[pre + "ln2.w"], p[pre + "ln2.b"], eps=1e-5)
            hid = F.gelu(a2 @ p[pre + "mlp.W_in"] + p[pre + "mlp.b_in"], approximate="tanh")
            x = x + hid @ p[pre + "mlp.W_out"] + p[pre + "mlp.b_out"]
    xf = F.layer_norm(x[:, -1], (cfg.d_model,), p["ln_final.w"], p["ln_final.b"], eps=1e-5)
    return xf @ p["unembed.W_U"] + p["unembed.b_U"]


def loss_grads_logits(params: dict, tokens, targets, cfg: ModelConfig, dtype=torch.float64):
    """(loss, grads, logits) as NumPy, for comparison with the NumPy model."""
    p = to_torch(params, dtype)
    logits = forward(p, torch.as_tensor(np.asarray(tokens)), cfg)
    loss = F.cross_entropy(logits, torch.as_tensor(np.asarray(targets)))
    loss.backward()
    return (loss.item(), {k: v.grad.numpy() for k, v in p.items()}, logits.detach().numpy())
