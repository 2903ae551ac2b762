"""``python -m minimanifold.audit SOURCE [SOURCE ...] --out DIR``: see ``minimanifold.audit``."""
from __future__ import annotations

import argparse
import sys

from ..report.owner import OwnedByAnother
from ..trajectories.progress import is_terminal, printable_streams, safe_print
from . import audit
from .names import BUILTIN, NameMapError
from .series import SeriesError


def show(line: str) -> None:
    """The summary to stdout; the reading progress as one line rewritten in place on a
    terminal's stderr (nowhere else: a log keeps the summary, not a line per snapshot)."""
    if line.startswith("reading "):
        if is_terminal(sys.stderr):
            sys.stderr.write("\r\x1b[K" + line[:150])
            sys.stderr.flush()
        return
    if is_terminal(sys.stderr):
        sys.stderr.write("\r\x1b[K")
    safe_print(line)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m minimanifold.audit", description=__doc__.split("\n")[0] + (
        " Each SOURCE is one seed: a folder of per-step checkpoints (*.pt, *.pth, *.safetensors, *.npz; the "
        "step is the last number in each file name), a file holding a list of (step, state dict), or one of "
        "our run directories."))
    ap.add_argument("sources", nargs="+", metavar="SOURCE")
    ap.add_argument("--out", required=True, help="folder for claims.md, claims.json, figures and records")
    ap.add_argument("--map", default=None, help=f"their names -> ours: {', '.join(BUILTIN)}, or a JSON file "
                                                f"(default: our / TransformerLens names as they are)")
    ap.add_argument("--n-heads", type=int, default=None, help="heads, where the map splits them (default: the map's)")
    ap.add_argument("--batch", default=None, help="for the forward-pass measurements (entropy, functional "
                    "dimension): an .npz of tokens [b,t] and targets [b] (optionally m [b]), or task settings "
                    "'T=32,C=8,n_markers=6,d_vocab=32,m=1,2,3,4'; needs snapshots of a whole model")
    ap.add_argument("--lr", type=float, default=None, help="with --batch: the step size of the commutators")
    ap.add_argument("--overwrite", action="store_true", help="replace a ledger in --out that another audit wrote")
    a = ap.parse_args(argv)
    if a.lr is not None and not (a.lr > 0 and a.lr < float("inf")):
        print(f"error: --lr must be a positive finite number, got {a.lr}", file=sys.stderr)
        return 2
    if a.lr is not None and a.batch is None:
        print("error: --lr sets the commutators' step size, which need a --batch", file=sys.stderr)
        return 2
    if a.n_heads is not None and a.n_heads < 1:
        print(f"error: --n-heads must be a positive integer, got {a.n_heads}", file=sys.stderr)
        return 2
    try:
        audit(a.sources, a.out, a.map, a.n_heads, a.overwrite, log=show, batch=a.batch, lr=a.lr)
    except (SeriesError, NameMapError, OwnedByAnother) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except MemoryError:
        print("error: the snapshots do not fit in memory; audit fewer or smaller checkpoints", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    printable_streams()
    sys.exit(main())
