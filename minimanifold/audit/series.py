"""Reading a series of checkpoints: one seed's snapshots, in step order, under our names.

A SOURCE is a folder of per-step files (``*.npz``, ``*.safetensors``, ``*.pt``/``*.pth``;
the step is the last number in each file name, ``model_1500.pt``), one file holding a
list of (step, state dict) pairs, or one of our run directories (its ``trajectory.npz``).
Snapshots are read one at a time and only the attention matrices are kept flattened
(plus the whole state where a forward pass needs it), so memory follows the snapshot
matrix the Gram route needs, not every file twice. Anything wrong is a ``SeriesError``
naming the file (and key): the command prints it as one line.
"""
from __future__ import annotations

import os
import re

import numpy as np

from ..files import read_npz
from .names import NameMapError, translate

EXTENSIONS = (".npz", ".safetensors", ".pt", ".pth")
OUR_NAMES = re.compile(r"^(embed\.W_E|pos_embed\.W_pos|ln_final\.[wb]|unembed\.(W_U|b_U)|blocks\.\d+\."
                       r"(ln[12]\.[wb]|attn\.(W_[QKVO]|b_[QKVO])|mlp\.(W_in|b_in|W_out|b_out)))$")
ATTN = re.compile(r"^blocks\.(\d+)\.attn\.W_([QKVO])$")
MIN_SNAPSHOTS = 3


class SeriesError(ValueError):
    """A series that cannot be audited; the message names the file and key."""


def step_of(path) -> int:
    nums = re.findall(r"\d+", os.path.splitext(os.path.basename(path))[0])
    if not nums:
        raise SeriesError(f"{path}: no step number in the file name (expected e.g. model_1500.pt)")
    return int(nums[-1])


def _torch_load(path):
    try:
        import torch
    except ImportError:
        raise SeriesError(f"{path}: reading PyTorch files needs torch: pip install \"minimanifold[torch]\"") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:                          # noqa: BLE001 (pickle, zip and torch errors alike)
        raise SeriesError(f"{path}: not a PyTorch file of tensors ({type(e).__name__}: "
                          f"{str(e).strip().splitlines()[0][:200]})") from None


def _arrays(obj, path) -> dict:
    """{key: float ndarray} of a state dict (torch tensors or arrays)."""
    if not isinstance(obj, dict):
        raise SeriesError(f"{path}: holds a {type(obj).__name__}, not a state dict or a list of (step, state dict)")
    out = {}
    for k, v in obj.items():
        a = v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)
        out[str(k)] = a
    return out


def read_file(path) -> list:
    """[(step or None, {key: array})] in the file: one state, or a list of (step, state)."""
    ext = os.path.splitext(path)[1]
    if ext == ".npz":
        try:
            return [(None, read_npz(path))]
        except ValueError as e:
            raise SeriesError(str(e)) from None
    if ext == ".safetensors":
        try:
            from safetensors.numpy import load_file
        except ImportError:
            raise SeriesError(f"{path}: reading safetensors needs the package: pip install "
                              f"\"minimanifold[safetensors]\"") from None
        try:
            return [(None, load_file(path))]
        except Exception as e:                      # noqa: BLE001 (the package raises its own errors)
            raise SeriesError(f"{path}: not a safetensors file ({type(e).__name__}: "
                              f"{str(e).strip().splitlines()[0][:200]})") from None
    obj = _torch_load(path)
    if isinstance(obj, (list, tuple)):
        if not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in obj):
            raise SeriesError(f"{path}: a list, but not of (step, state dict) pairs")
        return [(int(s), _arrays(d, f"{path}[step {s}]")) for s, d in obj]
    return [(None, _arrays(obj, path))]


