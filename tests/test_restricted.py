"""Restricted training (issue 10 §4): every attention update stays inside its subspace
(W_t - W_0 in span(V) to float32 rounding), the unrestricted matrices train as usual, and
a full basis reproduces ordinary training."""
import dataclasses
import os

import numpy as np
import pytest

from minimanifold.analysis.functional import random_directions
from minimanifold.model.transformer import attention_param_names, init_params, param_shapes
from minimanifold.trajectories.presets import SMOKE
from minimanifold.trajectories.restricted import project, train_restricted
from minimanifold.trajectories.training_loop import train
from minimanifold.trajectories.rundir import load_trajectory


def bases_for(cfg, K, seed=0):
    rng = np.random.default_rng(seed)
    return {n: random_directions(int(np.prod(s)), K, rng) for n, s in param_shapes(cfg).items()
            if n in attention_param_names(cfg)}


ADAMW = dict(optimizer="adamw", lr=3e-3, weight_decay=0.01)


@pytest.mark.parametrize("opt", [{}, ADAMW], ids=["sgd", "adamw"])
def test_every_update_stays_in_its_subspace(opt):
    """AdamW's per-coordinate step and its weight decay leave span(V) unless projected too."""
    tr = dataclasses.replace(SMOKE.train, steps=40, **opt)
    bases = bases_for(SMOKE.model, 3)
    out = train_restricted(SMOKE.model, SMOKE.task, tr, bases, eval_every=20)
    theta0 = init_params(SMOKE.model, tr.seed, np.float32, std=tr.init_std)
    moved_elsewhere = 0.0
    for name, V in bases.items():
        drift = (out["params"][name] - theta0[name]).reshape(-1).astype(np.float64)
        outside = drift - V @ (V.T @ drift)
        assert np.linalg.norm(drift) > 1e-4, name                          # it did move
        assert np.linalg.norm(outside) <= 1e-5 * np.linalg.norm(drift) + 1e-6, name
    for name in ("embed.W_E", "blocks.0.ln1.w", "unembed.W_U"):            # the rest trains freely
        moved_elsewhere += float(np.abs(out["params"][name] - theta0[name]).max())
    assert moved_elsewhere > 1e-3
    assert out["steps"] == [0, 20, 40] and all(0 <= a <= 1 for v in out["acc"].values() for a in v)


@pytest.mark.parametrize("opt", [{}, ADAMW, dict(lr_schedule="warmup:8/stage", schedule="curriculum:1x15,2x15")],
                         ids=["sgd", "adamw", "per-stage-schedule"])
def test_a_full_basis_is_ordinary_training(tmp_path, opt):
    """V = identity (K = D): the same theta_0, batches and updates as train() (the same
    optimizer state too), so the same parameters to float32 rounding after 30 steps."""
    tr = dataclasses.replace(SMOKE.train, steps=30, ckpt_every=30, **opt)
    bases = {n: np.eye(int(np.prod(s))) for n, s in param_shapes(SMOKE.model).items()
             if n in attention_param_names(SMOKE.model)}
    out = train_restricted(SMOKE.model, SMOKE.task, tr, bases, eval_every=30)
    train(tmp_path / "r", SMOKE.model, SMOKE.task, tr, log=lambda s: None)
    final = {k: v[-1] for k, v in load_trajectory(tmp_path / "r").items() if k != "steps"}
    for name, value in final.items():
        np.testing.assert_allclose(out["params"][name], value, rtol=1e-4, atol=1e-5, err_msg=name)


def test_project_and_refusals():
    rng = np.random.default_rng(1)
    V = random_directions(12, 4, rng)
    g = rng.standard_normal((3, 4)).astype(np.float32)
    p = project(g, V)
    assert p.shape == g.shape and p.dtype == np.float32
    np.testing.assert_allclose(project(p, V), p, atol=1e-5)                # idempotent
    assert np.linalg.norm(p) <= np.linalg.norm(g) + 1e-6
    with pytest.raises(ValueError, match="basis for 'blocks.0.attn.W_Q'"):
        train_restricted(SMOKE.model, SMOKE.task, SMOKE.train, {"blocks.0.attn.W_Q": np.eye(5)})


