"""The paper's weights-only measurements on any checkpoint series, each beside its nulls,
with the presets' own rules and intervals (``experiments/collapse.py``, claims 1–5).

Per seed and attention matrix: r90, r95 and the participation ratio of the trajectory's
PCA (``geometry.geometry``, exactly what the pipeline computes for its own runs), beside
the Monte-Carlo random walk with the same step norms and the exact expected spectrum of
such a walk (``pca.expected_walk_spectrum``); expanding windows and when r90 settles;
principal angles between seeds' top-3 subspaces.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from ..analysis import pca
from ..experiments import collapse, functional_dimension, geometry
from ..trajectories.rundir import ALL
from ..files import save_json
from ..report import ledger
from ..report.plotting import plt, save_figure


def exact_null(X) -> dict:
    """r90, r95 and participation ratio of the exact expected spectrum of a walk with the
    step norms of snapshots X [n, D], and its explained-variance ratios (first 10)."""
    lam = pca.expected_walk_spectrum(pca.step_norms(X))
    return {**pca.summarize(lam), "evr": pca.explained_variance_ratio(lam)[:10].tolist()}


def measure(mats: dict) -> tuple:
    """(geometry as ``geometry.geometry`` gives it, {matrix: exact null}) of one seed's
    attention snapshots {name: [n, D]} (``ALL``, them all side by side, added here)."""
    snaps = {**mats, ALL: np.concatenate(list(mats.values()), axis=1)}
    return geometry.geometry(snaps), {k: exact_null(X) for k, X in snaps.items()}


def n_layers_of(geoms) -> int:
    return 1 + max(int(k.split(".")[1]) for k in geoms[0] if k != ALL)


def claims(geoms, exact, forward=None) -> dict:
    """Claims 1–5 decided as in the presets' ledgers (claim 1's null names the exact null),
    and with a forward pass claim 22, the functional dimension, with its rule, and in claim 5's
    row the series' answers on the batch (``answers.agreement_text``)."""
    L = n_layers_of(geoms)
    rows = {1: collapse.claim_r90_range(geoms, L), 2: collapse.claim_vo_below_qk(geoms, L),
            3: collapse.claim_early_collapse(geoms), 4: collapse.claim_same_dimension(geoms, L),
            5: collapse.claim_orientation(geometry.seed_orientation(geoms), [f["answers"] for f in forward or ()])}
    if forward:
        rows[22] = functional_dimension.claim_functional([f["functional"] for f in forward])
    return rows


def rules(forward=None) -> dict:
    return {**collapse.EXPERIMENT.rules, **(functional_dimension.EXPERIMENT.rules if forward else {})}


def forward_summary(forward) -> str:
    """Accuracy and entropy at the first and last snapshot, k*, the commutators' range."""
    def mean_over(rec):
        return np.mean([np.mean(v) for v in rec.values()])
    lines = []
    for i, f in enumerate(forward):
        c = f["commutators"]
        lines.append(f"series {i}: accuracy {mean_over(f['acc'][0]):.2f} -> {mean_over(f['acc'][-1]):.2f}; "
                     f"last-position entropy {mean_over(f['entropy'][0]):.2f} -> min "
                     f"{min(mean_over(e) for e in f['entropy']):.2f} -> {mean_over(f['entropy'][-1]):.2f} nats; "
                     f"k* {f['functional']['centred']['k_star']} (random {f['functional']['centred']['k_star_random']})"
                     + (f"; commutator D {c[0]['defect']:.3g} -> {c[-1]['defect']:.3g}" if c else ""))
    return "\n".join(lines)


