"""``pool.drain``: follow-up calls held until a worker would idle, handed out position-first
across the results (every result's first call, then every result's second), so a sitting
cut short has decided what each run's first calls decide (claim 23's decisive pairs)."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from minimanifold.trajectories import pool
from minimanifold.trajectories.presets import SMOKE
from minimanifold.trajectories.sweep import sweep


class Logged(ThreadPoolExecutor):
    """A thread pool that logs each submission, in order, to ``events``."""

    def __init__(self, n, events):
        super().__init__(max_workers=n)
        self.events = events

    def submit(self, fn, /, *args):
        self.events.append(("submit", args[1][0] if fn is pool.run_call else args[0]))
        return super().submit(fn, *args)


def test_follow_ups_go_position_first_across_results_and_results_are_reported_in_order():
    ran, seen = [], []
    with ThreadPoolExecutor(max_workers=1) as ex:
        pool.drain(ex, [(str.upper, (c,)) for c in "abc"], lambda i, r, n: seen.append((i, r, n)),
                   lambda r: [(ran.append, (r + "1",)), (ran.append, (r + "2",)), (ran.append, (r + "3",))])
    assert seen == [(0, "A", 1), (1, "B", 2), (2, "C", 3)]
    assert ran == ["A1", "B1", "C1", "A2", "B2", "C2", "A3", "B3", "C3"]


def test_a_ranked_list_brings_its_own_positions():
    """A call that waited for a second result (another seed's basis) keeps the position its
    own list gave it: here 2, so it goes after both results' first and second calls, not
    first beside the first calls. Guard: ranked by its index in the list it came back in."""
    ran = []
    late = (ran.append, ("a3 (released with b)",))
    with ThreadPoolExecutor(max_workers=1) as ex:
        pool.drain(ex, [(str, (c,)) for c in "ab"], lambda i, r, n: None,
                   lambda r: [(ran.append, ("a1",)), (ran.append, ("a2",))] if r == "a" else
                   pool.Ranked([late, (ran.append, ("b1",)), (ran.append, ("b2",))], [2, 0, 1]))
    assert ran == ["a1", "b1", "a2", "b2", "a3 (released with b)"]


def test_a_ranked_list_needs_a_position_for_every_call():
    """drain zips calls with positions: a missing position would drop a call silently."""
    with pytest.raises(ValueError, match="2 calls but 1 positions"):
        pool.Ranked([(print, ()), (print, ())], [0])


def test_a_follow_up_goes_to_a_worker_only_when_one_would_idle():
    """Two workers, one run blocked: the first run's first follow-up takes the idle worker,
    its second waits until a worker frees, i.e. until one of the two calls in flight ends."""
    events, gate = [], threading.Event()

    def blocked(name):
        gate.wait(10)
        events.append(("done", name))
        return name
    timer = threading.Timer(0.3, gate.set)
    timer.start()
    with Logged(2, events) as ex:
        pool.drain(ex, [(str, ("x",)), (blocked, ("y",))], lambda i, r, n: None,
                   lambda r: [(blocked, ("x1",)), (blocked, ("x2",))] if r == "x" else [])
    timer.join()
    assert [e for e in events if e[0] == "submit"] == [("submit", "x"), ("submit", "y"), ("submit", "x1"),
                                                       ("submit", "x2")]
    assert events.index(("submit", "x2")) > min(events.index(("done", "x1")), events.index(("done", "y")))


class NoSlots:
    """An executor that reports no slots (a cluster before its workers connect) and keeps
    no ``_max_workers``: the held calls must still run, never be dropped."""
    slots = 0

    def __init__(self):
        self.inner = ThreadPoolExecutor(max_workers=2)

    def submit(self, fn, /, *args):
        return self.inner.submit(fn, *args)


def test_held_calls_run_on_an_executor_that_reports_no_slots():
    ran, ex = [], NoSlots()
    try:
        pool.drain(ex, [(str, (k,)) for k in "ab"], lambda i, r, n: None, lambda r: [(ran.append, (r,))] * 2)
    finally:
        ex.inner.shutdown()
    assert sorted(ran) == ["a", "a", "b", "b"]
    assert pool.slots(ex) == 1 and pool.slots(ThreadPoolExecutor(max_workers=3)) == 3


def test_a_failing_follow_up_is_raised_after_every_other_call_ran():
    ran = []
    with ThreadPoolExecutor(max_workers=1) as ex, pytest.raises(ZeroDivisionError):
        pool.drain(ex, [(str, (k,)) for k in "ab"], lambda i, r, n: None,
                   lambda r: [(divmod, (1, 0)), (ran.append, (r,))] if r == "a" else [(ran.append, (r,))])
    assert ran == ["b", "a"]                     # position 0 of b before position 1 of a, and both ran


def test_the_sweep_hands_out_every_runs_first_follow_up_before_any_runs_second(tmp_path):
    """Through the sweep on an executor: the records come back in the specs' order, and
    the runs' follow-ups go position-first (seed 0's and 1's first calls, then their second)."""
    specs = SMOKE.specs(seeds=[0, 1], steps=20, ckpt_every=10)
    ran = []
    with ThreadPoolExecutor(max_workers=1) as ex:
        out = sweep(specs, tmp_path, executor=ex, log=lambda s: None,
                    then=lambda rec: [(ran.append, ((rec["seed"], "pair"),)), (ran.append, ((rec["seed"], "other"),))])
    assert [r["seed"] for r in out] == [0, 1]
    assert ran == [(0, "pair"), (1, "pair"), (0, "other"), (1, "other")]
