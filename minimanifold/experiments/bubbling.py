"""§4.2, Figure 2: attention "bubbling" — the last position's attention concentrating on a
few keys (entropy, eq 9) — and whether that coincides with the collapse of §4.1.

Measured per run (cached): the entropy and accuracy curves training recorded, and at the
final checkpoint the accuracy with every pattern cut to its top k keys and the last
position's top-k mass. Claims 6 and 7; Figure 2 and the top-k figure.
"""
from __future__ import annotations

import numpy as np
from matplotlib.lines import Line2D

from ..analysis.patterns import last_position_topk_mass, topk_accuracy
from ..analysis.pca import FRACTIONS
from ..analysis.intervals import Interval, all_of, holds, t_interval, within
from ..report.ledger import INCONCLUSIVE, Row, mean_sd, verdict
from ..report.plotting import plt, save_figure, sd_within
from ..trajectories.schedule import Schedule
from ..trajectories.task import probe_set
from ..trajectories.rundir import ALL, MATS, cached_json, final_params, load_metrics, run_configs
from .snapshot_count import counted
from .geometry import SETTLE_DEG, cached_geometry, cached_settling, common_snapshots
from .contract import Experiment

VERSION = 2   # the cache's version (was shared with the geometry's until its v3)

LINESTYLES = ("-", "--", ":", "-.", (0, (6, 2, 1, 2, 1, 2)), (0, (10, 3)))   # one per layer, cycled


def bubbling_of_run(run_dir, n_probe=256) -> dict:
    """Entropy curves (from the run's metrics), and at the final checkpoint: accuracy with
    every pattern cut to its top k (k = T..1) and the last position's top-k mass."""
    cfg, task, train_cfg = run_configs(run_dir)
    hist = load_metrics(run_dir)
    params = final_params(run_dir)
    ms = Schedule.parse(train_cfg["schedule"]).all_m()
    probe = probe_set(task, ms, n_probe, train_cfg["seed"])
    ks = list(range(task.T, 0, -1))
    return {"steps": [r["step"] for r in hist],
            "entropy": {m: [r["entropy"][str(m)] for r in hist] for m in ms},   # [n][layer]
            "acc": {m: [r["acc"][str(m)] for r in hist] for m in ms},
            "ks": ks, "topk_acc": topk_accuracy(params, probe, cfg, ks),
            "topk_mass": last_position_topk_mass(params, probe, cfg, ks), "T": task.T}


def _int_keys(b) -> dict:
    for key in ("entropy", "acc", "topk_acc", "topk_mass"):
        b[key] = {int(m): v for m, v in b[key].items()}
    return b


def cached_bubbling(run_dir) -> dict:
    return cached_json(run_dir, f"bubbling_v{VERSION}.json", bubbling_of_run, _int_keys)


def mean_entropy(b) -> np.ndarray:
    """[checkpoint] last-position entropy averaged over layers, then over m."""
    return np.array([np.mean(b["entropy"][m], axis=1) for m in sorted(b["entropy"])]).mean(0)


# ---- verdict rules: the docstring is the rule the ledger prints ----

def entropy_smooth_rule(rel_drop: Interval, largest_jump: Interval) -> str:
    """entropy falls smoothly: last-position entropy averaged over layers and m; *supported* if the
    interval of its fall (as a share of its initial value) lies at or above 10% and that of the
    largest single-checkpoint share of the fall lies at or below one half; *not supported* if
    either lies wholly on the other side; *inconclusive* otherwise. A share above one half
    whose fall lies before the first checkpoint after step 0 on some seed reads
    *inconclusive* (the spacing cannot show what happened inside it). Decided again from
    40 evenly spaced checkpoints (``snapshot_count.count_rule``: the largest share grows with the
    spacing); a verdict that differs between the two reads *inconclusive*."""
    return verdict(all_of(holds(rel_drop, ">=", 0.10), holds(largest_jump, "<=", 0.5)))


def bubbling_with_collapse_rule(gap: Interval) -> str:
    """bubbling coincides with collapse: |the fraction of training by which the last position's
    entropy has made 90% of its fall − the fraction from which the top-k PCA subspace has
    settled (claim 3's measure)|, per seed; *supported* if its interval lies at or below 0.2,
    *not supported* if it lies above 0.2, *inconclusive* otherwise, or when the verdict from 40
    evenly spaced snapshots (both fractions read there) differs."""
    return verdict(holds(gap, "<=", 0.2))


RULES = {6: entropy_smooth_rule, 7: bubbling_with_collapse_rule}


# ---- ledger rows ----

def claim_entropy_smooth(bubbles):
    curves = np.array([mean_entropy(b) for b in bubbles])                 # [seed, n]
    idx = common_snapshots(curves.shape[1])
    T = bubbles[0]["T"]
    return counted(_entropy_smooth(curves, T), _entropy_smooth(curves[:, idx], T).verdict, len(idx))


