"""The marker task (paper §3.1): its configuration, sequences and targets (the m-schedules
and the batch of each training step: ``schedule.py``).

Shape letters: b batch, t position (T), i marker index (up to the batch's largest m).

An example with m markers: m positions p_0 < ... < p_{m-1} in 0..T-3, pairwise
non-adjacent (p_{i+1} >= p_i + 2); position p_i holds marker C+i and p_i + 1 holds a
value in 0..C-1; the query token sits at T-1; every other position is a distractor
drawn uniformly from the distractor tokens. Target = sum (or product) of values mod C.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..model.config import check_positive

OPS = ("add", "mul")
LABELS = ("task", "random")


@dataclass(frozen=True)
class TaskConfig:
    """Marker-based modular arithmetic (paper §3.1).

    Token layout (``d_vocab`` tokens in all):
      values      0 .. C-1
      markers     C .. C+n_markers-1      (the i-th marked position gets marker C+i)
      query       C+n_markers             (always at position T-1, where the readout is)
      distractors C+n_markers+1 .. d_vocab-1
    The answer is the sum (op="add") or product (op="mul") of the m values mod C.
    ``labels="random"`` is the no-task control (issue 24's factorial): the same inputs,
    each training label drawn uniformly from 0..C-1 independently of them, fresh every
    batch; there is no rule to learn. Held-out probes keep the task's labels.
    """
    T: int = 32
    C: int = 8
    n_markers: int = 6
    d_vocab: int = 32
    op: str = "add"
    holdout: float = 0.0      # share of value multisets (m >= 2) never trained on (claim 20)
    labels: str = "task"      # "task", or "random": the no-task control

    def __post_init__(self):
        check_positive(self, "T", "n_markers", "d_vocab")
        if not (isinstance(self.holdout, (int, float)) and 0 <= self.holdout < 1):
            raise ValueError(f"holdout must be a number in [0, 1), got {self.holdout!r}")
        if not isinstance(self.C, int) or self.C < 2:
            raise ValueError(f"C must be an integer >= 2, got {self.C!r}")
        if self.op not in OPS:
            raise ValueError(f"op must be one of {OPS}, got {self.op!r}")
        if self.labels not in LABELS:
            raise ValueError(f"labels must be one of {LABELS}, got {self.labels!r}")
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
    if task.labels == "random":                 # drawn after the inputs: the same inputs as the task's
        targets = rng.integers(0, C, size=batch_size)
    return Batch(tokens.astype(np.int64), targets.astype(np.int64), m.astype(np.int64),
                 positions.astype(np.int64), values.astype(np.int64))


def probe_set(task: TaskConfig, ms, n_per_m: int, seed: int) -> dict:
    """A fixed held-out set: ``{m: Batch}`` with ``n_per_m`` examples for each m.

    Drawn from its own seed stream, disjoint from the training stream in generator
    state (examples themselves may coincide: the task space is finite). Always with the
    task's labels: a no-task run (``labels="random"``) is probed on the rule it was not
    given, so its accuracy shows it learned none.
    """
    task = dataclasses.replace(task, labels="task")
    return {int(m): make_batch(np.random.default_rng([seed, 1, int(m)]), task, [m], n_per_m)
            for m in ms}
