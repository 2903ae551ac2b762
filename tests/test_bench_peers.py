"""The benchmark's peers compute our step, and its table has a row for each of them.

Known answer: one step of each peer (JAX jit, torch.compile with Inductor) must give our
loss, our updated parameters and, read back from the update, our gradients, in float64.
Each is skipped where its package is absent. The first torch.compile test on a machine
builds Inductor's C++ kernels (~30 s on 2 busy cores); later runs read its disk cache.
"""
import importlib.util
import shutil
import sys

import numpy as np
import pytest

from minimanifold.model import loss_and_grads
from minimanifold import bench
from minimanifold.tools import bench_peers
from tests.conftest import small_setup

LR = 0.5     # a power of two: p - LR*g, and (p - p_new)/LR back, round at most once each
HAVE = {m: importlib.util.find_spec(m) is not None for m in ("torch", "jax")}


def one_step_agrees_with_ours(make, **kw):
    """Our loss and update against one step of the peer ``make``; the update divided by
    -LR must be our gradient (b_K's is 0 up to rounding: compared at the largest's scale)."""
    cfg, params, tokens, targets = small_setup(n_layers=3, seed=5, batch=7, attn_bias=kw.pop("bias", False))
    loss, grads = loss_and_grads(params, tokens, targets, cfg)
    step = make(params, tokens, targets, cfg, np.float64, LR, **kw)
    peer_loss = float(step())
    new = step.params()
    assert abs(peer_loss - float(loss)) < 1e-12
    assert set(new) == set(params)
    scale = max(np.abs(g).max() for g in grads.values())
    for k in params:
        assert new[k].dtype == np.float64, k
        np.testing.assert_allclose(new[k], params[k] - LR * grads[k], rtol=1e-12, atol=1e-13, err_msg=k)
        atol = 1e-12 * scale if k.endswith("b_K") else 1e-12
        np.testing.assert_allclose((params[k] - new[k]) / LR, grads[k], rtol=1e-9, atol=atol, err_msg=k)
    assert min(np.abs(grads[k]).max() for k in params if not k.endswith("b_K")) > 1e-6   # not vacuous


@pytest.mark.skipif(not HAVE["jax"], reason="jax not installed")
@pytest.mark.parametrize("bias", [False, True])
def test_jax_step_gives_our_loss_update_and_gradients(bias):
    one_step_agrees_with_ours(bench_peers.jax_step, bias=bias)


@pytest.mark.skipif(not HAVE["torch"] or shutil.which("g++") is None, reason="needs torch and g++")
def test_torch_compile_step_gives_our_loss_update_and_gradients():
    """Inductor's generated C++ kernels, not Dynamo alone; not vacuous: Dynamo captured the
    forward and the update as graphs (the step did not fall back to eager)."""
    from torch._dynamo.utils import counters
    one_step_agrees_with_ours(bench_peers.torch_compile_step, backend="inductor")
    assert counters["stats"]["unique_graphs"] >= 2


def test_the_table_has_a_row_per_peer_and_thread_count(monkeypatch, tmp_path):
    """A tiny real run (JAX in a child process per thread count), every runtime holding
    that count. For speed the torch.compile row runs uncompiled (TORCHDYNAMO_DISABLE: the
    compiled step is checked above) and the second JAX child reads the first one's XLA
    executable from a cache. A missing package is a row too."""
    monkeypatch.setenv("TORCHDYNAMO_DISABLE", "1")
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    before = bench_peers.blas_threads()
    rows = bench.run(layers=(1,), reps=1, threads=(1, 2), dtypes=("float32",), compile_backend="eager",
                     pause=0)
    assert bench_peers.blas_threads() == before                      # this process's count is back
    steps = ("numpy", *bench_peers.PEERS)
    assert [(r["threads"], r["step"]) for r in rows] == [(n, s) for n in (1, 2) for s in steps]
    table = bench.format_table(rows).splitlines()
    assert len(table) == 2 + len(rows)
    for r, line in zip(rows, table[2:]):
        name = "NumPy (ours)" if r["step"] == "numpy" else r["step"]
        assert line.startswith(f"| 1 | float32 | {r['threads']} | {name} |"), line
        assert 0 < r["roofline"] < 1e5
        assert set(r["runtime_threads"].values()) == {r["threads"]}, r["runtime_threads"]   # every runtime
        installed = r["step"] == "numpy" or HAVE["torch" if "torch" in r["step"] else "jax"]
        if installed:
            assert r["ms"] > 0 and r["note"] is None and 0 < r["gflops"] < r["roofline"] * 5, r
        else:
            assert r["ms"] is None and r["note"] == "not installed" and "not installed" in line


@pytest.fixture
def keep_threads():
    """``measure`` sets this process's threads: put them back."""
    old = bench_peers.blas_threads()
    torch = sys.modules.get("torch")
    old_torch = torch.get_num_threads() if torch else None
    yield
    if old is not None:
        bench_peers.blas_threads(old)
    if torch:
        torch.set_num_threads(old_torch)


def test_a_missing_package_and_a_failed_compile_are_rows(monkeypatch, keep_threads):
    monkeypatch.setitem(sys.modules, "jax", None)                   # import jax -> ImportError
    monkeypatch.setitem(sys.modules, "minimanifold.tools.jax_reference", None)
    peers = ["JAX jit"]
    if HAVE["torch"]:
        import torch

        def failing(fn, backend, options):
            def step():
                raise RuntimeError("InductorError: planted\nsecond line")
            return step
        monkeypatch.setattr(torch, "compile", failing)
        peers.append("torch.compile")
    rows = bench_peers.measure(1, [1], ["float64"], 1, peers=peers, compile_backend="eager", pause=0)
    by = {r["step"]: r for r in rows}
    assert by["numpy"]["ms"] > 0 and by["JAX jit"]["note"] == "not installed"
    if HAVE["torch"]:
        assert by["torch.compile"]["note"] == "compile failed: RuntimeError: InductorError: planted"
        monkeypatch.setenv("CXX", "no-such-c++-compiler")
        with pytest.raises(bench_peers.Missing, match="no C.. compiler"):
            bench_peers.torch_compile_step({}, None, None, None, np.float64, LR)
