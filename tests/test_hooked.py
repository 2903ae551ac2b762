"""TransformerLens interop (runs where transformer-lens 3.x is installed: the
``transformer_lens`` extra): logits and every attention pattern agree in float64, and a
HookedTransformer comes back as the same parameters."""
import numpy as np
import pytest

pytest.importorskip("transformer_lens")
torch = pytest.importorskip("torch")
from transformer_lens import HookedTransformer  # noqa: E402

from minimanifold.model import forward  # noqa: E402
from minimanifold.tools.hooked import (from_hooked_transformer, hooked_config,  # noqa: E402
                                       to_hooked_transformer)
from tests.conftest import small_setup  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.mark.parametrize("attn_bias", [False, True])
@pytest.mark.parametrize("attn_only", [True, False])
def test_logits_and_every_pattern_agree_in_float64(attn_only, attn_bias):
    cfg, params, tokens, _ = small_setup(attn_only=attn_only, n_layers=3, seed=5, batch=7, spread=0.5,
                                         attn_bias=attn_bias)
    model = to_hooked_transformer(params, cfg)
    with torch.no_grad():
        tl_logits, cache = model.run_with_cache(torch.as_tensor(tokens))
    logits, ours = forward(params, tokens, cfg, all_positions=True)
    assert tl_logits.dtype == torch.float64
    np.testing.assert_allclose(tl_logits[:, -1].numpy(), logits, rtol=0, atol=1e-12)
    for l in range(cfg.n_layers):
        for hook in (f"blocks.{l}.attn.hook_pattern", f"blocks.{l}.hook_resid_post"):
            np.testing.assert_allclose(cache[hook].numpy(), ours.hooks[hook], rtol=0, atol=1e-12, err_msg=hook)
    assert np.abs(logits).max() > 0.1          # a real function, not all zeros


def test_round_trip_and_refusals():
    cfg, params, _, _ = small_setup(attn_only=False, seed=3)
    back, cfg2 = from_hooked_transformer(to_hooked_transformer(params, cfg))
    assert cfg2 == cfg and list(back) == list(params)
    for k in params:
        np.testing.assert_array_equal(back[k], params[k])
    model = to_hooked_transformer(params, cfg)
    assert not any(model.blocks[l].attn.b_O.any() for l in range(cfg.n_layers))     # bias-free: zeros
    with torch.no_grad():
        model.blocks[1].attn.b_V[0, 0] = 0.5
    with pytest.raises(ValueError, match="'blocks.1.attn.b_V' is nonzero, but attn_bias=False"):
        from_hooked_transformer(model, attn_bias=False)
    back, cfg3 = from_hooked_transformer(model)                   # a nonzero bias: carried over
    assert cfg3.attn_bias and back["blocks.1.attn.b_V"][0, 0] == 0.5 and not back["blocks.0.attn.b_Q"].any()
    other = HookedTransformer(hooked_config(cfg).__class__(**{
        **{k: getattr(hooked_config(cfg), k) for k in ("n_layers", "d_model", "n_ctx", "d_head", "n_heads",
                                                    "d_vocab", "d_vocab_out", "d_mlp")},
        "act_fn": "relu", "normalization_type": "LN"}))
    with pytest.raises(ValueError, match="act_fn='relu'"):
        from_hooked_transformer(other)
    with pytest.raises(ValueError, match="do not match the config"):
        to_hooked_transformer({k: v for k, v in params.items() if k != "ln_final.w"}, cfg)


def test_attention_biases_round_trip_both_ways():
    """Nonzero biases go into the HookedTransformer's b_Q, b_K, b_V, b_O and come back
    bit for bit; attn_bias=True keeps a biased model's zero biases, attn_bias=None drops them."""
    cfg, params, tokens, _ = small_setup(attn_only=False, n_layers=2, seed=7, attn_bias=True)
    model = to_hooked_transformer(params, cfg)
    np.testing.assert_array_equal(model.blocks[1].attn.b_K.detach().numpy(), params["blocks.1.attn.b_K"])
    np.testing.assert_array_equal(model.blocks[0].attn.b_O.detach().numpy(), params["blocks.0.attn.b_O"])
    back, cfg2 = from_hooked_transformer(model)
    assert cfg2 == cfg and list(back) == list(params)
    for k in params:
        np.testing.assert_array_equal(back[k], params[k], err_msg=k)
    zero = {k: np.zeros_like(v) if k.rsplit(".", 1)[1] in ("b_Q", "b_K", "b_V", "b_O") else v
            for k, v in params.items()}
    assert from_hooked_transformer(to_hooked_transformer(zero, cfg), attn_bias=True)[1] == cfg
    bias_free, cfg4 = from_hooked_transformer(to_hooked_transformer(zero, cfg))
    assert not cfg4.attn_bias and set(bias_free) < set(params)
