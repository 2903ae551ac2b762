"""Figures 1, 2 and the top-k attention figure from analysed runs (see analysis.py)."""
from __future__ import annotations

import numpy as np

from .analysis import ALL, FRACTIONS
from .report import plt, save_figure

MATS = ("W_Q", "W_K", "W_V", "W_O")


def _r90_table(geoms, n_layers):
    """[seed, layer, matrix] arrays of r90 and of the matched / constant null means."""
    def grab(f):
        return np.array([[[f(g[f"blocks.{l}.attn.{W}"]) for W in MATS] for l in range(n_layers)]
                         for g in geoms], dtype=float)
    return (grab(lambda x: x["r90"]), grab(lambda x: x["null"]["matched"]["mean"]),
            grab(lambda x: x["null"]["constant"]["mean"]))


def fig1_effective_rank(geoms, n_layers, caption, path) -> str:
    r90, null_m, null_c = _r90_table(geoms, n_layers)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width, colors = 0.2, plt.cm.tab10(np.arange(4))
    for j, W in enumerate(MATS):
        x = np.arange(n_layers) + (j - 1.5) * width
        ax.bar(x, r90[:, :, j].mean(0), width * 0.9, yerr=r90[:, :, j].std(0), capsize=3,
               color=colors[j], label=f"{W} (mean ± sd over seeds)")
        for xi, lo, hi in zip(x, null_m[:, :, j].mean(0) - null_m[:, :, j].std(0),
                              null_m[:, :, j].mean(0) + null_m[:, :, j].std(0)):
            ax.fill_between([xi - width / 2, xi + width / 2], lo - 0.05, hi + 0.05, color="0.3",
                            alpha=0.35, lw=0)
        ax.plot(x, null_c[:, :, j].mean(0), "k_", ms=14, mew=2)
    ax.fill_between([], [], [], color="0.3", alpha=0.35, label="null: random walk, matched step norms")
    ax.plot([], [], "k_", ms=14, mew=2, label="null: random walk, constant steps")
    ax.axhspan(3, 4, color="tab:red", alpha=0.08, label="paper's claim: r90 = 3–4")
    ax.set_xticks(np.arange(n_layers), [f"layer {l}" for l in range(n_layers)])
    ax.set_ylabel("r90 (PCA components for 90% of variance, eq 2)")
    ax.set_title(f"Effective rank of each attention matrix's trajectory\n{caption}", fontsize=10)
    ax.legend(fontsize=7.5, loc="upper right", ncol=2)
    ax.set_ylim(0, max(8, np.nanmax(null_c) + 1))
    return save_figure(fig, path)


def fig2_entropy_and_rank(bubbles, geoms, caption, path) -> str:
    steps = np.array(bubbles[0]["steps"])
    ms = sorted(bubbles[0]["entropy"])
    n_layers = len(bubbles[0]["entropy"][ms[0]][0])
    fig, (ax_e, ax_r) = plt.subplots(1, 2, figsize=(12, 4.5), sharex=True)
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(ms)))
    for c, m in zip(colors, ms):
        ent = np.array([b["entropy"][m] for b in bubbles])                  # [seed, n, layer]
        for l, ls in zip(range(n_layers), ("-", "--", ":", "-.", (0, (1, 3)))):
            ax_e.plot(steps, ent[:, :, l].mean(0), color=c, ls=ls, lw=1.8,
                      label=f"m = {m}, layer {l}")
    ax_e.axhline(np.log(bubbles[0]["T"]), color="0.5", lw=0.8, ls=":")
    ax_e.text(steps[0], np.log(bubbles[0]["T"]), "uniform attention (ln T)", va="bottom", ha="left", fontsize=8)
    ax_e.set(xlabel="training step", ylabel="entropy of the last position's attention (nats, eq 9)",
             title="Attention entropy (mean over seeds, heads and probe examples)")
    ax_e.legend(fontsize=7, ncol=2, loc="center right")
    n = geoms[0][ALL]["n"]
    xs = [steps[max(2, int(np.ceil(f * n))) - 1] for f in FRACTIONS]
    win = np.array([g[ALL]["windows"] for g in geoms], dtype=float)
    for w in win:
        ax_r.plot(xs, w, color="tab:blue", lw=0.7, alpha=0.4)
    ax_r.plot(xs, win.mean(0), color="tab:blue", lw=2.2, marker="o",
              label="all attention weights, mean over seeds")
    for W, c in zip(MATS, plt.cm.tab10(np.arange(4))):
        per = np.array([[g[f"blocks.{l}.attn.{W}"]["windows"] for l in range(n_layers)] for g in geoms])
        ax_r.plot(xs, per.mean((0, 1)), color=c, lw=1, ls="--", label=f"{W}, mean over layers and seeds")
    ax_r.set(xlabel="training step (end of the expanding window)",
             ylabel="r90 of the checkpoints up to that step",
             title="r90 over expanding windows (first x% of the checkpoints)")
    ax_r.legend(fontsize=7)
    fig.suptitle(caption, fontsize=9, y=1.03)
    return save_figure(fig, path)


def fig_topk(bubbles, caption, path) -> str:
    ks = bubbles[0]["ks"]
    ms = sorted(bubbles[0]["topk_acc"])
    fig, (ax_a, ax_m) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(ms)))
    for c, m in zip(colors, ms):
        acc = np.array([b["topk_acc"][m] for b in bubbles])
        ax_a.errorbar(ks, acc.mean(0), yerr=acc.std(0), color=c, marker="o", ms=3, capsize=2,
                      label=f"m = {m}")
        mass = np.array([b["topk_mass"][m] for b in bubbles])             # [seed, layer, k]
        for l, ls in zip(range(mass.shape[1]), ("-", "--", ":", "-.", (0, (1, 3)))):
            ax_m.plot(ks, mass[:, l].mean(0), color=c, ls=ls, label=f"m = {m}, layer {l}")
    for ax in (ax_a, ax_m):
        ax.set_xlim(ks[0] + 0.5, 0.5)
        ax.set_xlabel("k (keys kept per attention row)")
    ax_a.set(ylabel="held-out accuracy", ylim=(0, 1.02),
             title="Accuracy with every attention pattern cut to its top k\n(mean ± sd over seeds)")
    ax_m.set(ylabel="attention mass in the top k keys", ylim=(0, 1.02),
             title="Top-k mass of the last position's attention (final checkpoint)")
    ax_a.legend(fontsize=8)
    ax_m.legend(fontsize=7, ncol=2)
    fig.suptitle(caption, fontsize=9, y=1.03)
    return save_figure(fig, path)
