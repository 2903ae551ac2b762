"""TransformerLens interop: our parameters in a ``HookedTransformer`` and back.

    pip install -e ".[transformer_lens]"     # transformer-lens >=3,<4 (tested: 3.9.0, torch 2.13)

TransformerLens 4.x removed ``HookedTransformer`` (it has ``TransformerBridge``), so the
extra pins 3.x. Our model is a ``HookedTransformer`` with

    normalization_type="LN" (eps 1e-5), positional_embedding_type="standard",
    act_fn="gelu_new" (the standard variant's MLP), attn_only=True for the paper's model,
    attention biases b_Q, b_K, b_V, b_O ours when cfg.attn_bias, else zero, d_vocab_out = C,

and its logits are TransformerLens's at the last position, ``model(tokens)[:, -1]``. The
``blocks.{l}.attn.IGNORE`` and ``mask`` buffers are TransformerLens's own and are kept.
Both helpers refuse (one line, naming the setting or key) a model that is not of that
form, rather than convert it into a different function. torch and transformer_lens are
imported inside the helpers: this module imports without them, and a helper called
without them raises ImportError naming the extra to install.
"""
from __future__ import annotations

import math

import numpy as np

from ..model.config import ModelConfig
from ..model.layers import LN_EPS
from ..model.transformer import ATTN_BIASES, param_shapes

TESTED = "3.9.0"
EXTRA = 'pip install "minimanifold[transformer_lens]"'


def _import_extra():
    """(torch, transformer_lens), or ImportError naming the extra that installs them."""
    try:
        import torch  # noqa: PLC0415
        import transformer_lens  # noqa: PLC0415
    except ModuleNotFoundError as e:
        raise ImportError(f"TransformerLens interop needs torch and transformer-lens 3.x "
                          f"({e.name or e} is not installed): {EXTRA}", name=e.name) from None
    return torch, transformer_lens


def hooked_config(cfg: ModelConfig, dtype=None, device="cpu"):
    """The ``HookedTransformerConfig`` of our architecture ``cfg`` (``dtype`` None: float64)."""
    torch, tl = _import_extra()
    kw = dict(n_layers=cfg.n_layers, d_model=cfg.d_model, n_ctx=cfg.n_ctx, d_head=cfg.d_head,
              n_heads=cfg.n_heads, d_vocab=cfg.d_vocab, d_vocab_out=cfg.d_vocab_out,
              attn_only=cfg.attn_only, normalization_type="LN", eps=LN_EPS,
              positional_embedding_type="standard", act_fn="gelu_new",
              default_prepend_bos=False, dtype=torch.float64 if dtype is None else dtype, device=device)
    if not cfg.attn_only:
        kw["d_mlp"] = cfg.d_mlp
    return tl.HookedTransformerConfig(**kw)


def to_hooked_transformer(params: dict, cfg: ModelConfig, dtype=None, device="cpu"):
    """A ``HookedTransformer`` computing exactly our model with ``params`` (in ``dtype``,
    None: float64); logits at the last position are ``model(tokens)[:, -1]``. Its attention
    biases are ``params``' when ``cfg.attn_bias``, else zero (a HookedTransformer always
    has them)."""
    torch, tl = _import_extra()
    dtype = torch.float64 if dtype is None else dtype
    missing = set(param_shapes(cfg)) ^ set(params)
    if missing:
        raise ValueError(f"params do not match the config: {sorted(missing)[:3]}")
    model = tl.HookedTransformer(hooked_config(cfg, dtype, device))
    state = model.state_dict()
    for name in state:
        if name in params:
            state[name] = torch.as_tensor(np.asarray(params[name]), dtype=dtype, device=device)
        elif name.rsplit(".", 1)[1] in ATTN_BIASES:
            state[name] = torch.zeros_like(state[name])
    unknown = [n for n in state if n not in params and n.rsplit(".", 1)[1] not in (*ATTN_BIASES, "IGNORE", "mask")]
    if unknown:
        raise ValueError(f"TransformerLens {TESTED}-style model has parameters we do not: {unknown[:3]}")
    model.load_state_dict(state, strict=True)
    return model.eval()


def _require(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(f"this HookedTransformer differs from our model: {what}")


def from_hooked_transformer(model, attn_bias=None) -> tuple:
    """(params as float64 NumPy arrays keyed by our names, ModelConfig) from a
    ``HookedTransformer`` of our form; ValueError names the first setting that is not.

    ``attn_bias``: True carries every b_Q, b_K, b_V, b_O over (``cfg.attn_bias``); False
    drops them and refuses, naming it, a nonzero one; None (default) carries them over
    exactly when one of them is nonzero, so a model made from a bias-free one comes back
    bias-free."""
    torch, _ = _import_extra()
    c = model.cfg
    _require(c.normalization_type == "LN", f"normalization_type={c.normalization_type!r}, not 'LN'")
    _require(c.positional_embedding_type == "standard",
             f"positional_embedding_type={c.positional_embedding_type!r}, not 'standard'")
    _require(c.attn_only or c.act_fn == "gelu_new", f"act_fn={c.act_fn!r}, not 'gelu_new'")
    _require(c.eps == LN_EPS, f"eps={c.eps}, not {LN_EPS}")
    _require(c.use_attn_scale and math.isclose(c.attn_scale, math.sqrt(c.d_head)),
             f"attn_scale={c.attn_scale}, not sqrt(d_head)")
    for flag in ("parallel_attn_mlp", "gated_mlp", "final_rms", "use_local_attn"):
        _require(not getattr(c, flag, False), f"{flag}=True")
    _require(getattr(c, "attention_dir", "causal") == "causal", f"attention_dir={c.attention_dir!r}")
    _require(getattr(c, "n_key_value_heads", None) in (None, c.n_heads), "grouped-query attention")
    state = {k: v.detach().cpu().to(torch.float64).numpy() for k, v in model.state_dict().items()}
    nonzero = [n for n, v in state.items() if n.rsplit(".", 1)[1] in ATTN_BIASES and np.any(v != 0)]
    if attn_bias is None:
        attn_bias = bool(nonzero)
    elif not attn_bias and nonzero:
        raise ValueError(f"{nonzero[0]!r} is nonzero, but attn_bias=False drops the attention biases")
    cfg = ModelConfig(d_vocab=c.d_vocab, d_vocab_out=c.d_vocab_out, n_ctx=c.n_ctx, d_model=c.d_model,
                      n_heads=c.n_heads, d_head=c.d_head, n_layers=c.n_layers, attn_only=c.attn_only,
                      d_mlp=4 * c.d_model if c.attn_only else c.d_mlp, attn_bias=attn_bias)
    shapes = param_shapes(cfg)
    missing = [n for n in shapes if n not in state]
    _require(not missing, f"no parameter {missing[:1]}")
    for name, shape in shapes.items():
        _require(tuple(state[name].shape) == tuple(shape), f"{name!r} has shape {state[name].shape}")
    return {name: state[name] for name in shapes}, cfg
