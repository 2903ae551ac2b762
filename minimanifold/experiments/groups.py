"""The groups of runs a preset needs (its main runs, then each experiment's variants), what
``--train`` may name, and which of them are finished in a run cache. ``run_all.py``,
``--plan`` and the pipeline all read them from here, so they agree on what is done and
what would train.
"""
from __future__ import annotations

import dataclasses
import os

from ..trajectories.sweep import run_dir, twin_run
from . import EXPERIMENTS, restricted_training

# ``--train``'s name for restricted retraining: not a group of runs, but it trains too.
RESTRICTED = "restricted-retraining"


def planned_specs(preset) -> dict:
    """{group: [RunSpec]}: the main runs, then each experiment's variants, as the sweep
    trains them."""
    groups = {"main": preset.specs()}
    for module in EXPERIMENTS:
        if hasattr(module, "variants"):
            groups.update(module.variants(preset))
    return groups


def group_templates(preset) -> dict:
    """{group: (a spec of the group, its seeds)}: ``planned_specs`` without building one spec
    per main seed, so what reads it (``--plan``) costs the same for 10 seeds or 10^8. Only
    the main group's size follows ``--seeds``; a group's specs differ only in the seed."""
    one = planned_specs(dataclasses.replace(preset, n_seeds=1))
    return {name: (specs[0], range(preset.n_seeds) if name == "main" else [s.train.seed for s in specs])
            for name, specs in one.items() if specs}


def group_names(preset) -> list:
    """What ``--train`` accepts: the groups of runs ``--plan`` lists (main first), then
    restricted retraining where the preset has it."""
    return [*planned_specs(dataclasses.replace(preset, n_seeds=1)), *([RESTRICTED] if preset.restrict_k else [])]


def check_groups(preset, names) -> frozenset:
    """``names`` as a set, or ValueError naming each one ``preset`` does not have."""
    known = group_names(preset)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"--train: no group {', '.join(map(repr, unknown))} in the {preset.name} preset "
                         f"(its groups: {', '.join(known)})")
    return frozenset(names)


def is_finished(runs_dir, spec) -> bool:
    """Trained to its end in the cache, under its own name or another (a twin)."""
    return os.path.exists(os.path.join(run_dir(runs_dir, spec), "summary.json")) or \
        twin_run(runs_dir, spec) is not None


def restricted_specs(preset) -> list:
    """[(spec of the main run, K, kind, steps)]: the restricted retrainings, each cached in
    its main run's directory."""
    n = restricted_training.restricted_steps(preset)
    return [(s, k, kind, n) for s in preset.specs(seeds=range(min(preset.restrict_seeds, preset.n_seeds)))
            for k in preset.restrict_k for kind in restricted_training.KINDS]


def restricted_done(runs_dir, spec, k, kind, n) -> bool:
    return os.path.exists(os.path.join(run_dir(runs_dir, spec), restricted_training.cache_name(k, kind, n)))


def restricted_measured(preset, runs_dir) -> bool:
    """Every restricted retraining the ledger reads is in the cache (so a ledger that trains
    nothing can still show claim 23)."""
    return all(restricted_done(runs_dir, *r) for r in restricted_specs(preset))


def restricted_waits_for_main(preset, runs_dir, train) -> bool:
    """Restricted retraining named in ``train`` but its main runs neither finished nor
    named: the run would stop and ask for main, so ``--plan`` must not count it as training."""
    return train is not None and RESTRICTED in train and "main" not in train and \
        not all(is_finished(runs_dir, s) for s, *_ in restricted_specs(preset))


def will_be_partial(preset, runs_dir, train) -> bool:
    """Whether a ``--train`` (``train`` not None) ledger will leave claims out: some group it
    does not name is unfinished, or restricted retraining is neither named nor cached."""
    if train is None:
        return False
    if any(not is_finished(runs_dir, s) for g, specs in planned_specs(preset).items() if g not in train
           for s in specs):
        return True
    return bool(preset.restrict_k) and RESTRICTED not in train and not restricted_measured(preset, runs_dir)
