"""Verdicts that do not hang on the snapshot count (issue 23 §3): r90, when the collapse
settles and how smoothly entropy falls all depend on how many snapshots a measure sees
(issue 23 found the paper preset's r90 at 1.65 from 5 snapshots, 2.51 from all). A claim read from them is
decided from every checkpoint and again from 40 evenly spaced snapshots (the authors'
count; ``geometry.common_snapshots``), and the row shows both: claims 1–4 here through
``collapse``, 6 and 7 (``bubbling``), 15, 18 and 19 (``variants.counted_claim``) and
24–26 (``factorial``).
"""
from __future__ import annotations

import dataclasses

from ..report.ledger import INCONCLUSIVE, Row
from ..trajectories.rundir import ALL


def count_rule(own: str, common: str) -> str:
    """A verdict must not hang on how many snapshots its measure sees: the rule is applied to
    the measure from the preset's own checkpoints and from 40 evenly spaced ones; the two
    verdicts agree, or the row is *inconclusive* (the reason in the row)."""
    return own if own == common else INCONCLUSIVE


def counted(row: Row, common_verdict: str, n_common: int) -> Row:
    """``row`` with the snapshot-count check (``count_rule``) applied and shown."""
    if row.verdict == common_verdict:
        note = f"; from {n_common} evenly spaced snapshots: the same verdict"
    else:
        note = (f"; from {n_common} evenly spaced snapshots: {common_verdict} (against {row.verdict} from "
                f"every checkpoint): the verdict depends on the snapshot count")
    return dataclasses.replace(row, interval=row.interval + note, verdict=count_rule(row.verdict, common_verdict))


def n_common(geoms) -> int:
    return geoms[0][ALL]["common"]["n"]
