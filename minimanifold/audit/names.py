"""Name maps: another model's state-dict keys -> our parameter names (TransformerLens's).

A map is a dict ``{their key pattern: [our name, transform]}``; ``{l}`` in a pattern
stands for a layer number and carries over to the name; ``*`` matches the rest of a key.
Transforms (h heads, e = d_head, d = d_model; PyTorch ``nn.Linear`` stores (out, in)):

    copy         the array as it is (its shape must be ours)
    transpose    (c, d) -> (d, c): a Linear weight, e.g. ``head.weight`` -> ``unembed.W_U``
    heads_in     (h*e, d) -> (h, d, e): one Linear of Q, K or V -> ``W_Q``/``W_K``/``W_V``
    heads_bias   (h*e,) -> (h, e): its bias -> ``b_Q``/``b_K``/``b_V``
    heads_out    (d, h*e) -> (h, e, d): the output Linear -> ``W_O``
    qkv_weight   (3*h*e, d) -> W_Q, W_K, W_V (h, d, e) under the name given as a prefix
    qkv_bias     (3*h*e,) -> b_Q, b_K, b_V (h, e) under the prefix
    drop         ignored (a module the model does not use)

Our own files and TransformerLens state dicts need no map (``IDENTITY``). A map file is
JSON of the same dict, plus ``"n_heads"`` where a transform must split heads.
"""
from __future__ import annotations

import json
import re

import numpy as np

IDENTITY = None     # keys are our names already

BUILTIN = {
    # the authors' released model (skydancerosel/bubble-modadd, train.py: BubbleTransformer);
    # its layers' MLP is built but never called in forward, so it is dropped
    "bubble": {
        "n_heads": 4,
        "embed.weight": ["embed.W_E", "copy"],
        "pos_emb.weight": ["pos_embed.W_pos", "copy"],
        "layers.{l}.ln.weight": ["blocks.{l}.ln1.w", "copy"],
        "layers.{l}.ln.bias": ["blocks.{l}.ln1.b", "copy"],
        "layers.{l}.qkv.weight": ["blocks.{l}.attn", "qkv_weight"],
        "layers.{l}.qkv.bias": ["blocks.{l}.attn", "qkv_bias"],
        "layers.{l}.out.weight": ["blocks.{l}.attn.W_O", "heads_out"],
        "layers.{l}.out.bias": ["blocks.{l}.attn.b_O", "copy"],
        "layers.{l}.mlp.*": [None, "drop"],
        "ln.weight": ["ln_final.w", "copy"],
        "ln.bias": ["ln_final.b", "copy"],
        "head.weight": ["unembed.W_U", "transpose"],
        "head.bias": ["unembed.b_U", "copy"],
    },
    # a weight log of the attention matrices only (the authors' ``extract_attention_blocks``:
    # ``layer{i}.WQ`` ... as (out, in) Linear weights); weights-only analyses
    "attention-log": {
        "n_heads": 4,
        "layer{l}.WQ": ["blocks.{l}.attn.W_Q", "heads_in"],
        "layer{l}.WK": ["blocks.{l}.attn.W_K", "heads_in"],
        "layer{l}.WV": ["blocks.{l}.attn.W_V", "heads_in"],
        "layer{l}.WO": ["blocks.{l}.attn.W_O", "heads_out"],
    },
}
TRANSFORMS = ("copy", "transpose", "heads_in", "heads_bias", "heads_out", "qkv_weight", "qkv_bias", "drop")


class NameMapError(ValueError):
    """A key the map does not cover, a name mapped twice, or a shape that does not fit."""


def load_map(spec):
    """A map from ``spec``: None (our names), a built-in's name, or a JSON file's path."""
    if spec is None or spec in ("ours", "transformer_lens"):
        return IDENTITY
    if spec in BUILTIN:
        return BUILTIN[spec]
    try:
        with open(spec, encoding="utf-8") as f:
            m = json.load(f)
    except OSError as e:
        raise NameMapError(f"--map {spec}: neither a built-in map ({', '.join(BUILTIN)}) nor a readable "
                           f"file ({e.strerror})") from None
    except ValueError as e:
        raise NameMapError(f"--map {spec}: not valid JSON ({e})") from None
    for key, v in m.items():
        if key != "n_heads" and not (isinstance(v, list) and len(v) == 2 and v[1] in TRANSFORMS):
            raise NameMapError(f"--map {spec}: {key!r} must map to [our name, transform] with a transform "
                               f"among {', '.join(TRANSFORMS)}")
    return m


def _pattern(key: str):
    return re.compile("^" + re.escape(key).replace(r"\{l\}", r"(?P<l>\d+)").replace(r"\*", ".*") + "$")


def _split_heads(a, h, what):
    if a.shape[0] % h:
        raise NameMapError(f"{what}: {a.shape[0]} rows do not split into {h} heads")
    return a.reshape(h, a.shape[0] // h, *a.shape[1:])


def _apply(transform, a, h, what):
    if transform == "copy":
        return [a]
    if transform == "transpose":
        return [a.T]
    if transform in ("qkv_weight", "qkv_bias"):
        if a.shape[0] % 3:
            raise NameMapError(f"{what}: {a.shape[0]} rows do not split into Q, K and V")
        return [x for part in np.split(a, 3) for x in _apply(transform.replace("qkv", "heads").replace(
            "_weight", "_in"), part, h, what)]
    if h is None:
        raise NameMapError(f"{what}: the map splits heads but names no n_heads (give --n-heads)")
    if transform == "heads_in":                    # (h*e, d) -> (h, e, d) -> (h, d, e)
        return [_split_heads(a, h, what).transpose(0, 2, 1)]
    if transform == "heads_bias":
        return [_split_heads(a, h, what)]
    if transform == "heads_out":                   # (d, h*e) -> (h*e, d) -> (h, e, d)
        return [_split_heads(a.T, h, what)]
    return []                                      # drop


def translate(state: dict, name_map, where: str, n_heads=None) -> dict:
    """``state`` ({their key: array}) under our names. NameMapError naming the keys the map
    does not cover, an output name two keys map to, or an array a transform cannot split."""
    if name_map is IDENTITY:
        return dict(state)
    h = n_heads or name_map.get("n_heads")
    rules = [(_pattern(k), v) for k, v in name_map.items() if k != "n_heads"]
    out, source, missing = {}, {}, []
    for key, a in state.items():
        hit = next(((m, v) for p, v in rules if (m := p.match(key))), None)
        if hit is None:
            missing.append(key)
            continue
        m, (target, transform) = hit
        if transform == "drop":
            continue
        target = target.replace("{l}", m.group("l")) if "l" in m.groupdict() else target
        names = [f"{target}.{x}" for x in (("W_Q", "W_K", "W_V") if transform == "qkv_weight" else
                                          ("b_Q", "b_K", "b_V"))] if transform.startswith("qkv") else [target]
        for name, arr in zip(names, _apply(transform, np.asarray(a), h, f"{where}: {key}")):
            if name in out:
                raise NameMapError(f"{where}: {source[name]!r} and {key!r} both map to {name!r}")
            out[name], source[name] = arr, key
    if missing:
        raise NameMapError(f"{where}: the map does not cover {len(missing)} key(s): "
                           f"{', '.join(map(repr, missing[:5]))}{' ...' if len(missing) > 5 else ''}")
    return out
