"""Figure 6 (SAE ablation) and the §4.5–4.6 comparison figures."""
from __future__ import annotations

import numpy as np

from .report import plt, save_figure
from .train import load_metrics

STAGES = ("early", "mid", "late")
PAPER_FIG6 = {"early": (0.52, 0.49), "mid": (0.945, 0.938), "late": (1.00, 1.00)}


def fig6_sae_ablation(saes, caption, path) -> str:
    bars = (("acc_clean", "clean model", "0.3"),
            ("acc_reconstruction", "SAE reconstruction spliced in (no ablation)", "tab:blue"),
            ("acc_ablated", "top-5 task-correlated latents ablated", "tab:red"),
            ("acc_random_ablated", "5 random live latents ablated (control)", "tab:orange"))
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    x = np.arange(len(STAGES))
    for j, (key, label, color) in enumerate(bars):
        vals = np.array([[s["stages"][st][key] for st in STAGES] for s in saes])
        ax.bar(x + (j - 1.5) * 0.2, vals.mean(0), 0.18, yerr=vals.std(0), capsize=3, color=color, label=label)
    for i, st in enumerate(STAGES):
        before, after = PAPER_FIG6[st]
        ax.plot([i - 0.3, i + 0.1], [before, after], "k*", ms=9, label="paper's Fig 6 (before, after)" if i == 0 else None)
    steps = [int(np.mean([s["stages"][st]["step"] for s in saes])) for st in STAGES]
    ax.set_xticks(x, [f"{st}\n(step ≈ {n})" for st, n in zip(STAGES, steps)])
    ax.set(ylabel="held-out accuracy", ylim=(0, 1.1),
           title=f"Accuracy before and after ablating SAE latents (mean ± sd over {len(saes)} seeds)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3)
    for k, st in enumerate(STAGES):
        corr = [l["abs_corr"] for s in saes for l in s["stages"][st]["top_latents"]]
        count = [s["stages"][st]["n_correlated_0.5"] for s in saes]
        ax2.bar(k, np.mean(count), 0.6, yerr=np.std(count), capsize=3, color="tab:purple")
        fvu = np.mean([s["stages"][st]["sae"]["fvu"] for s in saes])
        l0 = np.mean([s["stages"][st]["sae"]["l0"] for s in saes])
        ax2.text(k, np.mean(count) + np.std(count) + 0.5, f"top-5 |r| {np.mean(corr):.2f}\nFVU {fvu:.3f}, L0 {l0:.0f}",
                 ha="center", fontsize=8)
    d_sae = saes[0]["stages"]["late"]["sae"]["d_sae"]
    ax2.set_xticks(range(len(STAGES)), STAGES)
    ax2.set_ylim(0, ax2.get_ylim()[1] * 1.2)
    ax2.set(ylabel=f"latents with |corr| > 0.5 with a task factor (of {d_sae})",
            title="Task-correlated latents (m, answer, marker positions)")
    fig.suptitle(f"{caption}\nSAE on the residual stream at the last position after layer {saes[0]['layer']}",
                 fontsize=9, y=1.05)
    return save_figure(fig, path)


def _acc_curves(ax, runs, ls, label):
    hist = [load_metrics(r["dir"]) for r in runs]
    ms = sorted(hist[0][-1]["acc"], key=int)
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(ms)))
    steps = [r["step"] for r in hist[0]]
    for c, m in zip(colors, ms):
        ax.plot(steps, np.mean([[r["acc"][m] for r in h] for h in hist], axis=0), color=c, ls=ls,
                lw=2, label=f"{label}, m = {m}")


def _r90_bars(ax, variants):
    for i, (name, v) in enumerate(variants.items()):
        r, n = np.array(v["r90"]), np.array(v["null"])
        ax.bar(i, r.mean(), 0.6, yerr=r.std(), capsize=4, color=f"C{i}", label=name)
        ax.fill_between([i - 0.3, i + 0.3], n.mean() - n.std() - 0.05, n.mean() + n.std() + 0.05,
                        color="0.3", alpha=0.35, lw=0, label="matched random-walk null" if i == 0 else None)
    ax.set_xticks(range(len(variants)), list(variants))
    ax.set(ylabel="r90, mean over attention matrices", title="Effective rank (mean ± sd over seeds)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3)


def fig_compare(variants, runs_by_variant, title, caption, path, boundaries=None) -> str:
    """Accuracy per m against step for each variant (line styles), and r90 with nulls."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    for (name, runs), ls in zip(runs_by_variant.items(), ("-", "--", ":")):
        _acc_curves(a, runs, ls, name)
    for s in boundaries or []:
        a.axvline(s, color="k", lw=0.8, ls=":")
    a.set(xlabel="training step", ylabel="held-out accuracy (mean over seeds)", ylim=(0, 1.03),
          title=title + (" (dotted: curriculum stage boundaries)" if boundaries else ""))
    a.legend(fontsize=7, ncol=2, loc="lower right")
    _r90_bars(b, variants)
    fig.suptitle(caption, fontsize=9, y=1.02)
    return save_figure(fig, path)
