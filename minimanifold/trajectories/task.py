"""The marker task (paper §3.1): sequences, targets, and the m-schedules.

Shape letters: b batch, t position (T), i marker index (up to the batch's largest m).

An example with m markers: m positions p_0 < ... < p_{m-1} in 0..T-3, pairwise
non-adjacent (p_{i+1} >= p_i + 2); position p_i holds marker C+i and p_i + 1 holds a
value in 0..C-1; the query token sits at T-1; every other position is a distractor
drawn uniformly from the distractor tokens. Target = sum (or product) of values mod C.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..model.config import TaskConfig

SCHEDULE_KINDS = ("mixed", "curriculum", "perbatch")


class Batch(NamedTuple):
    tokens: np.ndarray     # [b,t] int64
    targets: np.ndarray    # [b] int64, in 0..C-1
    m: np.ndarray          # [b] int64, markers per example
    positions: np.ndarray  # [b,i] int64, marker positions, -1 past m
    values: np.ndarray     # [b,i] int64, values, -1 past m


def check_m(m: int, task: TaskConfig) -> None:
    """Raise ValueError naming m if m markers cannot be placed in this task."""
    if not isinstance(m, (int, np.integer)) or m < 1:
        raise ValueError(f"m must be an integer >= 1, got {m!r}")
    if m > task.max_m:
        raise ValueError(f"m={m} is too large: at most {task.max_m} non-adjacent "
                         f"marker/value pairs fit in T-1={task.T - 1} positions")
    if m > task.n_markers:
        raise ValueError(f"m={m} exceeds n_markers={task.n_markers}: "
                         f"there is no marker token for the {m}-th marked position")


def sample_positions(rng: np.random.Generator, m: np.ndarray, T: int) -> np.ndarray:
    """Uniform non-adjacent marker positions in 0..T-3, independently per example.

    Map p_i -> q_i = p_i - i: non-adjacent p in 0..T-3 <-> distinct sorted q in
    0..T-2-m, so draw a uniform m-subset of T-1-m slots and add back the offsets.
    Returns [b,i] with -1 past each example's m.
    """
    b, M = m.shape[0], int(m.max())
    n_slots = T - 1 - m                                        # [b]
    keys = rng.random((b, T - 2))                              # T-2 = n_slots for m=1
    keys[np.arange(T - 2)[None, :] >= n_slots[:, None]] = np.inf
    q = np.argsort(keys, axis=1, kind="stable")[:, :M]         # [b,i] a random subset
    valid = np.arange(M)[None, :] < m[:, None]                 # [b,i]
    q = np.sort(np.where(valid, q, T), axis=1)                 # valid slots first, sorted
    return np.where(valid, q + np.arange(M)[None, :], -1)


def heldout(values: np.ndarray, m: np.ndarray, task: TaskConfig) -> np.ndarray:
    """[b] bool: is this example's value multiset one of the held-out combinations?

    A fixed, seed-independent share ``task.holdout`` of the multisets with m >= 2 (chosen
    by a multiplicative hash of m and the count of each value), so every run holds out the
    same combinations and a run can be tested on exactly them."""
    counts = np.stack([((values == c) & (values >= 0)).sum(axis=1) for c in range(task.C)], axis=1)   # [b,C]
    key = (counts * (task.max_m + 1) ** np.arange(task.C)).sum(axis=1) * 131 + m                       # [b]
    u = (key.astype(np.uint64) * np.uint64(2654435761) % np.uint64(2 ** 32)) / 2.0 ** 32
    return (m >= 2) & (u < task.holdout)


def make_batch(rng: np.random.Generator, task: TaskConfig, m_choices, batch_size: int,
               include_heldout: bool = False) -> Batch:
    """A batch whose m is drawn per example, uniformly from ``m_choices``. With
    ``task.holdout`` > 0 the held-out value combinations are redrawn unless
    ``include_heldout`` (for testing on them); with holdout 0 nothing is redrawn."""
    m_choices = np.asarray(sorted(set(int(x) for x in m_choices)), dtype=np.int64)
    if m_choices.size == 0:
        raise ValueError("m_choices must name at least one m")
    for mm in m_choices:
        check_m(int(mm), task)
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    T, C = task.T, task.C
    m = rng.choice(m_choices, size=batch_size)                             # [b]
    positions = sample_positions(rng, m, T)                                # [b,i]
    valid = positions >= 0
    values = np.where(valid, rng.integers(0, C, size=positions.shape), -1)  # [b,i]
    if task.holdout > 0 and not include_heldout:
        while (bad := heldout(values, m, task)).any():                       # redraw those rows
            values[bad] = np.where(valid[bad], rng.integers(0, C, size=(int(bad.sum()), values.shape[1])), -1)
    tokens = rng.integers(task.first_distractor, task.d_vocab, size=(batch_size, T))
    tokens[:, T - 1] = task.query_token
    rows, cols = np.nonzero(valid)
    tokens[rows, positions[rows, cols]] = C + cols                         # marker C+i
    tokens[rows, positions[rows, cols] + 1] = values[rows, cols]
    if task.op == "add":
        targets = np.where(valid, values, 0).sum(axis=1) % C
    else:
        targets = np.ones(batch_size, dtype=np.int64)
        for i in range(values.shape[1]):        # reduce mod C each step: no overflow
            targets = targets * np.where(valid[:, i], values[:, i], 1) % C
    return Batch(tokens.astype(np.int64), targets.astype(np.int64), m.astype(np.int64),
                 positions.astype(np.int64), values.astype(np.int64))


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


def probe_set(task: TaskConfig, ms, n_per_m: int, seed: int) -> dict:
    """A fixed held-out set: ``{m: Batch}`` with ``n_per_m`` examples for each m.

    Drawn from its own seed stream, disjoint from the training stream in generator
    state (examples themselves may coincide: the task space is finite).
    """
    return {int(m): make_batch(np.random.default_rng([seed, 1, int(m)]), task, [m], n_per_m)
            for m in ms}


def train_batch(task: TaskConfig, schedule: Schedule, batch_size: int, seed: int, step: int) -> Batch:
    """The training batch of step ``step``: a pure function of (seed, step), so a resumed
    run draws exactly the batches an uninterrupted run would."""
    rng = np.random.default_rng([seed, 0, step])
    ms = schedule.m_set(step)
    if schedule.kind == "perbatch":                   # one m for the whole batch
        ms = (ms[int(rng.integers(len(ms)))],)
    return make_batch(rng, task, ms, batch_size)
