"""What an adversarial user found the command lines doing, each now refused in one line
with exit 2 and nothing on disk touched: a non-finite oracle reference, an oracle batch
too large for the memory, --help on an ASCII terminal, recipe-screen arguments that
crashed or trained the wrong runs, and a missing optional extra."""
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from minimanifold.model import cast_params, loss_grads_logits
from minimanifold.files import save_npz
from minimanifold.model.io import save_params
from tests.conftest import small_setup

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python(*args, env=None):
    """``python *args`` from the repository root, one BLAS thread (a training job may be
    sharing the machine), output captured."""
    env = dict(os.environ if env is None else env, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def one_line(r) -> str:
    """The single stderr line of a refusal (no traceback, no warnings)."""
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, (r.returncode, r.stderr)
    return lines[0]


@pytest.fixture
def files(tmp_path):
    cfg, params, tokens, targets = small_setup(attn_only=False, seed=4)
    save_params(tmp_path / "params.npz", cast_params(params, np.float32), cfg)
    save_npz(tmp_path / "batch.npz", {"tokens": tokens, "targets": targets})
    save_npz(tmp_path / "batch_b.npz", {"tokens": tokens[::-1].copy(), "targets": targets[::-1].copy()})
    (tmp_path / "out.npz").write_bytes(b"previous result")
    return tmp_path, cfg, params, tokens, targets


def _first_non_finite(out: dict) -> str:
    return next(k for k in sorted(out) if not np.isfinite(out[k]).all())


def test_oracle_refuses_a_commutator_that_overflows(files):
    """--lr 1e100: the steps leave float64's range; the first non-finite delta (sorted
    order) is named and OUT keeps its old bytes."""
    from minimanifold.analysis.commutator import commutator
    d, cfg, params, tokens, targets = files
    with np.errstate(all="ignore"):
        s = commutator(cast_params(cast_params(params, np.float32), np.float64),     # as the file holds them
                       (tokens, targets), (tokens[::-1], targets[::-1]), 1e100, cfg)
    first = _first_non_finite({"delta." + k: v for k, v in s.delta.items()})
    r = python("-m", "minimanifold.oracle", "commutator", d / "params.npz", d / "batch.npz",
               d / "batch_b.npz", d / "out.npz", "--lr", "1e100")
    line = one_line(r)
    assert "not finite" in line and f"{first!r}" in line and "--lr" in line, line
    assert (d / "out.npz").read_bytes() == b"previous result"
    assert not [f for f in os.listdir(d) if f.endswith(".tmp")]


def test_oracle_refuses_gradients_that_overflow(files):
    d, cfg, params, tokens, targets = files
    huge = {k: v * 1e155 for k, v in params.items()}
    save_params(d / "huge.npz", huge, cfg)
    with np.errstate(all="ignore"):
        loss, grads, logits = loss_grads_logits(huge, tokens, targets, cfg)
    first = _first_non_finite({"logits": logits, "loss": np.asarray(loss),
                               **{"grad." + k: v for k, v in grads.items()}})
    r = python("-m", "minimanifold.oracle", "grads", d / "huge.npz", d / "batch.npz", d / "out.npz")
    line = one_line(r)
    assert "not finite" in line and f"{first!r}" in line, line
    assert (d / "out.npz").read_bytes() == b"previous result"


# The oracle under an address-space limit: the limit leaves 256 MiB above what the
# imported oracle already maps, and a float64 [b,t,d] activation of the batch below
# needs 768 MB, so the computation runs out of memory without the machine doing so.
LIMITED = """
import resource, runpy, sys
import minimanifold.analysis.commutator, minimanifold.files, minimanifold.model.io  # the oracle's imports
import minimanifold.model.transformer, minimanifold.trajectories.progress
with open("/proc/self/status") as f:
    vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (vm + (256 << 20), resource.getrlimit(resource.RLIMIT_AS)[1]))
sys.argv = ["python -m minimanifold.oracle", *sys.argv[1:]]
runpy.run_module("minimanifold.oracle", run_name="__main__")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc, limits RLIMIT_AS")
@pytest.mark.parametrize("command", ["grads", "commutator"])
def test_oracle_says_a_batch_does_not_fit_in_memory(files, command):
    d = files[0]
    b = 1_000_000                                      # 10^6 x 8 tokens: 9 kB compressed
    np.savez_compressed(d / "huge.npz", tokens=np.zeros((b, 8), np.uint8), targets=np.zeros(b, np.uint8))
    batches = [d / "huge.npz"] + ([d / "batch.npz"] if command == "commutator" else [])
    extra = ["--lr", "0.1"] if command == "commutator" else []
    r = python("-c", LIMITED, command, d / "params.npz", *batches, d / "out.npz", *extra)
    line = one_line(r)
    assert f"{b} x 8" in line and "not fit in memory" in line and "smaller batches" in line, line
    assert (d / "out.npz").read_bytes() == b"previous result"


@pytest.mark.parametrize("module", ["minimanifold.oracle", "minimanifold.trajectories.recipes"])
def test_help_prints_on_an_ascii_terminal(module):
    """LC_ALL=C without UTF-8 mode: stdout is ASCII; the en dash of "eq 3–5" is escaped,
    not a UnicodeEncodeError, and the doc keeps it."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONIOENCODING"}
    env.update(LC_ALL="C", LANG="C", PYTHONUTF8="0")
    r = python("-m", module, "--help", env=env)
    assert r.returncode == 0 and r.stdout.startswith("usage:") and not r.stderr, r.stderr
    if module == "minimanifold.oracle":
        assert "eq 3\\u20135" in r.stdout


