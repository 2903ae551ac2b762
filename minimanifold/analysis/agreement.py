"""Do two runs compute the same function? The share of inputs on which their answers
agree, beside what it would be if each erred independently at its own accuracy. Pure
functions over answer arrays (claim 5's "functionally equivalent", at the level of
outputs).

Shape legend: r run (seed), n input, c classes.
"""
from __future__ import annotations

import itertools

import numpy as np


def agreement(a, b) -> float:
    """Share of inputs on which two runs give the same answer. a, b [n]."""
    return float(np.mean(np.asarray(a) == np.asarray(b)))


def independent_agreement(acc_a: float, acc_b: float, C: int) -> float:
    """The expected agreement of two runs that err independently, each wrong answer spread
    evenly over the C − 1 wrong classes: both right, or both wrong alike,
    acc_a acc_b + (1 − acc_a)(1 − acc_b) / (C − 1)."""
    return acc_a * acc_b + (1 - acc_a) * (1 - acc_b) / (C - 1)


def pair_agreements(answers, targets, C: int):
    """(observed, independent): for every pair of runs in ``itertools.combinations`` order,
    the agreement of their answers and the independent-errors agreement at their
    accuracies. answers [r, n] (every run on the same n inputs), targets [n]."""
    answers, targets = np.asarray(answers), np.asarray(targets)
    acc = (answers == targets).mean(axis=1)                                    # [r]
    pairs = list(itertools.combinations(range(len(answers)), 2))
    return (np.array([agreement(answers[i], answers[j]) for i, j in pairs]),
            np.array([independent_agreement(acc[i], acc[j], C) for i, j in pairs]))


def shared_errors(answers, targets) -> tuple:
    """Per pair of runs in ``itertools.combinations`` order: (inputs both answer wrong, how
    many that would be if each erred independently at its accuracy, inputs both answer
    with the same wrong answer), each [pair]. answers [r, n], targets [n]."""
    answers, targets = np.asarray(answers), np.asarray(targets)
    wrong = answers != targets                                                 # [r, n]
    pairs = list(itertools.combinations(range(len(answers)), 2))
    return (np.array([float(np.sum(wrong[i] & wrong[j])) for i, j in pairs]),
            np.array([float(wrong[i].mean() * wrong[j].mean() * len(targets)) for i, j in pairs]),
            np.array([float(np.sum(wrong[i] & wrong[j] & (answers[i] == answers[j]))) for i, j in pairs]))
