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
from .variants import (counted_claim, excess_over_null, fig_compare, mean_final_accuracy, not_measured, summarize,
                       summary_measurements, variant_specs)


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
    """"MLP layers fundamentally disrupt the low-dimensional geometric picture ... with no clear
    collapse onto a 3–4 dimensional subspace": per seed, r90 minus its own matched random-walk
    null (each the mean over the attention matrices: the geometry holds no MLP matrix), the MLP
    variant's minus attention-only's (Welch interval over the two groups of seeds); *supported*
    if it lies above 1 (the MLP runs' r90 more than a dimension closer to their null), *not
    supported* if it lies at or below 0, *inconclusive* otherwise."""
    if holds(increase, ">", 1) is True:
        return SUPPORTED
    return NOT_SUPPORTED if holds(increase, ">", 0) is False else INCONCLUSIVE


def mlp_accuracy_rule(difference: Interval) -> str:
    """MLPs generalise worse at equal budget: the MLP variant's final accuracy (mean over m) minus
    attention-only's (Welch interval); *supported* if it lies below −0.02, *not supported* if it
    lies at or above −0.02, *inconclusive* otherwise."""
    return verdict(holds(difference, "<", -0.02))


FORGETTING = 0.2      # "performance on smaller m degrades significantly": a fall of 0.2 in accuracy


def curriculum_rule(curriculum: Interval, mixed: Interval) -> str:
    """"strict curriculum learning ... leads to catastrophic forgetting: as training advances to
    larger m values, performance on smaller m degrades significantly", and mixed training does not:
    forgetting = best minus final held-out accuracy on the smallest m, per seed, for the curriculum
    runs and for the mixed runs; *supported* if the curriculum's interval lies at or above 0.2 and
    the mixed runs' below 0.2; *not supported* if the curriculum's lies below 0.2 or the mixed runs'
    at or above 0.2; *inconclusive* otherwise."""
    return verdict(all_of(holds(curriculum, ">=", FORGETTING), holds(mixed, "<", FORGETTING)))


RULES = {15: mlp_rank_rule, 16: mlp_accuracy_rule, 17: curriculum_rule}


# ---- ledger rows ----

def claim_mlp_rank(attn, mlp):
    e_attn, e_mlp = excess_over_null(attn), excess_over_null(mlp)
    iv = diff_interval(e_mlp, e_attn, attn.get("r90_step", 0.0))
    return Row(claim=MLP_RANK, section="§4.5", paper=MLP_RANK_PAPER,
               measured=f"r90 − matched null (attention matrices only, as the paper's r90): MLP {mean_sd(e_mlp)} "
                        f"vs attention-only {mean_sd(e_attn)}; r90 MLP {mean_sd(mlp['r90'])} vs {mean_sd(attn['r90'])}",
               null=f"matched random walks: MLP {mean_sd(mlp['null'])}, attention-only {mean_sd(attn['null'])}",
               interval=f"MLP − attention-only of r90 − null {iv.text()}", verdict=mlp_rank_rule(iv), value=iv.est)


def claim_mlp_accuracy(attn, mlp):
    a, m = mean_final_accuracy(attn), mean_final_accuracy(mlp)
    iv = diff_interval(m, a, attn.get("acc_step", 0.0))
    return Row(claim=MLP_ACC, section="§4.5", paper=MLP_ACC_PAPER,
               measured=f"final held-out accuracy (mean over m): MLP {mean_sd(m, '{:.3f}')} vs attention-only "
                        f"{mean_sd(a, '{:.3f}')}",
               null="same steps, batch, learning rate and seeds", interval=f"MLP − attention-only {iv.text('{:.3f}')}",
               verdict=mlp_accuracy_rule(iv), value=iv.est)


def best_and_final(runs, histories, m) -> tuple:
    """([seed] best, [seed] final) held-out accuracy on m: the best over the run's recorded
    accuracies, the final its summary's. Forgetting is best − final."""
    return (np.array([max(r["acc"][m] for r in h) for h in histories]),
            np.array([r["summary"]["final_acc"][m] for r in runs]))


def claim_curriculum(mixed_runs, cur_runs, mixed_histories, cur_histories):
    """histories: per run, its metrics list (the runs' order)."""
    ms = sorted(cur_runs[0]["summary"]["final_acc"], key=int)
    small = ms[0]
    (cur_best, cur_end), (mix_best, mix_end) = (best_and_final(cur_runs, cur_histories, small),
                                                best_and_final(mixed_runs, mixed_histories, small))
    cur, mixed = cur_best - cur_end, mix_best - mix_end
    step = 1 / cur_runs[0]["summary"]["config"]["train"].get("n_probe", 256)      # one probe example
    iv_cur, iv_mixed = (within(t_interval(f, step), 0.0, 1.0) for f in (cur, mixed))   # a fall of an accuracy
    cur_final = {m: mean_sd([r["summary"]["final_acc"][m] for r in cur_runs], "{:.2f}") for m in ms}
    mixed_min = [min(r["summary"]["final_acc"].values()) for r in mixed_runs]
    return Row(claim=CURRICULUM, section="§4.5", paper=CURRICULUM_PAPER,
               measured=f"curriculum, m={small}: best {mean_sd(cur_best)} → final {mean_sd(cur_end)} (forgot "
                        f"{mean_sd(cur)}); final per m " + ", ".join(f"m={m} {v}" for m, v in cur_final.items()),
               null=f"mixed training, m={small}: best {mean_sd(mix_best)} → final {mean_sd(mix_end)} (forgot "
                    f"{mean_sd(mixed)}); lowest final accuracy over m {mean_sd(mixed_min)}",
               interval=f"forgetting: curriculum {iv_cur.text()}, mixed {iv_mixed.text()} against {FORGETTING}",
               verdict=curriculum_rule(iv_cur, iv_mixed), value=iv_cur.est, null_value=iv_mixed.est)


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
    claims = {15: counted_claim(claim_mlp_rank, s_main, s_mlp), 16: claim_mlp_accuracy(s_main, s_mlp),
              17: claim_curriculum(main, cur, [load_metrics(r["dir"]) for r in main],
                                   [load_metrics(r["dir"]) for r in cur])}
    bounds = Schedule.parse(cur[0]["summary"]["config"]["train"]["schedule"]).boundaries()[1:]
    cap = ctx.extra_caption
    return claims, [fig_compare({"mixed": s_main, "curriculum": s_cur}, {"mixed": main, "curriculum": cur},
                                "Curriculum vs mixed", cap, ctx.path("fig_curriculum.png"), bounds),
                    fig_compare({"attention-only": s_main, "attention + MLP": s_mlp},
                                {"attention-only": main, "attention + MLP": mlp},
                                "MLP vs attention-only", cap, ctx.path("fig_mlp.png"))]


EXPERIMENT = Experiment("architecture", "§4.5, curriculum and MLP figures: claims 15–17", RULES, report,
                        variants=variants, measurements=measurements)
