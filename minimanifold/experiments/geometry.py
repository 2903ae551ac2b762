"""§4.1's per-run measurement: the PCA geometry of a run's attention trajectories, cached in
the run directory, and the seeds' orientations compared across a group of runs.

Per attention matrix (and ``ALL``, them side by side): the PCA spectrum of the checkpoints
(eq 1–2), r90 beside the nulls of a walk with the same step norms (Monte Carlo and the
exact expected spectrum), r90 over expanding windows and when it settles, when the
window's top-k subspace settles onto the whole run's (principal angles), r90 again from a
common number of evenly spaced snapshots (``N_COMMON``: r90 depends on how many snapshots
the PCA sees, so presets with different checkpoint counts are compared at one count too),
and the top-3 directions (kept apart: 3 MB a run, read only to compare seeds).
"""
from __future__ import annotations

import hashlib
import itertools
import os

import numpy as np

from ..analysis import pca
from ..trajectories import records
from ..trajectories.rundir import ALL, attention_trajectories, cached_json, cached_npz, matrix_names, run_configs

ANALYSIS_VERSION = 3   # bump when the measurement changes, so cached results are recomputed
N_COMMON = 40          # snapshots of the common-count PCA: the authors' code saves 40
SETTLE_DEG = 30.0      # a window's top-k subspace has settled when its largest principal angle
                       # to the whole run's top-k is below this (two random k-subspaces: ~90°)
K_DIRS = 3             # directions kept per matrix to compare seeds (claim 5)


def common_snapshots(n: int, count: int = N_COMMON) -> np.ndarray:
    """Indices of ``count`` evenly spaced snapshots of n, first and last included (all n
    when n <= count)."""
    return np.unique(np.round(np.linspace(0, n - 1, min(n, count))).astype(int))


def subspace_windows(X, fractions, k: int) -> list:
    """Per expanding window (the first ceil(f n) snapshots, at least k + 1): the largest
    principal angle (degrees) between its top-k PCA subspace and the whole run's. A window
    whose PCA finds fewer than k directions is 90° away (it does not span them)."""
    n = X.shape[0]
    final = pca.pca_directions(X, k)
    out = []
    for f in fractions:
        V = pca.pca_directions(X[:max(k + 1, int(np.ceil(f * n)))], k)
        out.append(90.0 if V.shape[1] < final.shape[1] or not final.shape[1]
                   else float(np.degrees(pca.principal_angles(V, final).max())))
    return out


def settled_from(angles, fractions=pca.FRACTIONS, below=SETTLE_DEG) -> float:
    """First fraction of training from which every later window's angle is below ``below``."""
    for i in range(len(angles)):
        if all(a < below for a in angles[i:]):
            return float(fractions[i])
    return 1.0


def exact_null(norms) -> dict:
    """r90 and participation ratio of the exact expected spectrum of a walk with these step
    norms (``pca.expected_walk_spectrum``: no sampling)."""
    lam = pca.expected_walk_spectrum(norms)
    return {"r90": pca.rank_at(lam, 0.90), "participation_ratio": pca.participation_ratio(lam)}


