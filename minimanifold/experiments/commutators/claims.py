"""§4.3's ledger rows (claims 8–12 and 27) and their verdict rules, from the cached projections.

Windows of training, as fractions of the run's last measured step (``_window``):
    START  [0, 10%]   step 0 included (the whole-run basis exists there): where ρ starts (claim 27)
    EARLY  (0, 20%]   step 0 excluded (no causal basis): "the first 20%" (claims 9–11)
    LATE   [80%, 100%]                                   "the last 20%"  (claims 8–11, 27)
Every per-seed number is a median over the mixed-batch pairs (kind 0) of one run.
"""
from __future__ import annotations

import warnings

import numpy as np

from ...analysis.intervals import Interval, all_of, holds, log_t_interval, t_interval, within
from ...report.ledger import Row, mean_sd, verdict


def START(frac):
    return frac <= 0.1


def EARLY(frac):
    return (frac > 0) & (frac <= 0.2)


def LATE(frac):
    return frac >= 0.8


SHARE = 0.95            # claim 8: "> 95% of total commutator magnitude"
FALL = 2.0              # claim 10: a fall by a factor 2 at least (the authors' README's is 9.7 / 2.1 = 4.6)
SPIKE = 100.0           # claim 11: "spikes reaching 100–175×" (the authors' README)
SPIKE_QUANTILE = 95     # claim 11: spikes reach 100 in 1 sample in 20 at least
NEAR_ZERO = 0.1         # claim 27: "near zero": under a tenth of ‖δ‖ inside
HALVED = 0.5            # claim 27: "decreases": the late ρ at most half the start's


def _grid(p, key):
    """[point, pair] values of ``key`` (a name in the projection, or a function of it) for
    mixed-batch pairs; NaN for the same-m and cross-m pairs."""
    v = key(p) if callable(key) else p[key]
    return np.where(np.asarray(p["kind"]) == 0, np.asarray(v, dtype=float), np.nan)


def _window(projs, key, sel, base=None):
    """Per seed: the median of key (or key/base) over mixed pairs at the measurement points
    whose fraction of training satisfies ``sel`` (NaN where a short run has none there)."""
    out = []
    for p in projs:
        steps = np.asarray(p["steps"], dtype=float)
        v = _grid(p, key) / (_grid(p, base) if base else 1.0)
        vals = v[sel(steps / steps.max())]
        out.append(np.nanmedian(vals) if np.isfinite(vals).any() else np.nan)
    return np.array(out)


def _windows(projs, key, base=None):
    """Per seed: (EARLY, LATE) medians of key (or key/base), see ``_window``."""
    return _window(projs, key, EARLY, base), _window(projs, key, LATE, base)


def perpendicular(rho):
    """sqrt(1 - rho^2), the perpendicular share of ||delta|| (rho may exceed 1 by rounding)."""
    return np.sqrt(np.clip(1 - rho ** 2, 0, None))


def eta_free_norm(p):
    """‖δ‖ / η_t² per [point, pair], η_t the step size the commutator was taken at (the
    schedule's, stored per point): δ = η² (H_B g_A − H_A g_B) + O(η³), so this is the
    commutator at a fixed η to second order, whatever the schedule did to η."""
    return np.asarray(p["norm"], dtype=float) / np.asarray(p["lr"], dtype=float)[:, None] ** 2


