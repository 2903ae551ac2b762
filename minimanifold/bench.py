"""Entry point: ``python -m minimanifold.bench`` (step time against the GEMM roofline and
PyTorch eager). The benchmark lives in ``minimanifold/tools/bench.py``."""
import sys

from .tools.bench import main

if __name__ == "__main__":
    sys.exit(main())
