"""The example oracle clients under examples/ run and pass, each where its framework is
installed; each planted bug makes it fail (the check can fail)."""
import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def client(name, *args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "examples", name), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


def needs(module):
    return pytest.mark.skipif(importlib.util.find_spec(module) is None, reason=f"{module} not installed")


@needs("torch")
@pytest.mark.parametrize("args, needle", [
    ((), "ok: logits, loss and 18 gradients agree"),
    (("--bug", "scale"), "logits differs"),
    (("--bug", "drop"), "only the oracle's ['ln_final.b']"),
])
def test_torch_client(args, needle):
    r = client("torch_client.py", *args)
    assert needle in r.stdout, r.stdout + r.stderr
    assert r.returncode == (0 if not args else 1)


@needs("transformer_lens")
def test_torch_client_with_a_hooked_transformer():
    """A HookedTransformer has zero attention biases: the oracle returns their gradients
    too, so the key sets agree both ways (2 layers x 4 biases on top of 18)."""
    r = client("torch_client.py", "--hooked")
    assert r.returncode == 0 and "26 gradients agree" in r.stdout, r.stdout + r.stderr


@needs("jax")
@pytest.mark.parametrize("args, needle", [
    ((), "ok: logits, loss and 18 gradients agree"),
    (("--bug", "scale"), "logits differs"),
    (("--bug", "drop"), "only the oracle's ['ln_final.b']"),
    (("--bug", "float32"), "differs from the oracle's"),      # jax_enable_x64 is needed
])
def test_jax_client(args, needle):
    r = client("jax_client.py", *args)
    assert needle in r.stdout, r.stdout + r.stderr
    assert r.returncode == (0 if not args else 1)
