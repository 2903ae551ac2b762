"""The ledger's table format and writer (minimanifold/report/ledger.py)."""
import dataclasses
import json
import os
import shutil

from minimanifold.experiments import EXPERIMENTS
from minimanifold.report import ledger

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def row(claim="c", measured="m", verdict="supported"):
    return ledger.Row(claim=claim, section="§4.1", paper="p", measured=measured, null="n",
                      interval="[1.00, 2.00]", verdict=verdict, value=1.0)


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
    assert json.loads((tmp_path / "c.json").read_text()) == {"caption": "caption",
                                                             "claims": [c.to_dict() for c in claims]}
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_mean_sd_is_population_sd():
    assert ledger.mean_sd([1.0, 3.0]) == "2.00 ± 1.00"
    assert ledger.mean_sd([2.0], "{:.1f}") == "2.0"                 # one seed: no spread to show


def test_the_committed_quick_ledger_has_every_claim():
    with open(os.path.join(ROOT, "figures", "quick", "claims.json"), encoding="utf-8") as f:
        claims = json.load(f)["claims"]
    assert len(claims) == sum(len(e.rules) for e in EXPERIMENTS)


def test_pipes_in_cells_are_escaped():
    claims = [row(claim="|corr| > 0.5").to_dict()]
    line = ledger.side_by_side_markdown({"A": claims}).splitlines()[-1]
    assert line.count("|") - line.count("\\|") == 5          # 4 columns: 5 unescaped bars


def test_authors_column_only_where_their_figures_are_given(tmp_path):
    """The authors preset's ledger has a column of the authors' figure values beside the
    paper's; every other ledger keeps its columns."""
    from minimanifold.experiments import AUTHORS_FIGURES
    claims = [dataclasses.replace(row("alpha"), authors="r90 4.1–6.0"), dataclasses.replace(row("beta"), authors="")]
    ledger.write(claims, {}, "caption", tmp_path / "c.md", tmp_path / "c.json", authors=True)
    lines = (tmp_path / "c.md").read_text().splitlines()
    header = next(i for i, l in enumerate(lines) if l.startswith("| # |"))
    assert "authors' figures (their code)" in lines[header] and lines[header + 1].count("|") == 10
    assert "| 1 | alpha | §4.1 | p | r90 4.1–6.0 | m | n | [1.00, 2.00] | **supported** |" in lines
    assert "| 2 | beta | §4.1 | p |  | m | n | [1.00, 2.00] | **supported** |" in lines
    ledger.write([row("alpha")], {}, "caption", tmp_path / "d.md", tmp_path / "d.json")
    assert "authors" not in (tmp_path / "d.md").read_text()
    ledger.write(claims, {}, "caption", tmp_path / "e.md", tmp_path / "e.json")   # the preset decides, not the rows
    assert "authors" not in (tmp_path / "e.md").read_text()
    assert "| 1 | alpha | §4.1 | p | m | n | [1.00, 2.00] | **supported** |" in (tmp_path / "e.md").read_text()
    ledger.write([row("alpha")], {}, "caption", tmp_path / "f.md", tmp_path / "f.json", authors=True)
    assert "| 1 | alpha | §4.1 | p |  | m | n | [1.00, 2.00] | **supported** |" in (tmp_path / "f.md").read_text()
    assert set(AUTHORS_FIGURES) == {1, 2, 6, 10, 14} and "9.7×" in AUTHORS_FIGURES[10]


def test_the_pipeline_adds_the_authors_values_for_the_authors_preset(monkeypatch):
    from minimanifold.experiments.context import Context
    from minimanifold.experiments.contract import Experiment
    from minimanifold.trajectories.presets import AUTHORS, QUICK
    import minimanifold.pipeline as P
    fake = Experiment("fake", "s", {1: lambda: None, 3: lambda: None},
                      lambda ctx: ({1: row("one"), 3: row("three")}, []))
    monkeypatch.setattr(P, "EXPERIMENTS", (fake,))
    claims, _, _ = P.analyse(Context(AUTHORS, [], {}, "/tmp", "c"), log=lambda s: None)
    assert claims[0].authors.startswith("r90 4.1–6.0") and claims[1].authors == ""
    assert [c.n for c in claims] == [1, 3]
    claims, _, _ = P.analyse(Context(dataclasses.replace(QUICK), [], {}, "/tmp", "c"), log=lambda s: None)
    assert all(c.authors == "" for c in claims) and [c.n for c in claims] == [1, 3]


