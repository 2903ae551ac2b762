"""Benchmark: median time of one training step (forward + backward + SGD update) at the
paper's size (B=64, T=32, d_model=128, 4 heads of 32, attention-only), for L=2 and L=5,
float32 and float64, on 1 and 2 threads, against this machine's GEMM throughput and three
optional peers measured in the same run: PyTorch eager, torch.compile (Inductor) and a
jax.jit-compiled JAX step (``bench_peers``).

    python -m minimanifold.bench [--reps 40] [--layers 2 5] [--threads 1 2]

Threads: OpenBLAS, PyTorch and Inductor take a thread count in a running process, so ours
and the PyTorch steps are timed in this process, which sets each count in turn. XLA sizes
its thread pools once, when its CPU client starts (``PJRT_NPROC``): a running process
cannot switch JAX from 2 threads to 1, so the JAX step is timed in a child process per
thread count, beside our step again. In each process our step and the peers' are timed in
alternating blocks, and each ratio compares steps timed in the same process.
The roofline is NumPy's n^3 GEMM at that thread count, measured in the same process.

GFLOP/s counts the FLOPs of the matrix products this implementation performs (the last
layer computes queries at the last position only; backward counts twice the forward) for
every row, ours and the peers': it is the rate of the work the logits and gradients need.
The peers compute every position (the plain formulation a user writes: more FLOPs). A peer
whose package is missing gets a row saying "not installed"; a compile error, its reason.
The first torch.compile run builds Inductor's C++ kernels (~30 s per depth, dtype and
thread count on 2 busy cores); later runs read them from Inductor's on-disk cache.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from .model.backend import keep_freed_memory
from .model.config import ModelConfig, step_flops
from .trajectories.task import TaskConfig
from .tools.bench_peers import PEERS, blas_core, blas_threads, measure

JAX = "JAX jit"
CHILD = "import sys; from minimanifold.bench import child; child(sys.argv[1])"


def child(args_json: str) -> None:
    """The JAX rows of one thread count (``bench_peers.measure``), as JSON on stdout."""
    keep_freed_memory()
    rows = measure(**json.loads(args_json))
    print("@@ROWS@@" + json.dumps(rows))


def _jax_rows(n, **args) -> list:
    """``measure`` of the JAX step (and ours beside it) on n threads in a child process."""
    import minimanifold  # noqa: PLC0415
    root = os.path.dirname(os.path.dirname(os.path.abspath(minimanifold.__file__)))
    env = dict(os.environ, PJRT_NPROC=str(n), OPENBLAS_NUM_THREADS=str(n))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-c", CHILD, json.dumps({"threads": n, "peers": [JAX], **args})],
                       env=env, capture_output=True, text=True)
    if r.returncode != 0 or "@@ROWS@@" not in r.stdout:
        raise RuntimeError(f"the {n}-thread JAX measurement failed:\n{r.stderr[-3000:]}")
    return [row for row in json.loads(r.stdout.rsplit("@@ROWS@@", 1)[1]) if row["step"] == JAX]


def run(layers=(2, 5), reps=40, threads=(1, 2), dtypes=("float32", "float64"), peers=PEERS,
        compile_backend="inductor", pause=0.3) -> list:
    """Every row of every thread count: ours and PyTorch's measured here, JAX's in a child
    process per count (``bench_peers.measure``; ``pause``: seconds of rest before each
    timed block). This process's thread counts are put back afterwards."""
    args = {"layers": list(layers), "dtypes": list(dtypes), "reps": reps, "pause": pause}
    here = [p for p in peers if p != JAX]
    torch = sys.modules.get("torch")
    old_blas, old_torch = blas_threads(), torch.get_num_threads() if torch else os.cpu_count()
    rows = []
    try:
        for n in threads:
            rows += measure(n, peers=here, compile_backend=compile_backend, **args)
            if JAX in peers:
                rows += _jax_rows(n, **args)
    finally:
        if old_blas is not None:
            blas_threads(old_blas)
        if sys.modules.get("torch") is not None:
            sys.modules["torch"].set_num_threads(old_torch)
    order = {"numpy": 0, **{p: i + 1 for i, p in enumerate(PEERS)}}
    rows.sort(key=lambda r: (r["dtype"], r["L"], r["threads"], order[r["step"]]))
    for r in rows:
        flops = step_flops(ModelConfig(n_layers=r["L"]), 64, TaskConfig().T)
        r["gflops"] = flops / (r["ms"] / 1e3) / 1e9 if r["ms"] else None
    return rows


def format_table(rows) -> str:
    """One row per step and thread count. "ours beside it": our step timed alternately with
    this one in the same process (JAX's child process has its own), the numerator of the
    ratio."""
    lines = ["| L | dtype | threads | step | ms | GFLOP/s | GEMM roofline (GFLOP/s) | % of roofline "
             "| ours beside it (ms) | NumPy / this |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        name = "NumPy (ours)" if r["step"] == "numpy" else r["step"]
        head = f"| {r['L']} | {r['dtype']} | {r['threads']} | {name} |"
        if r["ms"] is None:
            lines.append(f"{head} {r['note']} | | {r['roofline']:.0f} | | | |")
            continue
        lines.append(f"{head} {r['ms']:.1f} | {r['gflops']:.0f} | {r['roofline']:.0f} | "
                     f"{100 * r['gflops'] / r['roofline']:.0f}% | {r['numpy_ms']:.1f} | "
                     f"{r['numpy_ms'] / r['ms']:.2f} |")
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


CLI_PEERS = {"eager": "torch eager", "compile": "torch.compile", "jax": "JAX jit"}


def versions() -> str:
    """The runtimes' versions ("absent" where not installed) and NumPy's GEMM kernel."""
    import importlib.metadata as md  # noqa: PLC0415
    out = [f"numpy {np.__version__}"]
    for dist in ("torch", "jax", "jaxlib"):
        try:
            out.append(f"{dist} {md.version(dist)}")
        except md.PackageNotFoundError:
            out.append(f"{dist} absent")
    return ", ".join(out) + f"; OpenBLAS kernel {blas_core()}"


def main(argv=None):
    keep_freed_memory()     # trains: the step's temporaries reuse freed heap (backend.keep_freed_memory)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=40, help="timed steps per step kind and row")
    ap.add_argument("--layers", type=int, nargs="+", default=[2, 5])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                    help="thread counts (JAX's each in a child process)")
    ap.add_argument("--dtypes", nargs="+", choices=("float32", "float64"), default=["float32", "float64"])
    ap.add_argument("--peers", nargs="*", choices=tuple(CLI_PEERS), default=list(CLI_PEERS),
                    help="PyTorch eager, torch.compile, JAX jit (none: ours alone)")
    ap.add_argument("--no-torch", action="store_true", help="drop both PyTorch peers")
    ap.add_argument("--compile-backend", default="inductor", choices=("inductor", "aot_eager", "eager"),
                    help="torch.compile's backend (eager: Dynamo alone, no C++ build)")
    a = ap.parse_args(argv)
    peers = [CLI_PEERS[p] for p in a.peers if not (a.no_torch and p in ("eager", "compile"))]
    print(f"B=64 T=32 d_model=128 n_heads=4 d_head=32; {os.cpu_count()} cores; {versions()}")
    print(format_table(run(tuple(a.layers), a.reps, tuple(a.threads), tuple(a.dtypes), peers,
                           a.compile_backend)))
    print(f"\nTrajectory PCA (analysis.pca.pca_spectrum), 200 snapshots x 400,000 float32 parameters: "
          f"{pca_seconds():.2f} s (median of 3)")


if __name__ == "__main__":
    main()
