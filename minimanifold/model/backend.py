"""Array backend: NumPy (default) or CuPy. The only module that imports CuPy.

Pick with ``MINIMANIFOLD_BACKEND=cupy`` or ``get_backend("cupy")``. Everything else
receives arrays and asks ``xp_of(array)`` for their module, so a model whose params live
on the GPU runs there unchanged. Host randomness always stays in NumPy; ``to_device``
moves the drawn numbers, so both backends start from bit-identical values.
"""
from __future__ import annotations

import ctypes
import os
import time

import numpy as np

BACKENDS = ("numpy", "cupy")
_cupy = None


def _import_cupy():
    global _cupy
    if _cupy is None:
        try:
            import cupy  # noqa: PLC0415 -- the one place CuPy is imported
        except ImportError as e:
            raise RuntimeError(
                "backend 'cupy' was requested but CuPy is not installed: "
                "pip install 'minimanifold[gpu]' (cupy-cuda12x) or cupy-cuda13x") from e
        _cupy = cupy
    return _cupy


def get_backend(name: str | None = None):
    """The array module for ``name`` (default: $MINIMANIFOLD_BACKEND, else numpy)."""
    name = name or os.environ.get("MINIMANIFOLD_BACKEND", "numpy")
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    return np if name == "numpy" else _import_cupy()


def xp_of(x):
    """The array module that ``x`` belongs to."""
    if _cupy is not None and isinstance(x, _cupy.ndarray):
        return _cupy
    return np


def to_device(x, xp):
    return xp.asarray(x)


def to_numpy(x):
    """A host NumPy array (a no-op for NumPy input)."""
    if _cupy is not None and isinstance(x, _cupy.ndarray):
        return _cupy.asnumpy(x)
    return np.asarray(x)


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse instead of returning it to the OS.

    The model allocates megabyte-sized temporaries every step. With glibc's defaults each
    is a fresh mmap that the kernel must fault in and zero (measured: ~12,000 page faults
    and ~35% of the step time at L=5); raising the mmap and trim thresholds makes them
    plain heap reuse. Process-wide (the heap keeps its peak size), so only the entry points
    that train call it — ``run_all.py``, ``python -m minimanifold.train``, ``.bench``, the
    recipe screen, and every pool worker (``pool.exit_with_parent``) — never ``import
    minimanifold``. Set MINIMANIFOLD_KEEP_MALLOC=1 to leave the allocator alone. Returns
    whether the settings were applied (False off glibc).
    """
    if os.environ.get("MINIMANIFOLD_KEEP_MALLOC") == "1":
        return False
    try:
        import ctypes  # noqa: PLC0415
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    ok = libc.mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024)        # glibc's maximum
    ok &= libc.mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024)
    return bool(ok)


def gemm_gflops(dtype=np.float32, n=1024, reps=10) -> float:
    """Best-case NumPy GEMM throughput with this process's BLAS threads: an n x n x n
    product, median of ``reps`` (GFLOP/s). The roofline of the benchmark and of the
    ``--plan`` floor."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n)).astype(dtype), rng.standard_normal((n, n)).astype(dtype)
    a @ b
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        ts.append(time.perf_counter() - t)
    return 2 * n ** 3 / float(np.median(ts)) / 1e9


def matmul_into(a, b, out):
    """out[...] = a @ b, where ``out`` may be a strided view. NumPy writes straight into
    it; other backends compute then assign (CuPy's ``out=`` has not always honoured
    non-contiguous outputs, and no GPU was available to check the current one)."""
    if xp_of(out) is np:
        np.matmul(a, b, out=out)
    else:
        out[...] = a @ b
    return out


# ---- the OpenBLAS NumPy runs on: its kernel (recorded with each run) and thread count ----

def _openblas(fn: str):
    """``fn`` of the OpenBLAS loaded by NumPy (its symbols carry NumPy's wheel prefix and
    64-bit-integer suffix), None without one."""
    for line in open("/proc/self/maps"):
        path = line.split()[-1]
        if "openblas" in os.path.basename(path).lower():
            lib = ctypes.CDLL(path)
            for prefix, suffix in (("scipy_", "64_"), ("", "64_"), ("", "")):
                if hasattr(lib, f"{prefix}openblas_{fn}{suffix}"):
                    return getattr(lib, f"{prefix}openblas_{fn}{suffix}")
    return None


def blas_threads(n=None):
    """NumPy's OpenBLAS thread count in this process (None without OpenBLAS); given ``n``,
    sets it to n and returns the count before."""
    get, set_ = _openblas("get_num_threads"), _openblas("set_num_threads")
    if get is None:
        return None
    old = get()
    if n is not None:
        set_(n)
    return old


def blas_core() -> str:
    """The kernel OpenBLAS chose for this CPU (``OPENBLAS_CORETYPE`` overrides it)."""
    fn = _openblas("get_corename")
    if fn is None:
        return "no OpenBLAS"
    fn.restype = ctypes.c_char_p
    return fn().decode()
