"""§4.6: multiplication mod C against addition at the main runs' budget. Claim 18 and the
multiplication figure."""
from __future__ import annotations

import dataclasses

import numpy as np

from ..report.ledger import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, mean_sd
from .variants import fig_compare, mean_final_accuracy, summarize, variant_specs


def variants(preset) -> dict:
    return {"mul": variant_specs("mul", preset, preset.n_extra_seeds,
                                 task=dataclasses.replace(preset.task, op="mul"))}


def multiplication_rule(r90_increase: float) -> str:
    """multiplication needs r90 of 4–6 vs 3–4: *supported* if mul's mean r90 exceeds add's by at
    least 1; *not supported* if it does not exceed it; *inconclusive* in between."""
    return SUPPORTED if r90_increase >= 1 else NOT_SUPPORTED if r90_increase <= 0 else INCONCLUSIVE


RULES = {18: multiplication_rule}


def claim_multiplication(add, mul):
    d = np.mean(mul["r90"]) - np.mean(add["r90"])
    return {"claim": "multiplication needs r90 of 4–6 against 3–4 for addition", "section": "§4.6",
            "paper": "4–6 (mul) vs 3–4 (add)",
            "measured": f"r90: mul {mean_sd(mul['r90'])}, add {mean_sd(add['r90'])}; final accuracy mul "
                        f"{mean_sd(mean_final_accuracy(mul), '{:.3f}')}",
            "null": f"matched random walks: mul {mean_sd(mul['null'])}, add {mean_sd(add['null'])}",
            "verdict": multiplication_rule(d), "value": float(d)}


def report(ctx):
    main, mul = ctx.runs, ctx.variants["mul"]
    s_main, s_mul = summarize(ctx, main), summarize(ctx, mul)
    return {18: claim_multiplication(s_main, s_mul)}, [
        fig_compare({"addition": s_main, "multiplication": s_mul}, {"addition": main, "multiplication": mul},
                    "Multiplication vs addition (mod C)", ctx.extra_caption, ctx.path("fig_multiplication.png"))]
