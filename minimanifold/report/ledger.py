"""The claims ledger as a table format and a writer, nothing more.

A claim row is a ``Row`` (one type, every field in every ledger). Rows come from the
experiment modules (``minimanifold/experiments/``), each of which owns its claims' numbers
and verdict rules; a rule is a function whose docstring is the rule's text, so the ledger
prints exactly the rule the code applies.
Written to ``claims.md`` and ``claims.json``; every committed preset's verdicts also go
into one generated page side by side (``figures/ledgers.md``).
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import os
import textwrap
from dataclasses import dataclass

import numpy as np

from ..files import atomic_write

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"


@dataclass(frozen=True)
class Row:
    """One claim of a ledger. ``paper``: the paper's number; ``measured``: ours (mean ± sd over
    seeds); ``null``: a null or control beside it; ``interval``: the 95% intervals over seeds
    the verdict was decided on; ``value``/``null_value``: the numbers behind them (JSON);
    ``authors``: the authors' own figures' value (the authors preset, else ""); ``n``: the
    claim number (set by the pipeline)."""
    claim: str
    section: str
    paper: str
    measured: str
    null: str
    interval: str
    verdict: str
    value: object
    null_value: object = None
    authors: str = ""
    n: int | None = None

    def to_dict(self) -> dict:
        """The row as claims.json holds it: every field, in this order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def verdict(cond) -> str:
    """A three-valued condition on an interval (analysis.intervals.holds) as a verdict."""
    return SUPPORTED if cond is True else NOT_SUPPORTED if cond is False else INCONCLUSIVE


def mean_sd(x, fmt="{:.2f}") -> str:
    """'mean ± sd' of x (population sd, over seeds); one value alone, without a spread that
    one seed cannot have ("0.95 ± 0.00" read as seeds that agree)."""
    x = np.asarray(x, dtype=float)
    return fmt.format(x[0]) if len(x) == 1 else (fmt + " ± " + fmt).format(x.mean(), x.std())


def cell(text) -> str:
    """Text for a markdown table cell: a literal | would end the cell."""
    return str(text).replace("|", "\\|")


def rules_text(rules: dict) -> str:
    """The verdict rules, one bullet per claim number, from the rule functions' docstrings."""
    lines = ["Verdict rules (each is the docstring of the function in minimanifold/experiments/ that "
             "applies it). A verdict is *supported* or *not supported* only when the whole 95% interval "
             "over seeds lies on one side of the threshold; an interval that straddles it is "
             "*inconclusive*, and so is one that lies between a rule's two thresholds where it has two. "
             "A rerun on another machine, BLAS kernel or thread count can still move a verdict, to or from "
             "*inconclusive* where an interval lies near a threshold; it would take intervals that miss the "
             "truth to move one across:"]
    for n in sorted(rules):
        doc = " ".join(inspect.getdoc(rules[n]).split())
        lines.append(textwrap.fill(f"- claim {n}: {doc}", 110, subsequent_indent="  "))
    return "\n".join(lines)


def write(claims, rules: dict, caption, md_path, json_path, written_by=None, partial=False,
          authors=False, changes="") -> None:
    """claims.md (the table, then the rules) and claims.json of ``claims`` [Row], each written
    atomically; a row without a number ``n`` is numbered by its position. ``authors``: a
    column of the authors' figures' values (a preset with ``compare_authors``). claims.json
    records ``written_by`` (the preset and settings: ``report.owner``, which refuses to let
    another run overwrite it) and whether the ledger is ``partial``. ``changes``: a markdown
    section printed under the rules (``rule_changes.table``)."""
    lines = [f"# Claims ledger\n\n{caption}\n",
             "| # | claim | section | paper | " + ("authors' figures (their code) | " if authors else "")
             + "measured (mean ± sd over seeds, the sd of the population) | null / control | 95% interval over seeds (decides the verdict) | verdict |",
             "|---|---|---|---|---|---|---|---|" + ("---|" if authors else "")]
    for i, c in enumerate(claims, 1):
        lines.append(f"| {i if c.n is None else c.n} | {cell(c.claim)} | {c.section} | {cell(c.paper)} | "
                     + (f"{cell(c.authors)} | " if authors else "")
                     + f"{cell(c.measured)} | {cell(c.null)} | {cell(c.interval)} | **{c.verdict}** |")
    text = "\n".join(lines) + "\n\n" + rules_text(rules) + "\n" + (f"\n{changes}\n" if changes else "")
    atomic_write(md_path, lambda f: f.write(text), mode="w")
    head = {"caption": caption, **({"written_by": written_by, "partial": partial} if written_by else {})}
    atomic_write(json_path, lambda f: f.write(json.dumps({**head, "claims": [c.to_dict() for c in claims]}, indent=1)), mode="w")


