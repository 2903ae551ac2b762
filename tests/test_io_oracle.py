"""Parameter files and the oracle CLI: round trips and every bad-input case."""
import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

from minimanifold import ModelConfig, init_params
from minimanifold.model.io import load_params, save_params
from minimanifold.files import save_npz
from minimanifold.model import cast_params, loss_grads_logits
from tests.conftest import small_setup

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("attn_only, n_layers", [(True, 2), (False, 3), (True, 5)])
def test_save_load_round_trip(tmp_path, attn_only, n_layers):
    import minimanifold as mm
    cfg = ModelConfig(n_layers=n_layers, attn_only=attn_only, d_model=32, n_heads=2, d_head=16)
    params = init_params(cfg, 1)
    mm.save_params(tmp_path / "p.npz", params, cfg)
    back, cfg2 = mm.load_params(tmp_path / "p.npz")
    assert cfg2 == cfg and list(back) == list(params)
    assert all(np.array_equal(back[k], params[k]) and back[k].dtype == params[k].dtype for k in params)


def test_loads_a_bare_state_dict_with_transformerlens_extras(tmp_path):
    """Names and shapes alone define the model; a TransformerLens state dict's attention
    biases (zero or not) make a model with attention biases, and its buffers are ignored;
    a file with only some of the biases is refused, naming a missing one."""
    cfg = ModelConfig(d_vocab=20, d_vocab_out=6, n_ctx=12, d_model=24, n_heads=3, d_head=8,
                      n_layers=3, attn_only=False, d_mlp=40)
    params = init_params(cfg, 2, np.float64)
    zeros = {f"blocks.{l}.attn.{n}": np.zeros(24 if n == "b_O" else (3, 8))
             for l in range(3) for n in ("b_Q", "b_K", "b_V", "b_O")}
    buffers = {f"blocks.{l}.attn.IGNORE": np.array(-1e5) for l in range(3)}
    np.savez(tmp_path / "sd.npz", **params, **zeros, **buffers)
    back, cfg2 = load_params(tmp_path / "sd.npz")
    assert cfg2 == dataclasses.replace(cfg, attn_bias=True) and set(back) == {*params, *zeros}
    np.savez(tmp_path / "bias.npz", **params, **{**zeros, "blocks.0.attn.b_Q": np.ones((3, 8))})
    assert np.array_equal(load_params(tmp_path / "bias.npz")[0]["blocks.0.attn.b_Q"], np.ones((3, 8)))
    np.savez(tmp_path / "some.npz", **params, **{"blocks.0.attn.b_Q": np.zeros((3, 8)),
                                                 "blocks.0.attn.b_O": np.zeros(24)})
    with pytest.raises(ValueError, match="missing parameter 'blocks.0.attn.b_K'"):
        load_params(tmp_path / "some.npz")


def test_load_errors_name_the_key(tmp_path):
    cfg = ModelConfig(d_model=16, n_heads=2, d_head=8)
    params = init_params(cfg, 0)
    missing = dict(params)
    del missing["blocks.1.attn.W_K"]
    np.savez(tmp_path / "m.npz", **missing)
    with pytest.raises(ValueError, match=r"missing parameter 'blocks.1.attn.W_K'"):
        load_params(tmp_path / "m.npz")
    del missing["blocks.1.attn.W_Q"]
    np.savez(tmp_path / "m.npz", **missing)
    with pytest.raises(ValueError, match=r"stray key 'blocks.1.*layer 1 has no 'blocks.1.attn.W_Q'"):
        load_params(tmp_path / "m.npz")
    np.savez(tmp_path / "m.npz", **params, **{"blocks.7.x": np.zeros(3)})
    with pytest.raises(ValueError, match=r"stray key 'blocks.7.x'.*layers 0..1 do"):
        load_params(tmp_path / "m.npz")
    bad = dict(params, **{"ln_final.w": np.ones(5, np.float32)})
    np.savez(tmp_path / "s.npz", **bad)
    with pytest.raises(ValueError, match=r"'ln_final.w' has shape \(5,\)"):
        load_params(tmp_path / "s.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.npz: not a readable"):
        load_params(tmp_path / "junk.npz")
    with pytest.raises(ValueError, match="no such file"):
        load_params(tmp_path / "absent.npz")


