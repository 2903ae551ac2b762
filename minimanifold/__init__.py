"""minimanifold: a from-scratch NumPy reference implementation of "Low-Dimensional
Execution Manifolds in Transformer Learning Dynamics" (marker-based modular arithmetic).
"""
from .backend import keep_freed_memory as _keep_freed_memory
from .config import ModelConfig, TaskConfig
from .io import load_params, save_params
from .model import (attention_param_names, backward, cast_params, flatten, forward,
                    init_params, loss_and_grads, param_shapes, unflatten)
from .task import Batch, Schedule, make_batch

_keep_freed_memory()

# Training lives in minimanifold.train (not imported here, so that
# `python -m minimanifold.train` runs it as a script without a double import).
__all__ = ["ModelConfig", "TaskConfig", "Schedule", "Batch", "make_batch", "init_params",
           "forward", "backward", "loss_and_grads", "param_shapes", "attention_param_names",
           "cast_params", "flatten", "unflatten", "save_params", "load_params"]
