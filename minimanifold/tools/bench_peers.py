"""The benchmark's steps, ours and its peers', and the measurement of one thread count.

Each ``*_step(params, tokens, targets, cfg, dtype, lr)`` returns a ``step()`` closure that
owns its copy of the parameters: it runs one training step (forward, backward, SGD update
theta <- theta - lr * grad) and returns the loss; ``step.params()`` reads the parameters
back as NumPy (the parity tests). A peer whose package is missing raises ``Missing``.

    numpy          our model (``model.transformer``) and ``optim.sgd_step``
    torch eager    ``torch_reference``: autograd, then p -= lr * p.grad
    torch.compile  the same step under ``torch.compile`` (Inductor: C++ kernels built with
                   the system's C++ compiler). Dynamo breaks the graph at
                   ``loss.backward()``, so three graphs are compiled: forward, backward
                   (AOTAutograd) and the SGD update
    JAX jit        ``jax_reference.make_step``: value_and_grad and the update, one jitted
                   function, the old parameters' buffers donated to the new ones

Threads, per runtime (``measure`` sets them): OpenBLAS (NumPy) takes
``openblas_set_num_threads`` in a running process (``blas_threads``), PyTorch
``torch.set_num_threads`` and Inductor ``cpp.threads`` (compiled into its kernels, and part
of its cache key). XLA sizes its CPU thread pools once, when its client starts, from
``PJRT_NPROC`` (else the cores the process may use): a running process cannot change it,
so ``bench.run`` measures the JAX step in a child process per thread count. Checked by
per-thread CPU time (/proc/self/task) of a jitted 1024^3 product on 2 cores: with
PJRT_NPROC=1 one thread does all the work; by default, 4 threads share it.
"""
from __future__ import annotations

import os
import shutil
import time

import numpy as np

from ..model.backend import blas_core, blas_threads, gemm_gflops  # noqa: F401 (bench.py reads them here)
from ..model.config import ModelConfig
from ..model.optim import sgd_step
from ..model.transformer import init_params, loss_and_grads
from ..trajectories.task import TaskConfig, make_batch

PEERS = ("torch eager", "torch.compile", "JAX jit")
BATCH = 64


class Missing(Exception):
    """The peer's package is not installed (its table row says so)."""


def numpy_step(params, tokens, targets, cfg, dtype, lr):
    p = {k: np.array(v, dtype=dtype) for k, v in params.items()}

    def step():
        loss, grads = loss_and_grads(p, tokens, targets, cfg)
        sgd_step(p, grads, lr)
        return loss
    step.params = lambda: p
    return step


def _torch():
    try:
        import torch  # noqa: PLC0415
        from . import torch_reference  # noqa: PLC0415
    except ImportError as e:
        raise Missing("not installed") from e
    return torch, torch_reference


def torch_eager_step(params, tokens, targets, cfg, dtype, lr):
    torch, tr = _torch()
    tp = tr.to_torch(params, getattr(torch, np.dtype(dtype).name))
    tok, tgt = torch.as_tensor(np.asarray(tokens)), torch.as_tensor(np.asarray(targets))

    def step():
        for p in tp.values():
            p.grad = None
        loss = torch.nn.functional.cross_entropy(tr.forward(tp, tok, cfg), tgt)
        loss.backward()
        with torch.no_grad():
            for p in tp.values():
                p -= lr * p.grad
        return loss.detach()
    step.params = lambda: {k: v.detach().numpy() for k, v in tp.items()}
    return step


def torch_compile_step(params, tokens, targets, cfg, dtype, lr, backend="inductor"):
    """The eager step under ``torch.compile``; compiled at its first call (where a compile
    error surfaces). ``backend="eager"`` runs Dynamo without Inductor (the table's test)."""
    torch, _ = _torch()
    cxx = os.environ.get("CXX", "g++")
    if backend == "inductor" and shutil.which(cxx) is None:
        raise Missing(f"no C++ compiler ({cxx}) for Inductor")
    torch._dynamo.reset()                  # a fresh cache: no recompile limit, no stale guards
    eager = torch_eager_step(params, tokens, targets, cfg, dtype, lr)
    options = {"cpp.threads": torch.get_num_threads()} if backend == "inductor" else None
    step = torch.compile(eager, backend=backend, options=options)
    step.params = eager.params
    return step


