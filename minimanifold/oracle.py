"""Entry point: ``python -m minimanifold.oracle grads|commutator ...`` (float64 reference
values for other implementations). The oracle lives in ``minimanifold/tools/oracle.py``."""
import sys

from .tools.oracle import main

if __name__ == "__main__":
    sys.exit(main())