# The recipe screen with its sweep replaced: training anything exits 99 instead.
NO_TRAINING = """
import runpy, sys
import minimanifold.trajectories.sweep as S
def refuse(*args, **kwargs):
    print("TRAINED", file=sys.stderr)
    sys.exit(99)
S.sweep = refuse
sys.argv = ["recipes", *sys.argv[1:]]
runpy.run_module("minimanifold.trajectories.recipes", run_name="__main__")
"""


@pytest.mark.parametrize("args, needle", [
    (["--seeds", "0"], "--seeds must be a positive integer, got 0"),
    (["--seeds", "-3"], "--seeds must be a positive integer, got -3"),
    (["--jobs", "0"], "--jobs must be a positive integer, got 0"),
    (["--jobs", "-2"], "--jobs must be a positive integer, got -2"),
    (["--seed-list", "0", "0", "--jobs", "2"], "--seed-list names seed 0 twice"),
    (["--seed-list", "3", "-1"], "seeds must be non-negative, got -1"),
    (["--only"], "--only names no recipe"),
    (["--only", "L3-cos0.1", "L3-cos0.1"], "--only names recipe L3-cos0.1 twice"),
])
def test_recipes_refuses_bad_arguments_before_training(tmp_path, args, needle):
    runs = tmp_path / "runs"
    if "--only" not in args:
        args = [*args, "--only", "L3-cos0.1"]
    r = python("-c", NO_TRAINING, *args, "--runs-dir", runs)
    line = one_line(r)
    assert needle in line and not runs.exists(), line


def test_recipes_good_arguments_reach_the_sweep(tmp_path):
    """The control for the refusals above: the replaced sweep is what valid arguments reach."""
    r = python("-c", NO_TRAINING, "--only", "L3-cos0.1", "--seed-list", "0", "1", "--runs-dir", tmp_path / "runs")
    assert r.returncode == 99 and "TRAINED" in r.stderr, r.stderr


# Runs a script or a snippet with some top-level modules made uninstallable, whether or
# not they are installed here.
HIDDEN = """
import importlib.abc, runpy, sys
hidden, what = set(sys.argv[1].split(",")), sys.argv[2]
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in hidden:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Hide())
if what.endswith(".py"):
    sys.argv = [what, *sys.argv[3:]]
    runpy.run_path(what, run_name="__main__")
else:
    exec(what)
"""


@pytest.mark.parametrize("script, hidden, args, extra", [
    ("torch_client.py", "torch,transformer_lens", [], "torch"),
    ("jax_client.py", "jax", [], "jax"),
    pytest.param("torch_client.py", "transformer_lens", ["--hooked"], "transformer_lens",
                 marks=pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                          reason="--hooked reaches TransformerLens only with torch")),
])
def test_example_without_its_framework_names_the_extra(script, hidden, args, extra):
    r = python("-c", HIDDEN, hidden, os.path.join(ROOT, "examples", script), *args)
    line = one_line(r)
    assert f'pip install "minimanifold[{extra}]"' in line and not r.stdout, line


def test_hooked_imports_without_its_extra_and_names_it_when_called():
    call = ("import minimanifold.tools.hooked as h\n"
            "try:\n    h.to_hooked_transformer({}, None)\n"
            "except ImportError as e:\n    print(e)\n    sys.exit(3)\n")
    r = python("-c", HIDDEN, "torch,transformer_lens", call)
    assert r.returncode == 3 and 'pip install "minimanifold[transformer_lens]"' in r.stdout, r.stdout + r.stderr
