"""The main job behind ``run_all.py``: train a preset's runs (cached), run every experiment
module over them, and write the figures and the claims ledger.

    main runs ─┐
               ├─ sweep (cached) ─> Context ─> each experiment's report() ─> figures, ledger rows
    variants ──┘                                                               └─> claims.md/.json
"""
from __future__ import annotations

import dataclasses
import os
import time

from .experiments import AUTHORS_FIGURES, EXPERIMENTS
from .experiments.context import Context
from .experiments.groups import MIN_MAIN, planned_specs, retraining_needs, spec_finished, will_be_partial
from .trajectories.metrics import learned, learned_final_stage, summary_table
from .files import clean_stale_tmp
from .model.optim import lr_words
from .report import ledger, rule_changes
from .report.owner import check_owner
from .report.plotting import use_file_backend
from .trajectories import records
from .trajectories.rundir import READ
from .experiments.measuring import EarlyMeasurements, measure_left_out, prefetch
from .trajectories.sweep import run_dir, sweep


# The ledgers shown side by side in figures/ledgers.md: (heading, claims.json under figures/).
# A preset not yet run end to end reads "not yet run" until its ledger is committed.
LEDGERS = (("quick: `python run_all.py`", "quick/claims.json"),
           ("paper: `python run_all.py --preset paper`", "paper/claims.json"),
           ("authors: `python run_all.py --preset authors`", "authors/claims.json"))


def write_ledgers_page(figures_root) -> str:
    """Regenerate ``figures_root``/ledgers.md from the ledgers under it; returns its path."""
    path = os.path.join(figures_root, "ledgers.md")
    ledger.write_side_by_side(figures_root, LEDGERS, path, rule_changes.RETIRED, rule_changes.side_by_side)
    return path


class PipelineError(RuntimeError):
    """Nothing to analyse, or experiments that disagree about the ledger."""


def caption(preset, n_runs) -> str:
    m, t, tr = preset.model, preset.task, preset.train
    return (f"{preset.name} preset, {n_runs} seeds: L={m.n_layers}, d_model={m.d_model}, "
            f"T={t.T}, C={t.C}, {tr.schedule}, {tr.optimizer} lr={tr.lr}, "
            f"{tr.steps} steps, checkpoints every {tr.ckpt_every}")


def written_by(preset) -> str:
    """What a ledger records as its writer: the caption with the planned seed count."""
    return caption(preset, preset.n_seeds)


def usable(runs, log=print) -> list:
    """The runs that finished; diverged ones are named and left out of the analyses."""
    bad = [f"{r['name']} seed {r['seed']}" for r in runs if r["summary"] is None]
    if bad:
        log(f"DIVERGED, left out of the analyses: {', '.join(bad)}")
    return [r for r in runs if r["summary"] is not None]


def train_all(preset, runs_dir, jobs=1, backend=None, log=print, then=None, train=None, executor=None,
              records_root=None):
    """(main runs, {variant name: runs}), trained or loaded from the cache (on ``executor``,
    a Dask cluster's say, if given); ``then``: the sweep's follow-up work on each finished
    run (``EarlyMeasurements``). ``train``: the groups to train now (None: every one); the
    other groups give only the runs already finished (a group may come back empty).
    ``frozenset()`` trains nothing (--finished-only). A run not finished in the cache whose
    committed record is under ``records_root`` is read from its record instead of trained,
    unless ``train`` names its group, or a retraining to train now starts from it or reads it
    (``groups.retraining_needs``: those runs train, whatever ``train`` names). A run trained
    or loaded here takes what its record holds of the same run (``records.adopt``)."""
    specs = planned_specs(preset)
    need = retraining_needs(preset, runs_dir, records_root, train)
    kept = {s: d for g, group in specs.items() for s in group        # a record, not a run to train
            if not (spec_finished(runs_dir, s) or (train and g in train) or s.train.seed in need.get(g, ()))
            and (d := records.find(records_root, run_dir(runs_dir, s)))}
    from_records = {s: records.as_sweep_record(s, d) for s, d in kept.items()}
    if from_records:
        log(f"{len(from_records)} runs read from the committed records in {records_root} (not trained)")
    for g, seeds in need.items():
        log(f"{g} seeds {', '.join(map(str, sorted(seeds)))}: trained for the retrainings that start from them")
    if train is not None:
        specs = {g: [s for s in group if g in train or spec_finished(runs_dir, s) or s in from_records
                     or s.train.seed in need.get(g, ())] for g, group in specs.items()}
    flat = [s for group in specs.values() for s in group if s not in from_records]   # one sweep: every worker busy

    def adopt_then(rec) -> list:          # what the record holds of this same run: read, not measured again
        records.adopt(records.find(records_root, rec["dir"]), rec["dir"])
        return then(rec) if then is not None else []
    swept = iter(sweep(flat, runs_dir, executor=executor, jobs=jobs, backend=backend, log=log, then=adopt_then)
                 if flat else [])
    runs = [from_records[s] if s in from_records else next(swept) for group in specs.values() for s in group]
    n_main = len(specs.pop("main"))
    main = usable(runs[:n_main], log)
    if len(main) < MIN_MAIN:
        raise PipelineError(f"fewer than {MIN_MAIN} main runs " + (
            "trained without diverging" if train is None or "main" in train else
            "finished in the run cache (--finished-only trains nothing; --train trains only the groups it "
            "names: add main)") + "; nothing to analyse")
    done = usable(runs[n_main:], log)
    unlearned = [f"{r['name']} seed {r['seed']}" for r in done if not learned_final_stage(r)
                 and r["summary"]["config"]["task"].get("labels") != "random"]    # no-task runs learn no rule
    log("no comparison runs" if not done else
        "every comparison run learned its task (the curriculum: its final stage)" if not unlearned
        else f"NOT LEARNED: {', '.join(unlearned)}")
    return main, {name: [r for r in done if r["name"] == name] for name in specs}