def fig_along(forward, steps, caption, path) -> str:
    """Accuracy and the last position's attention entropy (mean over layers and groups)
    against step, each series."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, (f, st) in enumerate(zip(forward, steps)):
        a1.plot(st, [np.mean(list(r.values())) for r in f["acc"]], color=f"C{i % 10}", label=f"series {i}")
        a2.plot(st, [np.mean([np.mean(v) for v in r.values()]) for r in f["entropy"]], color=f"C{i % 10}")
    a1.set(xlabel="step", ylabel="accuracy on the batch", ylim=(0, 1.02), title="accuracy")
    a2.set(xlabel="step", ylabel="entropy (nats)", ylim=(0, None), title="last position's attention entropy")
    a1.legend(fontsize=7, loc="lower right")
    fig.suptitle(caption, fontsize=8, y=1.02)
    return save_figure(fig, path)


def summary(geoms, exact, steps) -> str:
    """The one-screen summary: per matrix r90 (mean ± sd over seeds) beside both nulls."""
    lines = [f"{len(geoms)} series, {len(steps[0])} snapshots each (steps {steps[0][0]}..{steps[0][-1]})",
             f"{'matrix':<24}{'r90':>13}{'r95':>13}{'PR':>12}{'null r90 (MC)':>16}{'exact null r90':>16}"]
    for k in geoms[0]:
        def col(f, fmt="{:.2f}"):
            return ledger.mean_sd([f(g[k]) for g in geoms], fmt)
        ex = ledger.mean_sd([e[k]["r90"] for e in exact])
        lines.append(f"{k:<24}{col(lambda x: x['r90']):>13}{col(lambda x: x['r95']):>13}"
                     f"{col(lambda x: x['participation_ratio'], '{:.1f}'):>12}{col(collapse.matched_null):>16}{ex:>16}")
    return "\n".join(lines)


def fig_spectrum(geoms, exact, caption, path) -> str:
    """Explained variance of the first 10 PCs of all attention matrices together: each
    seed against the exact expected walk with its step norms."""
    fig, ax = plt.subplots(figsize=(7, 4))
    k = np.arange(1, 11)
    for i, (g, e) in enumerate(zip(geoms, exact)):
        ev, en = np.asarray(g[ALL]["evr"]), np.asarray(e[ALL]["evr"])
        ax.plot(k[:len(ev)], ev, "o-", color=f"C{i % 10}", lw=1.5, ms=3, label=f"series {i}" if i < 8 else None)
        ax.plot(k[:len(en)], en, "--", color=f"C{i % 10}", lw=1, alpha=0.7)
    ax.plot([], [], "k--", lw=1, label="exact expected random walk, same step norms")
    ax.set_yscale("log")
    ax.set_xlabel("principal component")
    ax.set_ylabel("share of variance (all attention matrices)")
    ax.set_title(f"Trajectory PCA spectrum beside its null\n{caption}", fontsize=9)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
    return save_figure(fig, path)


def write(out_dir, sources, steps, geoms, exact, rows, caption, forward=None) -> list:
    """Records, figures and the ledger into ``out_dir`` (a folder like a preset's)."""
    os.makedirs(os.path.join(out_dir, "records"), exist_ok=True)
    for i, (src, st, g, e) in enumerate(zip(sources, steps, geoms, exact)):
        save_json(os.path.join(out_dir, "records", f"series_{i}.json"),
                  {"source": os.fspath(src), "steps": [int(s) for s in st], "exact_null": e,
                   "geometry": {k: {kk: vv for kk, vv in v.items() if kk != "dirs"} for k, v in g.items()},
                   **({"forward": forward[i]} if forward else {})})
    path = os.path.join
    paths = [collapse.fig1_effective_rank(geoms, n_layers_of(geoms), caption, path(out_dir, "fig1_effective_rank.png")),
             fig_spectrum(geoms, exact, caption, path(out_dir, "fig_spectrum.png"))]
    if forward:
        paths += [fig_along(forward, steps, caption, path(out_dir, "fig_accuracy_entropy.png")),
                  functional_dimension.fig_functional([f["functional"] for f in forward], caption,
                                                      path(out_dir, "fig_functional_dimension.png"))]
    claims_list = [dataclasses.replace(rows[n], n=n) for n in sorted(rows)]
    ledger.write(claims_list, rules(forward), caption, os.path.join(out_dir, "claims.md"),
                 os.path.join(out_dir, "claims.json"), written_by=caption, partial=False)
    return paths + [os.path.join(out_dir, f) for f in ("claims.md", "claims.json")]
