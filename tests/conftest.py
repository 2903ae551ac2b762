import os
import numpy as np
import pytest
from hypothesis import settings

from minimanifold import ModelConfig, TaskConfig, init_params, make_batch

# Every randomised test is seeded: Hypothesis draws the same examples on every run (no
# CI failure by chance), and keeps no example database between runs.
settings.register_profile("seeded", derandomize=True, database=None)
settings.load_profile("seeded")


def small_setup(attn_only=True, n_layers=2, seed=0, batch=6, spread=0.3, attn_bias=False):
    """A small float64 model with perturbed (non-initial) parameters, and a batch.
    ``attn_bias=True``: with attention biases, perturbed like the rest (nonzero)."""
    cfg = ModelConfig(d_vocab=16, d_vocab_out=5, n_ctx=10, d_model=12, n_heads=3, d_head=4,
                      n_layers=n_layers, attn_only=attn_only, d_mlp=16, attn_bias=attn_bias)
    task = TaskConfig(T=8, C=5, n_markers=2, d_vocab=16)
    rng = np.random.default_rng(seed)
    params = {k: v + rng.normal(0, spread, v.shape)
              for k, v in init_params(cfg, seed, np.float64).items()}
    b = make_batch(rng, task, [1, 2], batch)
    return cfg, params, b.tokens, b.targets


@pytest.fixture
def small_model():
    return small_setup()

# Figures drawn by tests go to files: the backend run_all.py uses (importing the plotting
# module no longer chooses one, so a developer's display backend would open windows).
os.environ.setdefault("MPLBACKEND", "Agg")


def whole_and_resumed(tmp_path, spec):
    """Trajectories of ``spec`` trained in one go and trained with a stop after its step-10
    checkpoint then resumed (the stop leaves no summary.json): (whole, resumed)."""
    from minimanifold.trajectories.rundir import load_trajectory
    from minimanifold.trajectories.training_loop import train
    train(tmp_path / "whole", spec.model, spec.task, spec.train, log=lambda s: None)

    class Stop(Exception):
        pass

    def stop_at_10(line):
        if "step     10/" in line:
            raise Stop
    with pytest.raises(Stop):
        train(tmp_path / "resumed", spec.model, spec.task, spec.train, log=stop_at_10)
    assert not (tmp_path / "resumed" / "summary.json").exists()
    train(tmp_path / "resumed", spec.model, spec.task, spec.train, log=lambda s: None)
    return load_trajectory(tmp_path / "whole"), load_trajectory(tmp_path / "resumed")