def _entropy_smooth(curves, T):
    """Claim 6's row from the entropy curves [seed, checkpoint] (T: the uniform null's)."""
    drop = curves[:, 0] - curves[:, -1]
    steps = -np.diff(curves, axis=1)
    jump = steps.max(1) / np.maximum(drop, 1e-12)
    rel = drop / curves[:, 0]
    iv_rel, iv_jump = within(t_interval(rel), 0.0, 1.0), within(t_interval(jump), 0.0, 1.0)   # shares of a fall
    first = int(np.sum(steps.argmax(1) == 0))                              # seeds whose largest fall the spacing hides
    unresolved = first and holds(iv_jump, ">", 0.5) is True and holds(iv_rel, "<", 0.10) is not True
    rule = INCONCLUSIVE if unresolved else entropy_smooth_rule(iv_rel, iv_jump)
    return Row(claim="attention entropy falls smoothly as training proceeds", section="§4.2, Fig 2",
               paper="drops sharply yet smoothly (no number given)",
               measured=f"entropy falls by {mean_sd(100 * rel, '{:.0f}')}% of its initial value; the largest "
                        f"single-checkpoint fall is {mean_sd(100 * jump, '{:.0f}')}% of the total",
               null=f"uniform attention: ln T = {np.log(T):.2f} nats; at step 0: {mean_sd(curves[:, 0])} nats",
               interval=f"fall {iv_rel.text()}; largest share {iv_jump.text()}" + (
                   f"; the largest fall comes before the first checkpoint on {first} of {len(curves)} seeds, "
                   f"so the spacing cannot show whether it is smooth" if unresolved else ""),
               verdict=rule, value=iv_rel.est)


def claim_bubbling_with_collapse(bubbles, geoms, settling=None):
    """Claim 7's row; with ``settling`` (per seed, ``geometry.cached_settling``) decided again
    from 40 evenly spaced snapshots: the entropy's 90% point and the settling both read there."""
    t_ent = [entropy_90(b["steps"], mean_entropy(b)) for b in bubbles]
    row = _coincide([g[ALL]["angle_settled"] for g in geoms], t_ent)
    if settling is None:
        return row
    idx = common_snapshots(len(bubbles[0]["steps"]))
    common = _coincide([x["angle_settled"] for x in settling],
                       [entropy_90(np.asarray(b["steps"])[idx], mean_entropy(b)[idx]) for b in bubbles])
    return counted(row, common.verdict, len(idx))


def entropy_90(steps, ent) -> float:
    """The fraction of training by which the entropy curve has made 90% of its fall."""
    steps = np.asarray(steps, dtype=float)
    done = (ent[0] - ent) / max(ent[0] - ent[-1], 1e-12)
    return float(steps[np.argmax(done >= 0.9)] / steps[-1])


def _coincide(t_col, t_ent):
    gaps = np.abs(np.asarray(t_ent) - np.asarray(t_col))
    iv = within(t_interval(gaps, 0.1), 0.0, 1.0)      # a distance between two fractions of training
                                                      # (the windows step by 10%: its resolution)
    return Row(claim="bubbling coincides with the collapse", section="§4.2, Fig 2",
               paper="bubble formation correlates with the stabilization of the manifold",
               measured=f"entropy 90% fallen at {mean_sd(100 * np.array(t_ent), '{:.0f}')}% of training; "
                        f"the top-k subspace settled (claim 3) from {mean_sd(100 * np.array(t_col), '{:.0f}')}%",
               null="expanding windows step by 10% of training", interval=f"gap {iv.text()}",
               verdict=bubbling_with_collapse_rule(iv), value=iv.est)


# ---- figures ----

def layer_key(colors, ms, n_layers) -> list:
    """Legend handles for curves coloured by m and styled by layer: one entry per m and one
    per layer (m x layer entries would cover the curves at 5 layers)."""
    return ([Line2D([], [], color=c, lw=1.8, label=f"m = {m}") for c, m in zip(colors, ms)]
            + [Line2D([], [], color="0.3", lw=1.8, ls=LINESTYLES[l % len(LINESTYLES)], label=f"layer {l}")
               for l in range(n_layers)])


