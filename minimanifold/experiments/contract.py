"""What an experiment module gives the pipeline: one ``Experiment`` object, its
``EXPERIMENT``, read field by field (the pipeline and ``--plan`` probe no attribute).

    name, section   how the logs name it, and the paper's section it reproduces
    rules           {claim number: rule function}; the docstring is the rule's text
    report(ctx)     -> ({claim number: ledger.Row}, [figure paths])
    variants        preset -> {group: [RunSpec]}: the runs it needs beyond the main ones
    measurements    ctx -> [(fn, args)]: its per-run measurements (each a ``Call``), each
                    filling one run's cache
    weight          rough seconds of one measurement (quick preset): the heaviest start first
    retraining      a measurement that trains (``Retraining``): a run group of its own that
                    depends on another group's finished runs
    some_variants   a partial ledger reports it once any of its groups has finished runs
                    (its rows name the groups missing and decide nothing without them);
                    otherwise only once every group has
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, NamedTuple


class Call(NamedTuple):
    """A per-run measurement ``fn(*args)``: ``fn`` a module-level function (a pool worker
    runs it), ``args[0]`` the run directory whose cache it fills, every argument hashable;
    another planned run's directory among ``args[1:]`` is a run it reads too, and it runs
    only once that one has finished as well (``measuring.EarlyMeasurements``).
    A call is its own key: two experiments asking for the same call get it computed once."""
    fn: Callable
    args: tuple


def resume_name(cache: str) -> str:
    """The state a retraining cut short saves beside its cache ``cache`` (a .json), which
    a later sitting resumes from (``trajectories.restricted``); removed once it is cached."""
    return cache[:-len(".json")] + ".resume.npz"


@dataclass(frozen=True)
class Retrain:
    """One training job of a measurement that trains: ``steps`` steps from the run ``start``
    (a RunSpec), its result cached as ``cache`` in that run's directory; ``also``: the other
    runs (RunSpecs) it reads, which must be finished too (another seed's basis, say)."""
    start: object
    cache: str
    steps: int
    also: tuple = ()

    @property
    def resume(self) -> str:
        """The file beside ``cache`` that holds the job's state while it is unfinished."""
        return resume_name(self.cache)

    @property
    def spec(self):
        """What it trains, for ``--plan``: the starting run's configuration for ``steps`` steps."""
        return dataclasses.replace(self.start, train=dataclasses.replace(self.start.train, steps=self.steps))


@dataclass(frozen=True)
class Retraining:
    """A measurement that trains: the run group ``group`` (``--train`` and ``--plan`` name it)
    of the jobs ``jobs(preset)`` -> [Retrain], which start from finished runs of the group
    ``after``; a ledger that does not train it shows its claims only when every job is cached."""
    group: str
    jobs: Callable
    after: str = "main"


def no_variants(preset) -> dict:
    return {}


def no_measurements(ctx) -> list:
    return []


@dataclass(frozen=True, eq=False)
class Experiment:
    """One experiment module's contract (see the module docstring). Compared and hashed by
    identity: the pipeline keys what it leaves out by experiment."""
    name: str
    section: str
    rules: dict
    report: Callable
    variants: Callable = no_variants
    measurements: Callable = no_measurements
    weight: float = 1
    retraining: Retraining | None = None
    some_variants: bool = False
