"""Per-run measurements before the reports: every experiment's calls (heaviest first, each
once), computed on the training pool as each run finishes (``EarlyMeasurements``, the
sweep's ``then``) or on a pool after training (``prefetch``); the reports then read them
from the run directories' caches."""
from __future__ import annotations

import time

from ..trajectories.pool import Ranked, run_parallel
from ..trajectories.rundir import is_record
from ..trajectories.sweep import run_dir
from . import EXPERIMENTS
from .context import Context
from .contract import Call
from .groups import planned_specs


def prefetch_calls(ctx, skip=()) -> list:
    """Every experiment's per-run measurements [Call], the heaviest kind first (by its
    ``weight``), each call once (experiments in ``skip`` left out)."""
    calls = [(e.weight, n, Call(*call)) for e in EXPERIMENTS if e not in skip
             for n, call in enumerate(e.measurements(ctx))]
    return list(dict.fromkeys(call for *_, call in sorted(calls, key=lambda c: (-c[0], c[1]))))   # the first of repeats


def planned_context(preset, runs_dir, fig_dir="") -> Context:
    """The Context the analyses will get if every planned run trains without diverging:
    records with the name, seed and directory of each run, no summaries yet (``fig_dir``:
    where the figures and the committed records go)."""
    recs = {name: [{"name": s.name, "seed": s.train.seed, "dir": run_dir(runs_dir, s)} for s in group]
            for name, group in planned_specs(preset).items()}
    return Context(preset, recs.pop("main"), recs, fig_dir=fig_dir, caption="")


class EarlyMeasurements:
    """The sweep's ``then``: each finished run's per-run measurements (every call of
    ``prefetch_calls`` on the planned context whose first argument is that run's
    directory, heaviest first), so they fill the workers while the last runs train. A call
    that also reads another planned run (its directory among the arguments: another seed's
    basis) is handed out when the last of its runs finishes, at its position in its own
    run's list (``pool.Ranked``: not first in the other run's, ahead of every run's second
    call). ``done`` holds those calls for ``prefetch`` to skip; experiments in ``skip`` are
    left out."""

    def __init__(self, preset, runs_dir, skip=(), fig_dir=""):
        ctx = planned_context(preset, runs_dir, fig_dir)
        planned = {r["dir"] for r in ctx.runs} | {r["dir"] for rs in ctx.variants.values() for r in rs}
        self.by_dir, self.waiting, self.done = {}, {}, set()
        for call in prefetch_calls(ctx, skip):
            self.waiting[call] = {call.args[0]} | {a for a in call.args[1:] if isinstance(a, str) and a in planned}
            for d in self.waiting[call]:
                self.by_dir.setdefault(d, []).append(call)
        self.position = {c: i for d, calls in self.by_dir.items()            # in its own run's list
                         for i, c in enumerate(calls) if c.args[0] == d}

    def __call__(self, rec) -> list:
        ready = []
        for call in self.by_dir.pop(rec["dir"], []):
            self.waiting[call].discard(rec["dir"])
            if not self.waiting[call]:
                ready.append(call)
        self.done.update(ready)
        return Ranked(ready, [self.position[c] for c in ready])


def prefetch(ctx, jobs, log=print, done=frozenset(), skip=(), executor=None) -> None:
    """With ``jobs`` > 1 or an ``executor`` (a Dask cluster's): compute the per-run
    measurements on a process pool (or there) before the reports (which then read them
    from the run directories' caches), leaving out those in ``done`` (computed during
    training). Serially (jobs 1) each report computes its own, in this process, as before."""
    if jobs <= 1 and executor is None:
        return
    t0 = time.perf_counter()
    calls = [c for c in prefetch_calls(ctx, skip) if c not in done and not is_record(c.args[0])]
    run_parallel(calls, jobs, executor=executor)
    log(f"per-run measurements: {len(done)} on the training pool as their runs finished, {len(calls)} after, "
        f"{f'on {jobs} processes' if executor is None else 'on the cluster'} in {time.perf_counter() - t0:.0f}s")


def measure_left_out(ctx, skip, jobs=1, executor=None) -> int:
    """A partial sitting: the per-run measurements of the experiments it leaves out (their
    other groups not finished; not those that train) on the runs it has, computed (on a pool
    with ``jobs`` > 1) and read in this process, so the records it writes hold what the
    sitting that completes those experiments will read, even with the run cache gone.
    A run read from its record is left as it is. Returns the number of calls."""
    calls = list(dict.fromkeys(Call(*c) for e in skip if e.retraining is None for c in e.measurements(ctx)))
    calls = [c for c in calls if not is_record(c.args[0])]
    if jobs > 1 or executor is not None:
        run_parallel(calls, jobs, executor=executor)
    for c in calls:
        c.fn(*c.args)                    # cached by now: reading it marks it for the records
    return len(calls)