def training_time(runs) -> str:
    """Where the runs' training time went (from each summary; cached runs: when trained)."""
    total = {}
    for r in runs:
        for k, v in r["summary"].get("seconds", {}).items():
            total[k] = total.get(k, 0.0) + v
    if not total:
        return "training time: not recorded (runs trained before timings were kept)"
    all_s = sum(total.values())
    return (f"training time of {len(runs)} runs (process seconds, summed over runs): "
            + ", ".join(f"{k.replace('_', ' ')} {v:.0f}s ({v / all_s:.0%})" for k, v in total.items()))


def not_measured(ctx, train=None) -> dict:
    """{experiment: why} a partial ledger (``train`` not None) leaves out: a comparison with a
    group of runs not finished, or a measurement that itself trains (its ``retraining``)
    while none of its results is cached or recorded and ``train`` does not name its group."""
    if train is None:
        return {}
    out = {}
    for e in EXPERIMENTS:
        groups = list(e.variants(ctx.preset))
        missing = [g for g in groups if not ctx.variants.get(g)]
        if missing and not (e.some_variants and len(missing) < len(groups)):
            out[e] = "runs not trained yet: " + ", ".join(missing)
        elif e.retraining is not None and not ctx.may_retrain(e.retraining.group) and not e.measurements(ctx):
            out[e] = "its measurement trains"          # none of its retrainings finished yet
    return out


def not_retrained(train) -> list:
    """The experiments whose measurement trains and whose group ``train`` does not name
    (None: every group trains)."""
    return [e for e in EXPERIMENTS
            if train is not None and e.retraining is not None and e.retraining.group not in train]


def analyse(ctx, log=print, skip=()):
    """Every experiment's report (but those in ``skip``), timed. Returns (claims ordered by
    number, each Row carrying its number ``n`` and, for a preset that compares with the
    authors' figures, their value; rules; paths)."""
    claims, rules, paths = {}, {}, []
    for e in EXPERIMENTS:
        if e in skip:
            continue
        t0 = time.perf_counter()
        rows, figs = e.report(ctx)
        if set(rows) != set(e.rules):
            raise PipelineError(f"{e.name}: claims {sorted(rows)} but rules for {sorted(e.rules)}")
        if set(rows) & set(claims):
            raise PipelineError(f"{e.name}: claim numbers {sorted(set(rows) & set(claims))} already taken")
        claims.update(rows)
        rules.update(e.rules)
        paths += figs
        log(f"{e.name}: {len(rows)} claims, {len(figs)} figures in {time.perf_counter() - t0:.0f}s")
    theirs = ctx.preset.compare_authors            # the authors preset: their figures' values beside ours
    return [dataclasses.replace(claims[n], n=n, **({"authors": AUTHORS_FIGURES.get(n, "")} if theirs else {}))
            for n in sorted(claims)], rules, paths


def unfinished(ctx, train) -> dict:
    """{group: (runs finished, planned)} for each group a partial sitting (``train`` not None)
    has fewer runs of than planned, and each retraining it reads only some jobs of (the
    rest still to train: the ledger is partial); a whole run has none."""
    if train is None:
        return {}
    have = {"main": len(ctx.runs), **{g: len(rs) for g, rs in ctx.variants.items()}}
    out = {g: (have.get(g, 0), len(specs)) for g, specs in planned_specs(ctx.preset).items()
           if have.get(g, 0) < len(specs)}
    for e in (e for e in EXPERIMENTS if e.retraining is not None and not ctx.may_retrain(e.retraining.group)):
        if 0 < (n := len(e.measurements(ctx))) < (planned := len(e.retraining.jobs(ctx.preset))):
            out[e.retraining.group] = (n, planned)
    return out


