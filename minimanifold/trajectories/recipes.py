"""The search for a plain-SGD recipe that learns the paper's setting (mixed m in {1..4},
T=32, C=8, d_model=128, 4 heads) on every seed: a grid of step-size schedules, learning
rates, batch sizes and depths, trained with the project's own sweep (cached), and the
table of outcomes docs/recipe-search.md records.

    python -m minimanifold.trajectories.recipes --jobs 2 --seeds 3        # screen the grid
    python -m minimanifold.trajectories.recipes --only L3-cos0.1 --seeds 10 --jobs 2
    python -m minimanifold.trajectories.recipes --only L4-cos0.15-30k --seed-list 3 7 --jobs 2

Plain SGD throughout: theta <- theta - eta_t g, no momentum; a schedule only sets eta_t.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys

from ..model.config import ModelConfig
from .task import TaskConfig
from .metrics import steps_to_learn
from .progress import Board
from .sweep import RunSpec, sweep
from .rundir import load_metrics
from .training_loop import TrainConfig
from ..model.backend import keep_freed_memory

STEPS = 20000
BASE = TrainConfig(steps=STEPS, ckpt_every=100, lr=0.1, init_std=0.1, schedule="mixed:1,2,3,4")

# name -> (n_layers, TrainConfig changes); every other setting is the paper's (§3)
GRID = {
    "L2-cos0.2": (2, {"lr": 0.2, "lr_schedule": "cosine:1000"}),
    "L3-const0.1": (3, {}),
    "L3-cos0.2": (3, {"lr": 0.2, "lr_schedule": "cosine:1000"}),
    "L3-cos0.1": (3, {"lr": 0.1, "lr_schedule": "cosine:1000"}),
    # L3-const0.1 learns m=4 late and oscillates around 0.95; 0.2 is unstable early. A peak
    # between them, decayed to 0 over 30k steps (the same integrated step size as 0.1 for
    # 22.5k steps), should settle instead of oscillating.
    "L3-cos0.15-30k": (3, {"lr": 0.15, "lr_schedule": "cosine:1000", "steps": 30000}),
    # L3-cos0.15-30k learned on 8 of 10 seeds: seeds 3 and 7 end with m=4 at 0.91 and 0.83,
    # still climbing as the step size reaches 0. Next candidates, to screen on those two
    # seeds first (--first-seed 3 --seeds 5 covers both): the same peak held longer, a
    # fourth layer (depth is what moved m=4 from L=2 to L=3), a batch of 128 (less noise)
    # Screened on seeds 3 and 7 (2026-11-27): neither learned. Seed 3 ends m=4 at 0.94; seed 7
    # stays on the m <= 2 plateau (m=3, m=4 at chance) where the 30k schedule had learned m=3.
    "L3-cos0.15-45k": (3, {"lr": 0.15, "lr_schedule": "cosine:1000", "steps": 45000}),
    "L4-cos0.15-30k": (4, {"lr": 0.15, "lr_schedule": "cosine:1000", "steps": 30000}),
    "L3-b128-cos0.15-30k": (3, {"lr": 0.15, "lr_schedule": "cosine:1000", "steps": 30000, "batch_size": 128}),
}


def recipe_specs(name, seeds) -> list:
    n_layers, changes = GRID[name]
    model = ModelConfig(n_layers=n_layers)
    return [RunSpec(f"recipe-{name}", model, TaskConfig(), dataclasses.replace(BASE, seed=s, **changes))
            for s in seeds]


GOAL = 0.9       # issue 9: at least 90% of the seeds (10 or more tried) learn


def _binomial_tail(k: int, n: int, p: float, upper: bool) -> float:
    """P(X >= k) (upper) or P(X <= k) for X ~ Binomial(n, p)."""
    ks = range(k, n + 1) if upper else range(0, k + 1)
    return sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in ks)


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple:
    """The exact (Clopper–Pearson) interval of a binomial proportion: k of n seeds learned.
    lo solves P(X >= k | lo) = a/2 (0 when k = 0), hi solves P(X <= k | hi) = a/2 (1 when
    k = n), a = 1 - level; by bisection on the binomial tails, which are monotone in p."""
    if not (isinstance(k, int) and isinstance(n, int) and 0 <= k <= n and n >= 1):
        raise ValueError(f"need integers 0 <= k <= n, n >= 1; got k={k!r}, n={n!r}")
    a = (1 - level) / 2

    def crossing(f):                  # the p in [0, 1] where the increasing f(p) reaches a
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if f(mid) < a else (lo, mid)
        return (lo + hi) / 2
    low = 0.0 if k == 0 else crossing(lambda p: _binomial_tail(k, n, p, upper=True))      # rises with p
    high = 1.0 if k == n else 1 - crossing(lambda q: _binomial_tail(k, n, 1 - q, upper=False))  # falls with p
    return low, high


def share(k: int, n: int) -> str:
    """'k/n [lo, hi]', and whether the goal of 90% is met by the count and by the interval."""
    if n == 0:
        return "0/0"
    lo, hi = clopper_pearson(k, n)
    goal = ("meets 90%" if k >= GOAL * n else "below 90%") + (
        ", interval above 90%" if lo >= GOAL else ", interval below 90%" if hi < GOAL else "")
    return f"{k}/{n} [{lo:.2f}, {hi:.2f}]: {goal}"


def outcome_table(results: dict) -> str:
    """Markdown: per recipe, the step from which every m stays >= 0.95 on each seed, and
    the fraction of seeds that learned with its exact 95% interval (10 of 10 seeds still
    leave 0.69 as its lower end: the share of seeds that learn is itself a measurement)."""
    lines = ["| recipe | layers | training | seeds learned (95% interval of the share) | "
             "learned from step (per seed) | final accuracy m=4 (per seed) |", "|---|---|---|---|---|---|"]
    for name, runs in results.items():
        n_layers, changes = GRID[name]
        tr = dataclasses.replace(BASE, **changes)
        ok = [r for r in runs if r["summary"] is not None]
        learned = [steps_to_learn(load_metrics(r["dir"])) for r in ok]
        acc4 = [r["summary"]["final_acc"].get("4") for r in ok]
        lines.append(f"| {name} | {n_layers} | lr {tr.lr} {tr.lr_schedule}, batch {tr.batch_size}, {tr.steps} steps | "
                     f"{share(sum(s is not None for s in learned), len(runs))} | "
                     + " / ".join("never" if s is None else str(s) for s in learned) + " | "
                     + " / ".join(f"{a:.2f}" for a in acc4) + " |")
    return "\n".join(lines)


def check_args(a) -> str | None:
    """The first thing wrong with the command line, or None; checked before any training
    (a bad count used to end in a traceback, a repeated seed had two workers train one run
    directory at once, and ``--only`` with no names trained the whole grid)."""
    if a.only == []:
        return "--only names no recipe; give one or more of " + ", ".join(sorted(GRID))
    for flag, value in (("--seeds", a.seeds), ("--jobs", a.jobs)):
        if value < 1:
            return f"{flag} must be a positive integer, got {value}"
    seeds = a.seed_list if a.seed_list else [a.first_seed]
    if min(seeds) < 0:
        return f"seeds must be non-negative, got {min(seeds)}"
    for flag, values, what in (("--seed-list", seeds, "seed"), ("--only", a.only or [], "recipe")):
        repeated = [v for i, v in enumerate(values) if v in values[:i]]
        if repeated:
            return f"{flag} names {what} {repeated[0]} twice; each run is trained once"
    return None


def main(argv=None) -> int:
    keep_freed_memory()     # trains: the step's temporaries reuse freed heap (backend.keep_freed_memory)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--seed-list", type=int, nargs="+", default=None,
                    help="train exactly these seeds (instead of --first-seed/--seeds), e.g. the seeds "
                         "a recipe did not learn: --seed-list 3 7")
    ap.add_argument("--only", nargs="*", choices=sorted(GRID), default=None)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--runs-dir", default="runs")
    a = ap.parse_args(argv)
    problem = check_args(a)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    names = a.only or list(GRID)
    seeds = a.seed_list if a.seed_list else range(a.first_seed, a.first_seed + a.seeds)
    specs = [recipe_specs(n, [s])[0] for s in seeds for n in names]     # seed-major: early results for all
    done = sweep(specs, a.runs_dir, jobs=a.jobs, log=Board(sys.stdout))
    results = {n: [r for r in done if r["name"] == f"recipe-{n}"] for n in names}
    print(outcome_table(results))
    return 0


if __name__ == "__main__":
    from .progress import printable_streams
    printable_streams()
    sys.exit(main())
