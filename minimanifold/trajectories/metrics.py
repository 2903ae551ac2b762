"""What training records every N steps: held-out accuracy per m and the entropy of the
last position's attention (paper eq 9); and what the sweep reads from them (which runs
learned, the summary table).

Shape legend: b batch, h head, s key position, l layer.
"""
from __future__ import annotations

from ..model.backend import to_device, to_numpy, xp_of
from ..model.transformer import forward
from .rundir import load_metrics
from .schedule import Schedule


def attention_entropy(pattern):
    """H = -sum_s A_s log A_s (paper eq 9) of each row; 0 log 0 = 0. pattern [...,s] -> [...]."""
    xp = xp_of(pattern)
    logp = xp.log(xp.where(pattern > 0, pattern, 1.0))
    return -(pattern * logp).sum(axis=-1)


def evaluate(params: dict, probe: dict, cfg) -> dict:
    """On each probe batch ({m: Batch}): accuracy, and the last position's attention
    entropy per layer (nats, mean over heads and examples).

    Returns {"acc": {m: float}, "entropy": {m: [float per layer]}, "finite": bool}; finite
    is False if any logit is NaN or inf (the parameters have diverged).
    """
    xp = xp_of(params["embed.W_E"])
    acc, ent, finite = {}, {}, True
    for m, batch in probe.items():
        logits, cache = forward(params, to_device(batch.tokens, xp), cfg)
        finite = finite and bool(xp.isfinite(logits).all())
        pred = to_numpy(logits.argmax(axis=-1))
        acc[m] = float((pred == batch.targets).mean())
        ent[m] = [float(attention_entropy(cache.hooks[f"blocks.{l}.attn.hook_pattern"][:, :, -1]).mean())
                  for l in range(cfg.n_layers)]
    return {"acc": acc, "entropy": ent, "finite": finite}


def steps_to_learn(history, threshold: float = 0.95):
    """First recorded step at which held-out accuracy is >= threshold for every m and
    stays so at every later checkpoint; None if it never settles."""
    ok = [all(a >= threshold for a in rec["acc"].values()) for rec in history]
    for i in range(len(ok)):
        if all(ok[i:]):
            return history[i]["step"]
    return None


# ---- the sweep's records of the runs ----

def learned(run) -> bool:
    """Held-out accuracy >= 0.95 on every m at the end of training."""
    return min(run["summary"]["final_acc"].values()) >= 0.95


def learned_final_stage(run) -> bool:
    """Accuracy >= 0.95 on every m of the schedule's final stage (all m for mixed)."""
    final = Schedule.parse(run["summary"]["config"]["train"]["schedule"]).stages[-1][0]
    return all(run["summary"]["final_acc"][str(m)] >= 0.95 for m in final)


def summary_table(runs) -> str:
    """One markdown row per run: seed, steps, final loss, accuracy per m, and the step
    from which every m stays >= 0.95 ("-" if it never does)."""
    ms = sorted({m for r in runs for m in r["summary"]["final_acc"]}, key=int)
    lines = ["| run | seed | steps | final loss | " + " | ".join(f"acc m={m}" for m in ms)
             + " | learned (all m >= 0.95) from step |",
             "|---|---|---|---|" + "---|" * len(ms) + "---|"]
    for r in runs:
        s = r["summary"]
        acc = [s["final_acc"].get(m) for m in ms]
        learned = steps_to_learn(load_metrics(r["dir"]))
        lines.append(f"| {r['name']} | {r['seed']} | {s['final_step']} | {s['final_loss']:.4f} | "
                     + " | ".join("" if a is None else f"{a:.3f}" for a in acc)
                     + f" | {'-' if learned is None else learned} |")
    return "\n".join(lines)

