"""Whose ledger a figures folder holds, and the refusal to overwrite another's.

A ledger (``claims.json``) records what wrote it: ``written_by``, the caption of its preset
and settings with the planned seed count ("paper preset, 10 seeds: L=3, ... 30000 steps,
..."), and ``partial`` (a ``--train``/``--finished-only`` ledger that leaves claims or figures out, or
reads groups with runs still to train).
A ledger written before these fields existed is read from its caption, whose first
paragraph is the same text and which says "Partial ledger" when it is one.

``run_all.py`` asks before it trains and again before it writes a figure: a folder holding
another preset's ledger, the same preset's under other settings (``--lr``, ``--steps``,
``--seeds``), a whole ledger that a partial one would replace, or a ``claims.json`` that is
no ledger at all is refused with one line, unless the user passes ``--overwrite``.
"""
from __future__ import annotations

import json
import os


class OwnedByAnother(ValueError):
    """The figures folder holds a ledger this run did not write; the message says whose."""


def identity(ledger: dict) -> tuple:
    """(written_by, partial) of a loaded claims.json; ValueError if it is no ledger."""
    if not isinstance(ledger, dict) or not isinstance(ledger.get("caption"), str) \
            or not isinstance(ledger.get("claims"), list):
        raise ValueError("it has no caption and claims")
    caption = ledger["caption"]
    return (ledger.get("written_by", caption.split("\n\n")[0]),
            bool(ledger.get("partial", "Partial ledger" in caption)))


def check_owner(fig_dir, written_by: str, partial: bool, overwrite: bool = False) -> None:
    """Return if this run (``written_by``, ``partial``) may write its ledger and figures into
    ``fig_dir``; else OwnedByAnother naming what is there. Always returns with ``overwrite``."""
    path = os.path.join(fig_dir, "claims.json")
    if overwrite or not os.path.exists(path):
        return
    hint = "choose another --figures-dir, or pass --overwrite to replace it"
    try:
        with open(path, encoding="utf-8") as f:
            theirs, their_partial = identity(json.load(f))
    except (OSError, ValueError) as e:
        raise OwnedByAnother(f"{path} is not a claims ledger ({e}); refusing to overwrite it: {hint}") from None
    if theirs != written_by:
        raise OwnedByAnother(f"{fig_dir} holds the ledger of another run ({theirs!r}); this run is "
                             f"{written_by!r}: {hint}")
    if partial and not their_partial:
        raise OwnedByAnother(f"{fig_dir} holds a whole ledger of this preset; this run would replace it "
                             f"with a partial one (claims not measured yet): {hint}")
