"""Which m each training step draws from (paper §3.1-3.2: mixed, curriculum, and the
authors' one-m-per-batch), and the training batch of a step, a pure function of (seed,
step) so a resumed run draws exactly the batches an uninterrupted run would.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .task import Batch, TaskConfig, check_m, make_batch

SCHEDULE_KINDS = ("mixed", "curriculum", "perbatch")


@dataclass(frozen=True)
class Schedule:
    """Which m values training draws from at each step.

    mixed:      one stage, m drawn per example from ``stages[0][0]``, for all steps.
    perbatch:   one stage, one m per batch, drawn each step from ``stages[0][0]`` (the
                authors' released code; the paper's text mixes per example).
    curriculum: stages (m_set, n_steps) in order; after the last stage ends training
                stays on the last stage.
    """
    kind: str
    stages: tuple  # ((m_set tuple, n_steps or None), ...)

    def __post_init__(self):
        if self.kind not in SCHEDULE_KINDS:
            raise ValueError(f"schedule must be one of {SCHEDULE_KINDS}, got {self.kind!r}")
        if not self.stages:
            raise ValueError("schedule needs at least one stage")
        for ms, n in self.stages:
            if not ms:
                raise ValueError("schedule stage has an empty m set")
            if self.kind == "curriculum" and (not isinstance(n, int) or n < 1):
                raise ValueError(f"curriculum stage steps must be a positive integer, got {n!r}")

    @classmethod
    def mixed(cls, ms) -> "Schedule":
        return cls("mixed", ((tuple(sorted(set(int(m) for m in ms))), None),))

    @classmethod
    def perbatch(cls, ms) -> "Schedule":
        return cls("perbatch", cls.mixed(ms).stages)

    @classmethod
    def curriculum(cls, stages) -> "Schedule":
        return cls("curriculum", tuple((tuple(sorted(set(int(m) for m in ms))), int(n))
                                       for ms, n in stages))

    @classmethod
    def parse(cls, text: str) -> "Schedule":
        """'mixed:1,2,3,4', 'perbatch:1,2,3,4' or 'curriculum:1x1000,2x1000,3x1000,4x1000' (m-set 'x' steps;
        an m-set of several values is joined by '+', e.g. '1+2x500')."""
        kind, _, rest = text.partition(":")
        if kind not in SCHEDULE_KINDS:
            raise ValueError(f"schedule must be one of {SCHEDULE_KINDS}, got {kind!r}")
        try:
            if kind in ("mixed", "perbatch"):
                return getattr(cls, kind)(int(x) for x in rest.split(","))
            stages = []
            for part in rest.split(","):
                ms, _, n = part.partition("x")
                stages.append(([int(x) for x in ms.split("+")], int(n)))
            return cls.curriculum(stages)
        except ValueError as e:
            if "schedule" in str(e):
                raise
            raise ValueError(f"schedule {text!r} is malformed: {e}") from None

    def spec(self) -> str:
        if self.kind != "curriculum":
            return f"{self.kind}:" + ",".join(map(str, self.stages[0][0]))
        return "curriculum:" + ",".join("+".join(map(str, ms)) + f"x{n}" for ms, n in self.stages)

    def all_m(self) -> tuple:
        return tuple(sorted({m for ms, _ in self.stages for m in ms}))

    def m_set(self, step: int) -> tuple:
        """The m set in force at (0-based) training step ``step``."""
        if self.kind != "curriculum":
            return self.stages[0][0]
        end = 0
        for ms, n in self.stages:
            end += n
            if step < end:
                return ms
        return self.stages[-1][0]

    def boundaries(self) -> list:
        """Steps at which each curriculum stage begins (``[0]`` for mixed)."""
        out, start = [], 0
        for _, n in self.stages:
            out.append(start)
            start += n or 0
        return out

    def validate(self, task: TaskConfig) -> None:
        for m in self.all_m():
            check_m(m, task)


def train_batch(task: TaskConfig, schedule: Schedule, batch_size: int, seed: int, step: int) -> Batch:
    """The training batch of step ``step``: a pure function of (seed, step), so a resumed
    run draws exactly the batches an uninterrupted run would."""
    rng = np.random.default_rng([seed, 0, step])
    ms = schedule.m_set(step)
    if schedule.kind == "perbatch":                   # one m for the whole batch
        ms = (ms[int(rng.integers(len(ms)))],)
    return make_batch(rng, task, ms, batch_size)