def oracle(*args):
    return subprocess.run([sys.executable, "-m", "minimanifold.oracle", *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True)


@pytest.fixture
def oracle_files(tmp_path):
    cfg, params, tokens, targets = small_setup(attn_only=False, seed=4)
    save_params(tmp_path / "params.npz", cast_params(params, np.float32), cfg)
    save_npz(tmp_path / "batch.npz", {"tokens": tokens, "targets": targets})
    return tmp_path, cfg, tokens, targets


def test_oracle_grads_round_trip(oracle_files):
    d, cfg, tokens, targets = oracle_files
    r = oracle("grads", d / "params.npz", d / "batch.npz", d / "out.npz")
    assert r.returncode == 0, r.stderr
    out = np.load(d / "out.npz")
    params, _ = load_params(d / "params.npz")
    loss, grads, logits = loss_grads_logits(cast_params(params, np.float64), tokens, targets, cfg)
    assert out["logits"].dtype == np.float64 and out["loss"].shape == ()
    np.testing.assert_array_equal(out["logits"], logits)
    assert float(out["loss"]) == float(loss)
    assert sorted(k for k in out.files if k.startswith("grad.")) == sorted("grad." + k for k in params)
    for k in params:
        np.testing.assert_array_equal(out["grad." + k], grads[k])


def test_oracle_accepts_attention_biases_and_emits_their_gradients(oracle_files):
    """A HookedTransformer's state dict holds b_Q/b_K/b_V/b_O (nonzero here): the oracle
    computes the model with them and returns a gradient for each (a client compares every
    key both ways) and none the file lacks; some-but-not-all, a wrong shape or a bias in a
    layer the model lacks is refused in one line."""
    d, cfg, tokens, targets = oracle_files
    params, _ = load_params(d / "params.npz")
    h, e = cfg.n_heads, cfg.d_head
    rng = np.random.default_rng(5)
    biases = {f"blocks.{l}.attn.{n}": rng.normal(0, 0.5, cfg.d_model if n == "b_O" else (h, e))
              for l in range(cfg.n_layers) for n in ("b_Q", "b_K", "b_V", "b_O")}
    np.savez(d / "tl.npz", **params, **biases, **{"blocks.0.attn.IGNORE": np.array(-1e5)})
    r = oracle("grads", d / "tl.npz", d / "batch.npz", d / "out.npz")
    assert r.returncode == 0, r.stderr
    out = np.load(d / "out.npz")
    assert sorted(k for k in out.files if k.startswith("grad.")) == sorted("grad." + k for k in [*params, *biases])
    bparams, bcfg = load_params(d / "tl.npz")
    assert bcfg.attn_bias and set(bparams) == {*params, *biases}
    loss, grads, logits = loss_grads_logits(cast_params(bparams, np.float64), tokens, targets, bcfg)
    np.testing.assert_array_equal(out["logits"], logits)
    assert float(out["loss"]) == float(loss)
    plain_logits = loss_grads_logits(cast_params(params, np.float64), tokens, targets, cfg)[2]
    assert np.abs(logits - plain_logits).max() > 1e-3                   # the biases were used
    for k in bparams:
        np.testing.assert_array_equal(out["grad." + k], grads[k])
    for k in biases:
        assert np.abs(grads[k]).max() > 0
    for bad, needle in [({k: v for k, v in biases.items() if k != "blocks.1.attn.b_V"},
                         "missing parameter 'blocks.1.attn.b_V'"),
                        (dict(biases, **{"blocks.0.attn.b_V": np.zeros((h + 1, e))}), "'blocks.0.attn.b_V' has shape"),
                        (dict(biases, **{"blocks.5.attn.b_O": np.zeros(cfg.d_model)}), "stray key 'blocks.5.attn.b_O'")]:
        np.savez(d / "bad.npz", **params, **bad)
        r = oracle("grads", d / "bad.npz", d / "batch.npz", d / "out2.npz")
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr, r.stderr
        assert not (d / "out2.npz").exists()


def _write_batch(path, **arrays):
    save_npz(path, arrays)
    return path


@pytest.mark.parametrize("case, needle", [
    ("missing_params_file", "absent.npz: no such file"),
    ("unreadable_params", "params.npz: not a readable"),
    ("missing_param", "missing parameter 'blocks.0.attn.W_V'"),
    ("wrong_shape", "'unembed.W_U' has shape (11, 5), but the architecture implies (12, 5)"),
    ("token_outside_vocab", "'tokens' holds 16, outside the vocabulary 0..15"),
    ("negative_token", "'tokens' holds -1"),
    ("missing_tokens", "missing key 'tokens'"),
    ("too_long", "more than n_ctx=10"),
    ("float_tokens", "'tokens' must hold integers"),
    ("target_outside", "'targets' holds 5"),
    ("targets_shape", "'targets' must have shape"),
])
def test_oracle_bad_input(oracle_files, case, needle):
    d, cfg, tokens, targets = oracle_files
    params_path, batch_path = d / "params.npz", d / "batch.npz"
    params, _ = load_params(params_path)
    if case == "missing_params_file":
        params_path = d / "absent.npz"
    elif case == "unreadable_params":
        params_path.write_bytes(b"\x00garbage")
    elif case == "missing_param":
        np.savez(params_path, **{k: v for k, v in params.items() if k != "blocks.0.attn.W_V"})
    elif case == "wrong_shape":
        np.savez(params_path, **dict(params, **{"unembed.W_U": np.zeros((11, 5), np.float32)}))
    elif case == "token_outside_vocab":
        t = tokens.copy(); t[1, 2] = 16
        _write_batch(batch_path, tokens=t, targets=targets)
    elif case == "negative_token":
        t = tokens.copy(); t[0, 0] = -1
        _write_batch(batch_path, tokens=t, targets=targets)
    elif case == "missing_tokens":
        _write_batch(batch_path, targets=targets)
    elif case == "too_long":
        _write_batch(batch_path, tokens=np.zeros((2, 11), np.int64), targets=np.zeros(2, np.int64))
    elif case == "float_tokens":
        _write_batch(batch_path, tokens=tokens.astype(np.float32), targets=targets)
    elif case == "target_outside":
        _write_batch(batch_path, tokens=tokens, targets=np.full_like(targets, 5))
    elif case == "targets_shape":
        _write_batch(batch_path, tokens=tokens, targets=targets[:-1])
    out = d / "out.npz"
    out.write_bytes(b"previous result")
    r = oracle("grads", params_path, batch_path, out)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert out.read_bytes() == b"previous result"          # nothing on disk was lost
    assert not [f for f in os.listdir(d) if f.endswith(".tmp")]


def test_oracle_commutator_equals_library(oracle_files):
    from minimanifold.analysis.commutator import commutator
    d, cfg, tokens, targets = oracle_files
    save_npz(d / "batch_b.npz", {"tokens": tokens[::-1].copy(), "targets": targets[::-1].copy()})
    r = oracle("commutator", d / "params.npz", d / "batch.npz", d / "batch_b.npz", d / "c.npz", "--lr", "0.05")
    assert r.returncode == 0, r.stderr
    out = np.load(d / "c.npz")
    params, _ = load_params(d / "params.npz")
    s = commutator(cast_params(params, np.float64), (tokens, targets), (tokens[::-1], targets[::-1]), 0.05, cfg)
    assert sorted(k for k in out.files if k.startswith("delta.")) == sorted("delta." + k for k in params)
    for k in params:
        assert out["delta." + k].dtype == np.float64
        np.testing.assert_array_equal(out["delta." + k], s.delta[k])
    assert float(out["lr"]) == 0.05


@pytest.mark.parametrize("args, needle", [
    (["--lr", "0"], "--lr must be a positive"),
    (["--lr", "0.1", "swap_b_missing"], "absent.npz: no such file"),
])
def test_oracle_commutator_bad_input(oracle_files, args, needle):
    d, cfg, tokens, targets = oracle_files
    b = d / ("absent.npz" if "swap_b_missing" in args else "batch.npz")
    args = [a for a in args if a != "swap_b_missing"]
    r = oracle("commutator", d / "params.npz", d / "batch.npz", b, d / "c.npz", *args)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr
    assert not (d / "c.npz").exists()


@pytest.mark.parametrize("case", ["out_is_params", "out_is_batch", "out_is_folder", "out_is_symlink",
                                  "out_under_a_file", "out_is_device"])
def test_oracle_never_overwrites_what_it_must_not(oracle_files, case):
    """OUT that is an input, a folder, a symlink, under a file or a device: one line, exit 2,
    and every file (and the link) exactly as before."""
    import os
    d = oracle_files[0]
    params, batch = d / "params.npz", d / "batch.npz"
    keep = d / "keep.npz"
    keep.write_bytes(b"precious")
    out = {"out_is_params": params, "out_is_batch": batch, "out_is_folder": d,
           "out_is_symlink": d / "link.npz", "out_under_a_file": keep / "out.npz",
           "out_is_device": "/dev/null"}[case]
    if case == "out_is_symlink":
        os.symlink(keep, out)
    before = {p: p.read_bytes() for p in (params, batch, keep)}
    r = oracle("grads", params, batch, out)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "OUT" in r.stderr, r.stderr
    assert {p: p.read_bytes() for p in before} == before
    if case == "out_is_symlink":
        assert os.path.islink(out) and os.readlink(out) == str(keep)
    if case == "out_is_device":
        import stat
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    r = oracle("commutator", params, batch, batch, out, "--lr", "0.1")
    assert r.returncode == 2 and {p: p.read_bytes() for p in before} == before


@pytest.mark.parametrize("bad, needle", [(np.nan, "non-finite"), (np.inf, "non-finite"),
                                         ("complex", "complex"), ("float16", "non-finite")])
def test_oracle_refuses_non_finite_or_non_real_parameters(oracle_files, bad, needle):
    d = oracle_files[0]
    params, _ = load_params(d / "params.npz")
    W = params["blocks.0.attn.W_Q"].astype(np.float64)
    if bad == "complex":
        W = W + 1j
    elif bad == "float16":
        with np.errstate(over="ignore"):
            W = (W * 1e6).astype(np.float16)         # overflows to inf
    else:
        W.flat[3] = bad
    np.savez(d / "params.npz", **dict(params, **{"blocks.0.attn.W_Q": W}))
    r = oracle("grads", d / "params.npz", d / "batch.npz", d / "out.npz")
    assert r.returncode == 2 and "'blocks.0.attn.W_Q'" in r.stderr and needle in r.stderr, r.stderr
    assert not (d / "out.npz").exists()


def test_oracle_creates_missing_folders_for_a_new_out(oracle_files):
    d = oracle_files[0]
    r = oracle("grads", d / "params.npz", d / "batch.npz", d / "new" / "sub" / "out.npz")
    assert r.returncode == 0 and (d / "new" / "sub" / "out.npz").is_file()
