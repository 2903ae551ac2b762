"""Issue 10 §5: does the exec/random enrichment of claim 10 depend on the basis and on K?
And how does r90 depend on the snapshots it is computed from?

Per run (cached ``basis_sweep_v*.npz``), for every stored mixed-pair commutator delta and
each K in ``KS`` directions per attention matrix, rho(delta) / (rho of random subspaces inside
the same matrices, each as many directions as the basis has there, k_b = min(K, directions
the basis has in matrix b); exact root-mean-square: ``enrichment``) for:

    trajectory PCA   the top-K PCA directions of the whole trajectory (claim 10's basis)
    weights SVD      vec(u_i v_i^T) of the top-K singular pairs of W_t (the current weights)
    drift SVD        the same for W_t - W_0
    gradient SVD     the same for the mean of the stored minibatch gradients g_A at step t

and r90 (mean over attention matrices) from every checkpoint, every 5th checkpoint, and
from evenly spaced subsets of 5, 10 and 20 checkpoints.
"""
from __future__ import annotations

import numpy as np

from ...analysis import execution, pca
from ...files import read_npz
from ...model.transformer import attention_param_names
from ...report.plotting import plt, save_figure
from ...trajectories.rundir import attention_trajectories, cached_npz, load_trajectory, run_configs
from .measure import measure

VERSION = 2         # 2: each matrix's own k_b in the random baseline (1: the fewest over matrices)
KS = (1, 2, 4, 8, 16, 32)
BASES = ("trajectory PCA", "weights SVD", "drift SVD", "gradient SVD")
SUBSETS = (("every checkpoint", None), ("every 5th checkpoint", 5), ("5 evenly spaced", -5), ("10 evenly spaced", -10),
           ("20 evenly spaced", -20))


def _basis(kind, name, k, j, traj, whole, grad_mean):
    if kind == "trajectory PCA":
        return whole[name][:, :k]
    if kind == "weights SVD":
        return execution.svd_basis(name, traj[name][j], k)
    if kind == "drift SVD":
        return execution.svd_basis(name, traj[name][j] - traj[name][0], k)
    return execution.svd_basis(name, grad_mean[name], k)


def enrichment(proj2, block2, sizes, used, total2) -> tuple:
    """(rho, rho / rho_random) of one delta. Per attention matrix b: ``proj2[b]`` = ||P_b delta_b||²
    onto the top ``used[b]`` = k_b directions of its basis, ``block2[b]`` = ||delta_b||², ``sizes[b]``
    = D_b; ``total2`` = ||delta||² (all parameters). rho = sqrt(sum_b proj2 / total2); the random
    baseline projects each block on k_b random directions of its own: E||P_b delta_b||² =
    min(1, k_b / D_b) ||delta_b||², so a random basis gives 1 in expectation. (NaN, NaN) when
    no block has a direction (the drift at step 0); ratio NaN when delta has no component in
    the blocks that have directions."""
    used = np.asarray(used)
    if not used.any() or total2 <= 0:
        return np.nan, np.nan
    rho = float(np.sqrt(np.sum(proj2) / total2))
    base2 = float(np.sum(np.minimum(1.0, used / np.asarray(sizes, dtype=float)) * np.asarray(block2)))
    return rho, rho / np.sqrt(base2 / total2) if base2 > 0 else np.nan


