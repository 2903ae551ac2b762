"""Parameter files.

A parameter file is an .npz whose parameter entries are keyed by exactly the
TransformerLens names of ``model.param_shapes``. The architecture is recovered from those
names and shapes alone, so a file exported from a PyTorch state dict (with nothing else
in it) loads too. Other entries (a checkpoint's optimizer state, its step) are ignored by
``load_params``. TransformerLens's attention biases ``blocks.{l}.attn.b_Q/b_K/b_V/b_O``
make the model one with ``attn_bias=True``, whatever their values (a TransformerLens state
dict's zero biases included); a file must hold all four in every layer or none of them.
Writing and reading the files themselves (atomically, with errors naming the file) is
``minimanifold/files.py``'s.
"""
from __future__ import annotations

import os
import re

from ..files import read_npz, save_npz
from .config import ModelConfig
from .transformer import param_shapes

_BLOCK = re.compile(r"^blocks\.(\d+)\.")
_ATTN_BIAS = re.compile(r"^blocks\.\d+\.attn\.b_[QKVO]$")     # TransformerLens's attention biases


def config_from_params(arrays: dict, source: str = "params") -> ModelConfig:
    """The ModelConfig implied by parameter names and shapes; ValueError names a missing
    or mis-shaped parameter. Any attention bias makes ``attn_bias=True``, and then every
    layer's b_Q, b_K, b_V and b_O are required (the first missing one is named)."""
    attn_bias = any(_ATTN_BIAS.match(k) for k in arrays)

    def need(name):
        if name not in arrays:
            hint = (" (the file holds other attention biases: a model has all of b_Q, b_K, b_V, "
                    "b_O in every layer, or none)" if _ATTN_BIAS.match(name) else "")
            raise ValueError(f"{source}: missing parameter {name!r}{hint}")
        return arrays[name].shape

    d_vocab, d_model = need("embed.W_E")
    n_ctx = need("pos_embed.W_pos")[0]
    # a layer is where a W_Q is; any other blocks.N key past the last one is named as stray
    layers = {int(m.group(1)) for k in arrays if (m := _BLOCK.match(k)) and k.endswith(".attn.W_Q")}
    n_layers = max(layers) + 1 if layers else 0
    if n_layers == 0:
        raise ValueError(f"{source}: missing parameter 'blocks.0.attn.W_Q' (no layers found)")
    for k in arrays:
        if (m := _BLOCK.match(k)) and int(m.group(1)) >= n_layers:
            raise ValueError(f"{source}: stray key {k!r}: layer {m.group(1)} has no "
                             f"'blocks.{m.group(1)}.attn.W_Q' (layers 0..{n_layers - 1} do)")
    n_heads, _, d_head = need("blocks.0.attn.W_Q")
    attn_only = "blocks.0.mlp.W_in" not in arrays
    d_mlp = 4 * d_model if attn_only else need("blocks.0.mlp.W_in")[1]
    d_vocab_out = need("unembed.W_U")[1]
    cfg = ModelConfig(d_vocab=int(d_vocab), d_vocab_out=int(d_vocab_out), n_ctx=int(n_ctx),
                      d_model=int(d_model), n_heads=int(n_heads), d_head=int(d_head),
                      n_layers=n_layers, attn_only=attn_only, d_mlp=int(d_mlp), attn_bias=attn_bias)
    for name, shape in param_shapes(cfg).items():
        if tuple(need(name)) != tuple(shape):
            raise ValueError(f"{source}: parameter {name!r} has shape {tuple(arrays[name].shape)}, "
                             f"but the architecture implies {tuple(shape)}")
    return cfg


def save_params(path, params: dict, cfg: ModelConfig, extra: dict | None = None) -> None:
    """Write ``params`` (keyed by TransformerLens names) to ``path`` atomically.
    ``extra`` arrays (e.g. optimizer state) are stored beside them under their own keys."""
    missing = set(param_shapes(cfg)) ^ set(params)
    if missing:
        raise ValueError(f"params do not match the config: {sorted(missing)[:3]}")
    save_npz(path, {**params, **(extra or {})})


def load_params(path):
    """(params, cfg) from an .npz written by ``save_params`` or exported from a PyTorch
    state dict with the same names (attention biases included when the file has them:
    ``cfg.attn_bias``). Arrays keep their stored dtype."""
    arrays = read_npz(path)
    cfg = config_from_params(arrays, source=os.fspath(path))
    params = {name: arrays[name] for name in param_shapes(cfg)}
    return params, cfg
