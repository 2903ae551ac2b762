"""§4.6: multiplication mod C against addition at the main runs' budget. Claim 18 and the
multiplication figure."""
from __future__ import annotations

import dataclasses

import numpy as np

from ..analysis.intervals import Interval, diff_interval, holds
from ..report.ledger import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, Row, mean_sd
from .contract import Experiment
from .variants import (counted_claim, excess_over_null, fig_compare, not_measured, summarize, summary_measurements,
                       variant_specs)

CLAIM, PAPER = "multiplication needs r90 of 4–6 against 3–4 for addition", "4–6 (mul) vs 3–4 (add)"


def variants(preset) -> dict:
    if not preset.comparisons:
        return {}
    return {"mul": variant_specs("mul", preset, preset.n_extra_seeds,
                                 task=dataclasses.replace(preset.task, op="mul"))}


def multiplication_rule(increase: Interval) -> str:
    """"Multiplication tasks converge to slightly higher-dimensional manifolds (4–6 dimensions versus
    3–4 for addition)": per seed, r90 minus its own matched random-walk null (each the mean over
    the attention matrices; the null rises with multiplication too), multiplication's minus
    addition's (Welch interval over the two groups of seeds); *supported* if it lies at or above 1,
    *not supported* if it lies at or below 0, *inconclusive* otherwise."""
    if holds(increase, ">=", 1) is True:
        return SUPPORTED
    return NOT_SUPPORTED if holds(increase, ">", 0) is False else INCONCLUSIVE


RULES = {18: multiplication_rule}


def majority_share(C: int, m: int, op: str = "mul") -> float:
    """The largest answer class's share when m values are drawn uniformly from 0..C-1 (exact):
    the accuracy of always answering it. Addition: 1/C; multiplication mod 8: 1/8, 5/16, 1/2,
    21/32 for m = 1..4 (a product with enough factors of 2 is 0)."""
    p = np.zeros(C)
    p[0 if op == "add" else 1] = 1.0                     # the empty sum 0, the empty product 1
    for _ in range(m):
        q = np.zeros(C)
        for v in range(C):                               # the next value v, with probability 1/C
            np.add.at(q, (np.arange(C) + v) % C if op == "add" else np.arange(C) * v % C, p / C)
        p = q
    return float(p.max())


def baselines(C: int, ms) -> dict:
    """{m: majority-class accuracy} of multiplication mod C for each m."""
    return {int(m): majority_share(C, int(m)) for m in ms}


def claim_multiplication(add, mul, C):
    e_add, e_mul = excess_over_null(add), excess_over_null(mul)
    iv = diff_interval(e_mul, e_add, add.get("r90_step", 0.0))
    ms = sorted(mul["final_acc"][0])
    base = baselines(C, ms)
    acc = ", ".join(f"m={m} {np.mean([a[m] for a in mul['final_acc']]):.3f} (majority class {base[m]:.3f})"
                    for m in ms)
    return Row(claim=CLAIM, section="§4.6", paper=PAPER,
               measured=f"r90 − matched null: mul {mean_sd(e_mul)}, add {mean_sd(e_add)}; r90 mul "
                        f"{mean_sd(mul['r90'])}, add {mean_sd(add['r90'])}; final accuracy of mul per m {acc}",
               null=f"matched random walks: mul {mean_sd(mul['null'])}, add {mean_sd(add['null'])}",
               interval=f"mul − add of r90 − null {iv.text()}", verdict=multiplication_rule(iv), value=iv.est)


def measurements(ctx) -> list:
    return summary_measurements(ctx.variants["mul"]) if ctx.preset.comparisons else []


def report(ctx):
    if not ctx.preset.comparisons:
        return {18: not_measured(CLAIM, "§4.6", PAPER)}, []
    main, mul = ctx.runs, ctx.variants["mul"]
    s_main, s_mul = summarize(ctx, main), summarize(ctx, mul)
    C = mul[0]["summary"]["config"]["task"]["C"]
    return {18: counted_claim(lambda a, m: claim_multiplication(a, m, C), s_main, s_mul)}, [
        fig_compare({"addition": s_main, "multiplication": s_mul}, {"addition": main, "multiplication": mul},
                    "Multiplication vs addition (mod C)", ctx.extra_caption, ctx.path("fig_multiplication.png"),
                    baselines=("multiplication", baselines(C, sorted(s_mul["final_acc"][0]))))]


EXPERIMENT = Experiment("multiplication", "§4.6, multiplication figure: claim 18", RULES, report,
                        variants=variants, measurements=measurements)
