"""The table of rules changed after the data were seen (report/rule_changes.py): every changed
rule and every verdict that moved is listed with the verdict before beside the one now."""
from minimanifold.experiments import EXPERIMENTS
from minimanifold.report import rule_changes as RC
from minimanifold.report.ledger import Row


def rows(verdicts: dict) -> list:
    return [Row("c", "s", "p", "m", "n", "i", v, None, n=n) for n, v in verdicts.items()]


def test_a_changed_rule_shows_its_verdict_before_and_now_and_why():
    now = {**RC.BEFORE["quick"], 1: "supported", 4: "supported"}
    text = RC.table(rows(now), "quick")
    line = next(ln for ln in text.splitlines() if ln.startswith("| 1 |"))
    assert line == f"| 1 | not supported | supported | {RC.CHANGES[1]} |"
    assert "| 4 | supported | supported |" in text                      # changed rule, same verdict: listed
    assert RC.EVERY in text


def test_a_verdict_that_moved_under_an_unchanged_rule_is_listed_too():
    assert 12 not in RC.CHANGES
    now = {**RC.BEFORE["quick"], 12: "supported"}
    text = RC.table(rows(now), "quick")
    assert f"| 12 | not supported | supported | {RC.OTHER} |" in text
    assert "| 16 |" not in text and "| 20 |" not in text                # unchanged rule and verdict: not listed


def test_a_preset_or_claim_without_a_frozen_verdict_reads_a_dash():
    text = RC.table(rows({1: "supported", 27: "not supported"}), "smoke")
    assert "| 1 | — | supported |" in text and "| 27 | — | not supported |" in text
    assert "| 27 | not supported |" not in RC.table(rows({27: "not supported"}), "quick")
    assert RC.table(rows({12: "inconclusive"}), "smoke") == ""               # nothing changed, nothing moved
    only = [ln for ln in RC.table(rows({12: "not supported"}), "quick").splitlines() if ln.startswith("| ") and "#" not in ln]
    assert [ln.split(" |")[0] for ln in only] == ["| 21"]                   # but claim 21 is retired


def test_a_partial_ledger_lists_each_earlier_verdict_it_leaves_out():
    """A partial ledger (claims 15 and 16 not measured yet) shows their frozen verdicts beside
    "not measured yet" (15's rule changed: its reason; 16's did not); a whole ledger lacking
    a claim (none does) would not list it."""
    now = {n: v for n, v in RC.BEFORE["paper"].items() if n not in (15, 16)}
    text = RC.table(rows(now), "paper", partial=True)
    assert f"| 15 | {RC.BEFORE['paper'][15]} | {RC.NOT_YET} | {RC.CHANGES[15]} |" in text
    assert f"| 16 | {RC.BEFORE['paper'][16]} | {RC.NOT_YET} | rule unchanged |" in text
    assert "| 12 |" not in text                                           # measured, unchanged: not listed
    assert "| 16 |" not in RC.table(rows(now), "paper")


def test_a_retired_claim_shows_its_verdict_before_beside_retired_in_whole_and_partial_ledgers():
    """Claim 21 has no row any more (issue 24): the paper's frozen *supported* stands beside
    "retired" and the reason, in a whole ledger and in a partial one (where it must not read
    "not measured yet", which promises a row). Guards: the retired claim dropped from the
    table."""
    now = {n: v for n, v in RC.BEFORE["paper"].items() if n != 21}
    for partial in (False, True):
        text = RC.table(rows(now), "paper", partial=partial)
        assert f"| 21 | supported | {RC.RETIRED_NOW} | {RC.RETIRED[21]} |" in text
        assert text.count("| 21 |") == 1 and RC.NOT_YET not in text
    assert "| 21 |" not in RC.table(rows({12: "inconclusive"}), "smoke")  # no verdict before: nothing to say


def test_every_listed_change_is_a_claim_some_experiment_decides():
    decided = {n for e in EXPERIMENTS for n in e.rules}
    assert set(RC.CHANGES) <= decided and not set(RC.RETIRED) & decided
    for preset, verdicts in RC.BEFORE.items():
        assert set(verdicts) <= decided | set(RC.RETIRED)
        assert set(verdicts.values()) <= {"supported", "not supported", "inconclusive"}
    assert len(RC.BEFORE["quick"]) == 26 and len(RC.BEFORE["paper"]) == len(RC.BEFORE["authors"]) == 23


def test_one_table_of_every_presets_rule_changes():
    """figures/ledgers.md's table (the README links it): per changed or retired claim, each
    preset's frozen verdict → its verdict now; a ledger not committed reads "not yet run"; one
    that still has a retired claim's row is under the old rules and says so; a claim a
    partial ledger lacks reads "—"; a retired claim reads retired."""
    quick = [{"n": n, "verdict": v} for n, v in RC.BEFORE["quick"].items() if n not in (4, 21)]
    quick[0] = {**quick[0], "verdict": "supported"}                       # claim 1 moved
    authors = [{"n": n, "verdict": v} for n, v in RC.BEFORE["authors"].items()]   # claim 21 still there
    text = RC.side_by_side({"quick: `python run_all.py`": quick, "paper: x": None, "authors: y": authors})
    lines = {ln.split(" |")[0]: ln for ln in text.splitlines() if ln.startswith("| ") and not ln.startswith("| #")}
    assert "| # | quick | paper | authors | why the rule changed" in text
    assert lines["| 1"] == (f"| 1 | not supported → supported | not supported → not yet run | supported → not redrawn under the new "
                            f"rules yet | {RC.CHANGES[1]} |")
    assert lines["| 4"].startswith("| 4 | supported → — |")
    assert lines["| 21"].startswith(f"| 21 | inconclusive → {RC.RETIRED_NOW} |")
    assert set(lines) == {f"| {n}" for n in {**RC.CHANGES, **RC.RETIRED}}    # unchanged rules: not listed