def fig2_entropy_and_rank(bubbles, geoms, caption, path) -> str:
    """Top row: the last position's attention entropy, one panel per layer, one colour per m.
    Bottom: when the collapse settles (all attention): the largest principal angle between
    each expanding window's top-k subspace and the whole run's (claim 3), beside the matched
    random walk's; and r90 over the same windows."""
    steps = np.array(bubbles[0]["steps"])
    ms = sorted(bubbles[0]["entropy"])
    n_layers = len(bubbles[0]["entropy"][ms[0]][0])
    fig = plt.figure(figsize=(max(12, 3.2 * n_layers), 8.5))
    grid = fig.add_gridspec(2, 2 * n_layers, hspace=0.45, wspace=0.6)
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(ms)))
    tops = [fig.add_subplot(grid[0, 2 * l:2 * l + 2]) for l in range(n_layers)]
    for l, ax in enumerate(tops):
        for c, m in zip(colors, ms):
            ent = np.array([b["entropy"][m] for b in bubbles])                  # [seed, n, layer]
            ax.plot(steps, ent[:, :, l].mean(0), color=c, lw=1.6, label=f"m = {m}")
        ax.axhline(np.log(bubbles[0]["T"]), color="0.5", lw=0.8, ls=":", label="uniform attention (ln T)")
        ax.set(title=f"layer {l}", xlabel="training step", ylim=(0, np.log(bubbles[0]["T"]) * 1.08))
        ax.sharey(tops[0])
    tops[0].set_ylabel("last position's attention entropy\n(nats, eq 9; mean over seeds)")
    tops[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))   # beside, not over, the curves
    bottom = grid[1, :].subgridspec(1, 2, wspace=0.32)       # room for the right panel's two-line y label
    ax_a, ax_r = fig.add_subplot(bottom[0]), fig.add_subplot(bottom[1])
    n = geoms[0][ALL]["n"]
    xs = [steps[max(2, int(np.ceil(f * n))) - 1] for f in FRACTIONS]
    ang = np.array([g[ALL]["angle_windows"] for g in geoms])
    walk = np.array([g[ALL]["null_angle_windows"] for g in geoms])
    for a in ang:
        ax_a.plot(xs, a, color="tab:blue", lw=0.7, alpha=0.35)
    ax_a.plot(xs, ang.mean(0), color="tab:blue", lw=2.2, marker="o", label="the runs (mean; thin: seeds)")
    ax_a.plot(xs, walk.mean(0), color="0.35", lw=1.5, ls="--", marker="s", ms=4,
              label="random walk, matched step norms (mean)")
    ax_a.axhline(SETTLE_DEG, color="k", lw=0.8, ls=":", label=f"settled below {SETTLE_DEG:.0f}° (claim 3)")
    ax_a.set(xlabel="training step (end of the expanding window)", ylim=(0, 92),
             ylabel="largest principal angle to the\nwhole run's top-k subspace (°)",
             title="When the subspace settles (all attention; k = the run's r90)")
    ax_a.legend(fontsize=7)
    win = np.array([g[ALL]["windows"] for g in geoms], dtype=float)
    ax_r.plot(xs, win.mean(0), color="tab:blue", lw=2.2, marker="o", label="all attention weights")
    for W, c in zip(MATS, plt.cm.tab10(np.arange(4))):
        per = np.array([[g[f"blocks.{l}.attn.{W}"]["windows"] for l in range(n_layers)] for g in geoms])
        ax_r.plot(xs, per.mean((0, 1)), color=c, lw=1, ls="--", label=f"{W} (mean over layers)")
    ax_r.set(xlabel="training step (end of the expanding window)", ylim=(0, None),
             ylabel="r90 of the checkpoints up to that step\n(mean over seeds)", title="r90 over expanding windows")
    ax_r.legend(fontsize=7, loc="lower right")
    fig.suptitle(caption, fontsize=9)
    return save_figure(fig, path)


def fig_topk(bubbles, caption, path) -> str:
    ks = bubbles[0]["ks"]
    ms = sorted(bubbles[0]["topk_acc"])
    fig, (ax_a, ax_m) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(ms)))
    for c, m in zip(colors, ms):
        acc = np.array([b["topk_acc"][m] for b in bubbles])
        ax_a.errorbar(ks, acc.mean(0), yerr=sd_within(acc), color=c, marker="o", ms=3, capsize=2,
                      label=f"m = {m}")
        mass = np.array([b["topk_mass"][m] for b in bubbles])             # [seed, layer, k]
        for l in range(mass.shape[1]):
            ax_m.plot(ks, mass[:, l].mean(0), color=c, ls=LINESTYLES[l % len(LINESTYLES)])
    for ax in (ax_a, ax_m):
        ax.set_xlim(ks[0] + 0.5, 0.5)
        ax.set_xlabel("k (keys kept per attention row)")
    ax_a.set(ylabel="held-out accuracy", ylim=(0, 1.02),
             title="Accuracy with every attention pattern cut to its top k\n(mean ± sd over seeds)")
    ax_m.set(ylabel="attention mass in the top k keys", ylim=(0, 1.02),
             title="Top-k mass of the last position's attention (final checkpoint)")
    ax_a.legend(fontsize=8)
    ax_m.legend(handles=layer_key(colors, ms, mass.shape[1]), fontsize=7, ncol=2, handlelength=3.5)
    fig.suptitle(caption, fontsize=9, y=1.03)
    return save_figure(fig, path)


def measurements(ctx) -> list:
    return [(cached_bubbling, (r["dir"],)) for r in ctx.runs]


def report(ctx):
    bubbles, geoms = ctx.per_run(cached_bubbling), ctx.per_run(cached_geometry)
    claims = {6: claim_entropy_smooth(bubbles),
              7: claim_bubbling_with_collapse(bubbles, geoms, ctx.per_run(cached_settling))}
    return claims, [fig2_entropy_and_rank(bubbles, geoms, ctx.caption, ctx.path("fig2_attention_entropy.png")),
                    fig_topk(bubbles, ctx.caption, ctx.path("fig_topk_attention.png"))]


EXPERIMENT = Experiment("bubbling", "§4.2, Fig 2 and top-k: claims 6–7", RULES, report, measurements=measurements,
                        weight=4)   # rough seconds per call in the quick preset
