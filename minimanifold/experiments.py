"""§4.4–4.6 comparisons: curriculum vs mixed, MLP vs attention-only, multiplication vs
addition — each a set of runs at the main runs' budget, analysed with the same tools.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .analysis import ALL
from .figures import MATS
from .sweep import RunSpec
from .task import Schedule


def curriculum_schedule(mixed_spec: str, steps: int) -> str:
    """The curriculum with the mixed schedule's m's in increasing order, equal stages,
    the same total steps (the last stage absorbs the remainder)."""
    ms = Schedule.parse(mixed_spec).all_m()
    n = steps // len(ms)
    stages = [f"{m}x{n}" for m in ms[:-1]] + [f"{ms[-1]}x{steps - n * (len(ms) - 1)}"]
    return "curriculum:" + ",".join(stages)


def comparison_specs(preset, n_seeds: int) -> dict:
    """{"curriculum" | "mlp" | "mul": [RunSpec per seed]} at the preset's budget."""
    tr = preset.train
    seeds = range(n_seeds)
    cur = dataclasses.replace(tr, schedule=curriculum_schedule(tr.schedule, tr.steps))
    return {
        "curriculum": [RunSpec("curriculum", preset.model, preset.task, dataclasses.replace(cur, seed=s)) for s in seeds],
        "mlp": [RunSpec("mlp", dataclasses.replace(preset.model, attn_only=False), preset.task,
                        dataclasses.replace(tr, seed=s)) for s in seeds],
        "mul": [RunSpec("mul", preset.model, dataclasses.replace(preset.task, op="mul"),
                        dataclasses.replace(tr, seed=s)) for s in seeds],
    }


def mean_r90(geom, n_layers) -> float:
    """Mean r90 over the 4 x n_layers attention matrices of one run."""
    return float(np.mean([geom[f"blocks.{l}.attn.{W}"]["r90"] for l in range(n_layers) for W in MATS]))


def mean_null(geom, n_layers, kind="matched") -> float:
    return float(np.mean([geom[f"blocks.{l}.attn.{W}"]["null"][kind]["mean"]
                          for l in range(n_layers) for W in MATS]))


def summarize_variant(geoms, runs, n_layers) -> dict:
    """Per seed: mean r90, its matched null, all-attention r90, final accuracy per m."""
    return {"r90": [mean_r90(g, n_layers) for g in geoms],
            "null": [mean_null(g, n_layers) for g in geoms],
            "r90_all": [g[ALL]["r90"] for g in geoms],
            "final_acc": [{int(m): a for m, a in r["summary"]["final_acc"].items()} for r in runs]}
