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
from minimanifold import figures, figures_commutator, ledger
from minimanifold.analysis import cached_bubbling, cached_geometry, seed_orientation
from minimanifold.commutator_runs import cached_projection
from minimanifold.presets import PRESETS
from minimanifold.report import summary_table, training_figure
from minimanifold.sweep import sweep

ROOT = os.path.dirname(os.path.abspath(__file__))


def analyse(runs, preset, fig_dir) -> list:
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
    ledger.write(claims, caption, os.path.join(fig_dir, "claims.md"), os.path.join(fig_dir, "claims.json"))
    print("\n".join(f"  {c['verdict']:>13}: {c['claim']} — {c['measured']}" for c in claims))
    return [figures.fig1_effective_rank(geoms, n_layers, caption, os.path.join(fig_dir, "fig1_effective_rank.png")),
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
    runs = sweep(preset.specs(), a.runs_dir, jobs=a.jobs, backend=a.backend,
                 log=lambda s: print(s, flush=True))
    os.makedirs(fig_dir, exist_ok=True)
    written = [training_figure(runs, preset, os.path.join(fig_dir, "fig_training.png"))]
    written += analyse(runs, preset, fig_dir)
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