def share_over_training(p, key="rho_whole"):
    """Per seed: the median over the measurement points of the per-point median over mixed
    pairs of √(1−ρ²) ("throughout most of training": over half the points reach it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)          # a point with no mixed pair
        return float(np.nanmedian(np.nanmedian(perpendicular(_grid(p, key)), axis=1)))


def spike_level(p):
    """Per seed: the SPIKE_QUANTILE-th percentile of D over every mixed sample of the run, a
    level 1 sample in 20 reaches; unlike the largest sample, it does not grow with the number
    of samples taken."""
    d = _grid(p, "defect")
    return float(np.nanpercentile(d[np.isfinite(d)], SPIKE_QUANTILE))


def _mixed(projs, key):
    return np.concatenate([np.asarray(p[key], dtype=float)[np.asarray(p["kind"]) == 0] for p in projs])


# ---- verdict rules: the docstring is the rule the ledger prints ----

def perpendicular_rule(share: Interval, excess: Interval) -> str:
    """"the perpendicular component accounts for > 95% of total commutator magnitude throughout
    most of training": per seed, √(1−ρ²) of mixed-batch commutators (whole-trajectory basis),
    its median over pairs at each measurement point, then over the points (over half of
    training reaches it); and the same for a random subspace of the same size in the same
    blocks (chance). *Supported* if the interval of the share lies above 0.95 and that of share
    − chance's share at or above 0 (not below chance: a subspace that holds more of δ than a
    random one does is not one δ avoids); *not supported* if the share's interval lies at or
    below 0.95 or that of share − chance's below 0; *inconclusive* otherwise."""
    return verdict(all_of(holds(share, ">", SHARE), holds(excess, ">=", 0)))


def norms_rule(late_over_early: Interval) -> str:
    """raw commutator norms remain large, compared at one η: per seed, the median over mixed
    pairs of ‖δ‖/η_t² (η_t the step size each commutator was taken at; δ/η² is η-free to
    second order, so a decaying schedule does not shrink it) in the last 20% of training over
    that in the first 20% (interval of the geometric mean over seeds: a ratio's spread is
    multiplicative); *supported* if its interval lies at or above 0.1 (a fall by less than
    10×), *not supported* if it lies below 0.1, *inconclusive* otherwise."""
    return verdict(holds(late_over_early, ">=", 0.1))


def enrichment_rule(early_over_late: Interval, late: Interval) -> str:
    """exec/random ratio "9.7× early … 2.1× late" (the authors' README; the paper's text gives no
    ratio): ρ_exec / ρ of random
    subspaces in the same blocks, per seed the median over mixed pairs in the first and in the
    last 20% of training. The fall: early / late (interval of the geometric mean over seeds).
    *Supported* if the fall's interval lies at or above 2 (margin: a fall by 2×, under half the
    README's 9.7 / 2.1 = 4.6×) and the late ratio's above 1; *not supported* if the fall's
    interval lies below 2 (it rules out a fall of the claimed size) or the late ratio's at or
    below 1; *inconclusive* otherwise."""
    return verdict(all_of(holds(early_over_late, ">=", FALL), holds(late, ">", 1)))


def defect_rule(late_minus_early: Interval, spikes: Interval) -> str:
    """D "grows throughout training", with "spikes reaching 100–175×" (the authors' README; the
    paper's text has no D): growth is the median D of the last 20% minus that of
    the first 20%, per seed; the spike level is per seed the 95th percentile of D over every
    mixed sample of the run (reached by 1 sample in 20; the largest sample would grow with the
    number taken). *Supported* if the growth's interval lies above 0 and the spike level's at or
    above 100; *not supported* if the growth's lies at or below 0 or the spike level's below
    100; *inconclusive* otherwise."""
    return verdict(all_of(holds(late_minus_early, ">", 0), holds(spikes, ">=", SPIKE)))


def negligible_inside_rule(ratio: Interval) -> str:
    """negligible inside: the median over mixed pairs of ρ_exec(δ) / ρ of a random subspace in the
    same blocks, per seed; *supported* if its interval lies at or below 1 (no enrichment),
    *not supported* if it lies above 1 (enriched), *inconclusive* otherwise."""
    return verdict(holds(ratio, "<=", 1))


def rho_falls_rule(late_over_start: Interval, late: Interval) -> str:
    """"this ratio [ρ] rapidly decreases and stabilizes near zero": per seed, the median ρ over
    mixed pairs (whole-trajectory basis) at the start (the first 10% of training, step 0
    included) and in the last 20%. *Supported* if the interval of late / start (geometric mean
    over seeds) lies at or below 0.5 (ρ at least halves) and that of the late ρ below 0.1 (near
    zero: under a tenth of ‖δ‖ inside); *not supported* if late / start lies above 0.5 or the
    late ρ at or above 0.1; *inconclusive* otherwise. How rapidly is not tested beyond that."""
    return verdict(all_of(holds(late_over_start, "<=", HALVED), holds(late, "<", NEAR_ZERO)))