def test_every_ledger_row_has_every_field_in_one_order(tmp_path):
    """One row type: claims.json holds every field of every row, the same keys in the same
    order in every ledger (the authors column, the claim number and the null's value
    included, empty where a row has none)."""
    fields = ["claim", "section", "paper", "measured", "null", "interval", "verdict", "value", "null_value",
              "authors", "n"]
    assert [f.name for f in dataclasses.fields(ledger.Row)] == fields
    ledger.write([dataclasses.replace(row("alpha"), n=4, null_value=2.5), row("beta")], {}, "caption",
                 tmp_path / "c.md", tmp_path / "c.json")
    claims = json.loads((tmp_path / "c.json").read_text())["claims"]
    assert [list(c) for c in claims] == [fields, fields]
    assert claims[0]["n"] == 4 and claims[0]["null_value"] == 2.5 and claims[1]["n"] is None
    assert claims[1]["null_value"] is None and claims[1]["authors"] == ""
    assert "| 4 | alpha |" in (tmp_path / "c.md").read_text() and "| 2 | beta |" in (tmp_path / "c.md").read_text()


def test_the_ledgers_page_is_generated_from_the_committed_ledgers(tmp_path):
    """figures/ledgers.md is what run_all.py generates from the committed ledgers of every
    preset (pipeline.LEDGERS): they must agree, and the quick ledger is committed."""
    from minimanifold.pipeline import LEDGERS, write_ledgers_page
    figures = os.path.join(ROOT, "figures")
    ledgers = ledger.committed_ledgers(figures, LEDGERS)
    assert ledgers[LEDGERS[0][0]] is not None
    shutil.copytree(figures, tmp_path / "figures", ignore=shutil.ignore_patterns("*.png"))
    page = write_ledgers_page(str(tmp_path / "figures"))
    with open(os.path.join(figures, "ledgers.md"), encoding="utf-8") as f:
        assert f.read() == open(page, encoding="utf-8").read()
    from minimanifold.report.rule_changes import RETIRED
    assert ledger.side_by_side_markdown(ledgers, RETIRED) in open(page, encoding="utf-8").read()


def test_every_committed_ledger_has_the_same_fields_and_its_claim_numbers():
    """Issue 23 §6: each figures/<preset>/claims.json names its writer, whether it is partial,
    and each row every Row field, its number ``n`` included (the authors ledger, written
    before rows carried numbers, had none: side-by-side pages had to number it by position)."""
    from minimanifold.pipeline import written_by
    from minimanifold.report import owner
    from minimanifold.report.rule_changes import RETIRED
    from minimanifold.trajectories.presets import PRESETS
    fields = {f.name for f in dataclasses.fields(ledger.Row)}
    for preset in ("quick", "paper", "authors"):
        with open(os.path.join(ROOT, "figures", preset, "claims.json"), encoding="utf-8") as f:
            d = json.load(f)
        assert set(d) == {"caption", "written_by", "partial", "claims"}, preset
        assert owner.identity(d) == (written_by(PRESETS[preset]), d["partial"]), preset   # reruns accepted
        if "Rules changed after the data were seen" in open(os.path.join(ROOT, "figures", preset, "claims.md"),
                                                            encoding="utf-8").read():   # the new rules
            assert not {c["n"] for c in d["claims"]} & set(RETIRED), preset
        assert all(set(c) == fields for c in d["claims"]), preset
        numbers = [c["n"] for c in d["claims"]]
        assert numbers == sorted(set(numbers)) and all(isinstance(n, int) for n in numbers), preset


def test_side_by_side_columns_rows_and_gaps():
    a = [dict(row("alpha", verdict="supported").to_dict(), interval="[1, 2]"),
         dict(row("beta", verdict="inconclusive").to_dict(), interval="")]
    b = [dict(row("alpha", verdict="not supported").to_dict(), interval="[-2, |x|]")]
    text = ledger.side_by_side_markdown({"A": a, "B": b, "C": None})
    lines = text.splitlines()
    assert lines[0] == "| # | claim | paper | A | B | C |" and lines[1] == "|---|---|---|---|---|---|"
    assert lines[2] == "| 1 | alpha | p | **supported** [1, 2] | **not supported** [-2, \\|x\\|] | not yet run |"
    assert lines[3].startswith("| 2 | beta |") and lines[3].endswith("| **inconclusive** | — | not yet run |")
    assert len(lines) == 4
    assert ledger.side_by_side_markdown({"C": None}).count("\n") == 1     # nothing committed: header only


def test_side_by_side_a_retired_claim_reads_retired_where_a_ledger_lacks_it():
    """Claim 2 retired: a ledger without it reads "retired", one that still has it (written
    before the retirement) keeps its verdict, and a missing claim that is not retired stays
    "—". Guards: retired for every ledger, or for a missing claim that is not retired."""
    a = [dict(row("alpha").to_dict(), n=1), dict(row("gamma").to_dict(), n=3)]
    b = [dict(row("alpha").to_dict(), n=1), dict(row("beta", verdict="supported").to_dict(), n=2)]
    lines = ledger.side_by_side_markdown({"A": a, "B": b}, retired={2}).splitlines()
    assert lines[3].startswith("| 2 | beta |") and lines[3].endswith(
        "| retired (its ledger's rule-change table says why) | **supported** [1.00, 2.00] |")
    assert lines[4].startswith("| 3 | gamma |") and lines[4].endswith("| — |")


