"""The retraining jobs of claim 23 (``restricted_training``): the bases a retraining is
restricted to, the jobs, their cache, and which of them a sitting reads. The bases, per
attention matrix (``analysis/causal_bases.py``): execution (the run's own top-K PCA,
knows the end), early (the first 15% of its checkpoints), other (another seed's top-K),
drift (K - 1 random + theta_T - theta_0), random (the null).

A retraining costs as much as its run (the paper preset: 30 jobs, ~4.5 h on 2 cores), so
it may take several sittings. Each finished job lands in its run's committed record and is
never retrained: a later sitting, even on another machine, copies it back into the run
cache (``cached_restricted``). A context that may not retrain (``Context.retrains``) reads
only the jobs finished.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from ..analysis.causal_bases import drift_and_random, early_directions
from ..analysis.functional import drift_directions, random_directions
from ..trajectories import records
from ..trajectories.restricted import train_restricted
from ..trajectories.rundir import cached_json, run_configs
from ..trajectories.training_loop import TrainConfig
from .contract import Retrain, resume_name
from .functional_dimension import other_snapshots, partner_dirs, seed_of, snapshots

VERSION = 2          # 2: the bases that do not know the end; the main run's own step-size schedule
KINDS = ("execution", "early", "other", "drift", "random")
DECIDES = "early"    # the basis that decides claim 23, against "random"
GROUP = "restricted-retraining"     # --train's and --plan's name for its retrainings


def restriction_bases(run_dir, K: int, kind: str, partner_dir=None) -> dict:
    """{attention matrix: V [D, K']} of basis ``kind`` (module docstring); ``partner_dir``:
    the finished run whose directions "other" borrows."""
    cfg, _, train = run_configs(run_dir)
    steps, traj = snapshots(run_dir, cfg)
    other = other_snapshots(partner_dir, cfg) if kind == "other" else None
    rng = np.random.default_rng([train["seed"], 11, K])
    if kind not in KINDS:
        raise ValueError(f"no basis {kind!r} (one of {', '.join(KINDS)})")
    out = {}
    for name, X in traj.items():
        R = random_directions(X.shape[1], K, rng)        # drawn for every kind: "drift" shares "random"'s
        if kind == "execution":
            out[name] = drift_directions(X, K)
        elif kind == "early":
            out[name] = early_directions(X, steps, K)
        elif kind == "other":
            out[name] = drift_directions(other[name], K)
        else:
            out[name] = drift_and_random(X, R) if kind == "drift" else R
    return out


def restricted_of_run(run_dir, K: int, kind: str, steps: int, partner_dir=None, resume=None) -> dict:
    cfg, task, train = run_configs(run_dir)
    tr = dataclasses.replace(TrainConfig(**train), steps=steps)
    bases = restriction_bases(run_dir, K, kind, partner_dir)
    out = train_restricted(cfg, task, tr, bases, eval_every=max(1, steps // 20), schedule_steps=train["steps"],
                           resume=resume)
    out.pop("params")
    out["acc"] = {str(m): v for m, v in out["acc"].items()}
    out["K_used"] = min(int(V.shape[1]) for V in bases.values())     # PCA may find fewer than K
    out["other_seed"] = None if partner_dir is None else seed_of(partner_dir)
    if partner_dir is not None:
        out["other_tag"] = records.tag(partner_dir)          # that very run (its name says only the seed)
    return out


def cache_name(K, kind, steps, other_seed=None) -> str:
    """Its cache file; another seed's basis names that seed."""
    return f"restricted_v{VERSION}_K{K}_{kind}{'' if other_seed is None else f'-seed{other_seed}'}_{steps}.json"


def cached_restricted(run_dir, K, kind, steps, partner_dir=None, record_dir=None) -> dict:
    """The retraining, cached in ``run_dir``; one in the run's committed record
    ``record_dir`` (an earlier sitting's, of the same run) is copied in, not retrained;
    one an earlier sitting began goes on from where it stopped. One on another seed's basis
    read off a run that the cache has since replaced (another end: ``records.tag``) is
    refused, never read as this one's (results from before the tag was kept are read)."""
    name = cache_name(K, kind, steps, None if partner_dir is None else seed_of(partner_dir))
    records.adopt(record_dir, run_dir, [name])
    resume = os.path.join(run_dir, resume_name(name))
    out = cached_json(run_dir, name, lambda d: restricted_of_run(d, K, kind, steps, partner_dir, resume))
    if os.path.exists(resume):
        os.remove(resume)
    if partner_dir is not None and out.get("other_tag", records.tag(partner_dir)) != records.tag(partner_dir):
        raise ValueError(f"{os.path.join(run_dir, name)}: retrained on seed {seed_of(partner_dir)}'s directions of an "
                         f"earlier run of it (tag {out['other_tag']}), which {partner_dir} replaced (tag "
                         f"{records.tag(partner_dir)}); remove the file to retrain it on this one")
    return out


def restricted_steps(preset) -> int:
    return max(1, int(round(preset.train.steps * preset.restrict_steps)))


def jobs(preset) -> list:
    """[Retrain]: the restricted retrainings ``report`` reads, each from one of the first
    ``restrict_seeds`` main runs and cached in its directory; another seed's basis also
    reads the main run with the next seed."""
    n, seeds = restricted_steps(preset), range(min(preset.restrict_seeds, preset.n_seeds))
    out = []
    for s in preset.specs(seeds=seeds):
        p = (s.train.seed + 1) % preset.n_seeds
        for k in preset.restrict_k:
            out += [Retrain(s, cache_name(k, kind, n, p), n, tuple(preset.specs(seeds=[p])))
                    if kind == "other" else Retrain(s, cache_name(k, kind, n), n) for kind in KINDS]
    return out


def calls(ctx) -> list:
    """[(K, kind, (cached_restricted, args))] of the runs ``report`` reads: the first
    ``restrict_seeds`` main runs, another seed's basis with its partner's directory, each
    with the run's committed record (an earlier sitting's result is read from there). Every
    seed's decisive pair (early, random) first, seed by seed, then every seed's other bases:
    so each run's list on the training pool (``EarlyMeasurements``) starts with its pair,
    and the pool, handing out every run's first call before any run's second
    (``pool.drain``), decides claim 23 before it trains any other basis when the main runs
    finish together (cached). A context that may not retrain (``Context.retrains``) gets
    only the jobs finished, in the run cache or the records."""
    p = ctx.preset
    runs, partners = ctx.runs[:p.restrict_seeds], partner_dirs(ctx.runs, p.n_seeds)
    root = ctx.path("records") if ctx.fig_dir else None
    out = [(k, kind, (cached_restricted, (r["dir"], k, kind, restricted_steps(p), o if kind == "other" else None,
                                          records.find(root, r["dir"]))))
           for r, o in zip(runs, partners) for k in p.restrict_k
           for kind in KINDS if kind != "other" or o]
    out.sort(key=lambda c: c[1] not in (DECIDES, "random"))        # stable: seed by seed within each part
    return out if ctx.may_retrain(GROUP) else [c for c in out if finished(*c[2][1])]


def finished(run_dir, K, kind, steps, partner_dir, record_dir) -> bool:
    """The job's result is in the run directory or its committed record."""
    name = cache_name(K, kind, steps, None if partner_dir is None else seed_of(partner_dir))
    return any(d and os.path.exists(os.path.join(d, name)) for d in (run_dir, record_dir))
