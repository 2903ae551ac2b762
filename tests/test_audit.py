"""The audit: the paper's analyses on someone else's checkpoint series (issue 26)."""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from minimanifold.analysis import pca
from minimanifold.audit import audit
from minimanifold.audit.names import BUILTIN, NameMapError, translate
from minimanifold.audit.series import SeriesError, snapshots
from minimanifold.experiments.collapse import cached_geometry
from minimanifold.trajectories.presets import SMOKE
from minimanifold.trajectories.sweep import sweep

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dataclasses.replace(SMOKE, train=dataclasses.replace(SMOKE.train, steps=60, ckpt_every=10, batch_size=16))
quiet = dict(log=lambda s: None)


def _geometry_equal(a, b):
    assert set(a) == set(b)
    for k in a:
        assert {kk: v for kk, v in a[k].items() if kk != "dirs"} == {kk: v for kk, v in b[k].items() if kk != "dirs"}, k
        if "dirs" in a[k]:
            np.testing.assert_array_equal(a[k]["dirs"], b[k]["dirs"])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return [r["dir"] for r in sweep(TINY.specs(), root, log=lambda s: None)]


def test_the_audit_of_our_runs_gives_the_pipelines_numbers(runs, tmp_path):
    """A run directory, and the same snapshots as a folder of per-step .npz checkpoints
    (with the extra entries a checkpoint carries), give exactly the pipeline's geometry."""
    out = audit(runs, tmp_path / "a", **quiet)
    for d, g in zip(runs, out["geometry"]):
        _geometry_equal(cached_geometry(d), g)
    traj = np.load(os.path.join(runs[0], "trajectory.npz"))
    folder = tmp_path / "ckpts"
    folder.mkdir()
    for i, step in enumerate(traj["steps"]):
        np.savez(folder / f"step_{step:06d}.npz", step=np.array(step), **{"opt.m": np.zeros(3)},
                 **{k: traj[k][i] for k in traj.files if k != "steps"})
    again = audit([folder, runs[1]], tmp_path / "b", **quiet)
    _geometry_equal(again["geometry"][0], out["geometry"][0])
    assert list(again["steps"][0]) == list(traj["steps"])
    written = sorted(os.listdir(tmp_path / "a"))
    assert written == ["claims.json", "claims.md", "fig1_effective_rank.png", "fig_spectrum.png", "records"]
    ledger = json.load(open(tmp_path / "a" / "claims.json"))
    assert [c["n"] for c in ledger["claims"]] == [1, 2, 3, 4, 5] and ledger["written_by"].startswith("audit of 2 series")
    assert "exact expected spectrum, no sampling" in ledger["claims"][0]["null"]


def test_exact_null_known_answers():
    """The isotropic walk's PCA in closed form: EVR_k = 3 csc^2(pi k/2n) / (2(n^2-1)), r90 = 6
    from n of about 20, the participation ratio towards 5/2; scaling every step leaves the
    shares alone; and a Monte-Carlo walk in high dimension lands on it."""
    for n in (5, 12, 40):
        lam = pca.expected_walk_spectrum(np.ones(n - 1))
        k = np.arange(1, n)
        np.testing.assert_allclose(pca.explained_variance_ratio(lam)[:n - 1],
                                   3 / np.sin(np.pi * k / (2 * n)) ** 2 / (2 * (n ** 2 - 1)), rtol=1e-10)
    assert [pca.rank_at(pca.expected_walk_spectrum(np.ones(n - 1)), 0.9) for n in (20, 40, 200)] == [6, 6, 6]
    assert pca.participation_ratio(pca.expected_walk_spectrum(np.ones(999))) == pytest.approx(2.5, abs=2e-3)
    s = np.random.default_rng(0).uniform(0.1, 2, 30)
    np.testing.assert_allclose(pca.explained_variance_ratio(pca.expected_walk_spectrum(7 * s)),
                               pca.explained_variance_ratio(pca.expected_walk_spectrum(s)), rtol=1e-10)
    shrinking = pca.expected_walk_spectrum(1 / np.arange(1, 40))        # shrinking steps: fewer directions
    assert pca.rank_at(shrinking, 0.9) < 6
    mc = np.mean([pca.explained_variance_ratio(pca.pca_spectrum(pca.random_walk(s, 20000, np.random.default_rng(i))))[:3]
                  for i in range(20)], axis=0)
    np.testing.assert_allclose(mc, pca.explained_variance_ratio(pca.expected_walk_spectrum(s))[:3], atol=0.02)