def test_a_damaged_committed_ledger_is_named(tmp_path):
    import pytest
    (tmp_path / "paper").mkdir()
    (tmp_path / "paper" / "claims.json").write_text('{"claims": [')          # truncated
    (tmp_path / "claims.json").write_text('{"caption": "no claims key"}')
    for rel in ("paper/claims.json", "claims.json"):
        with pytest.raises(ValueError, match="is not a claims ledger"):
            ledger.committed_ledgers(str(tmp_path), [("x", rel)])
    assert ledger.committed_ledgers(str(tmp_path), [("x", "authors/claims.json")]) == {"x": None}


def test_the_preset_decides_the_authors_column_and_the_caption_names_what_is_left_out(tmp_path):
    """The pipeline's ledger: an authors' column for a preset that compares with their
    figures (the authors preset) and for no other, whatever the rows hold; a partial
    ledger's caption names each experiment left out, with its claims and why."""
    from minimanifold.experiments import restricted_training
    from minimanifold.experiments.context import Context
    from minimanifold.pipeline import write_ledger
    from minimanifold.trajectories.presets import AUTHORS, QUICK
    rows = [dataclasses.replace(row("alpha"), n=1, authors="r90 4.1–6.0")]
    for preset, want in ((AUTHORS, True), (QUICK, False)):
        ctx = Context(preset, [], {}, str(tmp_path / preset.name), "caption")
        os.makedirs(ctx.fig_dir)
        md, js = write_ledger(ctx, rows, {}, {}, "me")
        assert ("authors' figures (their code)" in open(md, encoding="utf-8").read()) == want, preset.name
        assert json.loads(open(js, encoding="utf-8").read())["partial"] is False
    ctx = Context(QUICK, [], {}, str(tmp_path / "partial"), "caption")
    os.makedirs(ctx.fig_dir)
    md, js = write_ledger(ctx, rows, {}, {restricted_training.EXPERIMENT: "its measurement trains"}, "me")
    assert "not measured yet:\n- claim 23: its measurement trains\n" in open(md, encoding="utf-8").read()
    assert json.loads(open(js, encoding="utf-8").read())["partial"] is True
    from minimanifold.experiments import optimizer                       # no claim (21 retired): its figure
    md, js = write_ledger(ctx, rows, {}, {optimizer.EXPERIMENT: "runs not trained yet: optimizer-adamw"}, "me")
    assert "not measured yet:\n- the optimizer figure (no claim): runs not trained yet: optimizer-adamw\n" \
        in open(md, encoding="utf-8").read()


def test_a_sitting_with_runs_still_to_train_is_partial_though_it_leaves_no_claim_out(tmp_path):
    """The factorial reports from some of its cells (``some_variants``): with every other
    group finished nothing is left out, yet cells are still training, so the ledger is
    partial, says which groups and how many runs, and a whole run has nothing unfinished."""
    from minimanifold.experiments import factorial as fac
    from minimanifold.experiments.context import Context
    from minimanifold.experiments.groups import planned_specs
    from minimanifold.pipeline import unfinished, write_ledger
    from minimanifold.trajectories.presets import PAPER
    planned = planned_specs(PAPER)
    variants = {g: [{"dir": g}] * len(specs) for g, specs in planned.items() if g != "main"}
    variants["factorial-adamw-cosine-task"] = variants["factorial-adamw-cosine-task"][:2]
    variants["factorial-adamw-cosine-notask"] = []
    ctx = Context(PAPER, [{"dir": "m"}] * PAPER.n_seeds, variants, str(tmp_path), "caption")
    short = unfinished(ctx, frozenset())
    assert short == {"factorial-adamw-cosine-task": (2, 5), "factorial-adamw-cosine-notask": (0, 5)}
    assert unfinished(ctx, None) == {}                                  # a whole run trained every group
    assert fac.EXPERIMENT.some_variants
    md, js = write_ledger(ctx, [dataclasses.replace(row("alpha"), n=1)], {}, {}, "me", short)
    assert "- runs still to train (the claims that read these groups use the runs finished): " \
           "factorial-adamw-cosine-task 2 of 5, factorial-adamw-cosine-notask 0 of 5" in open(md).read()
    assert json.loads(open(js, encoding="utf-8").read())["partial"] is True
    md, js = write_ledger(ctx, [dataclasses.replace(row("alpha"), n=1)], {}, {fac.EXPERIMENT: "runs not trained yet"},
                          "me", short)                                  # groups already named: not twice
    assert "runs still to train" not in open(md).read() and json.load(open(js))["partial"] is True