RULES = {8: perpendicular_rule, 9: norms_rule, 10: enrichment_rule, 11: defect_rule, 12: negligible_inside_rule,
         27: rho_falls_rule}


# ---- ledger rows ----

def claim_perpendicular(projs):
    share = np.array([share_over_training(p) for p in projs])
    chance = np.array([share_over_training(p, "rand_block") for p in projs])
    lowest = np.array([np.nanmin(np.nanmedian(perpendicular(_grid(p, "rho_whole")), axis=1)) for p in projs])
    late_rho = _window(projs, "rho_whole", LATE)
    iv_s, iv_x = within(t_interval(share), 0.0, 1.0), within(t_interval(share - chance), -1.0, 1.0)
    return Row(claim="the perpendicular component is > 95% of the commutator's magnitude throughout most of "
                     "training", section="§4.3, Fig 5",
               paper="> 95% throughout most of training (§4.3, Fig 5 caption)",
               measured=f"√(1−ρ²), median over the points: {mean_sd(100 * share, '{:.2f}')}% (lowest point "
                        f"{mean_sd(100 * lowest, '{:.1f}')}%; the authors' 1−ρ, last 20%: "
                        f"{mean_sd(100 * (1 - late_rho), '{:.1f}')}%)",
               null=f"chance: a random subspace of the same size in the same blocks holds "
                    f"{mean_sd(100 * chance, '{:.3f}')}% perpendicular",
               interval=f"share {iv_s.text('{:.4f}')}; share − chance's {iv_x.text('{:+.4f}')}",
               verdict=perpendicular_rule(iv_s, iv_x), value=iv_s.est, null_value=float(np.nanmean(chance)))


def claim_norms_stay_large(projs):
    e, l = _windows(projs, eta_free_norm)
    re_, rl = _windows(projs, "norm")
    iv, raw = log_t_interval(l / e), log_t_interval(rl / re_)
    return Row(claim="raw commutator norms remain large throughout training", section="§4.3, Fig 3",
               paper="remain large, with frequent spikes (Fig 3: at a fixed η)",
               measured=f"median ‖δ‖/η_t² (one η, to second order): first 20% {mean_sd(e, '{:.2e}')}, last 20% "
                        f"{mean_sd(l, '{:.2e}')} (ratio: geometric mean {iv.est:.1e}); raw ‖δ‖ at the "
                        f"schedule's η_t: ratio {raw.est:.1e}",
               null="‖δ‖/η² ≈ H_B g_A − H_A g_B is first order in the gradients: it shrinks with them",
               interval=f"‖δ‖/η² ratio {iv.text('{:.1e}')}; raw ‖δ‖ ratio {raw.text('{:.1e}')}",
               verdict=norms_rule(iv), value=iv.est, null_value=raw.est)


def claim_enrichment(projs, other_bases: str = ""):
    """Decided on the trajectory-PCA basis (whole run, 3 directions per matrix);
    ``other_bases`` (bases.summary_text) reports the same ratio for the other bases."""
    e, l = _windows(projs, "rho_whole", "rand_block")
    ef, lf = _windows(projs, "rho_whole", "rand_full")
    iv_f, iv_l = log_t_interval(e / l), t_interval(l)
    return Row(claim="exec/random ratio 9.7× early, 2.1× late (the authors' README)",
               section="authors' README (§4.3 gives no ratio)",
               paper="not in the paper's text; the authors' README: 9.7× early, 2.1× late, a fall by 4.6× (their "
                     "figure: medians of the first and last 20%, one seed, K=60, AdamW; peak 15.6×)",
               measured=f"basis: trajectory PCA of the whole run, 3 directions per matrix: first 20% "
                        f"{mean_sd(e, '{:.1f}')}×, last 20% {mean_sd(l, '{:.1f}')}× (random in the same blocks), "
                        f"a fall by {iv_f.est:.2f}× (geometric mean)"
                        + (f". Other bases, 4 per matrix, first → last 20%: {other_bases}" if other_bases else ""),
               null=f"no fall (early / late = 1); against random K-subspaces of all P parameters: "
                    f"{mean_sd(ef, '{:.1f}')}× and {mean_sd(lf, '{:.1f}')}×",
               interval=f"early / late {iv_f.text('{:.2f}')}; late {iv_l.text('{:.1f}')}",
               verdict=enrichment_rule(iv_f, iv_l), value=[float(np.nanmean(e)), float(np.nanmean(l))])


