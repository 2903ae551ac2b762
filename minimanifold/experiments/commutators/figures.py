"""§4.3's figures: the commutator norm and defect (Fig 3), its share inside the execution
subspace with baselines (Fig 4), and the parallel/perpendicular decomposition (Fig 5)."""
from __future__ import annotations

import warnings

import numpy as np

from ...report.plotting import band, plain_log_ticks, plt, save_figure
from ...trajectories.rundir import load_metrics
from .claims import NEAR_ZERO, SHARE, eta_free_norm, perpendicular
from .measure import K_PER_MATRIX


def _pool(projs, key, kind=0):
    """[point, seed*sample] values of ``key`` (a name, or a function of the projection) for
    samples of one kind (0 = mixed pairs)."""
    return np.concatenate([np.where(np.asarray(p["kind"]) == kind, key(p) if callable(key) else p[key], np.nan)
                           for p in projs], axis=1)


def _eta(projs) -> str:
    """The commutators' step size: one value, or the range a schedule spans."""
    lr = np.atleast_1d(np.asarray(projs[0]["lr"], dtype=float))
    if (lr == lr[0]).all():
        return f"η = {float(lr[0]):.3g} at every checkpoint"
    return f"η_t the schedule's, from {lr.max():.3g} down to {lr.min():.2g}"


def _loss_twin(ax, runs):
    tw = ax.twinx()
    hist = [load_metrics(r["dir"]) for r in runs]
    steps = [h["step"] for h in hist[0] if h["loss"] is not None]
    loss = np.mean([[h["loss"] for h in hh if h["loss"] is not None] for hh in hist], axis=0)
    tw.plot(steps, loss, color="0.5", ls=":", lw=1.2, label="train loss (mean over seeds)")
    tw.set_yscale("log")
    tw.set_ylabel("train loss (nats)", color="0.4")
    tw.legend(loc="upper center", fontsize=7)


def fig3_norm(projs, runs, caption, path) -> str:
    x = projs[0]["steps"]
    fig, ((a, r), (b, c)) = plt.subplots(2, 2, figsize=(15, 9))
    fig.subplots_adjust(wspace=0.45, hspace=0.35)
    fixed = _pool(projs, eta_free_norm)
    band(a, x, fixed, "tab:purple", "‖δ‖ / η_t²")
    a.set(yscale="log", xlabel="training step", ylabel="‖θ_AB − θ_BA‖ / η_t² (all parameters)",
          title="Commutator norm at one η (eq 3): ‖δ‖ / η_t², mixed-batch pairs\n"
                "(δ = η²(H_B g_A − H_A g_B) + O(η³): claim 9's quantity)")
    band(r, x, _pool(projs, "norm"), "tab:gray", "raw ‖δ‖")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        start = np.nanmedian(fixed[np.isfinite(fixed).any(axis=1)][0])      # ‖δ‖/η² at the first point
    r.plot(x, start * np.asarray(projs[0]["lr"], dtype=float) ** 2, "k--", lw=1.2,
           label="η_t² × the first point's ‖δ‖/η²: the schedule's fall alone")
    r.set(yscale="log", xlabel="training step", ylabel="‖θ_AB − θ_BA‖ at the step's η_t",
          title="Raw commutator norm at the step's own η_t (Fig 3's quantity)")
    lo, hi = r.get_ylim()
    r.set_ylim(lo, hi * (hi / lo) ** 0.3)                     # headroom: the legend sits above the curves
    r.legend(fontsize=7, loc="upper right")
    band(b, x, _pool(projs, "defect"), "tab:green", "D, mixed pairs")
    for kind, color, label in ((1, "tab:blue", "same-m pairs"), (2, "tab:red", "cross-m pairs")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            b.plot(x, np.nanmedian(_pool(projs, "defect", kind), axis=1), "s--", color=color, ms=3,
                   label=f"D, {label} (median)")
    b.set(yscale="log", xlabel="training step", ylabel="D = ‖δ‖ / (‖ηg_A‖·‖ηg_B‖)",
          title="Normalised defect (the authors' corrected convention)")
    for kind, color, label in ((0, "tab:green", "mixed pairs"), (1, "tab:blue", "same-m pairs"),
                               (2, "tab:red", "cross-m pairs")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            c.plot(x, np.nanmedian(_pool(projs, "cosine", kind), axis=1), "o-", color=color, ms=3, label=label)
    c.axhline(0, color="k", lw=0.8)
    c.set(xlabel="training step", ylabel="cos(g_A, g_B) (median)", title="Gradient cosine of the two minibatches")
    c.legend(fontsize=7)
    a.legend(fontsize=7, loc="lower left")
    b.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16))    # below: the curves start at the left edge
    for ax in (a, b):
        _loss_twin(ax, runs)
    fig.suptitle(f"{caption}\npooled over seeds; {_eta(projs)}; same-m / cross-m: one pair each "
                 f"per checkpoint and seed, A and B each with a single m", fontsize=9, y=0.99)
    return save_figure(fig, path)