def test_restricted_of_a_run_uses_its_own_top_k_directions(tmp_path):
    """The experiment's bases: the run's own top-K PCA directions per attention matrix (or
    K random ones); the retraining starts at the run's theta_0 (step 0 accuracy equals the
    run's recorded step-0 accuracy) and is cached under its K, kind and steps."""
    import os
    from minimanifold.experiments import restricted_training as RT
    from minimanifold.trajectories.rundir import load_metrics
    d = tmp_path / "r"
    train(d, SMOKE.model, SMOKE.task, dataclasses.replace(SMOKE.train, steps=60, ckpt_every=10), log=lambda s: None)
    first = load_metrics(d)[0]
    for kind in RT.KINDS:
        if kind == "other":                    # another seed's basis: tests/test_causal_bases.py
            continue
        out = RT.cached_restricted(str(d), 2, kind, 20)
        assert out["K_used"] == 2 and out["steps"][0] == 0 and out["steps"][-1] == 20
        assert {m: v[0] for m, v in out["acc"].items()} == first["acc"]
        assert os.path.exists(d / f"restricted_v{RT.VERSION}_K2_{kind}_20.json")
    from minimanifold.analysis.pca import pca_directions
    from minimanifold.trajectories.rundir import attention_trajectories
    traj = attention_trajectories(str(d), SMOKE.model)
    ex, ra = RT.restriction_bases(str(d), 2, "execution"), RT.restriction_bases(str(d), 2, "random")
    for name, V in ex.items():
        np.testing.assert_array_equal(V, pca_directions(traj[name], 2))      # the run's own directions
        np.testing.assert_allclose(ra[name].T @ ra[name], np.eye(2), atol=1e-12)
        assert np.abs(V.T @ ra[name]).max() < 0.5                            # not those


def test_an_adamw_preset_measures_claim_23(tmp_path):
    """The authors' preset trains with AdamW; its ledger row must be measured (execution vs
    random at K), not "not measured", and the figure written."""
    from minimanifold.experiments import restricted_training as RT
    from minimanifold.experiments.context import Context
    tr = dataclasses.replace(SMOKE.train, steps=60, ckpt_every=10, **ADAMW)
    preset = dataclasses.replace(SMOKE, train=tr, restrict_k=(2,), restrict_seeds=2, restrict_steps=0.5)
    runs = []
    for seed in (0, 1):
        d = tmp_path / f"seed_{seed}"
        train(d, SMOKE.model, SMOKE.task, dataclasses.replace(tr, seed=seed), log=lambda s: None)
        runs.append({"dir": str(d), "seed": seed})
    seen = []
    real_fig = RT.fig_restricted
    RT.fig_restricted = lambda per_k, hist, caption, path: seen.append(caption) or real_fig(per_k, hist, caption, path)
    try:
        rows, figs = RT.report(Context(preset, runs, {}, str(tmp_path), "smoke preset, 2 seeds: L=2"))
    finally:
        RT.fig_restricted = real_fig
    assert seen == ["smoke preset, seeds 0, 1 retrained (of 2 planned; the main runs: 2 seeds): L=2"]
    row = rows[23]
    assert "not measured" not in row.measured and row.value is not None
    assert "K=2 execution (knows the end)" in row.measured and row.interval.startswith("K=2 execution (knows")
    assert "early (decides) − random" in row.interval
    assert len(figs) == 1 and os.path.exists(figs[0])
    for seed in (0, 1):
        for kind in RT.KINDS:
            other = 1 - seed if kind == "other" else None                  # each borrows the other seed's
            assert os.path.exists(tmp_path / f"seed_{seed}" / RT.cache_name(2, kind, 30, other))


class Cut(Exception):
    pass


