"""Claim 5's "functionally equivalent rotations", at the level of outputs: each run's
final answers on one held-out probe set that every seed of a preset shares (drawn from a
seed stream no run uses), how often two seeds answer alike beside how often they would if
each erred independently at its own accuracy, and the inputs both answer wrong beside the
count independent errors give (``analysis.agreement``). Equal answers are what two runs
that both learned the task must give, so the shared errors are what can tell; a symmetry
of the network that carries one seed's subspace onto another's is not measured here.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..analysis.agreement import pair_agreements, shared_errors
from ..analysis.intervals import pairs_interval
from ..model.backend import to_device, to_numpy, xp_of
from ..model.transformer import forward
from ..report.ledger import mean_sd
from ..trajectories.rundir import cached_json, final_params, run_configs
from ..trajectories.schedule import Schedule
from ..trajectories.task import probe_set

VERSION = 1
SHARED_SEED = 1_000_003     # the probe's seed stream: no run's (a run's probe uses its own seed)


def answers_of_run(run_dir) -> dict:
    """{"C": classes, "m": {m: {"answers": [n], "targets": [n]}}}: the final parameters'
    answers (argmax of the logits) on the shared probe, ``n_probe`` inputs per m."""
    cfg, task, train = run_configs(run_dir)
    params = final_params(run_dir)
    xp = xp_of(params["embed.W_E"])
    probe = probe_set(task, Schedule.parse(train["schedule"]).all_m(), train["n_probe"], SHARED_SEED)
    out = {}
    for m, batch in probe.items():
        logits, _ = forward(params, to_device(batch.tokens, xp), cfg)
        out[str(m)] = {"answers": to_numpy(logits.argmax(axis=-1)).tolist(), "targets": batch.targets.tolist()}
    return {"C": int(task.C), "m": out}


def cached_answers(run_dir) -> dict:
    """``answers_of_run``, cached as JSON in the run directory (kept in its record)."""
    return cached_json(run_dir, f"answers_v{VERSION}.json", answers_of_run)


def per_m(runs: list, measure) -> list:
    """[measure(answers [seed, n], targets [n]) for each m]: every run must have answered the
    same probe (a record from another probe would pair unrelated inputs)."""
    out = []
    for m in sorted(runs[0]["m"], key=int):
        targets = runs[0]["m"][m]["targets"]
        if any(r["m"].get(m, {}).get("targets") != targets for r in runs):
            raise ValueError(f"answers on different probes (m = {m}): remeasure every seed's cached_answers")
        out.append(measure([r["m"][m]["answers"] for r in runs], targets))
    return out


def agreement_of_seeds(runs: list):
    """(observed, independent): per seed pair, the agreement of their answers and the
    independent-errors agreement, each the mean over m (every m has its own accuracies).
    ``runs``: ``cached_answers`` of each seed, one configuration."""
    got = per_m(runs, lambda answers, targets: pair_agreements(answers, targets, runs[0]["C"]))
    return np.mean([o for o, _ in got], axis=0), np.mean([i for _, i in got], axis=0)


def agreement_text(runs: list) -> str:
    """What claim 5's row says of the seeds' answers (not in its rule). Where one seed of a
    pair makes no error, agreement equals the independent-errors baseline by construction:
    the shared errors, per pair beyond independent ones, are what can tell."""
    if len(runs) < 2:
        return "the seeds' answers need 2 seeds"
    observed, independent = agreement_of_seeds(runs)
    both, expected, same = np.sum(per_m(runs, shared_errors), axis=0)                 # [pair] each, summed over m
    errors = [sum(np.sum(np.array(v["answers"]) != v["targets"]) for v in r["m"].values()) for r in runs]
    free = sum(1 for i, j in itertools.combinations(range(len(runs)), 2) if not errors[i] or not errors[j])
    n = sum(len(v["answers"]) for v in runs[0]["m"].values())
    return (f"answers on one shared probe (not in the rule; {n} {runs[0].get('probe', 'held-out inputs')}): "
            f"two seeds agree on "
            f"{mean_sd(observed, '{:.3f}')} (seed pairs), independent errors at their accuracies would give "
            f"{mean_sd(independent, '{:.3f}')} (equal by construction in the {free} of {len(observed)} pairs where "
            f"one seed makes no error); inputs both answer wrong, summed over pairs: {both.sum():.0f} "
            f"({expected.sum():.1f} if independent; per pair, the excess {pairs_interval(both - expected).text()}), "
            f"with the same wrong answer: {same.sum():.0f} ({both.sum() / (runs[0]['C'] - 1):.1f} if wrong answers "
            f"were uniform); a symmetry carrying one seed's subspace onto another's is not measured")
