#!/usr/bin/env python
"""The main job: train the preset's runs (cached), analyse them, write figures/.

    python run_all.py                      # quick preset (default)
    python run_all.py --preset paper --jobs 2
    python run_all.py --preset paper --lr 0.001   # the paper as written (does not learn)
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

import minimanifold  # noqa: F401  (sets up the allocator before any work)
from minimanifold import figures, figures_commutator, figures_extra, ledger, ledger_extra
from minimanifold.experiments import comparison_specs, summarize_variant
from minimanifold.probing import sae_experiment
from minimanifold.train import load_metrics
from minimanifold.analysis import cached_bubbling, cached_geometry, seed_orientation
from minimanifold.commutator_runs import cached_projection
from minimanifold.presets import PRESETS
from minimanifold.report import summary_table, training_figure
from minimanifold.sweep import sweep

ROOT = os.path.dirname(os.path.abspath(__file__))


def _usable(runs) -> list:
    """The runs that finished; diverged ones are named and left out of the analyses."""
    bad = [f"{r['name']} seed {r['seed']}" for r in runs if r["summary"] is None]
    if bad:
        print(f"DIVERGED, left out of the analyses: {', '.join(bad)}", flush=True)
    return [r for r in runs if r["summary"] is not None]


def _learned_final_stage(run) -> bool:
    """Accuracy >= 0.95 on every m of the schedule's final stage (all m for mixed)."""
    from minimanifold.task import Schedule  # noqa: PLC0415
    final = Schedule.parse(run["summary"]["config"]["train"]["schedule"]).stages[-1][0]
    return all(run["summary"]["final_acc"][str(m)] >= 0.95 for m in final)


def comparisons(runs, geoms, preset, a, caption, fig_dir):
    """§4.4–4.6: SAE probing of the first main runs; curriculum, MLP and mul runs at the
    same budget. Returns (claims, figure paths)."""
    t0 = time.perf_counter()
    saes = [sae_experiment(r["dir"], d_sae=4 * preset.model.d_model) for r in runs[:preset.n_extra_seeds]]
    print(f"SAE probing of {len(saes)} runs (3 stages each) in {time.perf_counter() - t0:.0f}s", flush=True)
    specs = comparison_specs(preset, preset.n_extra_seeds)
    flat = [s for group in specs.values() for s in group]
    done = _usable(sweep(flat, a.runs_dir, jobs=a.jobs, backend=a.backend, log=lambda s: print(s, flush=True)))
    by = {name: [r for r in done if r["name"] == name] for name in specs}
    unlearned = [f"{r['name']} seed {r['seed']}" for r in done if not _learned_final_stage(r)]
    print("every comparison run learned its task (the curriculum: its final stage)" if not unlearned
          else f"NOT LEARNED: {', '.join(unlearned)}", flush=True)
    n_layers = preset.model.n_layers
    var = {name: summarize_variant([cached_geometry(r["dir"]) for r in rs], rs, n_layers) for name, rs in by.items()}
    main = summarize_variant(geoms[:], runs, n_layers)
    cur_hist = [load_metrics(r["dir"]) for r in by["curriculum"]]
    claims = [ledger_extra.claim_sae_correlated(saes), ledger_extra.claim_sae_ablation(saes),
              ledger_extra.claim_mlp_rank(main, var["mlp"]), ledger_extra.claim_mlp_accuracy(main, var["mlp"]),
              ledger_extra.claim_curriculum(runs, by["curriculum"], cur_hist),
              ledger_extra.claim_multiplication(main, var["mul"]), ledger_extra.claim_m_scaling(),
              ledger_extra.claim_compositional()]
    from minimanifold.task import Schedule  # noqa: PLC0415
    bounds = Schedule.parse(specs["curriculum"][0].train.schedule).boundaries()[1:]
    caption = caption.replace(f"{len(runs)} seeds", f"{len(runs)} seeds ({preset.n_extra_seeds} per comparison and for SAEs)")
    paths = [figures_extra.fig6_sae_ablation(saes, caption, os.path.join(fig_dir, "fig6_sae_ablation.png")),
             figures_extra.fig_compare({"mixed": main, "curriculum": var["curriculum"]},
                                       {"mixed": runs, "curriculum": by["curriculum"]},
                                       "Curriculum vs mixed", caption, os.path.join(fig_dir, "fig_curriculum.png"), bounds),
             figures_extra.fig_compare({"attention-only": main, "attention + MLP": var["mlp"]},
                                       {"attention-only": runs, "attention + MLP": by["mlp"]},
                                       "MLP vs attention-only", caption, os.path.join(fig_dir, "fig_mlp.png")),
             figures_extra.fig_compare({"addition": main, "multiplication": var["mul"]},
                                       {"addition": runs, "multiplication": by["mul"]},
                                       "Multiplication vs addition (mod C)", caption,
                                       os.path.join(fig_dir, "fig_multiplication.png"))]
    return claims, paths


