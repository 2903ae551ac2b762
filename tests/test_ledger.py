"""The ledger's table format and writer (minimanifold/report/ledger.py)."""
import json
import os

from minimanifold.experiments import EXPERIMENTS
from minimanifold.report import ledger

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def row(claim="c", measured="m", verdict="supported"):
    return {"claim": claim, "section": "§4.1", "paper": "p", "measured": measured, "null": "n",
            "interval": "[1.00, 2.00]", "verdict": verdict, "value": 1.0}


def test_write_table_rules_and_json(tmp_path):
    def rule_a():
        """first rule: *supported* if x."""
    def rule_b():
        """second rule."""
    claims = [row("alpha"), row("beta", verdict="inconclusive")]
    ledger.write(claims, {7: rule_b, 3: rule_a}, "caption", tmp_path / "c.md", tmp_path / "c.json")
    lines = (tmp_path / "c.md").read_text().splitlines()
    assert "| 1 | alpha | §4.1 | p | m | n | [1.00, 2.00] | **supported** |" in lines
    assert "| 2 | beta | §4.1 | p | m | n | [1.00, 2.00] | **inconclusive** |" in lines
    rules = [l for l in lines if l.startswith("- claim")]
    assert rules == ["- claim 3: first rule: *supported* if x.", "- claim 7: second rule."]   # by number
    assert json.loads((tmp_path / "c.json").read_text()) == {"caption": "caption", "claims": claims}
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_mean_sd_is_population_sd():
    assert ledger.mean_sd([1.0, 3.0]) == "2.00 ± 1.00"
    assert ledger.mean_sd([2.0], "{:.1f}") == "2.0 ± 0.0"


def test_readme_findings_match_the_committed_ledger():
    """The README's findings table is generated from figures/claims.json: they must agree."""
    with open(os.path.join(ROOT, "figures", "claims.json")) as f:
        claims = json.load(f)["claims"]
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    block = readme.split(ledger.FINDINGS_START)[1].split(ledger.FINDINGS_END)[0].strip()
    assert block == ledger.findings_markdown(claims)
    assert len(claims) == sum(len(m.RULES) for m in EXPERIMENTS)


def test_update_readme(tmp_path):
    p = tmp_path / "R.md"
    p.write_text(f"intro\n{ledger.FINDINGS_START}\nold\n{ledger.FINDINGS_END}\noutro\n")
    claims = [row("alpha")]
    assert ledger.update_readme(p, claims)
    text = p.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text
    assert ledger.findings_markdown(claims) in text
    q = tmp_path / "plain.md"
    q.write_text("no markers\n")
    assert not ledger.update_readme(q, claims) and q.read_text() == "no markers\n"


def test_pipes_in_cells_are_escaped():
    claims = [row(measured="|corr| > 0.5")]
    line = ledger.findings_markdown(claims).splitlines()[-1]
    assert line.count("|") - line.count("\\|") == 7          # 6 columns: 7 unescaped bars


def test_authors_column_only_where_their_figures_are_given(tmp_path):
    """The authors preset's ledger has a column of the authors' figure values beside the
    paper's; every other ledger keeps its columns."""
    from minimanifold.experiments import AUTHORS_FIGURES
    claims = [dict(row("alpha"), authors="r90 4.1–6.0"), dict(row("beta"), authors="")]
    ledger.write(claims, {}, "caption", tmp_path / "c.md", tmp_path / "c.json")
    lines = (tmp_path / "c.md").read_text().splitlines()
    header = next(i for i, l in enumerate(lines) if l.startswith("| # |"))
    assert "authors' figures (their code)" in lines[header] and lines[header + 1].count("|") == 10
    assert "| 1 | alpha | §4.1 | p | r90 4.1–6.0 | m | n | [1.00, 2.00] | **supported** |" in lines
    assert "| 2 | beta | §4.1 | p |  | m | n | [1.00, 2.00] | **supported** |" in lines
    ledger.write([row("alpha")], {}, "caption", tmp_path / "d.md", tmp_path / "d.json")
    assert "authors" not in (tmp_path / "d.md").read_text()
    assert set(AUTHORS_FIGURES) == {1, 2, 6, 10, 14} and "9.7×" in AUTHORS_FIGURES[10]


