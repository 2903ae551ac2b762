"""Entry point: ``python -m minimanifold.oracle grads|commutator ...`` (float64 reference
values for other implementations). The oracle lives in ``minimanifold/tools/oracle.py``."""
import sys

from .tools.oracle import main, printable_streams

if __name__ == "__main__":
    printable_streams()
    sys.exit(main())
