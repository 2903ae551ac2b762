"""Tools around the reference: the oracle CLI, the benchmark, finite-difference gradient
checks, and an independent PyTorch model (optional, for parity and speed comparisons)."""
