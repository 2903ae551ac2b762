"""Configuration for the model (paper §3.2) and the task (paper §3.1).

Two small frozen dataclasses; every field is validated on construction and a bad value
raises ``ValueError`` naming the field. ``ModelConfig`` is everything needed to rebuild
the parameter dict; it is recoverable from the parameter names and shapes alone
(see ``io.config_from_params``). ``step_flops``: the matrix-product FLOPs of one training
step of a model (what the benchmark's roofline and the sweep's longest-first order use).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass


def _check_positive(obj, *names):
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
                                    # made before it keep their keys, see run_files.LATER_OPTIONS)

    def __post_init__(self):
        if self.d_mlp is None:
            object.__setattr__(self, "d_mlp", 4 * self.d_model)
        _check_positive(self, "d_vocab", "d_vocab_out", "n_ctx", "d_model", "n_heads",
                        "d_head", "n_layers", "d_mlp")
        for name in ("attn_only", "attn_bias"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        return cls(**json.loads(text))


OPS = ("add", "mul")


@dataclass(frozen=True)
class TaskConfig:
    """Marker-based modular arithmetic (paper §3.1).

    Token layout (``d_vocab`` tokens in all):
      values      0 .. C-1
      markers     C .. C+n_markers-1      (the i-th marked position gets marker C+i)
      query       C+n_markers             (always at position T-1, where the readout is)
      distractors C+n_markers+1 .. d_vocab-1
    The answer is the sum (op="add") or product (op="mul") of the m values mod C.
    """
    T: int = 32
    C: int = 8
    n_markers: int = 6
    d_vocab: int = 32
    op: str = "add"
    holdout: float = 0.0      # share of value multisets (m >= 2) never trained on (claim 20)

    def __post_init__(self):
        _check_positive(self, "T", "n_markers", "d_vocab")
        if not (isinstance(self.holdout, (int, float)) and 0 <= self.holdout < 1):
            raise ValueError(f"holdout must be a number in [0, 1), got {self.holdout!r}")
        if not isinstance(self.C, int) or self.C < 2:
            raise ValueError(f"C must be an integer >= 2, got {self.C!r}")
        if self.op not in OPS:
            raise ValueError(f"op must be one of {OPS}, got {self.op!r}")
        if self.T < 4:
            raise ValueError(f"T must be >= 4 to hold a marker, a value and the query, got {self.T}")
        if self.n_distractors < 1:
            raise ValueError(
                f"d_vocab={self.d_vocab} leaves no room for distractors: it must exceed "
                f"C + n_markers + 1 = {self.C + self.n_markers + 1}")
        if self.n_markers > self.max_m:
            raise ValueError(
                f"n_markers={self.n_markers} exceeds the {self.max_m} non-adjacent "
                f"marker/value pairs that fit in T-1={self.T - 1} positions")

    @property
    def query_token(self) -> int:
        return self.C + self.n_markers

    @property
    def first_distractor(self) -> int:
        return self.C + self.n_markers + 1

    @property
    def n_distractors(self) -> int:
        return self.d_vocab - self.first_distractor

    @property
    def max_m(self) -> int:
        """Largest m whose pairs fit, pairwise non-adjacent, in positions 0..T-2.

        A pair occupies (p, p+1); non-adjacent markers need p_{i+1} >= p_i + 2, so pairs
        may touch (marker right after a value). m pairs need 2m <= T-1 positions.
        """
        return (self.T - 1) // 2

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "TaskConfig":
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
