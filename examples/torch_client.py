"""A PyTorch implementation checking itself against the minimanifold oracle: what a
client of the oracle writes. Its own model (an ``nn.Module`` whose parameter names are
TransformerLens's), its own data; the oracle only sees files.

    python examples/torch_client.py            # this file's nn.Module
    python examples/torch_client.py --hooked   # a TransformerLens HookedTransformer (3.x)
    python examples/torch_client.py --bug scale|drop   # a planted bug: the check must fail

Exit 0 and one line when logits, loss and every gradient agree (key sets compared both
ways); exit 1 naming the first disagreement; exit 2 naming the extra to install when
PyTorch (or, for --hooked, TransformerLens) is missing.
"""
import argparse
import math
import os
import subprocess
import sys
import tempfile

import numpy as np


def missing(error: ModuleNotFoundError, extra: str, what: str) -> None:
    """One line naming the extra that installs ``what``, and exit 2 (not a traceback),
    when the module ``extra`` (the extra's name) is what is missing; else re-raised."""
    if (error.name or "").split(".")[0] != extra:
        raise error
    print(f"error: {os.path.basename(__file__)} needs {what}, which is not installed: "
          f'pip install "minimanifold[{extra}]"', file=sys.stderr)
    sys.exit(2)


try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ModuleNotFoundError as e:
    missing(e, "torch", "PyTorch")

D_VOCAB, D_OUT, N_CTX, D_MODEL, N_HEADS, D_HEAD, N_LAYERS = 16, 5, 10, 24, 3, 8, 2


class Attention(nn.Module):
    def __init__(self, bug=None):
        super().__init__()
        shape_in, shape_out = (N_HEADS, D_MODEL, D_HEAD), (N_HEADS, D_HEAD, D_MODEL)
        self.W_Q, self.W_K, self.W_V = (nn.Parameter(torch.randn(shape_in) * 0.3) for _ in range(3))
        self.W_O = nn.Parameter(torch.randn(shape_out) * 0.3)
        self.bug = bug

    def forward(self, a):                                   # a [b,t,d]
        q, k, v = (torch.einsum("btd,hde->bhte", a, W) for W in (self.W_Q, self.W_K, self.W_V))
        scores = q @ k.transpose(-1, -2)
        if self.bug != "scale":
            scores = scores / math.sqrt(D_HEAD)
        t = a.shape[1]
        scores = scores.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool), 1), float("-inf"))
        return torch.einsum("bhte,hed->btd", scores.softmax(-1) @ v, self.W_O)


class LayerNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.w, self.b = nn.Parameter(torch.ones(D_MODEL)), nn.Parameter(torch.zeros(D_MODEL))

    def forward(self, x):
        return F.layer_norm(x, (D_MODEL,), self.w, self.b, eps=1e-5)


class Block(nn.Module):
    def __init__(self, bug=None):
        super().__init__()
        self.ln1, self.attn = LayerNorm(), Attention(bug)

    def forward(self, x):
        return x + self.attn(self.ln1(x))


class AttnOnly(nn.Module):
    """Attention-only transformer (the paper's model); logits at the last position."""
    def __init__(self, bug=None):
        super().__init__()
        self.embed = nn.Module()
        self.embed.W_E = nn.Parameter(torch.randn(D_VOCAB, D_MODEL) * 0.3)
        self.pos_embed = nn.Module()
        self.pos_embed.W_pos = nn.Parameter(torch.randn(N_CTX, D_MODEL) * 0.3)
        self.blocks = nn.ModuleList(Block(bug) for _ in range(N_LAYERS))
        self.ln_final = LayerNorm()
        self.unembed = nn.Module()
        self.unembed.W_U = nn.Parameter(torch.randn(D_MODEL, D_OUT) * 0.3)
        self.unembed.b_U = nn.Parameter(torch.randn(D_OUT) * 0.3)
        if bug == "drop":                                   # a model missing a parameter
            self.ln_final.b.requires_grad_(False)

    def forward(self, tokens):
        x = self.embed.W_E[tokens] + self.pos_embed.W_pos[:tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.ln_final(x[:, -1]) @ self.unembed.W_U + self.unembed.b_U


def hooked_model():
    """The same architecture as a TransformerLens HookedTransformer (zero attention biases)."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    cfg = HookedTransformerConfig(n_layers=N_LAYERS, d_model=D_MODEL, n_ctx=N_CTX, d_head=D_HEAD,
                                  n_heads=N_HEADS, d_vocab=D_VOCAB, d_vocab_out=D_OUT, attn_only=True,
                                  normalization_type="LN", positional_embedding_type="standard",
                                  act_fn="gelu_new", dtype=torch.float64)
    model = HookedTransformer(cfg)
    with torch.no_grad():                                   # a non-trivial point: LN and b_U moved too
        for name, p in model.named_parameters():
            if not name.split(".")[-1].startswith("b_") or name == "unembed.b_U":
                p.add_(0.1 * torch.randn_like(p))
    return lambda tokens: model(tokens)[:, -1], model


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hooked", action="store_true")
    ap.add_argument("--bug", choices=("scale", "drop"))
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    if a.hooked:
        try:
            import transformer_lens  # noqa: F401
        except ModuleNotFoundError as e:
            missing(e, "transformer_lens", "TransformerLens 3.x")
        logits_fn, model = hooked_model()
    else:
        model = AttnOnly(a.bug).double()
        logits_fn = model
    tokens = torch.randint(0, D_VOCAB, (7, N_CTX))
    targets = torch.randint(0, D_OUT, (7,))
    with tempfile.TemporaryDirectory() as tmp:
        p, b, out = (os.path.join(tmp, f) for f in ("params.npz", "batch.npz", "ref.npz"))
        np.savez(p, **{k: v.detach().double().numpy() for k, v in model.state_dict().items()})
        np.savez(b, tokens=tokens.numpy(), targets=targets.numpy())
        r = subprocess.run([sys.executable, "-m", "minimanifold.oracle", "grads", p, b, out],
                           capture_output=True, text=True)
        if r.returncode:
            print(f"oracle refused the files: {r.stderr.strip()}")
            return 1
        ref = dict(np.load(out))
    model.zero_grad()
    logits = logits_fn(tokens)
    loss = F.cross_entropy(logits, targets)
    loss.backward()
    ours = {n: q.grad.numpy() for n, q in model.named_parameters() if q.requires_grad}
    theirs = sorted(k[5:] for k in ref if k.startswith("grad."))
    if sorted(ours) != theirs:
        print(f"parameter sets differ: only ours {sorted(set(ours) - set(theirs))}, "
              f"only the oracle's {sorted(set(theirs) - set(ours))}")
        return 1
    checks = [("logits", logits.detach().numpy(), ref["logits"]), ("loss", loss.item(), ref["loss"])]
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