def sweep_of_run(run_dir) -> dict:
    cfg, _, _ = run_configs(run_dir)
    data = read_npz(measure(run_dir))
    traj = load_trajectory(run_dir)
    snaps = attention_trajectories(run_dir, cfg)
    names = attention_param_names(cfg)
    whole = execution.execution_basis(snaps, cfg, max(KS))
    off = execution.offsets(cfg)
    sizes = np.array([off[n][1] - off[n][0] for n in names], dtype=float)
    mixed = np.nonzero(np.asarray(data["kind"])[0] == 0)[0]
    n_pts = len(data["index"])
    ratio = np.full((len(BASES), len(KS), n_pts, len(mixed)), np.nan)
    rho = np.full_like(ratio, np.nan)                 # rho_basis(delta) itself, in [0, 1]
    k_used = np.zeros((len(BASES), len(KS), n_pts, len(names)), dtype=int)   # k_b per matrix
    ks = np.array(KS)
    for i, j in enumerate(data["index"]):
        g = data["g_A"][i, mixed].astype(np.float64).mean(axis=0)
        grad_mean = {n: g[off[n][0]:off[n][1]].reshape(traj[n].shape[1:]) for n in names}
        deltas = [data["delta"][i, col].astype(np.float64) for col in mixed]
        for b, kind in enumerate(BASES):
            # each basis once with the largest K; its first k columns are its top-k (nested)
            basis = {n: _basis(kind, n, max(KS), j, traj, whole, grad_mean) for n in names}
            avail = np.array([basis[n].shape[1] for n in names])                  # [block]
            used = np.minimum(ks[:, None], avail[None, :])                        # [K, block]
            k_used[b, :, i] = used
            for s, d in enumerate(deltas):
                blocks = [d[off[n][0]:off[n][1]] for n in names]
                c2 = [np.concatenate(([0.0], np.cumsum((basis[n].T @ v) ** 2))) for n, v in zip(names, blocks)]
                b2 = np.array([float(v @ v) for v in blocks])                     # [block]
                for q in range(len(KS)):                 # step 0 of the drift SVD: no directions, NaN
                    proj2 = [c[u] for c, u in zip(c2, used[q])]
                    rho[b, q, i, s], ratio[b, q, i, s] = enrichment(proj2, b2, sizes, used[q], float(d @ d))
    r90 = []
    for label, rule in SUBSETS:
        n = len(traj["steps"])
        if rule is None:
            idx = np.arange(n)
        elif rule > 0:
            idx = np.arange(0, n, rule)
        else:
            idx = np.unique(np.linspace(0, n - 1, min(-rule, n)).round().astype(int))
        r90.append(np.mean([pca.rank_at(pca.pca_spectrum(snaps[nm][idx]), 0.90) for nm in names]))
    return {"steps": data["steps"], "ratio": ratio, "rho": rho, "k_used": k_used, "r90_subsets": np.array(r90)}


def cached_sweep(run_dir) -> dict:
    return cached_npz(run_dir, f"basis_sweep_v{VERSION}.npz", sweep_of_run)


def windows(sweeps) -> dict:
    """{(basis, K): (early [seed], late [seed])}: per seed, the median ratio over the mixed
    pairs at measurement points in the first (step 0 excluded) and last 20% of training."""
    out = {}
    for b, kind in enumerate(BASES):
        for q, k in enumerate(KS):
            early, late = [], []
            for sw in sweeps:
                steps = np.asarray(sw["steps"], dtype=float)
                frac = steps / steps.max()
                r = sw["ratio"][b, q]
                for acc, sel in ((early, (frac > 0) & (frac <= 0.2)), (late, frac >= 0.8)):
                    vals = r[sel]
                    acc.append(np.nanmedian(vals) if np.isfinite(vals).any() else np.nan)
            out[kind, k] = (np.array(early), np.array(late))
    return out


def summary_text(sweeps, k=4) -> str:
    w = windows(sweeps)
    return "; ".join(f"{kind} {np.nanmean(w[kind, k][0]):.1f}× → {np.nanmean(w[kind, k][1]):.1f}×"
                     for kind in BASES)


def fig_basis_sweep(sweeps, caption, path) -> str:
    w = windows(sweeps)
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(16, 4.6))
    for i, kind in enumerate(BASES):
        for ax, part in ((a, 0), (b, 1)):
            vals = np.array([w[kind, k][part] for k in KS])              # [K, seed]
            mean = np.nanmean(vals, axis=1)
            ax.plot(KS, mean, marker="o", ms=4, color=f"C{i}", lw=2, label=kind)
            ax.fill_between(KS, np.nanmin(vals, axis=1), np.nanmax(vals, axis=1), color=f"C{i}", alpha=0.12)
    for ax, when in ((a, "first 20%"), (b, "last 20%")):
        ax.axhline(1, color="k", ls=":", lw=0.8, label="random in the same blocks (= 1)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(KS, [str(k) for k in KS])
        ax.set_yscale("log")
        ax.set(xlabel="K: directions per attention matrix", ylabel="ρ_basis(δ) / ρ_random(δ) (median over pairs)",
               title=f"Commutator enrichment over random,\n{when} of training")
        ax.legend(fontsize=7)
    r = np.array([sw["r90_subsets"] for sw in sweeps])                    # [seed, subset]
    labels = [label for label, _ in SUBSETS]
    c.bar(range(len(labels)), r.mean(0), yerr=r.std(0), capsize=3, color="tab:blue")
    for s in range(r.shape[0]):
        c.scatter(range(len(labels)), r[s], color="k", s=8, zorder=3)
    c.set_xticks(range(len(labels)), labels, rotation=20, fontsize=8)
    c.set(ylabel="r90, mean over attention matrices", ylim=(0, None),
          title="r90 against the snapshots\nit is computed from")
    fig.suptitle("Basis and K sweep (bands: min–max over seeds)\n" + caption, fontsize=9, y=1.09)
    return save_figure(fig, path)
