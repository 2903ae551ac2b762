"""§4.6: multiplication mod C against addition at the main runs' budget. Claim 18 and the
multiplication figure."""
from __future__ import annotations

import dataclasses

from ..analysis.intervals import Interval, diff_interval, holds
from ..report.ledger import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, Row, mean_sd
from .contract import Experiment
from .variants import fig_compare, mean_final_accuracy, not_measured, summarize, summary_measurements, variant_specs

CLAIM, PAPER = "multiplication needs r90 of 4–6 against 3–4 for addition", "4–6 (mul) vs 3–4 (add)"


def variants(preset) -> dict:
    if not preset.comparisons:
        return {}
    return {"mul": variant_specs("mul", preset, preset.n_extra_seeds,
                                 task=dataclasses.replace(preset.task, op="mul"))}

def multiplication_rule(increase: Interval) -> str:
    """multiplication needs r90 of 4–6 vs 3–4: mul's mean r90 minus add's (Welch interval over
    the two groups of seeds); *supported* if it lies at or above 1, *not supported* if it lies at
    or below 0, *inconclusive* otherwise."""
    if holds(increase, ">=", 1) is True:
        return SUPPORTED
    return NOT_SUPPORTED if holds(increase, ">", 0) is False else INCONCLUSIVE

RULES = {18: multiplication_rule}

def claim_multiplication(add, mul):
    iv = diff_interval(mul["r90"], add["r90"])
    return Row(claim=CLAIM, section="§4.6", paper=PAPER,
               measured=f"r90: mul {mean_sd(mul['r90'])}, add {mean_sd(add['r90'])}; final accuracy mul "
                        f"{mean_sd(mean_final_accuracy(mul), '{:.3f}')}",
               null=f"matched random walks: mul {mean_sd(mul['null'])}, add {mean_sd(add['null'])}",
               interval=f"mul − add {iv.text()}", verdict=multiplication_rule(iv), value=iv.est)

def measurements(ctx) -> list:
    return summary_measurements(ctx.variants["mul"]) if ctx.preset.comparisons else []


def report(ctx):
    if not ctx.preset.comparisons:
        return {18: not_measured(CLAIM, "§4.6", PAPER)}, []
    main, mul = ctx.runs, ctx.variants["mul"]
    s_main, s_mul = summarize(ctx, main), summarize(ctx, mul)
    return {18: claim_multiplication(s_main, s_mul)}, [
        fig_compare({"addition": s_main, "multiplication": s_mul}, {"addition": main, "multiplication": mul},
                    "Multiplication vs addition (mod C)", ctx.extra_caption, ctx.path("fig_multiplication.png"))]


EXPERIMENT = Experiment("multiplication", "§4.6, multiplication figure: claim 18", RULES, report,
                        variants=variants, measurements=measurements)
