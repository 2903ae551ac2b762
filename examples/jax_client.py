"""A JAX implementation checking itself against the minimanifold oracle: what a client
of the oracle writes. Parameters are a nested dict; a leaf's name is its pytree path
joined with dots ({"blocks": {"0": {"attn": {"W_Q": ...}}}} -> "blocks.0.attn.W_Q"),
which is TransformerLens's name, the one the oracle uses.

    python examples/jax_client.py
    python examples/jax_client.py --bug scale|drop|float32   # a planted bug: must fail

float32 (JAX's default) misses the oracle's float64 tolerance: the client enables x64
first. Exit 0 and one line when logits, loss and every gradient agree (key sets compared
both ways); exit 1 naming the first disagreement; exit 2 naming the extra to install
when JAX is missing.
"""
import argparse
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

D_VOCAB, D_OUT, N_CTX, D_MODEL, N_HEADS, D_HEAD, N_LAYERS = 16, 5, 10, 24, 3, 8, 2


def init(key, jax, jnp):
    keys = iter(jax.random.split(key, 64))
    normal = lambda *shape: 0.3 * jax.random.normal(next(keys), shape)
    ln = lambda: {"w": 1 + normal(D_MODEL), "b": normal(D_MODEL)}
    return {"embed": {"W_E": normal(D_VOCAB, D_MODEL)}, "pos_embed": {"W_pos": normal(N_CTX, D_MODEL)},
            "blocks": {str(l): {"ln1": ln(), "attn": {"W_Q": normal(N_HEADS, D_MODEL, D_HEAD),
                                                      "W_K": normal(N_HEADS, D_MODEL, D_HEAD),
                                                      "W_V": normal(N_HEADS, D_MODEL, D_HEAD),
                                                      "W_O": normal(N_HEADS, D_HEAD, D_MODEL)}}
                       for l in range(N_LAYERS)},
            "ln_final": ln(), "unembed": {"W_U": normal(D_MODEL, D_OUT), "b_U": normal(D_OUT)}}


def make_loss(jnp, jax, bug):
    def layer_norm(x, p):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / jnp.sqrt(var + 1e-5) * p["w"] + p["b"]

    def logits_fn(params, tokens):
        t = tokens.shape[1]
        x = params["embed"]["W_E"][tokens] + params["pos_embed"]["W_pos"][:t]
        causal = jnp.tril(jnp.ones((t, t), dtype=bool))
        for l in range(N_LAYERS):
            blk = params["blocks"][str(l)]
            a = layer_norm(x, blk["ln1"])
            q, k, v = (jnp.einsum("btd,hde->bhte", a, blk["attn"][W]) for W in ("W_Q", "W_K", "W_V"))
            scores = q @ jnp.swapaxes(k, -1, -2) / (1.0 if bug == "scale" else math.sqrt(D_HEAD))
            pattern = jax.nn.softmax(jnp.where(causal, scores, -jnp.inf), axis=-1)
            x = x + jnp.einsum("bhte,hed->btd", pattern @ v, blk["attn"]["W_O"])
        return layer_norm(x[:, -1], params["ln_final"]) @ params["unembed"]["W_U"] + params["unembed"]["b_U"]

    def loss_fn(params, tokens, targets):
        logp = jax.nn.log_softmax(logits_fn(params, tokens), axis=-1)
        return -jnp.take_along_axis(logp, targets[:, None], axis=-1).mean()
    return logits_fn, loss_fn


def by_name(tree, jax) -> dict:
    """{"blocks.0.attn.W_Q": leaf, ...}: each pytree path's dict keys joined with dots."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {".".join(str(entry.key) for entry in path): np.asarray(leaf) for path, leaf in leaves}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bug", choices=("scale", "drop", "float32"))
    a = ap.parse_args(argv)
    try:
        import jax
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] != "jax":      # jax itself is missing, not a dependency
            raise
        print(f"error: {os.path.basename(__file__)} needs JAX, which is not installed: "
              'pip install "minimanifold[jax]"', file=sys.stderr)
        return 2
    if a.bug != "float32":
        jax.config.update("jax_enable_x64", True)          # the oracle's tolerance needs float64
    import jax.numpy as jnp
    params = init(jax.random.PRNGKey(0), jax, jnp)
    rng = np.random.default_rng(0)
    tokens, targets = rng.integers(0, D_VOCAB, (7, N_CTX)), rng.integers(0, D_OUT, 7)
    logits_fn, loss_fn = make_loss(jnp, jax, a.bug)
    named = by_name(params, jax)
    with tempfile.TemporaryDirectory() as tmp:
        p, b, out = (os.path.join(tmp, f) for f in ("params.npz", "batch.npz", "ref.npz"))
        np.savez(p, **{k: v.astype(np.float64) for k, v in named.items()})
        np.savez(b, tokens=tokens, targets=targets)
        r = subprocess.run([sys.executable, "-m", "minimanifold.oracle", "grads", p, b, out],
                           capture_output=True, text=True)
        if r.returncode:
            print(f"oracle refused the files: {r.stderr.strip()}")
            return 1
        ref = dict(np.load(out))
    grads = jax.grad(loss_fn)(params, jnp.asarray(tokens), jnp.asarray(targets))
    if a.bug == "drop":                                     # a client that forgot a parameter
        del grads["ln_final"]["b"]
    ours = by_name(grads, jax)
    theirs = sorted(k[5:] for k in ref if k.startswith("grad."))
    if sorted(ours) != theirs:
        print(f"parameter sets differ: only ours {sorted(set(ours) - set(theirs))}, "
              f"only the oracle's {sorted(set(theirs) - set(ours))}")
        return 1
    checks = [("logits", np.asarray(logits_fn(params, jnp.asarray(tokens))), ref["logits"]),
              ("loss", float(loss_fn(params, jnp.asarray(tokens), jnp.asarray(targets))), ref["loss"])]
    checks += [("grad." + n, g, ref["grad." + n]) for n, g in ours.items()]
    for name, got, want in checks:
        try:
            np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-10)
        except AssertionError:
            print(f"{name} differs from the oracle's (max abs diff {np.abs(np.asarray(got) - want).max():.3g})")
            return 1
    print(f"ok: logits, loss and {len(ours)} gradients agree with the oracle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
