#!/usr/bin/env python
"""The main job: train the preset's runs (cached), analyse them, write figures/.

    python run_all.py                      # quick preset (default)
    python run_all.py --preset paper --jobs 2
    python run_all.py --preset paper --lr 0.001   # the paper as written (does not learn)
    python run_all.py --preset paper --plan      # what it would train, and how long: trains nothing
    python run_all.py --preset paper --train main,curriculum   # only those groups now; a partial ledger
    python run_all.py --preset paper --train main,curriculum --plan   # what that would train

The work is ``minimanifold.pipeline.run``; this file only reads the command line.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys

import minimanifold  # noqa: F401  (sets up the allocator before any work)
from minimanifold.model.backend import get_backend
from minimanifold.pipeline import PipelineError, check_groups, run, update_readme_ledgers
from minimanifold.planning import plan
from minimanifold.trajectories.presets import PRESETS
from minimanifold.trajectories.progress import Board, printable_streams, safe_print
from minimanifold.trajectories.pool import usable_cores

ROOT = os.path.dirname(os.path.abspath(__file__))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    ap.add_argument("--jobs", type=int, default=usable_cores(),
                    help="runs trained (and per-run analyses computed) in parallel as local processes, "
                         "the cores' BLAS threads split between them (default: one per core, one thread "
                         "each; --jobs 1 trains in this process on every core)")
    ap.add_argument("--runs-dir", default=os.path.join(ROOT, "runs"), help="cache of trained runs")
    ap.add_argument("--figures-dir", default=None,
                    help="where figures go (default: figures/ for quick, figures/<preset>/ otherwise)")
    ap.add_argument("--lr", type=float, default=None, help="override the preset's learning rate")
    ap.add_argument("--steps", type=int, default=None, help="override the preset's step count")
    ap.add_argument("--seeds", type=int, default=None, help="override the preset's seed count")
    ap.add_argument("--backend", default=None, help="numpy (default) or cupy")
    partial = ap.add_mutually_exclusive_group()
    partial.add_argument("--finished-only", action="store_true",
                         help="train nothing: analyse the runs already finished in the run cache (or under "
                              "another name) and write a partial ledger whose caption names the claims not "
                              "measured yet (their comparison runs, or restricted retraining, need training)")
    partial.add_argument("--train", default=None, metavar="GROUP[,GROUP...]",
                         help="train only these groups of runs now (the names --plan lists, and "
                              "restricted-retraining), then analyse them with the runs already finished, "
                              "as --finished-only does: a preset that spans sessions finishes whole "
                              "comparisons session by session instead of a little of each")
    ap.add_argument("--overwrite", action="store_true",
                    help="let this run replace a ledger in --figures-dir that it did not write (another "
                         "preset's, other settings', or a whole ledger by a partial one); refused otherwise")
    ap.add_argument("--plan", action="store_true",
                    help="print the runs the preset needs (finished, reusable, to train) and an estimate "
                         "of their training time from a step timed now; train nothing")
    a = ap.parse_args(argv)
    for name in ("jobs", "seeds"):
        if getattr(a, name) is not None and getattr(a, name) < 1:
            print(f"error: --{name} must be a positive integer, got {getattr(a, name)}", file=sys.stderr)
            return 2
    try:
        get_backend(a.backend)                     # an unknown or missing backend: one line, now
    except (ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    preset = PRESETS[a.preset]
    overrides = {k: v for k, v in (("lr", a.lr), ("steps", a.steps)) if v is not None}
    if a.seeds is not None:
        preset = dataclasses.replace(preset, n_seeds=a.seeds)
    try:
        preset = dataclasses.replace(preset, train=dataclasses.replace(preset.train, **overrides))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if preset.train.steps < preset.min_steps():      # up front: not after hours, inside a figure
        print(f"error: --steps {preset.train.steps}: the {preset.name} preset needs at least "
              f"{preset.min_steps()} steps (4 checkpoints of {preset.train.ckpt_every} steps in each curriculum "
              f"stage its analyses compare)", file=sys.stderr)
        return 2
    if a.jobs > usable_cores():                      # more workers than cores only queue (and each costs memory)
        print(f"note: --jobs {a.jobs} capped at {usable_cores()}, the cores this process may use", file=sys.stderr)
        a.jobs = usable_cores()
    train = None
    if a.train is not None:
        try:
            train = check_groups(preset, [g.strip() for g in a.train.split(",") if g.strip()])
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if not train:
            print("error: --train names no group (to train nothing, use --finished-only)", file=sys.stderr)
            return 2
    if a.plan:
        safe_print(plan(preset, a.runs_dir, a.jobs, train=train))
        return 0
    default_dir = os.path.join(ROOT, "figures", "" if a.preset == "quick" else a.preset)
    fig_dir = a.figures_dir or default_dir
    in_repo = os.path.abspath(fig_dir) == os.path.abspath(default_dir)   # the committed figures
    readme = os.path.join(ROOT, "README.md")
    try:
        run(preset, a.runs_dir, fig_dir, jobs=a.jobs, backend=a.backend,
            readme=readme if in_repo and a.preset == "quick" and not a.finished_only and train is None else None,
            log=Board(sys.stdout), finished_only=a.finished_only, train=train, overwrite=a.overwrite)
        if in_repo:                                  # the presets' verdicts side by side
            update_readme_ledgers(readme, os.path.join(ROOT, "figures"))
    except (PipelineError, OSError, ValueError) as e:   # ValueError: a damaged committed ledger           # OSError: disk full, read-only or file-for-folder paths
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    printable_streams()        # an ASCII terminal (LC_ALL=C) gets the ledger's ± and — escaped
    sys.exit(main())
