"""§4.5: curriculum against mixed training, and attention-only against attention + MLP, each
at the main runs' budget. Claims 15–17; the curriculum and MLP figures (claim 20,
compositional generalisation, is experiments/compositional.py)."""
from __future__ import annotations

import dataclasses

import numpy as np

from ..analysis.intervals import Interval, all_of, diff_interval, holds, t_interval, within
from ..model.optim import PER_STAGE
from ..report.ledger import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, Row, mean_sd, verdict
from ..trajectories.schedule import Schedule
from ..trajectories.rundir import load_metrics
from .contract import Experiment
from .variants import fig_compare, mean_final_accuracy, not_measured, summarize, summary_measurements, variant_specs


def curriculum_schedule(mixed_spec: str, steps: int) -> str:
    """The curriculum with the mixed schedule's m's in increasing order, equal stages,
    the same total steps (the last stage absorbs the remainder)."""
    ms = Schedule.parse(mixed_spec).all_m()
    n = steps // len(ms)
    stages = [f"{m}x{n}" for m in ms[:-1]] + [f"{ms[-1]}x{steps - n * (len(ms) - 1)}"]
    return "curriculum:" + ",".join(stages)


def curriculum_train(tr):
    """The mixed runs' training with the curriculum schedule at the same budget; a step-size
    schedule (warmup, cosine) restarts in every stage ('/stage'), so each stage is trained as
    a run of that length would be, not the last one at a step size decayed towards 0."""
    lr_schedule = tr.lr_schedule if tr.lr_schedule == "constant" or tr.lr_schedule.endswith(PER_STAGE) \
        else tr.lr_schedule + PER_STAGE
    return dataclasses.replace(tr, schedule=curriculum_schedule(tr.schedule, tr.steps), lr_schedule=lr_schedule)


def variants(preset) -> dict:
    if not preset.comparisons:
        return {}
    tr = preset.train
    cur = curriculum_train(tr)
    return {"curriculum": variant_specs("curriculum", preset, preset.n_extra_seeds, train=cur),
            "mlp": variant_specs("mlp", preset, preset.n_extra_seeds,
                                 model=dataclasses.replace(preset.model, attn_only=False))}


MLP_RANK, MLP_RANK_PAPER = "MLPs disrupt the low-dimensional collapse", "higher-dimensional, no clear 3–4 collapse"
MLP_ACC, MLP_ACC_PAPER = "MLPs generalise worse at an equal budget", "generalisation degrades"
CURRICULUM = "curriculum forgets small m; mixed training does not"
CURRICULUM_PAPER = "catastrophic forgetting of small m under curriculum; mixed learns all"


# ---- verdict rules: the docstring is the rule the ledger prints ----

def mlp_rank_rule(increase: Interval) -> str:
    """MLPs disrupt the collapse: the MLP variant's mean r90 minus attention-only's (Welch interval
    over the two groups of seeds); *supported* if its interval lies above 1, *not supported* if
    it lies at or below 0, *inconclusive* otherwise."""
    if holds(increase, ">", 1) is True:
        return SUPPORTED
    return NOT_SUPPORTED if holds(increase, ">", 0) is False else INCONCLUSIVE


def mlp_accuracy_rule(difference: Interval) -> str:
    """MLPs generalise worse at equal budget: the MLP variant's final accuracy (mean over m) minus
    attention-only's (Welch interval); *supported* if it lies below −0.02, *not supported* if it
    lies at or above −0.02, *inconclusive* otherwise."""
    return verdict(holds(difference, "<", -0.02))


def curriculum_rule(forgetting: Interval, mixed_all_learned: bool) -> str:
    """curriculum forgets small m, mixed does not: the curriculum's best minus final accuracy on its
    smallest m, per seed; *supported* if its interval lies at or above 0.2 and every mixed run
    ends ≥ 0.95 on every m; *not supported* if the interval lies below 0.2 or a mixed run does
    not learn; *inconclusive* otherwise."""
    return verdict(all_of(holds(forgetting, ">=", 0.2), bool(mixed_all_learned)))


RULES = {15: mlp_rank_rule, 16: mlp_accuracy_rule, 17: curriculum_rule}


# ---- ledger rows ----

