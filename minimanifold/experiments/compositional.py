"""§4.5, claim 20: does mixed training support compositional generalisation?

Two tests, each at the main runs' budget with ``n_extra_seeds`` seeds, when the preset's
``holdout`` is > 0:
- held-out value combinations: a fixed share of the value multisets (m >= 2) never
  appears in training (``TaskConfig.holdout``); at the end, accuracy on exactly those
  against the seen ones, for mixed and for curriculum training;
- a held-out m: mixed training without one interior m of the schedule (m in {1,2,4}
  for {1..4}), tested on that m (its markers C+i are all seen with larger m).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..analysis.intervals import Interval, holds, t_interval, within
from ..model.transformer import forward
from ..report.ledger import Row, mean_sd, verdict
from ..report.plotting import plt, save_figure, sd_within, seeds
from ..trajectories.schedule import Schedule
from ..trajectories.task import heldout, make_batch
from .architecture import curriculum_train
from .contract import Experiment
from ..trajectories.rundir import cached_json, final_params, run_configs
from .variants import variant_specs

VERSION = 3         # 2: the true answer's rank on held-out combinations; 3: ranks by support
N_EVAL = 2048      # examples per m (about holdout x N_EVAL of them held out)


def heldout_m_schedule(spec: str):
    """(mixed schedule without one interior m, that m), or None with fewer than 3 m."""
    ms = Schedule.parse(spec).all_m()
    if len(ms) < 3:
        return None
    left_out = ms[-2]
    return "mixed:" + ",".join(str(m) for m in ms if m != left_out), left_out


def variants(preset) -> dict:
    if preset.holdout <= 0:
        return {}
    tr, n = preset.train, preset.n_extra_seeds
    task = dataclasses.replace(preset.task, holdout=preset.holdout)
    out = {"held-out-mixed": variant_specs("held-out-mixed", preset, n, task=task),
           "held-out-curriculum": variant_specs(
               "held-out-curriculum", preset, n, task=task,
               train=curriculum_train(tr))}
    if (hm := heldout_m_schedule(tr.schedule)) is not None:
        out["held-out-m"] = variant_specs("held-out-m", preset, n, train=dataclasses.replace(tr, schedule=hm[0]))
    return out


def answer_ranks(logits, C: int) -> np.ndarray:
    """[b,C] each of the C answers' rank in the model's order (0 = its top answer; ties share
    the better rank). Answers past C (an output layer wider than the modulus) are not ranked."""
    scores = logits[..., :C]
    return (scores[:, None, :] > scores[:, :, None]).sum(-1)


def true_rank(logits, targets, C: int) -> np.ndarray:
    """[b] the true answer's rank among the C answers: a model that guesses has mean rank
    (C - 1)/2, one that steers away from the true answer more."""
    return answer_ranks(logits, C)[np.arange(len(targets)), targets]


def support(values, m: int, task) -> np.ndarray:
    """[b,C] for examples of m values (op "add") and each answer a: how many of the example's
    m sub-combinations with one value left out complete to answer a (the left-out value
    replaced by the one value that gives a) with a combination that is trained on. On a
    held-out combination the true answer's support is 0: each of its completions is the
    held-out combination itself. A network that scores answers by the sub-combinations it
    has seen beside them ranks high-support answers first."""
    out = np.zeros((len(values), task.C), dtype=np.int64)
    mm = np.full(len(values), m)
    for j in range(m):
        rest = values[:, :m].sum(1) - values[:, j]
        for a in range(task.C):
            full = values.copy()
            full[:, j] = (a - rest) % task.C
            out[:, a] += ~heldout(full, mm, task)
    return out


def rank_by_support(logits, values, m: int, task) -> list:
    """Mean rank of the answers of support k = 0..m over the examples given (None where no
    answer has that support)."""
    ranks, sup = answer_ranks(logits, task.C), support(values, m, task)
    return [float(ranks[sup == k].mean()) if (sup == k).any() else None for k in range(m + 1)]


def generalisation_of_run(run_dir, test_ms=None) -> dict:
    """Final-checkpoint accuracy per m on seen and on held-out combinations (natural
    distribution, held-out ones included), on N_EVAL examples per m; on the held-out ones,
    the true answer's mean rank and (op "add") the answers' mean rank by their support."""
    cfg, task, tr = run_configs(run_dir)
    params = final_params(run_dir)
    out = {}
    for m in test_ms or Schedule.parse(tr["schedule"]).all_m():
        b = make_batch(np.random.default_rng([tr["seed"], 11, int(m)]), task, [m], N_EVAL, include_heldout=True)
        logits = forward(params, b.tokens, cfg)[0]
        correct = logits.argmax(-1) == b.targets
        h = heldout(b.values, b.m, task)
        rank = true_rank(logits, b.targets, task.C)
        out[str(m)] = {"acc": float(correct.mean()), "acc_seen": float(correct[~h].mean()),
                       "acc_heldout": float(correct[h].mean()) if h.any() else None, "n_heldout": int(h.sum()),
                       "rank_heldout": float(rank[h].mean()) if h.any() else None,
                       "rank_by_support": rank_by_support(logits[h], b.values[h], int(m), task)
                       if h.any() and task.op == "add" else None}
    return out


def cached_generalisation(run_dir, test_ms=None) -> dict:
    return cached_json(run_dir, f"compositional_v{VERSION}.json", lambda d: generalisation_of_run(d, test_ms))


def heldout_accuracy(g) -> float:
    """Accuracy on held-out combinations, pooled over m (weighted by their counts)."""
    rows = [v for v in g.values() if v["acc_heldout"] is not None]
    return float(sum(v["acc_heldout"] * v["n_heldout"] for v in rows) / sum(v["n_heldout"] for v in rows))


def compositional_rule(heldout_acc: Interval) -> str:
    """mixed training supports compositional generalisation: the mixed runs' final accuracy on the
    value combinations they never saw, per seed; *supported* if its interval lies at or above
    0.9, *not supported* if it lies below 0.9, *inconclusive* otherwise or when the preset
    holds nothing out."""
    return verdict(holds(heldout_acc, ">=", 0.9))


RULES = {20: compositional_rule}


def claim_compositional(mixed, curriculum, held_m=None, left_out=None, *, C):
    """mixed, curriculum: per seed, generalisation_of_run; held_m: per seed, its test on
    left_out; C: the number of answers (the task's modulus)."""
    base = dict(claim="mixed training supports compositional generalisation", section="§4.5",
                paper="a unified manifold supporting compositional generalisation")
    if not mixed:
        return Row(**base, measured="not measured by this preset (its holdout is 0)", null="", interval="",
                   verdict=compositional_rule(t_interval([])), value=None)
    hm, hc = [heldout_accuracy(g) for g in mixed], [heldout_accuracy(g) for g in curriculum]
    seen = [np.mean([v["acc_seen"] for v in g.values()]) for g in mixed]
    counted = min(sum(v["n_heldout"] for v in g.values() if v["acc_heldout"] is not None) for g in mixed)
    iv = within(t_interval(hm, 1 / max(counted, 1)), 0.0, 1.0)   # an accuracy of ``counted`` examples, in [0, 1]
    extra = (f"; trained without m={left_out}, accuracy on it {mean_sd([g[str(left_out)]['acc'] for g in held_m])}"
             if held_m else "")
    top = max((m for m in mixed[0] if mixed[0][m]["acc_heldout"] is not None), key=int)   # the largest m
    ranks = (f"; the true answer's mean rank on held-out m={top} (0 = top; a guess gives {(C - 1) / 2:g}): "
             f"mixed {mean_sd([g[top]['rank_heldout'] for g in mixed])}, "
             f"curriculum {mean_sd([g[top]['rank_heldout'] for g in curriculum])}")
    if (sm := support_means(mixed, top)) is not None and (sc := support_means(curriculum, top)) is not None:
        ranks += (f"; all answers' mean rank by support k = 0..{top} (how many of the {top} sub-combinations "
                  f"with one value left out complete to the answer in training; the true answer's is 0): "
                  f"mixed {_listed(sm)}, curriculum {_listed(sc)}")
    return Row(**base, measured=f"mixed: held-out combinations {mean_sd(hm)} vs seen {mean_sd(seen)}; "
                                f"curriculum: held-out {mean_sd(hc)}" + ranks + extra,
               null="chance 1/C; the same runs' accuracy on the combinations they saw", interval=f"mixed, held-out {iv.text()}",
               verdict=compositional_rule(iv), value=iv.est)


def support_means(runs, m: str):
    """[m+1] the seeds' mean of each support's mean rank on held-out m (nan where no seed has
    one), or None where a run has no such measurement (op "mul")."""
    by = [g[m].get("rank_by_support") for g in runs]
    if any(r is None for r in by):
        return None
    return np.array([np.mean([r[k] for r in by if r[k] is not None]) if any(r[k] is not None for r in by)
                     else np.nan for k in range(int(m) + 1)])


def _listed(means) -> str:
    return ", ".join("–" if np.isnan(v) else f"{v:.1f}" for v in means)


def fig_compositional(mixed, curriculum, held_m, left_out, C, caption, path) -> str:
    fig, (ax, axr, axs) = plt.subplots(1, 3, figsize=(15.5, 4.3), gridspec_kw=dict(width_ratios=(2.2, 1, 1), wspace=0.3))
    ms = sorted((m for m in mixed[0] if mixed[0][m]["acc_heldout"] is not None), key=int)
    x = np.arange(len(ms))
    for j, (runs, key, label, color) in enumerate((
            (mixed, "acc_seen", "mixed, seen combinations", "tab:blue"),
            (mixed, "acc_heldout", "mixed, held-out combinations", "tab:cyan"),
            (curriculum, "acc_seen", "curriculum, seen", "tab:red"),
            (curriculum, "acc_heldout", "curriculum, held-out", "tab:orange"))):
        vals = np.array([[g[m][key] for m in ms] for g in runs], dtype=float)
        xs = x + (j - 1.5) * 0.2
        ax.bar(xs, vals.mean(0), 0.18, yerr=sd_within(vals), capsize=3, color=color,
               label=f"{label} ({seeds(len(runs))})")     # a partial ledger plots fewer
        for xi, v in zip(xs, vals.mean(0)):
            if v < 1 / C:                                  # worse than guessing: say so, do not hide it
                ax.text(xi, max(v, 0) + 0.06, "below\nchance", ha="center", va="bottom", fontsize=6.5)
    if held_m and str(left_out) in ms:                     # only over its own m's group
        acc = [g[str(left_out)]["acc"] for g in held_m]
        i = ms.index(str(left_out))
        ax.hlines(np.mean(acc), i - 0.42, i + 0.42, color="tab:green", ls="--", lw=2,
                  label=f"runs trained without m = {left_out}: accuracy on m = {left_out} (mean of {seeds(len(acc))})")
    ax.axhline(1 / C, color="0.5", ls=":", lw=0.8, label=f"chance (1/C = 1/{C})")
    ax.set_xticks(x, [f"m = {m}" for m in ms])
    ax.set(ylabel="final accuracy (mean ± sd over seeds)", ylim=(0, 1.05),
           title="Final accuracy on the combinations trained on (seen) and held out")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    for j, (runs, label, color) in enumerate(((mixed, "mixed", "tab:cyan"), (curriculum, "curriculum", "tab:orange"))):
        vals = np.array([[g[m]["rank_heldout"] for m in ms] for g in runs], dtype=float)
        axr.bar(x + (j - 0.5) * 0.38, vals.mean(0), 0.36, yerr=sd_within(vals, 0, C - 1), capsize=3,
                color=color, label=f"{label}, held-out ({seeds(len(runs))})")
    axr.axhline((C - 1) / 2, color="0.5", ls=":", lw=0.8, label=f"a guess: (C - 1)/2 = {(C - 1) / 2:g}")
    axr.set_xticks(x, [f"m = {m}" for m in ms])
    axr.set(ylabel=f"true answer's mean rank (0 = top, {C - 1} = last)", ylim=(0, C - 1),
            title="The true answer's rank,\nheld-out combinations")
    axr.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=1)
    top = ms[-1]
    for runs, label, color in ((mixed, "mixed", "tab:cyan"), (curriculum, "curriculum", "tab:orange")):
        if (means := support_means(runs, top)) is not None:
            axs.plot(np.arange(int(top) + 1), means, "o-", color=color, label=f"{label} ({seeds(len(runs))})")
    axs.axhline((C - 1) / 2, color="0.5", ls=":", lw=0.8, label=f"a guess: {(C - 1) / 2:g}")
    axs.set_xticks(np.arange(int(top) + 1))
    axs.set(xlabel=f"support: of the {top} sub-combinations of {int(top) - 1} values, how many\n"
                   "complete to the answer in training (the true answer: 0)",
            ylabel="answers' mean rank (0 = top)", ylim=(0, C - 1), title=f"Every answer's rank by its support,\nheld-out m = {top}")
    axs.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=1)   # below: never over the data
    fig.suptitle(caption, fontsize=9, y=1.02)
    return save_figure(fig, path)