def fig4_rho(projs, caption, path, K=None) -> str:
    x = projs[0]["steps"]
    fig, ax = plt.subplots(figsize=(9, 4.8))
    for key, c, lab in (("rho_whole", "tab:blue", "ρ_exec, basis from the whole trajectory"),
                        ("rho_causal", "tab:cyan", "ρ_exec, causal basis (checkpoints up to the step)")):
        band(ax, x, _pool(projs, key), c, lab)
    for key, c, lab in (("rand_analytic", "k", "√(K/P), analytic"),
                        ("rand_full", "tab:red", "random K-subspace of all P parameters"),
                        ("rand_block", "tab:orange", "random subspace in the same attention blocks")):
        ax.plot(x, np.nanmedian(_pool(projs, key), axis=1), color=c, ls="--", lw=1.5, label=lab)
    ax.axhline(NEAR_ZERO, color="k", ls=":", lw=0.8, label=f"ρ = {NEAR_ZERO:g}: claim 27's \"near zero\"")
    size = (f"K = {K} ({K_PER_MATRIX} PCA directions per attention matrix)" if K
            else f"{K_PER_MATRIX} PCA directions per attention matrix")
    ax.set(yscale="log", xlabel="training step", ylabel="ρ = ‖Pδ‖ / ‖δ‖ (eq 10)",
           title=f"Share of the commutator inside the execution subspace, {size},\n"
                 f"with random baselines of the same K")
    ax.legend(fontsize=7.5, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.14))   # below: the curves span the axes
    fig.suptitle(caption, fontsize=9, y=1.02)
    return save_figure(fig, path)


def fig5_decomposition(projs, caption, path) -> str:
    x = projs[0]["steps"]
    rho, norm = _pool(projs, "rho_whole"), _pool(projs, "norm")
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(16, 4.5))
    fig.subplots_adjust(wspace=0.3)
    band(a, x, rho * norm, "tab:blue", "‖δ_∥‖ = ‖Pδ‖")
    band(a, x, perpendicular(rho) * norm, "tab:red", "‖δ_⊥‖ = ‖(I−P)δ‖")
    a.set(yscale="log", xlabel="training step", ylabel="norm", title="Parallel and perpendicular parts (eq 6–7)")
    a.legend(fontsize=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        curves = ((np.nanmedian(perpendicular(rho), axis=1), "o-", "tab:red", "√(1−ρ²): share of ‖δ‖"),
                  (np.nanmedian(perpendicular(_pool(projs, "rand_block")), axis=1), "^:", "tab:orange",
                   "√(1−ρ²), random subspace in the same blocks (chance)"),
                  (np.nanmedian(1 - rho, axis=1), "s--", "tab:gray", "1 − ρ (the authors' figures' convention)"))
    for y, style, col, lab in curves:
        b.plot(x, y, style, color=col, ms=4, label=lab)
    b.axhline(SHARE, color="k", ls="-.", lw=1.0, label=f"{SHARE:.0%}: the paper's \"> 95%\"")
    low = min(0.9, float(np.nanmin([np.nanmin(y) for y, *_ in curves])) - 0.01)
    b.set(xlabel="training step", ylabel="perpendicular share (median)", ylim=(low, 1.005),
          title="Perpendicular share (dash-dot: the paper's 95%)")
    b.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16))    # below: the share sits at the top
    for key, base, col, lab in (("rho_whole", "rand_block", "tab:orange", "δ vs random in the same blocks"),
                                ("rho_whole", "rand_full", "tab:red", "δ vs random in all parameters"),
                                ("rho_g_whole", "rand_g_block", "tab:green", "g_A vs random in the same blocks")):
        c.plot(x, np.nanmedian(_pool(projs, key) / _pool(projs, base), axis=1), "o-", color=col, label=lab)
    c.axhline(1, color="k", lw=0.8)
    c.set(yscale="log", xlabel="training step", ylabel="ρ_exec / ρ_random (median)",
          title="Enrichment over random subspaces (1 = none)")
    plain_log_ticks(c.yaxis)
    c.legend(fontsize=7)
    fig.suptitle(f"{caption}\nbasis from the whole trajectory; mixed-batch pairs pooled over seeds", fontsize=9, y=1.05)
    return save_figure(fig, path)