def test_an_isotropic_walks_principal_components_are_cosines():
    """PC k's time course of an isotropic walk of n snapshots is cos(pi k (t + 1/2) / n)
    (Antognini & Sohl-Dickstein 2018): exactly for the expected Gram matrix of the exact
    null, and to within 0.001 of correlation for one walk in 20,000 dimensions projected on
    ``pca_directions`` (a PC out of order, or directions not centred, misses it)."""
    n, t = 40, np.arange(40)
    L = np.tril(np.ones((n, n - 1)), -1)
    Lc = L - L.mean(axis=0)
    U = np.linalg.eigh(Lc @ Lc.T / n)[1][:, ::-1]
    X = pca.random_walk(np.ones(n - 1), 20000, np.random.default_rng(0))
    P = (X - X.mean(axis=0)) @ pca.pca_directions(X, 3)
    for k in (1, 2, 3, 10):
        c = np.cos(np.pi * k * (t + 0.5) / n)
        assert abs(U[:, k - 1] @ c) / np.linalg.norm(c) == pytest.approx(1, abs=1e-12), k
        if k <= 3:
            assert abs(np.corrcoef(P[:, k - 1], c)[0, 1]) > 0.999, k


# ---- an independent PyTorch model with the authors' layout: fused qkv, biases, an unused MLP ----

