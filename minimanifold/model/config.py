"""Configuration of the model (paper §3.2).

A small frozen dataclass; every field is validated on construction and a bad value
raises ``ValueError`` naming the field (the task's, ``TaskConfig``, is in
``trajectories/task.py``). ``ModelConfig`` is everything needed to rebuild
the parameter dict; it is recoverable from the parameter names and shapes alone
(see ``io.config_from_params``). ``step_flops``: the matrix-product FLOPs of one training
step of a model (what the benchmark's roofline and the sweep's longest-first order use).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass


def check_positive(obj, *names):
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture, in TransformerLens's names.

    ``attn_only=True`` is the paper's attention-only model; ``False`` adds a GELU
    (tanh approximation, TransformerLens ``gelu_new``) MLP with ``d_mlp`` hidden units
    after every attention layer (default 4 * d_model). ``attn_bias=True`` gives every
    attention layer TransformerLens's biases ``b_Q``, ``b_K``, ``b_V`` (n_heads, d_head) and
    ``b_O`` (d_model,); the paper's model has none (the default).
    """
    d_vocab: int = 32
    d_vocab_out: int = 8
    n_ctx: int = 32
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    n_layers: int = 2
    attn_only: bool = True
    d_mlp: int | None = None        # default 4 * d_model
    attn_bias: bool = False         # b_Q, b_K, b_V, b_O in every layer (a later option: runs
                                    # made before it keep their keys, see rundir.LATER_OPTIONS)

    def __post_init__(self):
        if self.d_mlp is None:
            object.__setattr__(self, "d_mlp", 4 * self.d_model)
        check_positive(self, "d_vocab", "d_vocab_out", "n_ctx", "d_model", "n_heads",
                        "d_head", "n_layers", "d_mlp")
        for name in ("attn_only", "attn_bias"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        return cls(**json.loads(text))


def step_flops(cfg: ModelConfig, B: int, T: int) -> float:
    """FLOPs of the matrix products in one training step (forward and backward) at batch B
    and sequence length T; the last layer computes queries at the last position only."""
    d, h, e, v = cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_vocab
    fwd = 0
    for l in range(cfg.n_layers):
        tq = 1 if l == cfg.n_layers - 1 else T
        fwd += 2 * B * T * d * 2 * h * e            # K, V
        fwd += 2 * B * tq * d * h * e               # Q
        fwd += 2 * 2 * B * h * tq * T * e           # q k^T, pattern v
        fwd += 2 * B * tq * h * e * d               # W_O
        if not cfg.attn_only:
            fwd += 2 * 2 * B * tq * d * cfg.d_mlp
    fwd += 2 * B * d * cfg.d_vocab_out                # unembed
    return 3.0 * fwd + 2 * B * T * v * d             # backward = 2 x forward; one-hot dW_E