def analyse(runs, preset, fig_dir, a) -> list:
    """§4.1–4.2: geometry and bubbling of every run (cached per run), Figures 1, 2, top-k,
    and the claims ledger. Returns the paths written."""
    t0 = time.perf_counter()
    geoms = [cached_geometry(r["dir"]) for r in runs]
    bubbles = [cached_bubbling(r["dir"]) for r in runs]
    orientation = seed_orientation(geoms)
    print(f"analysed geometry and bubbling of {len(runs)} runs in {time.perf_counter() - t0:.0f}s", flush=True)
    t0 = time.perf_counter()
    projs = [cached_projection(r["dir"]) for r in runs]
    n_samples = sum(p["norm"].size for p in projs)
    print(f"commutators: {n_samples} samples (4 gradient evaluations each, float64) measured and "
          f"projected in {time.perf_counter() - t0:.0f}s", flush=True)
    n_layers, tr = preset.model.n_layers, preset.train
    caption = (f"{preset.name} preset, {len(runs)} seeds: L={n_layers}, d_model={preset.model.d_model}, "
               f"T={preset.task.T}, C={preset.task.C}, {tr.schedule}, {tr.optimizer} lr={tr.lr}, "
               f"{tr.steps} steps, checkpoints every {tr.ckpt_every}")
    claims = ledger.build(geoms, orientation, bubbles, n_layers, projs)
    claims.insert(6, ledger_extra.claim_bubbling_with_collapse(bubbles, geoms))
    claims.insert(8, ledger_extra.claim_norms_stay_large(projs))
    extra_claims, extra_paths = comparisons(runs, geoms, preset, a, caption, fig_dir)
    claims += extra_claims
    ledger.write(claims, caption, os.path.join(fig_dir, "claims.md"), os.path.join(fig_dir, "claims.json"),
                 extra_rules=ledger_extra.RULES)
    if os.path.abspath(fig_dir) == os.path.join(ROOT, "figures"):      # the quick preset's ledger
        ledger.update_readme(os.path.join(ROOT, "README.md"), claims)
    print("\n".join(f"  {c['verdict']:>13}: {c['claim']} — {c['measured']}" for c in claims))
    return extra_paths + [figures.fig1_effective_rank(geoms, n_layers, caption, os.path.join(fig_dir, "fig1_effective_rank.png")),
            figures.fig2_entropy_and_rank(bubbles, geoms, caption, os.path.join(fig_dir, "fig2_attention_entropy.png")),
            figures.fig_topk(bubbles, caption, os.path.join(fig_dir, "fig_topk_attention.png")),
            figures_commutator.fig3_norm(projs, runs, caption, os.path.join(fig_dir, "fig3_commutator_norm.png")),
            figures_commutator.fig4_rho(projs, caption, os.path.join(fig_dir, "fig4_commutator_rho.png")),
            figures_commutator.fig5_decomposition(projs, caption,
                                                  os.path.join(fig_dir, "fig5_commutator_decomposition.png")),
            os.path.join(fig_dir, "claims.md"), os.path.join(fig_dir, "claims.json")]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    ap.add_argument("--jobs", type=int, default=1, help="seeds trained in parallel (local processes)")
    ap.add_argument("--runs-dir", default=os.path.join(ROOT, "runs"), help="cache of trained runs")
    ap.add_argument("--figures-dir", default=None,
                    help="where figures go (default: figures/ for quick, figures/<preset>/ otherwise)")
    ap.add_argument("--lr", type=float, default=None, help="override the preset's learning rate")
    ap.add_argument("--steps", type=int, default=None, help="override the preset's step count")
    ap.add_argument("--seeds", type=int, default=None, help="override the preset's seed count")
    ap.add_argument("--backend", default=None, help="numpy (default) or cupy")
    a = ap.parse_args(argv)
    preset = PRESETS[a.preset]
    overrides = {k: v for k, v in (("lr", a.lr), ("steps", a.steps)) if v is not None}
    if a.seeds is not None:
        preset = dataclasses.replace(preset, n_seeds=a.seeds)
    try:
        preset = dataclasses.replace(preset, train=dataclasses.replace(preset.train, **overrides))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    fig_dir = a.figures_dir or os.path.join(ROOT, "figures", "" if a.preset == "quick" else a.preset)
    print(preset.describe(), flush=True)
    t0 = time.perf_counter()
    runs = _usable(sweep(preset.specs(), a.runs_dir, jobs=a.jobs, backend=a.backend,
                         log=lambda s: print(s, flush=True)))
    if len(runs) < 2:
        print("error: fewer than 2 runs trained without diverging; nothing to analyse", file=sys.stderr)
        return 2
    os.makedirs(fig_dir, exist_ok=True)
    written = [training_figure(runs, preset, os.path.join(fig_dir, "fig_training.png"))]
    written += analyse(runs, preset, fig_dir, a)
    for path in written:
        print(f"wrote {os.path.relpath(path, ROOT)}")
    print()
    print(summary_table(runs))
    unlearned = [f"seed {r['seed']}" for r in runs
                 if min(r["summary"]["final_acc"].values()) < 0.95]
    print("every run reached held-out accuracy >= 0.95 on every m" if not unlearned else
          f"NOT LEARNED (final accuracy < 0.95 on some m): {', '.join(unlearned)}")
    print(f"\ntotal {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