def _bubble_series(folder, torch, steps=(0, 5, 10, 15, 20), as_list=False):
    torch.manual_seed(0)
    nn = torch.nn
    d, h, L, V, C, T = 16, 2, 2, 12, 5, 6

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv, self.out, self.ln = nn.Linear(d, 3 * d), nn.Linear(d, d), nn.LayerNorm(d)
            self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))    # never called

        def forward(self, x):
            q, k, v = self.qkv(self.ln(x)).chunk(3, dim=-1)
            q, k, v = (t.view(*x.shape[:2], h, d // h).transpose(1, 2) for t in (q, k, v))
            a = (q @ k.transpose(-2, -1)) / (d // h) ** 0.5
            a = a.masked_fill(~torch.tril(torch.ones(x.shape[1], x.shape[1], dtype=torch.bool)), float("-inf"))
            return x + self.out((a.softmax(-1) @ v).transpose(1, 2).reshape(x.shape))

    class Bubble(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed, self.pos_emb = nn.Embedding(V, d), nn.Embedding(T, d)
            self.layers = nn.ModuleList([Block() for _ in range(L)])
            self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, C)

        def forward(self, x):
            hdn = self.embed(x) + self.pos_emb(torch.arange(x.shape[1]))
            for layer in self.layers:
                hdn = layer(hdn)
            return self.head(self.ln(hdn)[:, -1])

    model = Bubble().double()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    saved = []
    for step in range(max(steps) + 1):
        if step in steps:
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            saved.append((step, state))
            if not as_list:
                torch.save(state, folder / f"model_{step}.pt")
        x = torch.randint(0, V, (8, T))
        loss = nn.functional.cross_entropy(model(x), x[:, 0] % C)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if as_list:
        torch.save(saved, folder)
    return saved, h


def test_a_pytorch_series_with_fused_qkv_and_biases(tmp_path):
    torch = pytest.importorskip("torch")
    folder = tmp_path / "bubble"
    folder.mkdir()
    saved, h = _bubble_series(folder, torch)
    out = audit([folder, folder], tmp_path / "out", name_map="bubble", n_heads=h, **quiet)
    d = saved[0][1]["embed.weight"].shape[1]
    ours = translate({k: v.numpy() for k, v in saved[-1][1].items()}, BUILTIN["bubble"], "x", n_heads=h)
    W = saved[-1][1]["layers.1.qkv.weight"].numpy()
    for j, name in enumerate(("W_Q", "W_K", "W_V")):            # (h, d, e)[h, :, e] = rows h*e_ + e of Q, K or V
        np.testing.assert_array_equal(ours[f"blocks.1.attn.{name}"][1, :, 3], W[j * d + 1 * (d // h) + 3])
    np.testing.assert_array_equal(ours["blocks.1.attn.b_K"].ravel(), saved[-1][1]["layers.1.qkv.bias"].numpy()[d:2 * d])
    np.testing.assert_array_equal(ours["blocks.0.attn.W_O"][1, 2], saved[-1][1]["layers.0.out.weight"].numpy()[:, 1 * (d // h) + 2])
    np.testing.assert_array_equal(ours["unembed.W_U"], saved[-1][1]["head.weight"].numpy().T)
    assert not any("mlp" in k for k in ours)
    # the audit's spectrum against an independent SVD of the torch weights themselves (a head
    # reshape permutes coordinates, which leaves a PCA spectrum alone)
    for layer, part, name in ((0, 0, "W_Q"), (1, 2, "W_V")):
        X = np.stack([s["layers.%d.qkv.weight" % layer].numpy()[part * d:(part + 1) * d].ravel() for _, s in saved])
        sv = np.linalg.svd(X - X.mean(0), compute_uv=False) ** 2
        evr = sv / sv.sum()
        got = out["geometry"][0][f"blocks.{layer}.attn.{name}"]
        np.testing.assert_allclose(got["evr"][:len(evr)], evr[:10], atol=1e-9)
        assert got["r90"] == int(np.argmax(np.cumsum(evr) >= 0.9 - 1e-12)) + 1


def test_a_weight_log_in_one_file_and_safetensors(tmp_path):
    """The authors' weight log (a list of (step, attention blocks) in one .pt file) under the
    attention-log map, and the same snapshots as safetensors files, give one geometry."""
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.numpy")
    saved, h = _bubble_series(tmp_path / "full.pt", torch, as_list=True)
    d = saved[0][1]["embed.weight"].shape[1]
    log = [(s, {f"layer{l}.W{x}": (sd[f"layers.{l}.qkv.weight"][j * d:(j + 1) * d] if x != "O" else
                                   sd[f"layers.{l}.out.weight"])
                for l in range(2) for j, x in enumerate("QKVO")}) for s, sd in saved]
    torch.save(log, tmp_path / "weights.pt")
    folder = tmp_path / "st"
    folder.mkdir()
    for s, sd in log:
        st.save_file({k: v.numpy() for k, v in sd.items()}, str(folder / f"w_{s}.safetensors"))
    a = audit([tmp_path / "weights.pt"] * 2, tmp_path / "o1", name_map="attention-log", n_heads=h, **quiet)
    b = audit([folder] * 2, tmp_path / "o2", name_map="attention-log", n_heads=h, **quiet)
    full = audit([tmp_path / "full.pt"] * 2, tmp_path / "o3", name_map="bubble", n_heads=h, **quiet)
    _geometry_equal(a["geometry"][0], b["geometry"][0])
    _geometry_equal(a["geometry"][0], full["geometry"][0])


# ---- bad input: one line, exit 2, nothing written ----

def _series(folder, n=4, shape=(2, 4, 3), name="blocks.0.attn.W_Q", dtype=np.float32, extra=None):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for s in range(n):
        arrays = {name: rng.standard_normal(shape).astype(dtype), **(extra or {})}
        np.savez(folder / f"ckpt_{100 * s}.npz", **arrays)
    return folder


def _bad(tmp_path, name):
    """Each bad series: (how to make it in folder ``f``, the CLI's extra args, what the line says)."""
    f = tmp_path / name
    if name == "uncovered":
        _series(f, name="layer0.WQ", extra={"layer0.WZ": np.ones((4, 4), np.float32)}, shape=(4, 4))
        return ["--map", "attention-log", "--n-heads", "2"], "the map does not cover 1 key(s): 'layer0.WZ'"
    if name == "twice":
        m = tmp_path / "map.json"
        m.write_text(json.dumps({"a": ["blocks.0.attn.W_Q", "copy"], "b": ["blocks.0.attn.W_Q", "copy"]}))
        _series(f, name="a", extra={"b": np.ones((2, 4, 3), np.float32)})
        return ["--map", str(m)], "'a' and 'b' both map to 'blocks.0.attn.W_Q'"
    if name == "shape":
        _series(f, name="layer0.WQ", shape=(5, 4))
        return ["--map", "attention-log", "--n-heads", "2"], "5 rows do not split into 2 heads"
    if name == "few":
        _series(f, n=2)
        return [], "2 snapshot(s); a trajectory's PCA needs at least 3"
    if name == "nostep":
        _series(f)
        os.rename(f / "ckpt_100.npz", f / "final.npz")
        return [], "final.npz: no step number in the file name"
    if name == "duplicate":
        _series(f)
        os.rename(f / "ckpt_100.npz", f / "model_0.npz")
        return [], "both hold step 0"
    if name == "shapes":
        _series(f)
        np.savez(f / "ckpt_200.npz", **{"blocks.0.attn.W_Q": np.ones((2, 4, 4), np.float32)})
        return [], "ckpt_200.npz: 'blocks.0.attn.W_Q' differs from the first snapshot's"
    if name == "dtypes":
        _series(f)
        np.savez(f / "ckpt_200.npz", **{"blocks.0.attn.W_Q": np.ones((2, 4, 3))})
        return [], "ckpt_200.npz: 'blocks.0.attn.W_Q' differs from the first snapshot's"
    if name == "nan":
        _series(f)
        np.savez(f / "ckpt_300.npz", **{"blocks.0.attn.W_Q": np.full((2, 4, 3), np.nan, np.float32)})
        return [], "ckpt_300.npz: 'blocks.0.attn.W_Q' holds NaN or inf"
    if name == "notnpz":
        _series(f)
        (f / "ckpt_200.npz").write_text("not a zip")
        return [], "ckpt_200.npz: not a readable .npz file"
    if name == "nomap":
        _series(f, name="layer0.WQ", shape=(4, 4))
        return [], "no attention matrices (blocks.L.attn.W_Q ...) under our names; give a name map (--map)"
    if name == "badmap":
        _series(f)
        return ["--map", str(tmp_path / "nope.json")], "neither a built-in map (bubble, attention-log) nor a readable file"
    if name == "order":
        torch = pytest.importorskip("torch")
        torch.save([(s, {"blocks.0.attn.W_Q": torch.ones((2, 4, 3))}) for s in (5, 3, 7)], f)
        return [], "steps out of order or repeated"
    raise KeyError(name)


@pytest.mark.parametrize("name", ["uncovered", "twice", "shape", "few", "nostep", "duplicate", "shapes", "dtypes",
                                  "nan", "notnpz", "nomap", "badmap", "order"])
def test_bad_series_is_one_line_and_writes_nothing(tmp_path, name):
    args, says = _bad(tmp_path, name)
    r = subprocess.run([sys.executable, "-m", "minimanifold.audit", str(tmp_path / name), str(tmp_path / name),
                        "--out", str(tmp_path / "out"), *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    err = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(err) == 1 and err[0].startswith("error: ") and says in err[0], r.stderr
    assert not (tmp_path / "out").exists()


def test_a_torch_file_without_torch_names_the_extra(tmp_path):
    f = tmp_path / "pt"
    f.mkdir()
    for s in range(3):
        (f / f"model_{s}.pt").write_bytes(b"whatever")
    code = ("import sys; sys.modules['torch'] = None; from minimanifold.audit.__main__ import main; "
            f"sys.exit(main([{str(f)!r}, '--out', {str(tmp_path / 'out')!r}]))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and r.stderr.strip().endswith('needs torch: pip install "minimanifold[torch]"'), r.stderr
    assert not (tmp_path / "out").exists()


def test_an_out_folder_holding_another_ledger_is_refused(tmp_path, runs):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "claims.json").write_text(json.dumps({"caption": "paper preset, 10 seeds: x", "claims": []}))
    r = subprocess.run([sys.executable, "-m", "minimanifold.audit", *runs, "--out", str(tmp_path / "out")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "--overwrite" in r.stderr and os.listdir(tmp_path / "out") == ["claims.json"]


def test_the_name_map_translates_and_refuses(tmp_path):
    h = 2
    W = np.arange(24 * 4, dtype=float).reshape(24, 4)                          # (3*h*e, d) with e = 4
    out = translate({"l.qkv.weight": W}, {"l.qkv.weight": ["blocks.0.attn", "qkv_weight"]}, "f", n_heads=h)
    assert sorted(out) == ["blocks.0.attn.W_K", "blocks.0.attn.W_Q", "blocks.0.attn.W_V"]
    assert out["blocks.0.attn.W_Q"].shape == (2, 4, 4)
    np.testing.assert_array_equal(out["blocks.0.attn.W_K"][1, :, 2], W[8 + 4 + 2])      # K's head 1, column 2
    with pytest.raises(NameMapError, match="names no n_heads"):
        translate({"x": np.ones((4, 4))}, {"x": ["blocks.0.attn.W_Q", "heads_in"]}, "f")
    with pytest.raises(NameMapError, match="do not split into Q, K and V"):
        translate({"x": np.ones((4, 4))}, {"x": ["blocks.0.attn", "qkv_weight"]}, "f", n_heads=2)
    with pytest.raises(SeriesError, match="no such file or folder"):
        snapshots(str(tmp_path / "missing"))


# ---- the forward pass: entropy and accuracy along the run, functional dimension, commutators ----

def test_the_forward_pass_gives_the_runs_own_metrics_and_functional_dimension(runs, tmp_path):
    """On one of our runs with its own probe set: accuracy and entropy at every snapshot
    equal what training recorded (metrics.json), and the functional dimension equals the
    pipeline's (experiments/functional_dimension.py) to the last bit."""
    from minimanifold.audit import forward as F
    from minimanifold.experiments.functional_dimension import functional_of_run
    from minimanifold.trajectories.rundir import run_configs
    from minimanifold.trajectories.rundir import load_metrics
    from minimanifold.trajectories.schedule import Schedule
    from minimanifold.trajectories.task import probe_set
    cfg, task, tr = run_configs(runs[0])
    probe = probe_set(task, Schedule.parse(tr["schedule"]).all_m(), tr["n_probe"], tr["seed"])
    steps, mats, states = snapshots(runs[0], keep_state=True)
    out = F.measure(states, mats, probe, F.model_of(states, runs[0]), lr=0.05)
    hist = load_metrics(runs[0])
    assert [r["step"] for r in hist] == list(steps)
    assert out["acc"] == [r["acc"] for r in hist]
    np.testing.assert_allclose([[v for m in sorted(e) for v in e[m]] for e in out["entropy"]],
                               [[v for m in sorted(r["entropy"]) for v in r["entropy"][m]] for r in hist], rtol=1e-6)
    assert json.dumps(out["functional"], sort_keys=True) == json.dumps(functional_of_run(runs[0]), sort_keys=True)
    c = out["commutators"]
    assert [x["index"] for x in c] == sorted({int(round(i)) for i in np.linspace(0, len(steps) - 1, 8)})
    assert all(x["norm"] > 0 and x["defect"] > 0 and -1 <= x["cosine"] <= 1 for x in c)
    # the final snapshot's answers on the batch, scored as its last accuracy, in claim 5's row
    ans = out["answers"]
    assert ans["C"] == task.C and sorted(ans["m"]) == sorted(map(str, probe))
    assert {m: float(np.mean(np.array(v["answers"]) == v["targets"])) for m, v in ans["m"].items()} == \
        {str(m): a for m, a in hist[-1]["acc"].items()}
    row = audit([runs[0], runs[0]], tmp_path / "twice", batch="T=12,C=5,n_markers=2,d_vocab=16,m=1,2", **quiet)
    measured = row["claims"][5].measured                                  # one series twice: every answer alike
    assert "answers on one shared probe (not in the rule; 512 inputs of the batch): two seeds agree on 1.000" in measured


def test_forward_pass_bad_input_is_one_line(tmp_path, runs):
    base = [sys.executable, "-m", "minimanifold.audit", runs[0], runs[1], "--out", str(tmp_path / "out")]
    np.savez(tmp_path / "b.npz", tokens=np.full((4, 12), 99), targets=np.zeros(4, dtype=int))
    weights_only = _series(tmp_path / "w")
    for args, says in ((["--lr", "0.1"], "--lr sets the commutators' step size, which need a --batch"),
                       (["--batch", str(tmp_path / "b.npz")], "outside the model's ranges"),
                       (["--batch", str(tmp_path / "none.npz")], "none.npz: no such file"),
                       (["--batch", "T=12,C=5,m=1", "--lr", "-1"], "--lr must be a positive finite number")):
        r = subprocess.run(base + args, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and says in r.stderr, r.stderr
    r = subprocess.run([sys.executable, "-m", "minimanifold.audit", str(weights_only), str(weights_only),
                        "--out", str(tmp_path / "out"), "--batch", "T=12,C=5,m=1"], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2 and "a forward pass needs the whole model" in r.stderr and r.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_the_bubble_map_gives_the_authors_function_and_a_forward_pass(tmp_path):
    """Mapped onto our model, the authors' layout (fused qkv with biases, pre-LN, the unused
    MLP dropped) computes the torch model's own logits; the audit's accuracy at every
    snapshot is the torch model's accuracy on the batch file."""
    torch = pytest.importorskip("torch")
    from minimanifold.model.io import config_from_params
    from minimanifold.model.transformer import forward
    folder = tmp_path / "bubble"
    folder.mkdir()
    saved, h = _bubble_series(folder, torch)
    tokens = torch.randint(0, 12, (64, 6), generator=torch.Generator().manual_seed(1))
    targets = tokens[:, 0] % 5
    np.savez(tmp_path / "batch.npz", tokens=tokens.numpy(), targets=targets.numpy())
    ours = translate({k: v.numpy() for k, v in saved[-1][1].items()}, BUILTIN["bubble"], "x", n_heads=h)
    cfg = config_from_params(ours)
    assert cfg.attn_bias and cfg.n_heads == h and cfg.attn_only
    logits, _ = forward(ours, tokens.numpy(), cfg)
    torch_logits = _torch_logits(saved[-1][1], tokens, torch, h)
    np.testing.assert_allclose(logits, torch_logits, rtol=1e-10, atol=1e-12)
    out = audit([folder, folder], tmp_path / "out", name_map="bubble", n_heads=h, batch=str(tmp_path / "batch.npz"),
                lr=0.1, **quiet)
    want = [float((_torch_logits(s, tokens, torch, h).argmax(-1) == targets.numpy()).mean()) for _, s in saved]
    assert [a["0"] for a in out["forward"][0]["acc"]] == want
    assert 22 in out["claims"] and len(out["forward"][0]["commutators"]) == len(saved)


def _torch_logits(state, tokens, torch, h):
    """The authors' forward, written out from their state dict (pre-LN attention blocks,
    final LN, the last position's head), in float64."""
    F = torch.nn.functional
    s = {k: v.double() for k, v in state.items()}
    d = s["embed.weight"].shape[1]
    x = s["embed.weight"][tokens] + s["pos_emb.weight"][: tokens.shape[1]]
    L = 1 + max(int(k.split(".")[1]) for k in s if k.startswith("layers."))
    for l in range(L):
        p = f"layers.{l}."
        y = F.layer_norm(x, (d,), s[p + "ln.weight"], s[p + "ln.bias"])
        q, k, v = F.linear(y, s[p + "qkv.weight"], s[p + "qkv.bias"]).chunk(3, dim=-1)
        q, k, v = (t.view(*x.shape[:2], h, d // h).transpose(1, 2) for t in (q, k, v))
        a = (q @ k.transpose(-2, -1)) / (d // h) ** 0.5
        a = a.masked_fill(~torch.tril(torch.ones(x.shape[1], x.shape[1], dtype=torch.bool)), float("-inf"))
        x = x + F.linear((a.softmax(-1) @ v).transpose(1, 2).reshape(x.shape), s[p + "out.weight"], s[p + "out.bias"])
    x = F.layer_norm(x, (d,), s["ln.weight"], s["ln.bias"])
    return F.linear(x[:, -1], s["head.weight"], s["head.bias"]).numpy()


def test_the_exact_null_reads_the_series_own_steps_in_order():
    """The exact null of a series is the expected walk with *its* step norms in training
    order. Reversing the order is the walk run backwards, a reflection of the same points:
    the spectrum is unchanged (a known answer); any other order changes it."""
    from minimanifold.audit.report import exact_null
    norms = 1.0 / np.arange(1, 30)
    X = pca.random_walk(norms, 5000, np.random.default_rng(0))
    got = exact_null(X)
    want = pca.expected_walk_spectrum(pca.step_norms(X))
    np.testing.assert_allclose(got["evr"], pca.explained_variance_ratio(want)[:10], rtol=1e-12)
    np.testing.assert_allclose(pca.expected_walk_spectrum(pca.step_norms(X)[::-1]), want, rtol=1e-9, atol=1e-15)
    rolled = pca.explained_variance_ratio(pca.expected_walk_spectrum(np.roll(pca.step_norms(X), 10)))[:10]
    assert np.abs(rolled - np.asarray(got["evr"])).max() > 0.01
