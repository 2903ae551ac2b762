"""The model machinery (paper §3.2), knowing nothing of the paper's experiments.

    backend.py      NumPy or CuPy (the only module that imports CuPy)
    config.py       ModelConfig: validated, frozen (the task's TaskConfig is trajectories/task.py's)
    layers.py       one forward/backward pair per op: embedding, LayerNorm, MLP, unembed, loss
    attention.py    causal softmax and attention: softmax(q kᵀ/√e + mask) v W_O
    transformer.py  parameters (TransformerLens names), forward, backward(dlogits, cache), loss
    optim.py        plain SGD and AdamW, in place
    io.py           parameter files (.npz keyed by TransformerLens names; written by minimanifold/files.py)
"""
from .config import ModelConfig
from .io import load_params, save_params
from .transformer import (INIT_STD, ModelCache, attention_param_names, backward, cast_params, flatten,
                          forward, init_params, loss_and_grads, loss_grads_logits, param_shapes, unflatten)

__all__ = ["ModelConfig", "load_params", "save_params", "INIT_STD", "ModelCache",
           "attention_param_names", "backward", "cast_params", "flatten", "forward", "init_params",
           "loss_and_grads", "loss_grads_logits", "param_shapes", "unflatten"]
