"""SAE probing and ablation along a run (paper §3.4, §4.4, Figure 6).

At three stages — the first checkpoint whose mean held-out accuracy reaches 0.5
("early"), 0.9 ("mid"), and the last ("late") — an SAE is fitted to the residual stream
at the last position (the one the readout reads) after layer ``layer`` (default: the
last layer). Its latents are correlated with task factors; the most task-correlated are
ablated by splicing x' = x + (x_hat_ablated - x_hat) back into the forward at that
position, so only the ablation changes the computation.
"""
from __future__ import annotations

import json
import os

import numpy as np

from . import sae as S
from .analysis import run_configs
from .io import save_json
from .model import forward
from .task import Schedule, make_batch
from .train import load_metrics, load_trajectory

VERSION = 1


def pick_stages(history, thresholds=(0.5, 0.9)) -> dict:
    """{"early": index, "mid": index, "late": index} into the checkpoint list."""
    mean_acc = [np.mean(list(r["acc"].values())) for r in history]
    out = {}
    for name, t in zip(("early", "mid"), thresholds):
        out[name] = next((i for i, a in enumerate(mean_acc) if a >= t), len(history) - 1)
    out["late"] = len(history) - 1
    return out


def _resid(params, tokens, cfg, layer):
    _, cache = forward(params, tokens, cfg)
    return cache.hooks[f"blocks.{layer}.hook_resid_post"][:, -1]           # [n,d]


def _accuracy(params, batch, cfg, layer, replace=None):
    """Accuracy with the last position's resid_post after ``layer`` replaced by
    replace(x) ([n,d] -> [n,d]) if given."""
    hooks = {}
    if replace is not None:
        def hook(act):
            act = act.copy()
            act[:, -1] = replace(act[:, -1])
            return act
        hooks[f"blocks.{layer}.hook_resid_post"] = hook
    logits, _ = forward(params, batch.tokens, cfg, hooks=hooks)
    return float((logits.argmax(-1) == batch.targets).mean())


def task_factors(batch, C) -> dict:
    """Numeric task factors per example: m, answer == c (each c), first/last marker position."""
    last = np.take_along_axis(batch.positions, (batch.m - 1)[:, None], axis=1)[:, 0]
    f = {"m": batch.m, "first marker position": batch.positions[:, 0], "last marker position": last}
    f.update({f"answer = {c}": (batch.targets == c).astype(float) for c in range(C)})
    return f


def correlations(h, factors) -> tuple:
    """(|corr| [f, n_factors], factor names); constant columns give 0."""
    names = list(factors)
    F = np.stack([np.asarray(factors[k], dtype=float) for k in names], axis=1)       # [n,k]
    hc, Fc = h - h.mean(0), F - F.mean(0)
    denom = np.outer(np.linalg.norm(hc, axis=0), np.linalg.norm(Fc, axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(denom > 0, (hc.T @ Fc) / denom, 0.0)
    return np.abs(r), names


def stage_experiment(params, cfg, task, ms, seed, layer, d_sae, lam, n_train, n_eval, top, n_random):
    rng = np.random.default_rng([seed, 10])
    train_b, eval_b = make_batch(rng, task, ms, n_train), make_batch(rng, task, ms, n_eval)
    x = _resid(params, train_b.tokens, cfg, layer)
    scale = float(np.sqrt((x ** 2).sum(1).mean() / x.shape[1]))           # E||x/scale||^2 = d
    sae = S.train_sae(x / scale, d_sae, lam, seed)
    xe = _resid(params, eval_b.tokens, cfg, layer) / scale
    h = S.encode(sae, xe)
    corr, names = correlations(h, task_factors(eval_b, task.C))
    alive = np.flatnonzero((h > 0).any(0))
    score = corr.max(1)
    chosen = alive[np.argsort(score[alive])[::-1][:top]]
    def spliced(ablate):
        return lambda a: scale * S.splice(sae, a / scale, ablate)
    controls = [_accuracy(params, eval_b, cfg, layer, spliced(rng.choice(alive, len(chosen), replace=False)))
                for _ in range(n_random)]
    return {"sae": S.metrics(sae, xe), "lambda": lam, "n_correlated_0.5": int((score[alive] > 0.5).sum()),
            "top_latents": [{"latent": int(j), "factor": names[int(corr[j].argmax())],
                             "abs_corr": float(score[j])} for j in chosen],
            "acc_clean": _accuracy(params, eval_b, cfg, layer),
            "acc_spliced_no_ablation": _accuracy(params, eval_b, cfg, layer, spliced([])),
            "acc_reconstruction": _accuracy(params, eval_b, cfg, layer,
                                            lambda a: scale * S.decode(sae, S.encode(sae, a / scale))),
            "acc_ablated": _accuracy(params, eval_b, cfg, layer, spliced(chosen)),
            "acc_random_ablated": float(np.mean(controls)), "acc_random_ablated_sd": float(np.std(controls))}


def sae_experiment(run_dir, layer=None, d_sae=512, lam=1.0, n_train=4096, n_eval=1024, top=5, n_random=5):
    path = os.path.join(run_dir, f"sae_v{VERSION}.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    cfg, task, tr = run_configs(run_dir)
    layer = cfg.n_layers - 1 if layer is None else layer
    hist, traj = load_metrics(run_dir), load_trajectory(run_dir)
    ms = Schedule.parse(tr["schedule"]).all_m()
    out = {"layer": layer, "stages": {}}
    for name, i in pick_stages(hist).items():
        params = {k: traj[k][i] for k in traj if k != "steps"}              # float32, as trained
        res = stage_experiment(params, cfg, task, ms, tr["seed"], layer, d_sae, lam, n_train, n_eval, top, n_random)
        out["stages"][name] = {"step": int(traj["steps"][i]), **res}
    save_json(path, out)
    return out
