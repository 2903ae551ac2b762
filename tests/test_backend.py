"""The backend switch: numpy by default, cupy on request, a clear error without CuPy."""
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from minimanifold.model.backend import get_backend, to_numpy, xp_of

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAVE_CUPY = importlib.util.find_spec("cupy") is not None


def test_numpy_default(monkeypatch):
    monkeypatch.delenv("MINIMANIFOLD_BACKEND", raising=False)
    assert get_backend() is np and get_backend("numpy") is np
    x = np.ones(3)
    assert xp_of(x) is np and to_numpy(x) is x


def test_unknown_backend_is_named():
    with pytest.raises(ValueError, match="backend must be one of .* got 'jax'"):
        get_backend("jax")


@pytest.mark.skipif(HAVE_CUPY, reason="CuPy is installed here")
def test_cupy_without_cupy_is_a_clear_error(monkeypatch):
    with pytest.raises(RuntimeError, match="CuPy is not installed"):
        get_backend("cupy")
    monkeypatch.setenv("MINIMANIFOLD_BACKEND", "cupy")
    with pytest.raises(RuntimeError, match="CuPy is not installed"):
        get_backend()


@pytest.mark.skipif(HAVE_CUPY, reason="CuPy is installed here")
def test_train_cli_with_cupy_requested_fails_in_one_line(tmp_path):
    env = dict(os.environ, MINIMANIFOLD_BACKEND="cupy")
    r = subprocess.run([sys.executable, "-m", "minimanifold.train", str(tmp_path / "r"), "--steps", "1"],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "CuPy is not installed" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(not HAVE_CUPY, reason="needs CuPy and a GPU")
def test_cupy_matches_numpy():
    from tests.conftest import small_setup
    from minimanifold.model import loss_and_grads
    cp = get_backend("cupy")
    cfg, params, tokens, targets = small_setup(seed=1)
    loss, grads = loss_and_grads(params, tokens, targets, cfg)
    gp = {k: cp.asarray(v) for k, v in params.items()}
    closs, cgrads = loss_and_grads(gp, cp.asarray(tokens), cp.asarray(targets), cfg)
    assert abs(float(closs) - float(loss)) < 1e-10
    for k in params:
        np.testing.assert_allclose(to_numpy(cgrads[k]), grads[k], rtol=1e-8, atol=1e-12)


def test_matmul_into_strided_view():
    from minimanifold.model.backend import matmul_into
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 5, 6))
    buf = np.zeros((2, 4, 3, 6))
    matmul_into(a, b, buf.transpose(0, 2, 1, 3))
    np.testing.assert_allclose(buf.transpose(0, 2, 1, 3), a @ b, rtol=1e-13)
