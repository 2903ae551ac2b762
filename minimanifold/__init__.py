"""minimanifold: a from-scratch NumPy reference implementation of "Low-Dimensional
Execution Manifolds in Transformer Learning Dynamics" (marker-based modular arithmetic).

The folders draw the data flow:

    files.py       atomic writes, .npz/JSON reading with errors naming the file, digests
    model/         the transformer, its hand-written backward, optimizers, parameter files
    trajectories/  the task, training (checkpoints = the trajectory), a run directory, sweeps, presets
    analysis/      pure functions over arrays, one per paper equation (no files, no plots)
    experiments/   one module per paper section: its cached measurement, ledger rows, figures
    report/        the ledger's table format and writer; the figures' common plotting
    pipeline.py    what ``run_all.py`` runs
    tools/         gradient check, the independent PyTorch model, TransformerLens interop

``python -m minimanifold.train``, ``.oracle`` and ``.bench`` are the command-line entry points.
"""
from .model import (ModelConfig, attention_param_names, backward, cast_params, flatten, forward, init_params,
                    load_params, loss_and_grads, param_shapes, save_params, unflatten)
from .trajectories.task import Batch, TaskConfig, make_batch
from .trajectories.schedule import Schedule


# Training lives in minimanifold.trajectories.training_loop (run it as `python -m minimanifold.train`).
__all__ = ["ModelConfig", "TaskConfig", "Schedule", "Batch", "make_batch", "init_params",
           "forward", "backward", "loss_and_grads", "param_shapes", "attention_param_names",
           "cast_params", "flatten", "unflatten", "save_params", "load_params"]
