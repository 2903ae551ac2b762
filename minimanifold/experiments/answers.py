"""Claim 5's "functionally equivalent rotations", at the level of outputs: each run's
final answers on one held-out probe set that every seed of a preset shares (drawn from a
seed stream no run uses), and how often two seeds answer alike beside how often they would
if each erred independently at its own accuracy (``analysis.agreement``). Equal answers
are what two runs that both learned the task must give; a symmetry of the network that
carries one seed's subspace onto another's is not measured here.
"""
from __future__ import annotations

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
    return cached_json(run_dir, f"answers_v{VERSION}.json", answers_of_run)


def agreement_of_seeds(runs: list):
    """(observed, independent): per seed pair, the agreement of their answers and the
    independent-errors agreement, each the mean over m (every m has its own accuracies).
    ``runs``: ``cached_answers`` of each seed, one configuration."""
    ms = sorted(runs[0]["m"], key=int)
    per_m = [pair_agreements([r["m"][m]["answers"] for r in runs], runs[0]["m"][m]["targets"], runs[0]["C"])
             for m in ms]
    return np.mean([o for o, _ in per_m], axis=0), np.mean([i for _, i in per_m], axis=0)


def agreement_text(runs: list) -> str:
    """What claim 5's row says of functional equivalence (not in its rule)."""
    if len(runs) < 2:
        return "functional equivalence needs 2 seeds"
    observed, independent = agreement_of_seeds(runs)
    n = sum(len(v["answers"]) for v in runs[0]["m"].values())
    both, expected, same = np.sum([shared_errors([r["m"][m]["answers"] for r in runs], runs[0]["m"][m]["targets"])
                                   for m in runs[0]["m"]], axis=0)
    return (f"functionally equivalent at the level of outputs (not in the rule): two seeds' final answers on "
            f"one shared probe ({n} held-out inputs) agree on {mean_sd(observed, '{:.3f}')} (seed pairs), where "
            f"independent errors at their accuracies would give {mean_sd(independent, '{:.3f}')}: agreement − "
            f"that {pairs_interval(observed - independent).text('{:.3f}')}; summed over seed pairs, inputs both "
            f"answer wrong: {both:.0f} ({expected:.0f} if independent), alike: {same:.0f}; equal "
            f"answers are what learning the task gives, and a symmetry carrying one seed's subspace onto "
            f"another's is not measured")
