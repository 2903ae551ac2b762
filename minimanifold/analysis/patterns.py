"""Attention bubbling (paper §4.2): how concentrated the last position's attention is,
and how much of the computation survives when every pattern is cut to its top k keys.

Shape letters: b batch, h head, t query, s key, l layer.
"""
from __future__ import annotations

from ..model.backend import to_device, to_numpy, xp_of
from ..model.transformer import forward


def topk_mass(pattern, k: int):
    """Sum of the k largest attention weights of each row. pattern [...,s] -> [...]."""
    xp = xp_of(pattern)
    k = min(k, pattern.shape[-1])
    return xp.sort(pattern, axis=-1)[..., pattern.shape[-1] - k:].sum(axis=-1)


def truncate_topk(pattern, k: int):
    """Keep the k largest weights of each row (ties broken by position), zero the rest,
    renormalise. Rows with fewer than k nonzero weights are unchanged."""
    xp = xp_of(pattern)
    S = pattern.shape[-1]
    if k >= S:
        return pattern
    idx = xp.argsort(pattern, axis=-1, kind="stable")[..., :S - k]    # the S-k smallest
    cut = pattern.copy()
    xp.put_along_axis(cut, idx, 0.0, axis=-1)
    return cut / cut.sum(axis=-1, keepdims=True)


def topk_accuracy(params: dict, probe: dict, cfg, ks) -> dict:
    """{m: [accuracy with every layer's pattern cut to its top k, for k in ks]}."""
    xp = xp_of(params["embed.W_E"])
    out = {}
    for m, batch in probe.items():
        tokens = to_device(batch.tokens, xp)
        accs = []
        for k in ks:
            hooks = {f"blocks.{l}.attn.hook_pattern": (lambda p, k=k: truncate_topk(p, k))
                     for l in range(cfg.n_layers)}
            logits, _ = forward(params, tokens, cfg, hooks=hooks)
            accs.append(float((to_numpy(logits.argmax(-1)) == batch.targets).mean()))
        out[m] = accs
    return out


def last_position_topk_mass(params: dict, probe: dict, cfg, ks) -> dict:
    """{m: [[mean top-k mass of the last position's attention, for k in ks] per layer]}."""
    xp = xp_of(params["embed.W_E"])
    out = {}
    for m, batch in probe.items():
        _, cache = forward(params, to_device(batch.tokens, xp), cfg)
        out[m] = [[float(to_numpy(topk_mass(cache.hooks[f"blocks.{l}.attn.hook_pattern"][:, :, -1], k)).mean())
                   for k in ks] for l in range(cfg.n_layers)]
    return out
