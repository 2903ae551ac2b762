"""Parity with an independent PyTorch implementation (skipped when torch is absent)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from minimanifold.model import optim  # noqa: E402
from minimanifold.tools import torch_reference as tr  # noqa: E402
from minimanifold.model import loss_grads_logits  # noqa: E402
from tests.conftest import small_setup  # noqa: E402


@pytest.mark.parametrize("attn_bias", [False, True])
@pytest.mark.parametrize("attn_only", [True, False])
def test_logits_and_every_gradient_match_pytorch(attn_only, attn_bias):
    """With ``attn_bias``: random nonzero b_Q, b_K, b_V, b_O in every layer, gradients
    included (torch_reference adds them to q, k, v and the output, from the spec)."""
    cfg, params, tokens, targets = small_setup(attn_only=attn_only, n_layers=3, seed=11, batch=9,
                                               attn_bias=attn_bias)
    loss, grads, logits = loss_grads_logits(params, tokens, targets, cfg)
    tloss, tgrads, tlogits = tr.loss_grads_logits(params, tokens, targets, cfg)
    np.testing.assert_allclose(logits, tlogits, rtol=1e-11, atol=1e-12)
    assert abs(float(loss) - tloss) < 1e-12
    assert list(grads) == list(params) and set(tgrads) == set(params)
    scale = max(np.abs(g).max() for g in tgrads.values())
    for k in params:       # b_K's gradient is 0 up to rounding (a whole softmax row shifts)
        atol = 1e-12 * max(scale, 1) if k.endswith("b_K") else 1e-12
        np.testing.assert_allclose(grads[k], tgrads[k], rtol=1e-9, atol=atol, err_msg=k)
    if attn_bias:          # not vacuous: nonzero biases, nonzero gradients, and they matter
        for l in range(cfg.n_layers):
            for n in ("b_Q", "b_V", "b_O"):
                k = f"blocks.{l}.attn.{n}"
                assert np.abs(params[k]).max() > 0.1 and np.abs(tgrads[k]).max() > 1e-6, k


def test_default_size_float32_matches_pytorch():
    """The benchmark's model at float32: agreement to float32 precision."""
    from minimanifold import ModelConfig, TaskConfig, init_params, make_batch
    cfg = ModelConfig()
    params = init_params(cfg, 0)
    b = make_batch(np.random.default_rng(0), TaskConfig(), [1, 2, 3], 16)
    _, grads, logits = loss_grads_logits(params, b.tokens, b.targets, cfg)
    _, tgrads, tlogits = tr.loss_grads_logits(params, b.tokens, b.targets, cfg, dtype=torch.float32)
    np.testing.assert_allclose(logits, tlogits, rtol=1e-4, atol=1e-5)
    for k in params:
        scale = np.abs(tgrads[k]).max()
        assert np.abs(grads[k] - tgrads[k]).max() <= 1e-4 * scale + 1e-9, k


def test_adamw_matches_torch():
    cfg, params, tokens, targets = small_setup(seed=2)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    opt = torch.optim.AdamW(list(tp.values()), lr=3e-3, weight_decay=0.01)
    state = optim.init_state("adamw", params)
    ours = {k: v.copy() for k, v in params.items()}
    for _ in range(5):
        _, g, _ = loss_grads_logits(ours, tokens, targets, cfg)
        optim.adamw_step(ours, g, state, 3e-3, 0.01)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(tr.forward(tp, torch.as_tensor(tokens), cfg),
                                          torch.as_tensor(targets)).backward()
        opt.step()
    for k in ours:
        np.testing.assert_allclose(ours[k], tp[k].detach().numpy(), rtol=1e-9, atol=1e-12, err_msg=k)


def test_a_pytorch_state_dict_export_loads(tmp_path):
    """What a PyTorch user writes: np.savez(path, **{k: v.numpy() for k in state_dict})."""
    from minimanifold import load_params
    cfg, params, tokens, targets = small_setup(attn_only=False, seed=6)
    state_dict = {k: v.detach() for k, v in tr.to_torch(params).items()}
    np.savez(tmp_path / "sd.npz", **{k: v.numpy() for k, v in state_dict.items()})
    loaded, cfg2 = load_params(tmp_path / "sd.npz")
    assert cfg2 == cfg
    np.testing.assert_array_equal(loss_grads_logits(loaded, tokens, targets, cfg)[2],
                                  loss_grads_logits(params, tokens, targets, cfg)[2])


def test_zero_attention_bias_gradients_match_pytorch():
    """A TransformerLens state dict's zero attention biases: their gradients equal
    autograd's for a model that has them (every layer)."""
    import dataclasses
    cfg, params, tokens, targets = small_setup(n_layers=3, seed=4, batch=7)
    cfg = dataclasses.replace(cfg, attn_bias=True)
    h, e, d = cfg.n_heads, cfg.d_head, cfg.d_model
    biases = {f"blocks.{l}.attn.{n}": np.zeros((d,) if n == "b_O" else (h, e))
              for l in range(cfg.n_layers) for n in ("b_Q", "b_K", "b_V", "b_O")}
    _, grads, _ = loss_grads_logits({**params, **biases}, tokens, targets, cfg)
    _, tgrads, _ = tr.loss_grads_logits({**params, **biases}, tokens, targets, cfg)
    assert set(grads) == set(tgrads)
    for k in biases:
        scale = np.abs(tgrads[k]).max()
        np.testing.assert_allclose(grads[k], tgrads[k], rtol=1e-9, atol=1e-12 * max(scale, 1), err_msg=k)
    assert max(np.abs(tgrads[f"blocks.{l}.attn.b_Q"]).max() for l in range(3)) > 1e-6   # not vacuous
