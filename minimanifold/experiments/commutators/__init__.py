"""§4.3, Figures 3–5: SGD commutators along a run (eq 3–5) and their share inside the
execution subspace (eq 6–7, 10), beside three random baselines. Claims 8–12 and 27.

    measure.py  the per-run measurement (commutators stored; projections cached)
    bases.py    the enrichment for other bases and K, and r90 against the snapshots used
    claims.py   the verdict rules and ledger rows
    figures.py  Figures 3, 4 and 5
"""
from __future__ import annotations

from . import bases, claims, figures
from ..contract import Experiment
from .claims import RULES
from .measure import cached_projection, subspace_size

__all__ = ["EXPERIMENT", "RULES", "report", "measurements", "cached_projection"]


def measure_run(run_dir) -> None:
    """Both per-run caches (the sweep reuses the stored commutators), in one process."""
    cached_projection(run_dir)
    bases.cached_sweep(run_dir)


def measurements(ctx) -> list:
    return [(measure_run, (r["dir"],)) for r in ctx.runs]


def report(ctx):
    projs = ctx.per_run(cached_projection)
    sweeps = ctx.per_run(bases.cached_sweep)
    rows = {8: claims.claim_perpendicular(projs), 9: claims.claim_norms_stay_large(projs),
              10: claims.claim_enrichment(projs, bases.summary_text(sweeps)),
              11: claims.claim_defect_grows(projs), 12: claims.claim_negligible_inside(projs),
              27: claims.claim_rho_falls(projs)}
    return rows, [figures.fig3_norm(projs, ctx.runs, ctx.caption, ctx.path("fig3_commutator_norm.png")),
                    figures.fig4_rho(projs, ctx.caption, ctx.path("fig4_commutator_rho.png"),
                                     K=subspace_size(ctx.runs[0]["dir"])),
                    figures.fig5_decomposition(projs, ctx.caption, ctx.path("fig5_commutator_decomposition.png")),
                    bases.fig_basis_sweep(sweeps, ctx.caption, ctx.path("fig_basis_sweep.png"))]


EXPERIMENT = Experiment("commutators", "§4.3, Figs 3–5: claims 8–12, 27", RULES, report, measurements=measurements,
                        weight=15)   # rough seconds per call in the quick preset
