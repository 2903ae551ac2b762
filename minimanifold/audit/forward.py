"""The audit's measurements that need a forward pass: when a series' snapshots map onto our
whole model (attention-only or with MLPs, attention biases included) and a batch is given.

    batch   an .npz of ``tokens`` [b, t] and ``targets`` [b] (optionally ``m`` [b], a group
            per example), or our task generator's settings, "T=32,C=8,n_markers=6,
            d_vocab=32,m=1,2,3,4" (the held-out probe set the presets use, 256 per m)

Per snapshot: accuracy and the last position's attention entropy per layer (paper §4.2);
at the final snapshot its answers on the batch (claim 5's row compares the series', as
``experiments/answers.py`` does the presets' seeds) and the functional dimension (``experiments/functional_dimension.py``:
each attention matrix rebuilt from k trajectory PCA directions vs k random ones); at
evenly spaced snapshots the commutator of the batch's two halves (eq 3–5) at step size
``lr``: its norm and the defect D = ||delta|| / (lr^2 ||g_A|| ||g_B||).
"""
from __future__ import annotations

import numpy as np

from ..analysis.commutator import commutator
from ..analysis.functional import functional_curve
from ..experiments.functional_dimension import KS
from ..trajectories.task import Batch, TaskConfig, probe_set
from ..model.io import config_from_params
from ..files import read_npz
from ..model.transformer import cast_params, forward
from ..trajectories.metrics import evaluate
from .series import SeriesError

N_COMMUTATORS = 8


def load_batch(spec, cfg) -> dict:
    """{group: Batch} from a batch file or task settings (module docstring), checked
    against the model ``cfg``; SeriesError naming what does not fit."""
    if "=" in spec:
        try:
            kv = dict(p.split("=", 1) for p in spec.split(",") if "=" in p)
            ms = [int(x) for x in spec.split("m=", 1)[1].split(",") if x.strip().isdigit()] if "m=" in spec else [1]
            task = TaskConfig(**{k: int(v) for k, v in kv.items() if k in ("T", "C", "n_markers", "d_vocab")})
        except (ValueError, TypeError) as e:
            raise SeriesError(f"--batch {spec!r}: not task settings ({e})") from None
        return probe_set(task, ms, 256, 0)
    try:
        z = read_npz(spec)
    except ValueError as e:
        raise SeriesError(str(e)) from None
    if "tokens" not in z or "targets" not in z:
        raise SeriesError(f"{spec}: a batch file needs 'tokens' [b, t] and 'targets' [b]")
    tok, tgt = np.asarray(z["tokens"]), np.asarray(z["targets"])
    if tok.ndim != 2 or tgt.shape != (tok.shape[0],) or not np.issubdtype(tok.dtype, np.integer):
        raise SeriesError(f"{spec}: 'tokens' must be integers [b, t] and 'targets' [b]; got {tok.shape}, {tgt.shape}")
    if tok.min() < 0 or tok.max() >= cfg.d_vocab or tok.shape[1] > cfg.n_ctx or tgt.min() < 0 \
            or tgt.max() >= cfg.d_vocab_out:
        raise SeriesError(f"{spec}: tokens, positions or targets outside the model's ranges "
                          f"(d_vocab {cfg.d_vocab}, n_ctx {cfg.n_ctx}, classes {cfg.d_vocab_out})")
    groups = np.asarray(z["m"]) if "m" in z else np.zeros(len(tgt), dtype=int)
    none = np.full((len(tgt), 1), -1)
    return {int(g): Batch(tok[groups == g].astype(np.int64), tgt[groups == g].astype(np.int64),
                          groups[groups == g], none[groups == g], none[groups == g]) for g in np.unique(groups)}


def model_of(states, where):
    """The ModelConfig of the snapshots when they are whole models of ours."""
    try:
        return config_from_params(states[-1], source=where)
    except ValueError as e:
        raise SeriesError(f"{e} (a forward pass needs the whole model; without --batch the audit is weights-only)") \
            from None


def measure(states, mats, probe, cfg, lr, seed=0) -> dict:
    """Accuracy and entropy along the run, the functional dimension at the end (both in the
    snapshots' own dtype, as the pipeline measures its runs), and commutators in float64 at
    ``N_COMMUTATORS`` evenly spaced snapshots (``lr`` None: none)."""
    along = [evaluate(p, probe, cfg) for p in states]
    final = states[-1]

    def accuracy(replaced) -> float:
        p = dict(final)
        for name, flat in replaced.items():
            p[name] = flat.reshape(final[name].shape).astype(final[name].dtype)
        return float(np.mean(list(evaluate(p, probe, cfg)["acc"].values())))
    functional = {kind: functional_curve(mats, accuracy, KS, seed=seed, centred=(kind == "centred"))
                  for kind in ("centred", "uncentred")}
    comm = []
    if lr is not None:
        tok = np.concatenate([b.tokens for b in probe.values()])
        tgt = np.concatenate([b.targets for b in probe.values()])
        order = np.random.default_rng([seed, 6]).permutation(len(tgt))
        A, B = order[: len(order) // 2], order[len(order) // 2: 2 * (len(order) // 2)]
        for i in np.unique(np.linspace(0, len(states) - 1, N_COMMUTATORS).round().astype(int)):
            s = commutator(cast_params(states[i], np.float64), (tok[A], tgt[A]), (tok[B], tgt[B]), lr, cfg)
            comm.append({"index": int(i), "norm": s.norm, "defect": s.defect, "cosine": s.cosine})
    answers = {"C": int(cfg.d_vocab_out), "probe": "inputs of the batch",   # as ``answers.cached_answers``
               "m": {str(g): {"answers": forward(final, b.tokens, cfg)[0].argmax(-1).tolist(),
                              "targets": b.targets.tolist()} for g, b in probe.items()}}
    return {"answers": answers, "acc": [{str(g): a for g, a in e["acc"].items()} for e in along],
            "entropy": [{str(g): v for g, v in e["entropy"].items()} for e in along],
            "functional": functional, "commutators": comm}