def measurements(ctx) -> list:
    if ctx.preset.holdout <= 0:
        return []
    calls = [(cached_generalisation, (r["dir"],))
             for name in ("held-out-mixed", "held-out-curriculum") for r in ctx.variants[name]]
    if "held-out-m" in ctx.variants:
        left_out = heldout_m_schedule(ctx.preset.train.schedule)[1]
        calls += [(cached_generalisation, (r["dir"], (left_out,))) for r in ctx.variants["held-out-m"]]
    return calls


def report(ctx):
    if ctx.preset.holdout <= 0:
        return {20: claim_compositional([], [], C=ctx.preset.task.C)}, []
    mixed = ctx.per_run(cached_generalisation, ctx.variants["held-out-mixed"])
    cur = ctx.per_run(cached_generalisation, ctx.variants["held-out-curriculum"])
    held_m, left_out = None, None
    if "held-out-m" in ctx.variants:
        left_out = heldout_m_schedule(ctx.preset.train.schedule)[1]
        held_m = ctx.per_run(lambda d: cached_generalisation(d, [left_out]), ctx.variants["held-out-m"])
    return {20: claim_compositional(mixed, cur, held_m, left_out, C=ctx.preset.task.C)}, [
        fig_compositional(mixed, cur, held_m, left_out, ctx.preset.task.C, ctx.extra_caption,
                          ctx.path("fig_compositional.png"))]


EXPERIMENT = Experiment("compositional", "§4.5, held-out value combinations and a held-out m: claim 20", RULES,
                        report, variants=variants, measurements=measurements,
                        weight=2)   # rough seconds per call