# ---- the presets' ledgers side by side, from the committed claims.json files ----

def numbered(claims) -> dict:
    """{claim number: row}: a row's ``n`` (a partial ledger leaves numbers out), else its
    position (a ledger written before rows carried their number, or by ``write`` of rows
    without one, lists every claim)."""
    return {i if c.get("n") is None else c["n"]: c for i, c in enumerate(claims, 1)}


def side_by_side_markdown(ledgers: dict, retired=()) -> str:
    """One row per claim number, one column per preset: the verdict and the interval it was
    decided on; "—" where a ledger lacks the claim (a partial one), "retired" where it lacks
    a claim of ``retired`` (numbers whose rows are gone for good: the rule-change table of
    that ledger says why), "not yet run" for a ledger that is None (not committed). The
    claim's text and the paper's number come from the first ledger with it."""
    tables = {name: numbered(claims) if claims is not None else None for name, claims in ledgers.items()}
    numbers = sorted({n for t in tables.values() if t for n in t})
    lines = ["| # | claim | paper | " + " | ".join(tables) + " |", "|---|---|---|" + "---|" * len(tables)]
    for n in numbers:
        first = next(t[n] for t in tables.values() if t and n in t)
        cells = ["not yet run" if t is None else
                 "retired (its ledger's rule-change table says why)" if n not in t and n in retired else
                 "—" if n not in t else
                 f"**{t[n]['verdict']}** {cell(t[n].get('interval', ''))}".strip() for t in tables.values()]
        lines.append(f"| {n} | {cell(first['claim'])} | {cell(first['paper'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def committed_ledgers(figures_dir, columns) -> dict:
    """{heading: claims or None} for ``columns`` [(heading, path relative to figures_dir)]."""
    out = {}
    for heading, rel in columns:
        path = os.path.join(figures_dir, rel)
        if os.path.exists(path):
            try:
                with open(path, encoding="utf-8") as f:
                    out[heading] = json.load(f)["claims"]
            except (ValueError, KeyError, TypeError) as e:       # a damaged or foreign file: name it
                raise ValueError(f"{path} is not a claims ledger ({type(e).__name__}: {e})") from e
        else:
            out[heading] = None
    return out


def write_side_by_side(figures_dir, columns, path, retired=(), appendix=None) -> None:
    """``path`` := the generated page of the presets' verdicts side by side
    (``side_by_side_markdown`` of the ledgers under ``figures_dir``, ``retired`` claim
    numbers), then ``appendix(ledgers)`` (the rules changed), written atomically.
    The README links to it; nothing the main job writes lies outside the figures folder."""
    ledgers = committed_ledgers(figures_dir, columns)
    text = ("# The presets' verdicts side by side\n\nGenerated by `python run_all.py` from each preset's "
            "`claims.json` (do not edit). Each cell: the verdict and the interval it was decided on; "
            "the full rows, rules and nulls are in each preset's `claims.md`.\n\n"
            + side_by_side_markdown(ledgers, retired) + "\n" + ("\n" + appendix(ledgers) + "\n" if appendix else ""))
    atomic_write(path, lambda f: f.write(text), mode="w")
