"""Entry point: ``python -m minimanifold.train RUN_DIR [options]`` trains one run (every
``TrainConfig`` field is an option; ``--help`` lists them with their defaults).

The training loop lives in ``minimanifold/trajectories/training_loop.py``; its names are
re-exported here for scripts written against ``minimanifold.train``.
"""
import argparse
import dataclasses
import json
import sys

from .model.config import ModelConfig
from .trajectories.task import TaskConfig
from .trajectories.rundir import load_metrics, load_trajectory
from .trajectories.training_loop import TrainConfig, TrainingDiverged, train
from .model.backend import keep_freed_memory

__all__ = ["TrainConfig", "TrainingDiverged", "load_metrics", "load_trajectory", "main", "train"]


HELP = {
    "steps": "SGD steps", "lr": "peak step size eta", "batch_size": "examples per step",
    "ckpt_every": "steps between checkpoints (the trajectory's snapshots)", "seed": "init and data seed",
    "schedule": "which m each step trains on: mixed:1,2,3,4 or curriculum:1x1000,2x1000 (m-set x steps)",
    "optimizer": "sgd (the paper's) or adamw (the authors' code)", "weight_decay": "adamw only",
    "n_probe": "held-out examples per m at each checkpoint", "init_std": "std of the normal init",
    "lr_schedule": "constant, warmup:W or cosine:W (W warmup steps; plain SGD all the same); "
                   "cosine:W/stage restarts it in every curriculum stage",
}


def main(argv=None):
    keep_freed_memory()     # trains: the step's temporaries reuse freed heap (backend.keep_freed_memory)
    ap = argparse.ArgumentParser(description="Train one run of the marker task (paper §3.2).",
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("run_dir")
    for f in dataclasses.fields(TrainConfig):
        ap.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default,
                        help=HELP[f.name])
    ap.add_argument("--n-layers", type=int, default=ModelConfig.n_layers, help="transformer layers")
    ap.add_argument("--d-model", type=int, default=ModelConfig.d_model, help="residual width")
    ap.add_argument("--n-heads", type=int, default=ModelConfig.n_heads, help="attention heads")
    ap.add_argument("--d-head", type=int, default=ModelConfig.d_head, help="width of each head")
    ap.add_argument("--mlp", action="store_true", help="standard variant (attention + MLP)")
    ap.add_argument("--T", type=int, default=TaskConfig.T, help="sequence length")
    ap.add_argument("--C", type=int, default=TaskConfig.C, help="modulus (values 0..C-1)")
    ap.add_argument("--n-markers", type=int, default=TaskConfig.n_markers, help="marker tokens (largest m)")
    ap.add_argument("--d-vocab", type=int, default=TaskConfig.d_vocab, help="vocabulary size")
    ap.add_argument("--op", default=TaskConfig.op, help="add or mul")
    ap.add_argument("--holdout", type=float, default=TaskConfig.holdout,
                    help="share of value multisets never trained on (claim 20)")
    ap.add_argument("--labels", default=TaskConfig.labels,
                    help="task, or random: labels drawn independently of the input (the no-task control)")
    ap.add_argument("--backend", default=None, help="numpy or cupy; None: $MINIMANIFOLD_BACKEND, else numpy")
    a = ap.parse_args(argv)
    try:
        task = TaskConfig(T=a.T, C=a.C, n_markers=a.n_markers, d_vocab=a.d_vocab, op=a.op,
                          holdout=a.holdout, labels=a.labels)
        model = ModelConfig(d_vocab=a.d_vocab, d_vocab_out=a.C, n_ctx=a.T, d_model=a.d_model,
                            n_heads=a.n_heads, d_head=a.d_head, n_layers=a.n_layers,
                            attn_only=not a.mlp, d_mlp=4 * a.d_model)
        tc = TrainConfig(**{f.name: getattr(a, f.name) for f in dataclasses.fields(TrainConfig)})
        summary = train(a.run_dir, model, task, tc, backend=a.backend)
    except (ValueError, TrainingDiverged, RuntimeError, OSError) as e:     # OSError: disk full, a file for a folder
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({k: summary[k] for k in ("final_step", "final_loss", "final_acc")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