def geometry(snaps: dict, null_draws=3, k_dirs=K_DIRS) -> dict:
    """Per matrix of ``snaps`` ({name: snapshots [n,D]}, ``ALL`` last): spectrum summary,
    nulls (Monte Carlo "null" and exact "exact_null"), expanding-window r90 and when it
    stabilizes, the top-k subspace's settling ("angle_windows", "angle_settled", and the
    matched walk's), the common-count r90 ("common"), and the top ``k_dirs`` PCA directions
    ("dirs", not for ``ALL``). The audit of any checkpoint series calls it too."""
    out = {}
    for i, (name, X) in enumerate(snaps.items()):
        lam = pca.pca_spectrum(X)
        norms = pca.step_norms(X)
        r90 = pca.rank_at(lam, 0.90)
        windows = pca.expanding_window(X, pca.FRACTIONS)
        null = pca.random_walk_null(norms, X.shape[1], n_draws=null_draws, seed=i)
        walk = pca.random_walk(norms, X.shape[1], np.random.default_rng([i, 5]))
        angles = subspace_windows(X, pca.FRACTIONS, r90)
        null_angles = subspace_windows(walk, pca.FRACTIONS, r90)
        idx = common_snapshots(X.shape[0])
        Xc = X[idx]
        out[name] = {**pca.summarize(lam), "evr": pca.explained_variance_ratio(lam)[:10].tolist(),
                     "null": null, "exact_null": exact_null(norms), "windows": windows,
                     "stabilization": pca.stabilization_fraction(windows),
                     "null_stabilization": pca.stabilization_fraction(pca.expanding_window(walk, pca.FRACTIONS)),
                     "angle_windows": angles, "angle_settled": settled_from(angles),
                     "null_angle_windows": null_angles, "null_angle_settled": settled_from(null_angles),
                     "common": {"n": int(len(idx)), "r90": pca.rank_at(pca.pca_spectrum(Xc), 0.90),
                                "exact_null": exact_null(pca.step_norms(Xc))},
                     "D": int(X.shape[1]), "n": int(X.shape[0])}
        if name != ALL:
            out[name]["dirs"] = pca.pca_directions(X, k_dirs)
    return out


def settling_at_common(X, seed_index: int, count: int = N_COMMON) -> dict:
    """Claim 3's settling again from ``count`` evenly spaced snapshots of X [n, D] (all
    attention): each expanding window's top-k subspace (k: the snapshots' r90) against the
    whole run's, and the same for a walk with their step norms (``geometry``'s, drawn
    with ``seed_index``). Where the angles fall below ``SETTLE_DEG`` hangs on the spacing."""
    Xc = X[common_snapshots(X.shape[0], count)]
    k = pca.rank_at(pca.pca_spectrum(Xc), 0.90)
    walk = pca.random_walk(pca.step_norms(Xc), Xc.shape[1], np.random.default_rng([seed_index, 5]))
    angles, null = subspace_windows(Xc, pca.FRACTIONS, k), subspace_windows(walk, pca.FRACTIONS, k)
    return {"n": int(Xc.shape[0]), "r90": k, "angle_windows": angles, "angle_settled": settled_from(angles),
            "null_angle_windows": null, "null_angle_settled": settled_from(null)}


def cached_settling(run_dir) -> dict:
    """``settling_at_common`` of a run's attention matrices side by side, cached (its own
    file: geometry's cache, older, is committed for runs that no cache holds any more)."""
    def compute(d):
        snaps = attention_trajectories(d, run_configs(d)[0])
        return settling_at_common(snaps[ALL], list(snaps).index(ALL))      # the walk ``geometry`` draws for ALL
    return cached_json(run_dir, "settling_common_v1.json", compute)


def geometry_of_run(run_dir, null_draws=3, k_dirs=K_DIRS) -> dict:
    """``geometry`` of a run directory's attention trajectories."""
    cfg, _, _ = run_configs(run_dir)
    return geometry(attention_trajectories(run_dir, cfg), null_draws, k_dirs)


def cached_geometry(run_dir) -> dict:
    """geometry_of_run without the directions, cached as JSON in the run directory (the
    directions go to their own .npz, ``cached_dirs``; both computed at most once)."""
    fresh = {}

    def compute(d):
        if not fresh:
            fresh.update(geometry_of_run(d))
        return fresh
    geom = cached_json(run_dir, f"geometry_v{ANALYSIS_VERSION}.json",
                       lambda d: {k: {kk: vv for kk, vv in v.items() if kk != "dirs"} for k, v in compute(d).items()})
    if fresh:                     # computed now: keep its directions too (no second PCA later)
        cached_dirs(run_dir, lambda d: {k: v["dirs"] for k, v in fresh.items() if "dirs" in v})
    return geom


