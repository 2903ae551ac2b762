"""Optional attention biases (issue 26 §2): a model without them computes exactly what it
did before they existed (bit for bit, against the code of the last commit without them,
through issue 25 §4's rewrite of the model);
with them, the parameter dict, its flat order, init and parameter files carry them.
Their gradients are checked in test_gradcheck.py and against PyTorch in
test_torch_parity.py."""
import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from minimanifold import ModelConfig, TaskConfig, init_params, make_batch
from minimanifold.model import (backward, flatten, forward, loss_grads_logits, param_shapes,
                                unflatten)
from minimanifold.model.io import load_params, save_params
from minimanifold.trajectories.rundir import with_later_options
from minimanifold.trajectories.training_loop import TrainConfig, run_config
from tests.conftest import small_setup

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEFORE = "1d3d4fe486c0405a8a720133df42b9b51dedaa23"     # the last commit without attention biases
BIASES = ("b_Q", "b_K", "b_V", "b_O")


@pytest.fixture(scope="module")
def model_before(tmp_path_factory):
    """minimanifold/model as it was at BEFORE, imported as its own package
    ``model_before`` (skipped outside a git checkout holding that commit)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    ls = subprocess.run(["git", "-C", ROOT, "ls-tree", "--name-only", BEFORE, "minimanifold/model/"],
                        capture_output=True, text=True)
    if ls.returncode != 0 or not ls.stdout.strip():
        pytest.skip(f"commit {BEFORE[:7]} is not in this checkout")
    pkg = tmp_path_factory.mktemp("before") / "model_before"
    pkg.mkdir()
    for path in ls.stdout.split():
        text = subprocess.run(["git", "-C", ROOT, "show", f"{BEFORE}:{path}"], capture_output=True,
                              text=True, check=True).stdout
        (pkg / os.path.basename(path)).write_text(text)
    spec = importlib.util.spec_from_file_location("model_before", pkg / "__init__.py",
                                                  submodule_search_locations=[str(pkg)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["model_before"] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        for name in [n for n in sys.modules if n == "model_before" or n.startswith("model_before.")]:
            del sys.modules[name]


def _default_float32():
    """The benchmark's model (B=64 would be slow here: 16) in float32, training's dtype."""
    cfg = ModelConfig()
    b = make_batch(np.random.default_rng(0), TaskConfig(), [1, 2, 3], 16)
    return cfg, init_params(cfg, 0), b.tokens, b.targets


@pytest.mark.parametrize("case", ["attn_only", "mlp", "float32"])
def test_bias_free_model_is_bit_identical_to_the_code_before_biases(model_before, case):
    if case == "float32":
        cfg, params, tokens, targets = _default_float32()
    else:
        cfg, params, tokens, targets = small_setup(attn_only=case == "attn_only", n_layers=3, seed=12)
    old_cfg = model_before.ModelConfig(**{k: v for k, v in dataclasses.asdict(cfg).items() if k != "attn_bias"})
    assert list(model_before.param_shapes(old_cfg)) == list(param_shapes(cfg))
    loss, grads, logits = loss_grads_logits(params, tokens, targets, cfg)
    old_loss, old_grads, old_logits = model_before.loss_grads_logits(params, tokens, targets, old_cfg)
    assert logits.dtype == old_logits.dtype and np.array_equal(logits, old_logits)
    assert loss == old_loss
    assert list(grads) == list(old_grads) == list(params)
    for k in params:
        assert grads[k].dtype == old_grads[k].dtype and np.array_equal(grads[k], old_grads[k]), k
    full, cache = forward(params, tokens, cfg, all_positions=True)        # the analyses' path
    old_full, old_cache = model_before.forward(params, tokens, old_cfg, all_positions=True)
    assert np.array_equal(full, old_full)
    for hook, act in cache.hooks.items():
        assert np.array_equal(act, old_cache.hooks[hook]), hook


@pytest.mark.parametrize("attn_only", [True, False])
def test_zero_biases_change_no_bit_of_the_bias_free_model(attn_only):
    """x + 0 == x exactly: logits, loss and every shared gradient are bit-identical."""
    cfg, params, tokens, targets = small_setup(attn_only=attn_only, n_layers=3, seed=13)
    bcfg = dataclasses.replace(cfg, attn_bias=True)
    zeros = {n: np.zeros(s) for n, s in param_shapes(bcfg).items() if n.rsplit(".", 1)[1] in BIASES}
    bparams = {n: {**params, **zeros}[n] for n in param_shapes(bcfg)}
    loss, grads, logits = loss_grads_logits(params, tokens, targets, cfg)
    bloss, bgrads, blogits = loss_grads_logits(bparams, tokens, targets, bcfg)
    assert bloss == loss and np.array_equal(blogits, logits)
    assert list(bgrads) == list(bparams) and set(bgrads) - set(grads) == set(zeros)
    for k in grads:
        assert np.array_equal(bgrads[k], grads[k]), k
    assert min(np.abs(bgrads[k]).max() for k in zeros if not k.endswith("b_K")) > 1e-6


def test_nonzero_biases_change_the_function():
    cfg, params, tokens, targets = small_setup(attn_only=False, seed=14, attn_bias=True)
    logits, _ = forward(params, tokens, cfg)
    for n in ("b_Q", "b_V", "b_O"):                       # b_K cannot (a whole softmax row shifts)
        zeroed = dict(params, **{f"blocks.0.attn.{n}": np.zeros_like(params[f"blocks.0.attn.{n}"])})
        assert np.abs(forward(zeroed, tokens, cfg)[0] - logits).max() > 1e-4, n


def test_parameter_names_order_init_and_flat_round_trip():
    cfg = ModelConfig(d_model=16, n_heads=2, d_head=8, n_layers=2, attn_bias=True)
    shapes = param_shapes(cfg)
    for l in range(2):
        p = f"blocks.{l}.attn."
        assert [shapes[p + n] for n in BIASES] == [(2, 8), (2, 8), (2, 8), (16,)]
        names = list(shapes)
        assert names.index(p + "b_Q") == names.index(p + "W_O") + 1       # TransformerLens's order
        assert names[names.index(p + "b_Q"):names.index(p + "b_Q") + 4] == [p + n for n in BIASES]
    params = init_params(cfg, 3)
    plain = init_params(dataclasses.replace(cfg, attn_bias=False), 3)
    assert list(params) == list(shapes)
    assert all(params[k].shape == shapes[k] and params[k].dtype == np.float32 for k in shapes)
    assert all(not params[k].any() for k in shapes if k.rsplit(".", 1)[1] in BIASES)   # zero, as in TL
    assert all(np.array_equal(plain[k], params[k]) for k in plain)                     # same draws
    rng = np.random.default_rng(0)
    params = {k: rng.standard_normal(s) for k, s in shapes.items()}
    theta = flatten(params)
    assert theta.size == sum(int(np.prod(s)) for s in shapes.values())
    back = unflatten(theta, shapes)
    assert list(back) == list(shapes) and all(np.array_equal(back[k], params[k]) for k in shapes)
    assert np.array_equal(flatten(back), theta)


def test_config_field_and_earlier_runs():
    assert ModelConfig().attn_bias is False
    with pytest.raises(ValueError, match="attn_bias must be a bool"):
        ModelConfig(attn_bias=1)
    cfg = ModelConfig(attn_bias=True)
    assert ModelConfig.from_json(cfg.to_json()) == cfg
    old = json.loads(ModelConfig().to_json())
    del old["attn_bias"]                                 # a config written before the field existed
    assert ModelConfig.from_json(json.dumps(old)) == ModelConfig()
    task, train = TaskConfig(), TrainConfig()
    stored = json.loads(json.dumps(run_config(ModelConfig(), task, train)))
    del stored["model"]["attn_bias"]
    assert with_later_options(stored) == json.loads(json.dumps(run_config(ModelConfig(), task, train)))
    assert with_later_options(stored) != json.loads(json.dumps(run_config(cfg, task, train)))


def test_files_with_biases(tmp_path):
    cfg, params, tokens, targets = small_setup(attn_only=False, n_layers=3, seed=15, attn_bias=True)
    save_params(tmp_path / "b.npz", params, cfg)
    back, cfg2 = load_params(tmp_path / "b.npz")
    assert cfg2 == cfg and cfg2.attn_bias and list(back) == list(params)
    assert all(np.array_equal(back[k], params[k]) for k in params)
    assert np.abs(back["blocks.2.attn.b_Q"]).max() > 0.1                 # nonzero biases load
    partial = {k: v for k, v in params.items() if k != "blocks.1.attn.b_K"}
    np.savez(tmp_path / "p.npz", **partial)
    with pytest.raises(ValueError, match=r"missing parameter 'blocks.1.attn.b_K' \(the file holds other "
                                         r"attention biases"):
        load_params(tmp_path / "p.npz")
    plain = {k: v for k, v in params.items() if k.rsplit(".", 1)[1] not in BIASES}
    np.savez(tmp_path / "one.npz", **plain, **{"blocks.0.attn.b_O": np.zeros(cfg.d_model)})
    with pytest.raises(ValueError, match=r"missing parameter 'blocks.0.attn.b_Q'"):
        load_params(tmp_path / "one.npz")
    np.savez(tmp_path / "s.npz", **dict(params, **{"blocks.2.attn.b_O": np.zeros((cfg.n_heads, cfg.d_head))}))
    with pytest.raises(ValueError, match=r"'blocks.2.attn.b_O' has shape \(3, 4\), but the architecture "
                                         r"implies \(12,\)"):
        load_params(tmp_path / "s.npz")
    np.savez(tmp_path / "plain.npz", **plain)
    assert load_params(tmp_path / "plain.npz")[1] == dataclasses.replace(cfg, attn_bias=False)


def test_params_and_config_must_agree_on_biases():
    """``cfg`` says whether the model has biases; params without them are refused by key."""
    cfg, params, tokens, _ = small_setup(seed=16, attn_bias=True)
    plain = {k: v for k, v in params.items() if k.rsplit(".", 1)[1] not in BIASES}
    with pytest.raises(KeyError, match="blocks.0.attn.b_Q"):
        forward(plain, tokens, cfg)
    bias_free = dataclasses.replace(cfg, attn_bias=False)
    logits, cache = forward(params, tokens, bias_free)     # extra keys: the backward names one
    with pytest.raises(KeyError, match="attn.b_"):
        backward(np.ones_like(logits), cache)
