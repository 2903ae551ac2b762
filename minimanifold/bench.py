"""Benchmark: median time of one training step (forward + backward + SGD update) at the
paper's size (B=64, T=32, d_model=128, 4 heads of 32), for L=2 and L=5, float32 and
float64, against this machine's GEMM throughput and PyTorch eager, measured in one run.

    python -m minimanifold.bench [--reps 40] [--layers 2 5]

FLOPs are those of the matrix products this implementation performs (the last layer
computes queries at the last position only); backward counts twice the forward.
PyTorch, when installed, runs the same model (``torch_reference``, all positions, the
plain matmul formulation a PyTorch user writes) with the same thread count; NumPy and
PyTorch steps are timed in alternating blocks so both see the same machine state.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from .model.backend import gemm_gflops, keep_freed_memory
from .model.config import ModelConfig, step_flops
from .trajectories.task import TaskConfig, make_batch
from .model.transformer import init_params, loss_and_grads
from .model.optim import sgd_step


def _numpy_step(params, tokens, targets, cfg, lr=0.01):
    _, grads = loss_and_grads(params, tokens, targets, cfg)
    sgd_step(params, grads, lr)


def _torch_stepper(params, tokens, targets, cfg, dtype, lr=0.01):
    import torch  # noqa: PLC0415
    from .tools import torch_reference as tr  # noqa: PLC0415
    tp = tr.to_torch(params, dtype)
    tok, tgt = torch.as_tensor(tokens), torch.as_tensor(targets)

    def step():
        for p in tp.values():
            p.grad = None
        loss = torch.nn.functional.cross_entropy(tr.forward(tp, tok, cfg), tgt)
        loss.backward()
        with torch.no_grad():
            for p in tp.values():
                p -= lr * p.grad
    return step


def _median_ms(fn_list, reps, blocks=4):
    """Median step time of each fn, timed in alternating blocks of reps/blocks steps.

    Not step by step: PyTorch's OpenMP threads and OpenBLAS's threads spin-wait after
    their parallel regions, so interleaving single steps makes each runtime steal the
    cores from the other (measured: both ~2x slower). A short pause before each block
    lets the other runtime's threads go idle."""
    times = [[] for _ in fn_list]
    per_block = max(1, reps // blocks)
    for _ in range(blocks):
        for i, fn in enumerate(fn_list):
            time.sleep(0.3)
            fn()
            fn()
            for _ in range(per_block):
                t = time.perf_counter()
                fn()
                times[i].append(time.perf_counter() - t)
    return [1e3 * float(np.median(t)) for t in times]


def run(layers=(2, 5), reps=40, use_torch=True) -> list:
    try:
        import torch  # noqa: PLC0415
        torch.set_num_threads(os.cpu_count() or 1)
        have_torch = use_torch
    except ImportError:
        have_torch = False
    task = TaskConfig()
    batch = make_batch(np.random.default_rng(0), task, [1, 2, 3, 4], 64)
    rows = []
    for dtype, tname in ((np.float32, "float32"), (np.float64, "float64")):
        roof = gemm_gflops(dtype)
        for L in layers:
            cfg = ModelConfig(n_layers=L)
            params = init_params(cfg, 0, dtype)
            fns = [lambda: _numpy_step(params, batch.tokens, batch.targets, cfg)]
            if have_torch:
                fns.append(_torch_stepper(init_params(cfg, 0, dtype), batch.tokens, batch.targets,
                                          cfg, getattr(torch, tname)))
            ms = _median_ms(fns, reps)
            gf = step_flops(cfg, 64, task.T) / (ms[0] / 1e3) / 1e9
            rows.append({"L": L, "dtype": tname, "numpy_ms": ms[0], "gflops": gf, "roofline": roof,
                         "roof_frac": gf / roof, "torch_ms": ms[1] if have_torch else None})
    return rows


def format_table(rows) -> str:
    lines = ["| L | dtype | NumPy step (ms) | GFLOP/s | GEMM roofline (GFLOP/s) | % of roofline "
             "| PyTorch eager (ms) | NumPy / PyTorch |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t = f"{r['torch_ms']:.1f}" if r["torch_ms"] else "n/a"
        ratio = f"{r['numpy_ms'] / r['torch_ms']:.2f}" if r["torch_ms"] else "n/a"
        lines.append(f"| {r['L']} | {r['dtype']} | {r['numpy_ms']:.1f} | {r['gflops']:.0f} | "
                     f"{r['roofline']:.0f} | {100 * r['roof_frac']:.0f}% | {t} | {ratio} |")
    return "\n".join(lines)


def pca_seconds(n=200, D=400_000, reps=3) -> float:
    """Median time of ``analysis.pca.pca_spectrum`` on n random float32 snapshots of D
    parameters (the Gram route: n x n, never D x D)."""
    from .analysis.pca import pca_spectrum  # noqa: PLC0415
    X = np.random.default_rng(0).standard_normal((n, D), dtype=np.float32)
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        pca_spectrum(X)
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def main(argv=None):
    keep_freed_memory()     # trains: the step's temporaries reuse freed heap (backend.keep_freed_memory)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--layers", type=int, nargs="+", default=[2, 5])
    ap.add_argument("--no-torch", action="store_true")
    a = ap.parse_args(argv)
    print(f"B=64 T=32 d_model=128 n_heads=4 d_head=32; {os.cpu_count()} cores; "
          f"numpy {np.__version__}")
    print(format_table(run(tuple(a.layers), a.reps, not a.no_torch)))
    print(f"\nTrajectory PCA (analysis.pca.pca_spectrum), 200 snapshots x 400,000 float32 parameters: "
          f"{pca_seconds():.2f} s (median of 3)")


if __name__ == "__main__":
    main()