def counting(limit=None):
    """loss_and_grads that counts its calls and raises ``Cut`` on call ``limit`` + 1 (a
    process killed mid-job)."""
    from minimanifold.model.transformer import loss_and_grads as real
    calls = []

    def fn(*a, **k):
        if limit is not None and len(calls) == limit:
            raise Cut
        calls.append(1)
        return real(*a, **k)
    return fn, calls


@pytest.mark.parametrize("opt", [{}, ADAMW], ids=["sgd", "adamw"])
def test_a_job_cut_short_resumes_to_the_same_result(tmp_path, monkeypatch, opt):
    """Killed at step 25 of 40, the job saved its state at step 20 (its last evaluation); run
    again it trains only the 20 steps left and ends bit for bit where the uncut job ends,
    with the same accuracies and losses (AdamW's moments and step count saved too)."""
    from minimanifold.trajectories import restricted as R
    tr = dataclasses.replace(SMOKE.train, steps=40, **opt)
    bases, path = bases_for(SMOKE.model, 3), str(tmp_path / "job.resume.npz")
    whole = train_restricted(SMOKE.model, SMOKE.task, tr, bases, eval_every=10)
    fn, calls = counting(limit=25)
    monkeypatch.setattr(R, "loss_and_grads", fn)
    with pytest.raises(Cut):
        train_restricted(SMOKE.model, SMOKE.task, tr, bases, eval_every=10, resume=path)
    assert int(np.load(path)["step"]) == 20
    spent = float(np.load(path)["seconds"])                            # the cut sitting's time counts too
    fn, calls = counting()
    monkeypatch.setattr(R, "loss_and_grads", fn)
    resumed = train_restricted(SMOKE.model, SMOKE.task, tr, bases, eval_every=10, resume=path)
    assert len(calls) == 20
    for name, value in whole["params"].items():
        np.testing.assert_array_equal(resumed["params"][name], value, err_msg=name)
    assert resumed["steps"] == whole["steps"] == [0, 10, 20, 30, 40]
    assert resumed["acc"] == whole["acc"] and resumed["loss"] == whole["loss"]
    assert resumed["seconds"] > spent > 0


def test_a_resume_file_of_another_job_is_refused(tmp_path, monkeypatch):
    """Other bases (or configs) than the saved state's: a clear error, nothing overwritten."""
    from minimanifold.trajectories import restricted as R
    tr = dataclasses.replace(SMOKE.train, steps=40)
    path = tmp_path / "job.resume.npz"
    monkeypatch.setattr(R, "loss_and_grads", counting(limit=15)[0])
    with pytest.raises(Cut):
        train_restricted(SMOKE.model, SMOKE.task, tr, bases_for(SMOKE.model, 3), eval_every=10, resume=str(path))
    before = path.read_bytes()
    for bases, cfg in ((bases_for(SMOKE.model, 3, seed=1), tr), (bases_for(SMOKE.model, 3), dataclasses.replace(tr, lr=0.5))):
        with pytest.raises(ValueError, match="job.resume.npz: the saved state of another retraining"):
            train_restricted(SMOKE.model, SMOKE.task, cfg, bases, eval_every=10, resume=str(path))
    assert path.read_bytes() == before