def write_ledger(ctx, claims, rules, skip, written_by, short=None) -> list:
    """claims.md and claims.json in the figures folder; their paths. The caption names what a
    partial ledger leaves out (``skip``: {experiment: why}) and the groups with runs still to
    train that it does read (``short``: ``unfinished``); the preset decides whether the table
    has a column of the authors' figures (``compare_authors``)."""
    left_out = {g for e in skip for g in e.variants(ctx.preset)}
    short = {g: n for g, n in (short or {}).items() if g not in left_out}
    lines = [(f"- claim{'s' * (len(e.rules) > 1)} {', '.join(map(str, sorted(e.rules)))}: " if e.rules
              else f"- the {e.name} figure (no claim): ") + why for e, why in skip.items()]
    if short:
        lines.append("- runs still to train (the claims that read these groups use the runs finished): "
                     + ", ".join(f"{g} {h} of {w}" for g, (h, w) in short.items()))
    partial = ("\n\nPartial ledger (only the runs finished so far: `--finished-only` or `--train`); "
               "not measured yet:\n" + "\n".join(lines)) if lines else ""
    paths = [ctx.path("claims.md"), ctx.path("claims.json")]
    ledger.write(claims, rules, ctx.caption + partial, *paths, written_by=written_by, partial=bool(lines),
                 authors=ctx.preset.compare_authors, changes=rule_changes.table(claims, ctx.preset.name, bool(lines)))
    return paths


def run(preset, runs_dir, fig_dir, jobs=1, backend=None, log=print, finished_only=False,
        train=None, overwrite=False, executor=None) -> list:
    """The whole job. Returns the paths written (all under ``fig_dir``). ``executor``: train
    and measure there (a Dask cluster's ``Workers``) instead of on ``jobs`` local processes.
    ``train``: train only these groups (``group_names``); ``finished_only``: train nothing.
    Either gives a partial ledger of the claims the finished runs decide, its caption naming
    the claims left out and why. A ``fig_dir`` holding a ledger this run did not write
    (``report.owner``) is refused before anything trains, unless ``overwrite``."""
    use_file_backend()                    # PNG files, no display: Agg (importing plotting chooses nothing)
    if finished_only:
        train = frozenset()
    me = written_by(preset)
    check_owner(fig_dir, me, will_be_partial(preset, runs_dir, train), overwrite)
    log(preset.describe())
    t0 = time.perf_counter()
    early = EarlyMeasurements(preset, runs_dir, skip=not_retrained(train), fig_dir=fig_dir) \
        if (jobs > 1 or executor is not None) and train != frozenset() else None
    READ.clear()                          # what the reports read: the records this ledger writes
    records_root = os.path.join(fig_dir, "records")
    main, variants = train_all(preset, runs_dir, jobs, backend, log, then=early, train=train, executor=executor,
                               records_root=records_root)
    log(training_time([*main, *(r for rs in variants.values() for r in rs)]))
    wall = {"training": time.perf_counter() - t0}
    os.makedirs(fig_dir, exist_ok=True)
    clean_stale_tmp(fig_dir)
    ctx = Context(preset, main, variants, fig_dir,     # the schedule in words too: "lr 0.15" alone hides it
                  f"{caption(preset, len(main))}; step size {lr_words(preset.train.lr_schedule)}",
                  retrains=None if train is None else frozenset(train))
    skip, short = not_measured(ctx, train), unfinished(ctx, train)
    partial = bool(skip or short)
    check_owner(fig_dir, me, partial, overwrite)                 # before any figure is written
    prefetch(ctx, jobs, log, done=early.done if early else frozenset(), skip=skip, executor=executor)
    wall["per-run measurements after training"] = time.perf_counter() - t0 - sum(wall.values())
    if skip and (n := measure_left_out(ctx, skip, jobs, executor)):
        log(f"per-run measurements for the claims left out (so the records hold them): {n} calls")
    claims, rules, written = analyse(ctx, log, skip)
    written += write_ledger(ctx, claims, rules, skip, me, short)
    # the records, so the ledger rebuilds without the runs; a partial sitting adds to them (commit each)
    kept = records.export([*main, *(r for rs in variants.values() for r in rs)], records_root, whole=not partial)
    log(f"records: {len(kept)} runs' measurements in {records_root}" + (" (added to: a partial sitting)" * partial))
    wall["reports (analyses, figures, ledger)"] = time.perf_counter() - t0 - sum(wall.values())
    log("\n".join(f"  {c.verdict:>13}: {c.claim} — {c.measured}" for c in claims))
    for path in written:
        log(f"wrote {path}")
    log("\n" + summary_table(main))
    unlearned = [f"seed {r['seed']}" for r in main if not learned(r)]
    log("every run reached held-out accuracy >= 0.95 on every m" if not unlearned else
        f"NOT LEARNED (final accuracy < 0.95 on some m): {', '.join(unlearned)}")
    log("\nwall time: " + ", ".join(f"{k} {v:.0f}s" for k, v in wall.items())
        + f"; total {time.perf_counter() - t0:.0f}s")
    return written
