"""The groups of runs a preset needs (its main runs, then each experiment's variants, then
the training its measurements do), what ``--train`` may name, and which of them are
finished in a run cache. ``run_all.py``, ``--plan`` and the pipeline all read them from
here, from the experiments' contracts (``contract.Experiment``), so they agree on what is
done and what would train.
"""
from __future__ import annotations

import dataclasses
import os
import re

from ..files import read_npz
from ..trajectories import records
from ..trajectories.rundir import is_finished, latest_checkpoint
from ..trajectories.sweep import run_dir, twin_run
from . import EXPERIMENTS


def planned_specs(preset) -> dict:
    """{group: [RunSpec]}: the main runs, then each experiment's variants, as the sweep
    trains them."""
    groups = {"main": preset.specs()}
    for e in EXPERIMENTS:
        groups.update(e.variants(preset))
    return groups


def group_templates(preset) -> dict:
    """{group: (a spec of the group, its seeds)}: ``planned_specs`` without building one spec
    per main seed, so what reads it (``--plan``) costs the same for 10 seeds or 10^8. Only
    the main group's size follows ``--seeds``; a group's specs differ only in the seed."""
    one = planned_specs(dataclasses.replace(preset, n_seeds=1))
    return {name: (specs[0], range(preset.n_seeds) if name == "main" else [s.train.seed for s in specs])
            for name, specs in one.items() if specs}


def retrainings(preset) -> dict:
    """{group: (experiment, [Retrain])}: the training the experiments' measurements do, each
    a group of jobs that start from finished runs of another group (``Retraining.after``);
    a preset that asks for none of an experiment's jobs has no such group."""
    return {e.retraining.group: (e, jobs) for e in EXPERIMENTS
            if e.retraining is not None and (jobs := e.retraining.jobs(preset))}


def group_names(preset) -> list:
    """What ``--train`` accepts: the groups of runs ``--plan`` lists (main first), then the
    retrainings the preset has."""
    return [*planned_specs(dataclasses.replace(preset, n_seeds=1)), *retrainings(preset)]


def check_groups(preset, names) -> frozenset:
    """``names`` as a set, or ValueError naming each one ``preset`` does not have."""
    known = group_names(preset)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"--train: no group {', '.join(map(repr, unknown))} in the {preset.name} preset "
                         f"(its groups: {', '.join(known)})")
    return frozenset(names)


def spec_finished(runs_dir, spec) -> bool:
    """Trained to its end in the cache, under its own name or another (a twin)."""
    return is_finished(run_dir(runs_dir, spec)) or \
        twin_run(runs_dir, spec) is not None


def is_retrained(runs_dir, job, records_root=None) -> bool:
    """A ``Retrain`` job's result is cached in its starting run's directory, or in that
    run's committed record under ``records_root``."""
    d = run_dir(runs_dir, job.start)
    return any(os.path.exists(os.path.join(where, job.cache)) for where in (d, records.find(records_root, d)) if where)


def steps_left(runs_dir, job) -> int:
    """A ``Retrain`` job's steps still to train: all of them, less those that a sitting cut
    short saved in its ``resume`` file (a later one goes on from there)."""
    try:
        return job.steps - int(read_npz(os.path.join(run_dir(runs_dir, job.start), job.resume))["step"])
    except (ValueError, KeyError):              # none there, or unreadable: it starts over
        return job.steps


def retrained(experiment, preset, runs_dir, records_root=None) -> bool:
    """Every job of ``experiment``'s retraining is in the cache or the records (so a ledger
    that trains nothing can still show its claims); True for an experiment that does not train."""
    r = experiment.retraining
    return r is None or all(is_retrained(runs_dir, j, records_root) for j in r.jobs(preset))


MIN_MAIN = 2   # finished main runs the pipeline needs to analyse anything (pipeline.train_all)


def retraining_needs(preset, runs_dir, records_root, train) -> dict:
    """{group: {seed}}: the runs that the unfinished jobs of the retrainings ``train`` names
    (None: every one) start from or also read, and that are not finished in the run cache.
    They train, only those seeds, even when ``train`` does not name their group: a committed
    record holds no trajectory, so a job cannot start from one."""
    out = {}
    for name, (e, jobs) in retrainings(preset).items():
        if train is not None and name not in train:
            continue
        for j in jobs:
            if not is_retrained(runs_dir, j, records_root):
                out.setdefault(e.retraining.after, set()).update(
                    s.train.seed for s in (j.start, *j.also) if not spec_finished(runs_dir, s))
    return {g: seeds for g, seeds in out.items() if seeds}


def seeds_in_cache(runs_dir, spec) -> tuple:
    """({seed: steps trained} of the unfinished runs of ``spec``'s configuration in its own
    key directory, {seeds finished there}, {seeds finished under another name}): read
    from directory listings, so the cost follows what is on disk, not how many seeds a
    preset asks for."""
    own = os.path.dirname(run_dir(runs_dir, spec))
    key = os.path.basename(own)
    digest = "-" + key.rsplit("-", 1)[1]
    partial, done, twins = {}, set(), set()
    for entry in (os.listdir(runs_dir) if os.path.isdir(runs_dir) else []):
        folder = os.path.join(runs_dir, entry)
        if not (entry == key or entry.endswith(digest)) or not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            if not _SEED.match(name):
                continue
            seed, d = int(name[len("seed_"):]), os.path.join(folder, name)
            if is_finished(d):
                (done if entry == key else twins).add(seed)
            elif entry == key and (latest := latest_checkpoint(d)):
                partial[seed] = int(os.path.basename(latest)[len("step_"):-len(".npz")])
    return partial, done, twins


_SEED = re.compile(r"^seed_\d+$")


def will_be_partial(preset, runs_dir, train) -> bool:
    """Whether a ``--train`` (``train`` not None) ledger will leave claims out: some group it
    does not name is unfinished, or a retraining is neither named nor cached."""
    if train is None:
        return False
    if any(not spec_finished(runs_dir, s) for g, specs in planned_specs(preset).items() if g not in train
           for s in specs):
        return True
    return any(g not in train and not retrained(e, preset, runs_dir) for g, (e, _) in retrainings(preset).items())