def claim_mlp_rank(attn, mlp):
    iv = diff_interval(mlp["r90"], attn["r90"])
    return Row(claim=MLP_RANK, section="§4.5", paper=MLP_RANK_PAPER,
               measured=f"r90 (mean over attention matrices): MLP {mean_sd(mlp['r90'])} vs attention-only "
                        f"{mean_sd(attn['r90'])}",
               null=f"matched random walks: MLP {mean_sd(mlp['null'])}, attention-only {mean_sd(attn['null'])}",
               interval=f"MLP − attention-only {iv.text()}", verdict=mlp_rank_rule(iv), value=iv.est)


def claim_mlp_accuracy(attn, mlp):
    a, m = mean_final_accuracy(attn), mean_final_accuracy(mlp)
    iv = diff_interval(m, a)
    return Row(claim=MLP_ACC, section="§4.5", paper=MLP_ACC_PAPER,
               measured=f"final held-out accuracy (mean over m): MLP {mean_sd(m, '{:.3f}')} vs attention-only "
                        f"{mean_sd(a, '{:.3f}')}",
               null="same steps, batch, learning rate and seeds", interval=f"MLP − attention-only {iv.text('{:.3f}')}",
               verdict=mlp_accuracy_rule(iv), value=iv.est)


def claim_curriculum(mixed_runs, cur_runs, histories):
    """histories: per curriculum run, its metrics list."""
    ms = sorted(cur_runs[0]["summary"]["final_acc"], key=int)
    small = ms[0]
    peak = np.array([max(r["acc"][small] for r in h) for h in histories])
    final = np.array([r["summary"]["final_acc"][small] for r in cur_runs])
    mixed_min = np.array([min(r["summary"]["final_acc"].values()) for r in mixed_runs])
    cur_final = {m: mean_sd([r["summary"]["final_acc"][m] for r in cur_runs], "{:.2f}") for m in ms}
    iv = within(t_interval(peak - final), 0.0, 1.0)   # a fall of an accuracy from its best
    return Row(claim=CURRICULUM, section="§4.5", paper=CURRICULUM_PAPER,
               measured=f"curriculum, m={small}: best {mean_sd(peak)} → final {mean_sd(final)}; final per m "
                        + ", ".join(f"m={m} {v}" for m, v in cur_final.items()),
               null=f"mixed training, lowest final accuracy over m: {mean_sd(mixed_min)}",
               interval=f"forgetting {iv.text()}", verdict=curriculum_rule(iv, (mixed_min >= 0.95).all()),
               value=iv.est)


def measurements(ctx) -> list:
    if not ctx.preset.comparisons:
        return []
    return summary_measurements(ctx.variants["curriculum"], ctx.variants["mlp"])


def report(ctx):
    if not ctx.preset.comparisons:
        return {15: not_measured(MLP_RANK, "§4.5", MLP_RANK_PAPER), 16: not_measured(MLP_ACC, "§4.5", MLP_ACC_PAPER),
                17: not_measured(CURRICULUM, "§4.5", CURRICULUM_PAPER)}, []
    main, cur, mlp = ctx.runs, ctx.variants["curriculum"], ctx.variants["mlp"]
    s_main, s_cur, s_mlp = summarize(ctx, main), summarize(ctx, cur), summarize(ctx, mlp)
    claims = {15: claim_mlp_rank(s_main, s_mlp), 16: claim_mlp_accuracy(s_main, s_mlp),
              17: claim_curriculum(main, cur, [load_metrics(r["dir"]) for r in cur])}
    bounds = Schedule.parse(cur[0]["summary"]["config"]["train"]["schedule"]).boundaries()[1:]
    cap = ctx.extra_caption
    return claims, [fig_compare({"mixed": s_main, "curriculum": s_cur}, {"mixed": main, "curriculum": cur},
                                "Curriculum vs mixed", cap, ctx.path("fig_curriculum.png"), bounds),
                    fig_compare({"attention-only": s_main, "attention + MLP": s_mlp},
                                {"attention-only": main, "attention + MLP": mlp},
                                "MLP vs attention-only", cap, ctx.path("fig_mlp.png"))]


EXPERIMENT = Experiment("architecture", "§4.5, curriculum and MLP figures: claims 15–17", RULES, report,
                        variants=variants, measurements=measurements)
