#!/usr/bin/env python
"""The main job: train the preset's runs (cached), analyse them, write figures/<preset>/.

    python run_all.py                      # quick preset (default) -> figures/quick/
    python run_all.py --preset paper --jobs 2
    python run_all.py --preset paper --plan      # what it would train, and how long: trains nothing
    python run_all.py --preset paper --train main,curriculum   # only those groups now; a partial ledger
    python run_all.py --preset paper --dask tcp://scheduler:8786   # on a Dask cluster (docs/dask.md)

It writes only under the figures folder; in place (figures/<preset>/) it also regenerates
figures/ledgers.md, the presets' verdicts side by side. The work is
``minimanifold.pipeline.run``; the options are ``minimanifold.options``.
"""
from __future__ import annotations

import os
import sys

from minimanifold.model.backend import keep_freed_memory
from minimanifold.options import OptionError, configure, parser
from minimanifold.pipeline import PipelineError, run, write_ledgers_page
from minimanifold.planning import plan
from minimanifold.trajectories.cluster import ClusterError, connect
from minimanifold.trajectories.progress import Board, printable_streams, safe_print

ROOT = os.path.dirname(os.path.abspath(__file__))


def main(argv=None) -> int:
    a = parser(os.path.join(ROOT, "runs"), __doc__).parse_args(argv)
    try:
        preset, train = configure(a)
        workers = None if a.dask is None else connect(a.dask)     # a Dask cluster's workers, or local processes
    except (OptionError, ClusterError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    figures = os.path.join(ROOT, "figures")
    fig_dir = a.figures_dir or os.path.join(figures, a.preset)
    try:
        if a.plan:
            safe_print(plan(preset, a.runs_dir, a.jobs, train=train, executor=workers,
                            records_root=os.path.join(fig_dir, "records")))
            return 0
        run(preset, a.runs_dir, fig_dir, jobs=a.jobs if workers is None else 1, backend=a.backend,
            log=Board(sys.stdout), finished_only=a.finished_only, train=train, overwrite=a.overwrite,
            executor=workers)
        if os.path.abspath(os.path.dirname(fig_dir)) == figures:     # a committed preset folder
            write_ledgers_page(figures)
    except (PipelineError, ClusterError, OSError, ValueError) as e:
        # ValueError: a damaged committed ledger, another's folder; ClusterError: a task lost
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if workers is not None:         # queued tasks are dropped; a run a worker is training finishes
            workers.shutdown(wait=False)
    return 0


if __name__ == "__main__":
    keep_freed_memory()         # glibc keeps freed arenas: the step's temporaries are reused (see backend)
    printable_streams()         # an ASCII terminal (LC_ALL=C) gets the ledger's ± and — escaped
    sys.exit(main())