def directions_of_run(run_dir, k_dirs=K_DIRS) -> dict:
    """{attention matrix: its top ``k_dirs`` PCA directions [D, k]} (as ``geometry`` finds them)."""
    cfg, _, _ = run_configs(run_dir)
    snaps = attention_trajectories(run_dir, cfg)
    return {k: pca.pca_directions(X, k_dirs) for k, X in snaps.items() if k != ALL}


def cached_dirs(run_dir, compute=directions_of_run) -> dict:
    """{matrix: top-3 PCA directions [D, 3]} of a run, cached as .npz beside its geometry (3 MB:
    not kept in a committed record, whose seed orientations ``cached_orientation`` holds)."""
    return cached_npz(run_dir, f"geometry_dirs_v{ANALYSIS_VERSION}.npz", compute, record=False)


def seed_orientation(geoms: list, k_dirs=K_DIRS, n_random=5) -> dict:
    """Per matrix: principal angles (degrees) between every pair of seeds' top-k PCA
    subspaces (``geoms`` carry their "dirs"; pairs in ``itertools.combinations`` order),
    and between random k-subspaces of the same dimension."""
    out = {}
    for name in geoms[0]:
        if name == ALL:
            continue
        pairs = [np.degrees(pca.principal_angles(a[name]["dirs"], b[name]["dirs"]))
                 for a, b in itertools.combinations(geoms, 2)]
        rand = np.degrees(pca.random_subspace_angles(geoms[0][name]["D"], k_dirs, n_random))
        out[name] = {"seed_pairs_deg": [p.tolist() for p in pairs], "random_deg": rand.tolist(),
                     "D": int(geoms[0][name]["D"])}
    return out


def orientation_name(run_dirs) -> str:
    """Its cache file: the seeds, and those very runs (``records.tag``: a seed retrained to
    another end is another run, and their orientation is measured anew)."""
    seeds = "-".join(os.path.basename(d)[len("seed_"):] for d in run_dirs)
    runs = hashlib.sha256("".join(records.tag(d) for d in run_dirs).encode()).hexdigest()[:8]
    return f"orientation_v{ANALYSIS_VERSION}_seeds_{seeds}-{runs}.json"


def cached_orientation(run_dirs) -> dict:
    """``seed_orientation`` of the runs in ``run_dirs`` (one configuration, several seeds),
    cached as JSON in the folder of their configuration (``orientation_name``): it is what a
    committed record keeps in place of the runs' 3 MB of directions. Runs of one
    configuration may lie in two folders, the run cache's and the records' (a sitting that
    retrained some of them): the file is read from whichever holds it, else computed in the
    first (which needs every run's trajectory)."""
    folders = list(dict.fromkeys(os.path.dirname(d) for d in run_dirs))
    if len({os.path.basename(f) for f in folders}) > 1:
        raise ValueError(f"seed orientation compares runs of one configuration: {run_dirs}")
    name = orientation_name(run_dirs)
    group = next((f for f in folders if os.path.exists(os.path.join(f, name))), folders[0])

    def compute(_):
        geoms = [{name: {"dirs": v, "D": int(v.shape[0])} for name, v in cached_dirs(d).items()} for d in run_dirs]
        return seed_orientation(geoms)
    return cached_json(group, name, compute)


def mean_r90(geom, n_layers, key=lambda x: x["r90"]) -> float:
    """Mean over the 4 x n_layers attention matrices of one run (r90 by default)."""
    return float(np.mean([key(geom[k]) for k in matrix_names(n_layers)]))


def matched_null(x) -> float:
    return x["null"]["matched"]["mean"]


def common_r90(x) -> float:
    return x["common"]["r90"]


def common_null(x) -> float:
    """The exact null's r90 at the common snapshot count."""
    return x["common"]["exact_null"]["r90"]