def test_the_pipeline_adds_the_authors_values_for_the_authors_preset():
    import dataclasses
    from minimanifold.experiments.context import Context
    from minimanifold.pipeline import analyse
    from minimanifold.trajectories.presets import AUTHORS, QUICK

    import types
    Fake = types.ModuleType("minimanifold.experiments.fake")
    Fake.RULES = {1: lambda: None, 3: lambda: None}
    Fake.report = lambda ctx: ({1: row("one"), 3: row("three")}, [])
    import minimanifold.pipeline as P
    saved = P.EXPERIMENTS
    try:
        P.EXPERIMENTS = (Fake,)
        claims, _, _ = analyse(Context(AUTHORS, [], {}, "/tmp", "c"), log=lambda s: None)
        assert claims[0]["authors"].startswith("r90 4.1–6.0") and claims[1]["authors"] == ""
        claims, _, _ = analyse(Context(dataclasses.replace(QUICK), [], {}, "/tmp", "c"), log=lambda s: None)
        assert all("authors" not in c for c in claims)
    finally:
        P.EXPERIMENTS = saved


def test_readme_presets_table_matches_the_committed_ledgers():
    """The README's side-by-side table is generated from the committed ledgers of every
    preset (pipeline.README_LEDGERS): they must agree, and every committed ledger has a column."""
    from minimanifold.pipeline import README_LEDGERS
    ledgers = ledger.committed_ledgers(os.path.join(ROOT, "figures"), README_LEDGERS)
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    block = readme.split(ledger.PRESETS_START)[1].split(ledger.PRESETS_END)[0].strip()
    assert block == ledger.side_by_side_markdown(ledgers)
    assert ledgers[README_LEDGERS[0][0]] is not None                   # the quick ledger is committed


def test_side_by_side_columns_rows_and_gaps():
    a = [dict(row("alpha", verdict="supported"), interval="[1, 2]"), dict(row("beta", verdict="inconclusive"), interval="")]
    b = [dict(row("alpha", verdict="not supported"), interval="[-2, |x|]")]
    text = ledger.side_by_side_markdown({"A": a, "B": b, "C": None})
    lines = text.splitlines()
    assert lines[0] == "| # | claim | paper | A | B | C |" and lines[1] == "|---|---|---|---|---|---|"
    assert lines[2] == "| 1 | alpha | p | **supported** [1, 2] | **not supported** [-2, \\|x\\|] | not yet run |"
    assert lines[3].startswith("| 2 | beta |") and lines[3].endswith("| **inconclusive** | — | not yet run |")
    assert len(lines) == 4
    assert ledger.side_by_side_markdown({"C": None}).count("\n") == 1     # nothing committed: header only


def test_replace_block_writes_nothing_without_both_markers(tmp_path):
    p = tmp_path / "R.md"
    p.write_text(f"a\n{ledger.PRESETS_START}\nold\nb\n")                # no end marker
    assert not ledger.replace_block(p, ledger.PRESETS_START, ledger.PRESETS_END, "new")
    assert p.read_text() == f"a\n{ledger.PRESETS_START}\nold\nb\n"
    p.write_text(f"a\n{ledger.PRESETS_START}\nold\n{ledger.PRESETS_END}\nb\n")
    assert ledger.replace_block(p, ledger.PRESETS_START, ledger.PRESETS_END, "new")
    assert p.read_text() == f"a\n{ledger.PRESETS_START}\nnew\n{ledger.PRESETS_END}\nb\n"


def test_a_damaged_committed_ledger_is_named(tmp_path):
    import pytest
    (tmp_path / "paper").mkdir()
    (tmp_path / "paper" / "claims.json").write_text('{"claims": [')          # truncated
    (tmp_path / "claims.json").write_text('{"caption": "no claims key"}')
    for rel in ("paper/claims.json", "claims.json"):
        with pytest.raises(ValueError, match="is not a claims ledger"):
            ledger.committed_ledgers(str(tmp_path), [("x", rel)])
    assert ledger.committed_ledgers(str(tmp_path), [("x", "authors/claims.json")]) == {"x": None}