def jax_step(params, tokens, targets, cfg, dtype, lr):
    try:
        import jax  # noqa: PLC0415
        from . import jax_reference as jr  # noqa: PLC0415
    except ImportError as e:
        raise Missing("not installed") from e
    state = {"p": jr.to_jax(params, np.dtype(dtype))}
    tok, tgt = jax.numpy.asarray(np.asarray(tokens)), jax.numpy.asarray(np.asarray(targets))
    jitted = jr.make_step(cfg, lr)

    def step():
        loss, state["p"] = jitted(state["p"], tok, tgt)
        return jax.block_until_ready((loss, state["p"]))[0]    # dispatch is asynchronous
    step.params = lambda: {k: np.asarray(v) for k, v in state["p"].items()}
    return step


MAKERS = {"numpy": numpy_step, "torch eager": torch_eager_step, "torch.compile": torch_compile_step,
          "JAX jit": jax_step}


def median_ms(fns, reps, pause=0.3):
    """Median step time of each fn (ms), timed in alternating blocks of about reps/4 steps.

    Not step by step: PyTorch's OpenMP threads, OpenBLAS's and XLA's spin-wait after their
    parallel regions, so interleaving single steps makes each runtime steal the cores from
    the other (measured: both ~2x slower). A pause before each block lets the other
    runtime's threads go idle."""
    times = [[] for _ in fns]
    blocks = min(4, reps)
    for _ in range(blocks):
        for i, fn in enumerate(fns):
            time.sleep(pause)
            fn()
            fn()
            for _ in range(max(1, reps // blocks)):
                t = time.perf_counter()
                fn()
                times[i].append(time.perf_counter() - t)
    return [1e3 * float(np.median(t)) for t in times]


def _reason(e: Exception) -> str:
    """One short line for a table cell."""
    text = (str(e).strip().splitlines() or [type(e).__name__])[0]
    return f"{type(e).__name__}: {text}"[:90].replace("|", "/")


def measure(threads, layers, dtypes, reps, peers=PEERS, compile_backend="inductor", lr=0.01, pause=0.3):
    """Rows for one thread count: per dtype and depth, our step and each peer's, timed
    alternately in this process. A row: L, dtype, threads, step, ms (None when the peer did
    not run), note (why not), numpy_ms (ours, timed beside it), the GEMM roofline, and the
    thread count each runtime holds (XLA's: PJRT_NPROC, which ``bench.run`` sets)."""
    blas_threads(threads)
    counts = {"OpenBLAS": blas_threads()} if blas_threads() is not None else {}   # read back
    if "JAX jit" in peers:
        counts["XLA"] = int(os.environ.get("PJRT_NPROC", "0"))
    if {"torch eager", "torch.compile"} & set(peers):
        try:
            torch = _torch()[0]
            torch.set_num_threads(threads)
            counts["PyTorch"] = torch.get_num_threads()
        except Missing:
            pass
    batch = make_batch(np.random.default_rng(0), TaskConfig(), [1, 2, 3, 4], BATCH)
    rows = []
    for dtype in dtypes:
        roof = gemm_gflops(np.dtype(dtype))
        for L in layers:
            cfg = ModelConfig(n_layers=L)
            params = init_params(cfg, 0, np.float64)       # cast by each step: one init for all
            names, fns, notes = ["numpy"], [numpy_step(params, batch.tokens, batch.targets, cfg, dtype, lr)], {}
            for name in peers:
                kw = {"backend": compile_backend} if name == "torch.compile" else {}
                try:
                    fn = MAKERS[name](params, batch.tokens, batch.targets, cfg, dtype, lr, **kw)
                    fn()                                      # compiles now: its error is the row's
                    names.append(name)
                    fns.append(fn)
                except Missing as e:
                    notes[name] = str(e)
                except Exception as e:  # noqa: BLE001 -- any failure of a peer is its row, not a crash
                    notes[name] = ("compile failed: " if name != "torch eager" else "failed: ") + _reason(e)
            ms = dict(zip(names, median_ms(fns, reps, pause)))
            for name in ("numpy", *peers):
                rows.append({"L": L, "dtype": np.dtype(dtype).name, "threads": threads, "step": name,
                             "ms": ms.get(name), "note": notes.get(name), "numpy_ms": ms["numpy"],
                             "roofline": roof, "runtime_threads": counts})
    return rows
