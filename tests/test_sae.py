import numpy as np

from minimanifold.analysis import sae as S
from minimanifold.tools.gradcheck import numerical_grad, rel_error


def test_sae_gradient_check():
    rng = np.random.default_rng(0)
    sae = S.init_sae(6, 10, 1)
    sae = {k: v + rng.normal(0, 0.1, v.shape) for k, v in sae.items()}
    sae["b_enc"] += 0.3                              # keep most units away from the ReLU kink
    x = rng.standard_normal((7, 6))
    lam = 0.05
    loss, cache = S.sae_forward(sae, x, lam)
    grads = S.sae_backward(sae, cache, lam)
    for k in sae:
        num = numerical_grad(lambda: S.sae_forward(sae, x, lam)[0], sae[k]).reshape(sae[k].shape)
        assert rel_error(grads[k], num) < 1e-7, k


def test_splice_without_ablation_is_exact_and_ablation_matters():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 8))
    sae = S.train_sae(x, 16, lam=0.01, seed=0, steps=200, batch=50)
    assert np.array_equal(S.splice(sae, x), x)
    assert np.array_equal(S.splice(sae, x, ablate=[]), x)
    h = S.encode(sae, x)
    live = int(np.argmax((h > 0).sum(0)))
    moved = S.splice(sae, x, ablate=[live])
    assert not np.array_equal(moved, x)
    np.testing.assert_allclose(moved - x, -np.outer(h[:, live], sae["W_dec"][live]), atol=1e-12)


def test_training_reduces_loss_and_keeps_unit_decoder_rows():
    rng = np.random.default_rng(2)
    basis = rng.standard_normal((5, 12))
    codes = rng.exponential(1, (400, 5)) * (rng.random((400, 5)) < 0.3)
    x = codes @ basis
    sae = S.train_sae(x, 20, lam=0.05, seed=0, steps=800, batch=100)
    np.testing.assert_allclose(np.linalg.norm(sae["W_dec"], axis=1), 1.0, rtol=1e-12)
    m = S.metrics(sae, x)
    assert m["fvu"] < 0.2 and 0 < m["l0"] < 20 and m["d_sae"] == 20


def test_splice_into_the_model_reproduces_logits_exactly():
    """No latent ablated: the model's logits are bit-identical; ablating changes them."""
    from minimanifold import forward
    from minimanifold.experiments.sae_probing import _resid
    from tests.conftest import small_setup
    cfg, params, tokens, targets = small_setup(seed=3)
    params = {k: v.astype(np.float32) for k, v in params.items()}
    layer = cfg.n_layers - 1
    x = _resid(params, tokens, cfg, layer)
    sae = S.train_sae(x, 24, lam=0.01, seed=0, steps=100, batch=6)

    def hook_with(ablate):
        def hook(act):
            act = act.copy()
            act[:, -1] = S.splice(sae, act[:, -1], ablate)
            return act
        return {f"blocks.{layer}.hook_resid_post": hook}
    clean, _ = forward(params, tokens, cfg)
    same, _ = forward(params, tokens, cfg, hooks=hook_with([]))
    assert np.array_equal(clean, same)
    live = np.flatnonzero((S.encode(sae, x) > 0).any(0))
    changed, _ = forward(params, tokens, cfg, hooks=hook_with(live[:3]))
    assert not np.array_equal(clean, changed)


def test_stage_picking():
    from minimanifold.experiments.sae_probing import pick_stages
    hist = [{"acc": {"1": a, "2": b}} for a, b in [(.1, .1), (.6, .5), (.9, .95), (1, 1)]]
    assert pick_stages(hist) == {"early": 1, "mid": 2, "late": 3}