def files_of(source) -> list:
    """[(step, path, index in the file)] of a SOURCE, in step order; SeriesError for steps
    missing, duplicated or (inside one file) out of order."""
    if os.path.isdir(source):
        paths = sorted(os.path.join(source, f) for f in os.listdir(source) if f.endswith(EXTENSIONS))
        if not paths:
            raise SeriesError(f"{source}: no checkpoint files ({', '.join(EXTENSIONS)})")
        items = sorted(((step_of(p), p, 0) for p in paths), key=lambda x: x[0])
    elif os.path.isfile(source):
        entries = read_file(source)
        if len(entries) == 1 and entries[0][0] is None:
            raise SeriesError(f"{source}: one state dict is one snapshot; give a folder of them or a list "
                              f"of (step, state dict)")
        steps = [s for s, _ in entries]
        if any(b <= a for a, b in zip(steps, steps[1:])):
            raise SeriesError(f"{source}: steps out of order or repeated ({steps[:8]}...)")
        items = [(s, source, i) for i, s in enumerate(steps)]
    else:
        raise SeriesError(f"{source}: no such file or folder")
    seen = {}
    for step, path, _ in items:
        if step in seen:
            raise SeriesError(f"{path} and {seen[step]} both hold step {step}")
        seen[step] = path
    if len(items) < MIN_SNAPSHOTS:
        raise SeriesError(f"{source}: {len(items)} snapshot(s); a trajectory's PCA needs at least {MIN_SNAPSHOTS}")
    return items


def snapshots(source, name_map=None, n_heads=None, keep_state=False, progress=None):
    """(steps [n], {attention matrix: [n, D] in the files' dtype}, [whole states] or None) of one
    SOURCE under our names. Every snapshot must have the same keys, shapes and dtypes and
    only finite values."""
    if os.path.isfile(os.path.join(str(source), "trajectory.npz")):     # one of our run directories
        traj = read_npz(os.path.join(source, "trajectory.npz"))
        n = len(traj["steps"])
        states = [{k: v[i] for k, v in traj.items() if k != "steps"} for i in range(n)] if keep_state else None
        mats = {k: v.reshape(n, -1) for k, v in traj.items() if ATTN.match(k)}
        return np.asarray(traj["steps"]), _ordered(mats), states
    items = files_of(source)
    steps, rows, states, first, cache = [], {}, [], None, {}
    for i, (step, path, index) in enumerate(items):
        if progress:
            progress(f"reading {source}: snapshot {i + 1}/{len(items)} (step {step})")
        entries = cache.pop(path, None) or read_file(path)
        if len(entries) > 1:
            cache[path] = entries                     # a list file: read once
        raw = entries[index][1]
        where = f"{path}" + (f" [step {step}]" if len(entries) > 1 else "")
        try:
            state = translate(raw, name_map, where, n_heads) if name_map is not None else \
                {k: v for k, v in raw.items() if OUR_NAMES.match(k)}
        except NameMapError as e:
            raise SeriesError(str(e)) from None
        sig = {k: (v.shape, v.dtype) for k, v in state.items()}
        if first is None:
            first = sig
            if not any(ATTN.match(k) for k in sig):
                raise SeriesError(f"{where}: no attention matrices (blocks.L.attn.W_Q ...) under our names; "
                                  f"give a name map (--map)")
        elif sig != first:
            diff = sorted(k for k in set(sig) | set(first) if sig.get(k) != first.get(k))
            raise SeriesError(f"{where}: {diff[0]!r} differs from the first snapshot's "
                              f"({first.get(diff[0])} vs {sig.get(diff[0])})")
        for k, v in state.items():
            if not np.issubdtype(v.dtype, np.floating):
                raise SeriesError(f"{where}: {k!r} has dtype {v.dtype}, not a float")
            if not np.isfinite(v).all():
                raise SeriesError(f"{where}: {k!r} holds NaN or inf")
        steps.append(step)
        for k, v in state.items():
            if ATTN.match(k):
                rows.setdefault(k, []).append(np.asarray(v).ravel())       # its own float dtype, one for all
        if keep_state:
            states.append(state)
    mats = {k: np.stack(v) for k, v in rows.items()}
    return np.asarray(steps), _ordered(mats), (states if keep_state else None)


def _ordered(mats) -> dict:
    """Layer by layer, Q K V O, as the pipeline orders them (``rundir.matrix_names``)."""
    key = lambda k: (int(ATTN.match(k).group(1)), "QKVO".index(ATTN.match(k).group(2)))   # noqa: E731
    return {k: mats[k] for k in sorted(mats, key=key)}

