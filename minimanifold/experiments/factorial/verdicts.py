"""The factorial's verdicts, claims 24–26: each pair of cells that differ in one factor
gives the Welch interval of their r90 difference (means over the attention matrices, per
seed); the rules read those intervals against a margin of one dimension, at every
checkpoint and at 40 evenly spaced snapshots. The docstring of a rule is what the ledger
prints.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ...analysis.intervals import all_of, diff_interval, holds
from ...report.ledger import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, Row, mean_sd
from ..snapshot_count import counted
from .cells import CELLS, OPTIMIZERS, SCHEDULES, label, matrix_gaps

MARGIN = 1.0               # one dimension of r90: what "lower-dimensional" must clear
TOL = 1e-9                 # 4 seeds at 2 and one at 1, against 3 and 2: a gap of −0.9999999999999998


def task_rule(gaps: dict) -> str:
    """the collapse is the task's: per optimizer and schedule, the Welch interval of no-task
    r90 minus task r90 (means over attention matrices); *supported* if every pair's lies at
    or above 1 (the task makes trajectories at least one dimension lower than descent with
    nothing to learn); *not supported* if some pair's lies below 1 (no-task runs as low,
    within one dimension); *inconclusive* otherwise or with a cell missing, or when the verdict
    from 40 evenly spaced snapshots differs (``snapshot_count.count_rule``)."""
    if len(gaps) < len(OPTIMIZERS) * len(SCHEDULES):
        return INCONCLUSIVE
    if any(holds(iv, "<", MARGIN) is True for iv in gaps.values()):
        return NOT_SUPPORTED
    return SUPPORTED if all(holds(iv, ">=", MARGIN) is True for iv in gaps.values()) else INCONCLUSIVE


def unchanged_rule(diffs: dict) -> str:
    """the collapse does not hang on this choice: per pair of task cells that differ only in
    it, the Welch interval of the r90 difference; *supported* if every one lies within
    (−1, 1); *not supported* if some one lies wholly at or beyond ±1; *inconclusive*
    otherwise or with a cell missing, or when the verdict from 40 evenly spaced snapshots differs."""
    if len(diffs) < 2:
        return INCONCLUSIVE
    if any(holds(iv, ">=", MARGIN) is True or holds(iv, "<=", -MARGIN) is True for iv in diffs.values()):
        return NOT_SUPPORTED
    return SUPPORTED if all(all_of(holds(iv, ">", -MARGIN), holds(iv, "<", MARGIN)) is True
                            for iv in diffs.values()) else INCONCLUSIVE


RULES = {24: task_rule, 25: unchanged_rule, 26: unchanged_rule}
CLAIMS = {24: ("the collapse is the task's (task against no-task runs)", "abstract, §4.1 (control)",
               "the manifold reflects the computation being learned"),
          25: ("the collapse does not hang on the optimizer (AdamW against plain SGD)", "§3.2 (control)",
               "low-dimensional under plain SGD (§3.2)"),
          26: ("the collapse does not hang on the step-size schedule (cosine against constant)",
               "§3.2 (control)", "no schedule stated (§3.2: SGD, lr 0.001)")}


def rows(per_cell: dict, why=None) -> dict:
    """Claims 24–26 from {cell: summarize_cell(...)}: each pair of cells that differ in one
    factor and are both there gives its interval; with a cell missing (a partial ledger)
    the rows name it and decide nothing (the rules need every pair). ``why``: not measured."""
    if why or not per_cell:
        return {n: Row(claim=c, section=s, paper=p, measured=why or "no cell has a finished run", null="",
                       interval="", verdict=INCONCLUSIVE, value=None) for n, (c, s, p) in CLAIMS.items()}
    here = [c for c in CELLS if c in per_cell]
    missing = [label(c) for c in CELLS if c not in per_cell]
    measured = "r90: " + "; ".join(f"{label(c)} {mean_sd(per_cell[c]['r90'])}" for c in here) + (
        f"; no finished run yet (decides nothing without them): {', '.join(missing)}" if missing else "")
    null = "; ".join(f"{label(c)}: walk {mean_sd(per_cell[c]['walk'])}, exact {np.mean(per_cell[c]['exact']):.2f}, "
                     f"shuffled {mean_sd(per_cell[c]['shuffled'])}" for c in here)   # no-task cells' too: read r90 beside them
    step = per_cell[here[0]].get("r90_step", 0.0)                        # r90 means of 4L integers

    def pairs(key, keys, hi, lo):     # {key: interval of r90(hi(key)) − r90(lo(key))} where both cells are there
        return {k: diff_interval(per_cell[hi(*k)][key], per_cell[lo(*k)][key], step)
                for k in keys if hi(*k) in per_cell and lo(*k) in per_cell}

    def intervals(key):               # {claim: its pairs' intervals} of r90 from every checkpoint, or the common count
        return {24: pairs(key, [(o, s) for o in OPTIMIZERS for s in SCHEDULES],
                          lambda o, s: (o, s, "no task"), lambda o, s: (o, s, "task")),
                25: pairs(key, [(s,) for s in SCHEDULES], lambda s: ("AdamW", s, "task"), lambda s: ("SGD", s, "task")),
                26: pairs(key, [(o,) for o in OPTIMIZERS], lambda o: (o, "cosine", "task"), lambda o: (o, "constant", "task"))}
    every, common = intervals("r90"), "r90_common" in per_cell[here[0]] and intervals("r90_common")
    out = {}
    for n, what in ((24, "no task − task"), (25, "AdamW − SGD"), (26, "cosine − constant")):
        (c, s, p), ivs = CLAIMS[n], every[n]
        out[n] = Row(claim=c, section=s, paper=p, measured=measured, null=null,
                     interval="; ".join(f"{', '.join(k)}: {what} {iv.text()}" for k, iv in ivs.items()),
                     verdict=RULES[n](ivs) if not missing else INCONCLUSIVE,
                     value={", ".join(k): iv.est for k, iv in ivs.items()})
        if common:                    # the verdict must not hang on the snapshot count (snapshot_count.count_rule)
            out[n] = counted(out[n], RULES[n](common[n]) if not missing else INCONCLUSIVE,
                             per_cell[here[0]]["n_common"])
    if (matrices := per_matrix_gaps(per_cell)):
        out[24] = dataclasses.replace(out[24], interval=f"{out[24].interval}; {matrices}")
    return out


def per_matrix_gaps(per_cell: dict) -> str:
    """Not in the rule, which reads means over the attention matrices: per optimizer and
    schedule, in how many matrices the no-task cell's mean r90 over seeds lies at least
    ``MARGIN`` above the task cell's, and in how many at least ``MARGIN`` below (a mean gap
    near 0 can hide gaps of both signs); '' without the per-matrix summaries. Means of
    integers land on ±1 only up to rounding, hence ``TOL``."""
    got = [f"{o}, {s}: ≥ 1 in {int(np.sum(gap >= MARGIN - TOL))}, ≤ −1 in {int(np.sum(gap <= -MARGIN + TOL))} "
           f"of {gap.size}" for (o, s), gap in matrix_gaps(per_cell).items()]
    return ("not in the rule, no task − task per attention matrix (means over seeds), "
            + "; ".join(got) + " (fig_factorial_matrices)") if got else ""