def claim_defect_grows(projs):
    e, l = _windows(projs, "defect")
    spikes = np.array([spike_level(p) for p in projs])
    peak = np.array([np.nanmax(_grid(p, "defect")) for p in projs])
    iv, iv_s = t_interval(l - e), t_interval(spikes)
    return Row(claim="normalised defect D grows through training, with spikes of 100–175 (the authors' README)",
               section="authors' README (§4.3, Fig 3: norms \"remain large and frequently spike\")",
               paper="not in the paper's text (it has no D); the authors' README: D \"grows throughout training\", "
                     "\"spikes reaching 100–175× step magnitude\"",
               measured=f"median D {mean_sd(e, '{:.1f}')} in the first 20%, {mean_sd(l, '{:.1f}')} in the last 20%; "
                        f"95th percentile of D over the run {mean_sd(spikes, '{:.0f}')} (largest single sample "
                        f"{mean_sd(peak, '{:.0f}')}, any seed {np.nanmax(peak):.0f})",
               null="D = 0 for commuting updates (same batch twice)",
               interval=f"late − early {iv.text('{:.1f}')}; 95th percentile {iv_s.text('{:.0f}')}",
               verdict=defect_rule(iv, iv_s),
               value=[float(np.nanmean(e)), float(np.nanmean(l)), float(np.nanmean(spikes)), float(np.nanmax(peak))])


def claim_negligible_inside(projs):
    per_seed = np.array([np.nanmedian(_mixed([p], "rho_whole") / _mixed([p], "rand_block")) for p in projs])
    ratio = np.nanmedian(_mixed(projs, "rho_whole") / _mixed(projs, "rand_block"))
    rd, rg = np.nanmedian(_mixed(projs, "rho_whole")), np.nanmedian(_mixed(projs, "rho_g_whole"))
    iv = t_interval(per_seed)
    return Row(claim="commutators negligible inside the execution subspace", section="abstract, §4.3",
               paper="non-integrability confined to orthogonal directions",
               measured=f"ρ_exec(δ) median {rd:.3f}: {ratio:.1f}× a random subspace in the same blocks; "
                        f"a single gradient g_A: ρ {rg:.3f}",
               null="random subspace in the same blocks (ratio 1 = no preference either way)",
               interval=f"ratio {iv.text('{:.1f}')}", verdict=negligible_inside_rule(iv), value=float(ratio))


def claim_rho_falls(projs):
    s, l = _window(projs, "rho_whole", START), _window(projs, "rho_whole", LATE)
    chance = _window(projs, "rand_block", LATE)
    iv_r, iv_l = log_t_interval(l / s), within(t_interval(l), 0.0, 1.0)
    return Row(claim="ρ = ‖δ_∥‖ / ‖δ‖ rapidly decreases and stabilizes near zero", section="§4.3, Fig 4",
               paper="\"rapidly decreases and stabilizes near zero\" (Fig 4: \"rapidly approaches zero\")",
               measured=f"median ρ (whole-trajectory basis): first 10% {mean_sd(s, '{:.3f}')}, last 20% "
                        f"{mean_sd(l, '{:.3f}')} (late / start: geometric mean {iv_r.est:.2f})",
               null=f"no decrease (late / start = 1); a random subspace of the same size in the same blocks: "
                    f"ρ {mean_sd(chance, '{:.3f}')} late",
               interval=f"late / start {iv_r.text('{:.2f}')}; late ρ {iv_l.text('{:.3f}')}",
               verdict=rho_falls_rule(iv_r, iv_l), value=[float(np.nanmean(s)), float(np.nanmean(l))],
               null_value=float(np.nanmean(chance)))
