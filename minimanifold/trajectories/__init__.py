"""Producing trajectories: the task (§3.1), training with checkpoints (§3.2), what training
records at each checkpoint (eq 9), sweeps over seeds on any executor, and the presets."""
