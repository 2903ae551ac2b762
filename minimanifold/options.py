"""``run_all.py``'s options: the parser, and the preset they configure (validated up front,
before anything trains or is written)."""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from .experiments.groups import check_groups
from .model.backend import get_backend
from .trajectories.cluster import require
from .trajectories.pool import usable_cores
from .trajectories.presets import PRESETS


class OptionError(ValueError):
    """An option that cannot work; the message is the one line the command prints."""


def parser(default_runs_dir, description=None) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=int, default=None,                # None: usable_cores(), set by configure
                       help="runs trained (and per-run analyses computed) in parallel as local processes, "
                            "the cores' BLAS threads split between them (default: one per core, one thread "
                            "each; --jobs 1 trains in this process on every core; capped at the cores)")
    where.add_argument("--dask", default=None, metavar="ADDRESS",
                       help="train the runs and compute the per-run analyses on the workers of the Dask "
                            "scheduler at ADDRESS (tcp://host:8786), one BLAS thread per task; --runs-dir "
                            "must be a path every worker shares; with --plan, the estimate for its workers "
                            "(needs the dist extra; docs/dask.md)")
    ap.add_argument("--runs-dir", default=default_runs_dir, help="cache of trained runs")
    ap.add_argument("--figures-dir", default=None, help="where figures and the ledger go (default: figures/<preset>/)")
    ap.add_argument("--lr", type=float, default=None, help="override the preset's learning rate")
    ap.add_argument("--steps", type=int, default=None, help="override the preset's step count")
    ap.add_argument("--seeds", type=int, default=None, help="override the preset's seed count")
    ap.add_argument("--backend", default=None, help="numpy (default) or cupy")
    partial = ap.add_mutually_exclusive_group()
    partial.add_argument("--finished-only", action="store_true",
                         help="train nothing: analyse the runs already finished in the run cache (or under "
                              "another name) and write a partial ledger whose caption names the claims (and "
                              "figures) not measured yet")
    partial.add_argument("--train", default=None, metavar="GROUP[,GROUP...]",
                         help="train only these groups of runs now (the names --plan lists), then analyse "
                              "them with the runs already finished, as --finished-only does")
    ap.add_argument("--overwrite", action="store_true",
                    help="let this run replace a ledger in --figures-dir that it did not write (another "
                         "preset's, other settings', or a whole ledger by a partial one); refused otherwise")
    ap.add_argument("--plan", action="store_true",
                    help="print the runs the preset needs (finished, reusable, to train) and an estimate "
                         "of their training time from a step timed now; train nothing")
    return ap


def configure(a) -> tuple:
    """(preset with the overrides, the groups --train names or None) from parsed options;
    OptionError for any that cannot work (--dask without the dist extra included).
    ``a.jobs`` unset becomes the usable cores, and above them is capped; with --dask,
    ``a.runs_dir`` becomes absolute (a path every worker reads the same)."""
    for name in ("jobs", "seeds"):
        if getattr(a, name) is not None and getattr(a, name) < 1:
            raise OptionError(f"--{name} must be a positive integer, got {getattr(a, name)}")
    a.jobs = usable_cores() if a.jobs is None else a.jobs
    if a.dask is not None:                 # the workers resolve a relative path from their own folder
        a.runs_dir = os.path.abspath(a.runs_dir)
    try:
        if a.dask is not None:
            require()                              # the dist extra: one line, now
        get_backend(a.backend)                     # an unknown or missing backend: one line, now
        preset = PRESETS[a.preset]
        if a.seeds is not None:
            preset = dataclasses.replace(preset, n_seeds=a.seeds)
        overrides = {k: v for k, v in (("lr", a.lr), ("steps", a.steps)) if v is not None}
        preset = dataclasses.replace(preset, train=dataclasses.replace(preset.train, **overrides))
    except (ValueError, RuntimeError) as e:            # ClusterError: a RuntimeError
        raise OptionError(str(e)) from None
    if preset.train.steps < preset.min_steps():      # up front: not after hours, inside a figure
        raise OptionError(f"--steps {preset.train.steps}: the {preset.name} preset needs at least "
                          f"{preset.min_steps()} steps (4 checkpoints of {preset.train.ckpt_every} steps in each "
                          f"curriculum stage its analyses compare)")
    if a.jobs > usable_cores():                      # more workers than cores only queue (and each costs memory)
        print(f"note: --jobs {a.jobs} capped at {usable_cores()}, the cores this process may use", file=sys.stderr)
        a.jobs = usable_cores()
    train = None
    if a.train is not None:
        try:
            train = check_groups(preset, [g.strip() for g in a.train.split(",") if g.strip()])
        except ValueError as e:
            raise OptionError(str(e)) from None
        if not train:
            raise OptionError("--train names no group (to train nothing, use --finished-only)")
    return preset, train
