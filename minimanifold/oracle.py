"""Reference values for faster implementations to check themselves against.

    python -m minimanifold.oracle grads PARAMS.npz BATCH.npz OUT.npz
    python -m minimanifold.oracle commutator PARAMS.npz BATCH_A.npz BATCH_B.npz OUT.npz --lr ETA

PARAMS.npz: parameters under their TransformerLens names (``model.io.load_params``),
            with or without the attention biases b_Q, b_K, b_V, b_O (all or none, any
            values: a HookedTransformer's state dict has them).
BATCH.npz:  ``tokens`` [b,t] integers in 0..d_vocab-1 (t <= n_ctx) and ``targets`` [b]
            integers in 0..d_vocab_out-1.
OUT.npz:    grads: ``logits`` [b,c], ``loss`` [] and ``grad.<name>`` for every parameter,
            the attention biases included when PARAMS.npz has them;
            commutator: ``delta.<name>`` = theta_AB - theta_BA (eq 3–5) for every
            parameter, and ``lr``. All computed in float64.
Bad input exits with status 2 and a one-line message naming the file or key; OUT is
then not written (and an existing OUT is left as it was). So do a reference that is not
finite (an overflow: --lr or the parameters too large for float64) and a batch too large
for the memory.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from .model.io import load_params
from .files import read_npz, save_npz
from .analysis.commutator import commutator
from .model.transformer import cast_params, loss_grads_logits
from .trajectories.progress import printable_streams


class OracleError(ValueError):
    pass


def load_batch(path, cfg):
    """(tokens, targets) from BATCH.npz, validated against the model ``cfg``."""
    arrays = read_npz(path)
    for key in ("tokens", "targets"):
        if key not in arrays:
            raise OracleError(f"{path}: missing key {key!r}")
    tokens, targets = arrays["tokens"], arrays["targets"]
    for key, arr in (("tokens", tokens), ("targets", targets)):
        if not np.issubdtype(arr.dtype, np.integer):
            raise OracleError(f"{path}: {key!r} must hold integers, got dtype {arr.dtype}")
    if tokens.ndim != 2 or tokens.shape[0] < 1 or tokens.shape[1] < 1:
        raise OracleError(f"{path}: 'tokens' must have shape (b, t), got {tokens.shape}")
    if tokens.shape[1] > cfg.n_ctx:
        raise OracleError(f"{path}: 'tokens' has t={tokens.shape[1]} positions, "
                          f"more than n_ctx={cfg.n_ctx}")
    if targets.shape != (tokens.shape[0],):
        raise OracleError(f"{path}: 'targets' must have shape ({tokens.shape[0]},), got {targets.shape}")
    if tokens.min() < 0 or tokens.max() >= cfg.d_vocab:
        bad = int(tokens[(tokens < 0) | (tokens >= cfg.d_vocab)][0])
        raise OracleError(f"{path}: 'tokens' holds {bad}, outside the vocabulary 0..{cfg.d_vocab - 1}")
    if targets.min() < 0 or targets.max() >= cfg.d_vocab_out:
        bad = int(targets[(targets < 0) | (targets >= cfg.d_vocab_out)][0])
        raise OracleError(f"{path}: 'targets' holds {bad}, outside 0..{cfg.d_vocab_out - 1}")
    return tokens.astype(np.int64), targets.astype(np.int64)


def check_out_path(out_path, inputs) -> None:
    """OUT must be a new path or an existing regular file that is none of the inputs, in an
    existing folder: never a directory, device, symbolic link or one of the inputs (a
    wrong OUT would destroy data; refused before any work, nothing is touched)."""
    out = os.fspath(out_path)
    if os.path.islink(out):
        raise OracleError(f"OUT {out} is a symbolic link; give the path of a regular file")
    if os.path.exists(out):
        if not os.path.isfile(out):
            raise OracleError(f"OUT {out} exists and is not a regular file (a folder, device or pipe)")
        for p in inputs:
            if os.path.exists(p) and os.path.samefile(out, p):
                raise OracleError(f"OUT {out} is the input {os.fspath(p)}; it would be overwritten")
    folder = os.path.dirname(os.path.abspath(out))
    while not os.path.exists(folder):                 # missing folders are created, files are not folders
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        raise OracleError(f"OUT {out}: {folder} is a file, not a folder")


def check_params(params, path) -> dict:
    """Real, finite parameters, else a one-line error naming the key (NaN references
    would pass np.testing.assert_allclose, which treats NaN as equal to NaN)."""
    for k, v in params.items():
        if not (np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)):
            raise OracleError(f"{path}: {k!r} has dtype {v.dtype}; parameters must be real numbers")  # complex too
        if not np.isfinite(v).all():
            raise OracleError(f"{path}: {k!r} holds non-finite values (NaN or inf, e.g. a float16 overflow)")
    return params


def check_finite(out: dict, hint: str) -> dict:
    """Every output array finite, else a one-line error naming the first non-finite key in
    sorted order (a reference holding NaN or inf is no reference: assert_allclose treats
    NaN as equal to NaN, and an overflow says nothing about the client's numbers)."""
    bad = [k for k in sorted(out) if not np.isfinite(out[k]).all()]
    if bad:
        raise OracleError(f"the reference is not finite: {bad[0]!r} holds NaN or inf ({len(bad)} of "
                          f"{len(out)} outputs do; {hint}); nothing written")
    return out


def within_memory(compute, batches, hint: str):
    """``compute()`` with NumPy's overflow warnings silenced (check_finite refuses the
    result instead, in one line), and a MemoryError turned into one line naming the batch
    size. The error is raised after the ``except`` block, so the arrays the failed
    computation held are freed first."""
    try:
        with np.errstate(all="ignore"):
            return compute()
    except MemoryError:
        pass
    sizes = " and ".join(f"{tokens.shape[0]} x {tokens.shape[1]}" for tokens, _ in batches)
    what = f"a batch of {sizes} tokens does" if len(batches) == 1 else f"batches of {sizes} tokens do"
    raise OracleError(f"{what} not fit in memory; {hint}")


def grads_command(params_path, batch_path, out_path) -> None:
    check_out_path(out_path, [params_path, batch_path])
    params, cfg = load_params(params_path)
    check_params(params, params_path)
    tokens, targets = load_batch(batch_path, cfg)
    loss, grads, logits = within_memory(
        lambda: loss_grads_logits(cast_params(params, np.float64), tokens, targets, cfg),
        [(tokens, targets)], "split it into smaller batches (the gradient of the whole batch is the "
                             "size-weighted mean of the parts')")
    out = {"logits": logits, "loss": np.asarray(loss, dtype=np.float64)}
    out.update({"grad." + k: v for k, v in grads.items()})
    save_npz(out_path, check_finite(out, "the parameters are too large for float64"))


def commutator_command(params_path, batch_a_path, batch_b_path, out_path, lr) -> None:
    import math  # noqa: PLC0415
    if not (math.isfinite(lr) and lr > 0):
        raise OracleError(f"--lr must be a positive finite number, got {lr}")
    check_out_path(out_path, [params_path, batch_a_path, batch_b_path])
    params, cfg = load_params(params_path)
    check_params(params, params_path)
    A, B = load_batch(batch_a_path, cfg), load_batch(batch_b_path, cfg)
    s = within_memory(lambda: commutator(cast_params(params, np.float64), A, B, lr, cfg), [A, B],
                      "use smaller batches (the commutator of a batch is not the mean of its parts')")
    out = {"lr": np.asarray(lr, dtype=np.float64), **{"delta." + k: v for k, v in s.delta.items()}}
    save_npz(out_path, check_finite(out, "a smaller --lr keeps the steps in float64's range"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m minimanifold.oracle", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grads", help="logits, loss and every gradient in float64")
    g.add_argument("params")
    g.add_argument("batch")
    g.add_argument("out")
    c = sub.add_parser("commutator", help="theta_AB - theta_BA in float64 (eq 3–5)")
    c.add_argument("params")
    c.add_argument("batch_a")
    c.add_argument("batch_b")
    c.add_argument("out")
    c.add_argument("--lr", type=float, required=True, help="the step size eta")
    a = ap.parse_args(argv)
    try:
        if a.command == "grads":
            grads_command(a.params, a.batch, a.out)
        else:
            commutator_command(a.params, a.batch_a, a.batch_b, a.out, a.lr)
    except (ValueError, OSError) as e:               # bad input, or OUT cannot be written
        print(f"error: {e}", file=sys.stderr)
        return 2
    except MemoryError:                              # past the computation: reading or writing
        print("error: out of memory reading the inputs or writing OUT; use smaller files", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    printable_streams()
    sys.exit(main())