def test_the_cached_job_resumes_and_then_drops_its_state(tmp_path, monkeypatch):
    """``cached_restricted``: a sitting killed mid-job leaves the job's state beside its
    cache; ``--plan`` counts only the steps left; the next sitting goes on from it, caches
    the result (the uncut job's) and removes the state."""
    from minimanifold.experiments import restricted_jobs as RJ
    from minimanifold.experiments.contract import Retrain
    from minimanifold.experiments.groups import steps_left
    from minimanifold.trajectories import restricted as R
    from minimanifold.trajectories.sweep import run_dir
    runs = tmp_path / "runs"
    spec = SMOKE.specs(seeds=[0])[0]
    spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, steps=60, ckpt_every=10))
    d = run_dir(str(runs), spec)
    train(d, spec.model, spec.task, spec.train, log=lambda s: None)
    name = RJ.cache_name(2, "random", 40)
    job = Retrain(spec, name, 40)
    assert job.resume == "restricted_v2_K2_random_40.resume.npz" and steps_left(str(runs), job) == 40
    monkeypatch.setattr(R, "loss_and_grads", counting(limit=29)[0])
    with pytest.raises(Cut):
        RJ.cached_restricted(d, 2, "random", 40)
    assert os.path.exists(os.path.join(d, job.resume)) and not os.path.exists(os.path.join(d, name))
    assert steps_left(str(runs), job) == 40 - 28          # killed in step 29: saved at 28 (every 2)
    fn, calls = counting()
    monkeypatch.setattr(R, "loss_and_grads", fn)
    out = RJ.cached_restricted(d, 2, "random", 40)
    assert len(calls) == 12 and os.path.exists(os.path.join(d, name)) and not os.path.exists(os.path.join(d, job.resume))
    monkeypatch.undo()
    uncut = RJ.restricted_of_run(d, 2, "random", 40)
    assert out == {**uncut, "seconds": out["seconds"]}


def test_the_figure_caption_names_the_seeds_retrained_not_the_main_runs():
    """The paper figure read "paper preset, 10 seeds" over curves of 1 and 2 seeds."""
    from minimanifold.experiments.restricted_training import retrained_caption
    cap = "paper preset, 10 seeds: L=3, 30000 steps"
    assert retrained_caption(cap, 10, {1, 0}, 6) == \
        "paper preset, seeds 0, 1 retrained (of 6 planned; the main runs: 10 seeds): L=3, 30000 steps"
    assert retrained_caption(cap, 10, {3}, 6).startswith("paper preset, seed 3 retrained (of 6 planned")
    assert retrained_caption(cap, 10, set(), 6).startswith("paper preset, no seed retrained yet (of 6 planned")


def test_the_unrestricted_curve_marks_its_checkpoints(tmp_path, monkeypatch):
    """With a few checkpoints the unrestricted runs' straight segments read as a slow curve:
    the points it was measured at are marked, and the legend says so."""
    from minimanifold.experiments import restricted_training as RT
    drawn = []
    monkeypatch.setattr(RT, "save_figure", lambda fig, path: drawn.append(fig) or str(path))
    run = {"steps": list(range(0, 301, 15)), "acc": {"1": [0.5] * 21}}
    hist = [[{"step": s, "acc": {"1": 0.2 + s / 500}} for s in (0, 100, 200, 300)]] * 3
    RT.fig_restricted({4: {kind: [run] * 3 for kind in RT.KINDS}}, hist, "caption, 3 seeds", str(tmp_path / "f.png"))
    ax = drawn.pop().axes[0]
    line = next(ln for ln in ax.get_lines() if ln.get_label().startswith("unrestricted"))
    assert line.get_marker() not in ("None", "", None) and list(line.get_xdata()) == [0, 100, 200, 300]
    assert line.get_label().endswith("at its checkpoints")
    RT.plt.close("all")


def test_a_dense_unrestricted_curve_is_drawn_as_a_line(tmp_path, monkeypatch):
    """301 checkpoints (the paper preset) marked one by one bury the curves under dots."""
    from minimanifold.experiments import restricted_training as RT
    drawn = []
    monkeypatch.setattr(RT, "save_figure", lambda fig, path: drawn.append(fig) or str(path))
    run = {"steps": list(range(0, 30001, 1500)), "acc": {"1": [0.5] * 21}}
    hist = [[{"step": s, "acc": {"1": 0.9}} for s in range(0, 30001, 100)]] * 2
    RT.fig_restricted({4: {kind: [run] * 3 for kind in RT.KINDS}}, hist, "caption, 3 seeds", str(tmp_path / "f.png"))
    line = next(ln for ln in drawn.pop().axes[0].get_lines() if ln.get_label().startswith("unrestricted"))
    assert line.get_marker() in ("None", "", None) and not line.get_label().endswith("at its checkpoints")
    RT.plt.close("all")
