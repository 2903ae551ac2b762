"""Rules changed after the data were seen (issue 23: rules read beside the paper's text by a
skeptical reviewer), each with its reason in one line, and per committed preset the verdict
its ledger gave before the change beside the one it gives now. A ledger prints this table
under its rules, so no change of rule is silent. A claim whose rule tested the wrong thing
and whose question other rows now decide is ``RETIRED`` (issue 24: claim 21): its row is
gone, and the table keeps its verdict before beside why.

``BEFORE`` is history, frozen: the verdicts of the ledgers committed at 890fe49 (the last
commit before these changes), claim by claim.
"""
from __future__ import annotations

from .ledger import cell

ISSUE = "issues 23, 24"
NOT_YET = "not measured yet (partial ledger)"

# as many snapshots as the authors' runs have, or every checkpoint where a preset has fewer
COMMON = "40 evenly spaced snapshots (every checkpoint where a preset has fewer)"

# claim -> why its rule changed (one line each; the rule itself is printed above the table). The
# numbers quoted are the paper preset's, where the reviewer found each problem.
CHANGES = {
    1: "tests the paper's headline range 3–4 (abstract, §1), not the widest one (3–5), and shows the "
       f"verdict under each range the paper states; also decided from {COMMON}",
    2: f"also decided from {COMMON}: a verdict that flips with the snapshot count is inconclusive",
    3: "settling measured by the top-k subspace's principal angle to the whole run's (the integer r90 "
       "is quantised); a fraction indistinguishable from the random walk's no longer reads not supported",
    4: "an unbiased across-seed sd with an interval whose coverage is checked by simulation (the "
       f"bootstrap of the ddof-0 sd missed the true sd in 72% of simulated data sets); also from {COMMON}",
    6: f"also decided from {COMMON} (the largest single-checkpoint share grows with the spacing); a share "
       "above one half whose fall comes before the first checkpoint cannot show a sharp fall (inconclusive)",
    7: "the manifold's settling is claim 3's new measure (the top-k subspace's principal angle), not the "
       "integer r90's",
    8: "the paper says > 95% (92% and 98% are the authors' code's 1 − ρ), and any small subspace clears 95%: "
       "a share below a random subspace's is not 'confined to orthogonal directions'",
    9: "δ scales with η²: the paper preset's cosine schedule alone shrinks raw ‖δ‖ by ≈ 5e-4, and the paper's Fig 3 is at "
       "one η, so the ratio is of δ/η² (the raw ratio stays in the row)",
    10: "tests the claimed fall (9.7× to 2.1×, a factor 4.6): a fall wholly below 2× now reads not supported "
        "instead of inconclusive",
    11: "spikes by each seed's 95th percentile of D, which does not grow with the number of samples (the "
        "largest sample does); spikes clearly below 100 now read not supported",
    13: "the paper counts 3–5 latents for m and marker positions; the old rule counted mostly answer latents "
        "(the output) and accepted up to ~51",
    14: "a drop means something only beside the random-latent control, and 'these latents' are claim 13's "
        "(m, marker positions), not the answer's",
    15: "the MLP runs' null is lower (paper preset: 3.05 against 3.84): compared as r90 minus each run's own "
        "null, on the attention matrices only (raw r90 hid that the MLP is less collapsed relative to its null); "
        f"also from {COMMON}",
    17: "the mixed runs are tested for forgetting (best − final on the smallest m), not for learning: a mixed "
        "seed that never learned m = 4 forgot nothing",
    18: "the null rises with multiplication too (paper preset: 3.84 to 4.14): compared as r90 minus each run's "
        f"own null; multiplication's majority-class baseline per m shown beside its accuracy; also from {COMMON}",
    19: f"also decided from {COMMON}: a verdict that flips with the snapshot count is inconclusive",
    22: "adds a norm-matched random control (moved as far as the PCA rebuild), and says that an uncentred "
        "k* of 1 means the function lies along θ_T − θ_0",
    23: "decided on a basis found before the end of training (the top-K PCA directions of the first 15% "
        "of the run) against random, over the main runs' own schedule (the whole-trajectory basis already "
        "contains where training ends; issue 24 §2); the whole-trajectory, another seed's and random + "
        "drift bases are shown beside it",
    24: f"also decided from {COMMON}, added after the factorial's first ledger (no verdict moved)",
    25: f"also decided from {COMMON}, added after the factorial's first ledger (no verdict moved)",
    26: f"also decided from {COMMON}, added after the factorial's first ledger (no verdict moved)",
    27: "new row: the paper's 'ρ rapidly decreases and stabilizes near zero' (§4.3), tested on its own",
    5: "the interval comes from resampling seeds, not from treating the seed pairs (45 of 10 seeds) as "
       "independent; "
       "the row says that random 3-subspaces are as far apart",
}

# claim -> why it no longer has a row: its question is decided by other rows (issue 24)
RETIRED = {
    21: "retired for rows 24–26: SGD beating the matched walk shows only directed descent, whatever the task, "
        "and in the paper preset its arms differed in schedule as well as optimizer; the factorial compares task "
        "with no-task runs under each optimizer and schedule (the optimizer figure stays, without a verdict)",
}
RETIRED_NOW = "retired (see why)"

# the change that applies to every rule
EVERY = ("an interval from tied values (zero width because the values cannot show their spread) decides "
         "nothing unless the measurement's resolution is stated (then its sd is floored at it)")

# a verdict that moved although its claim's own rule did not change
OTHER = ("its own rule is unchanged: the verdict moved with the rule for tied values, or with a measurement "
         "it reads that changed (see its row)")

BEFORE = {
    "quick": {1: "not supported", 2: "inconclusive", 3: "inconclusive", 4: "supported", 5: "supported",
              6: "inconclusive", 7: "supported", 8: "supported", 9: "not supported", 10: "inconclusive",
              11: "inconclusive", 12: "not supported", 13: "supported", 14: "inconclusive", 15: "inconclusive",
              16: "inconclusive", 17: "inconclusive", 18: "inconclusive", 19: "inconclusive",
              20: "inconclusive", 21: "inconclusive", 22: "supported", 23: "inconclusive",
              24: "inconclusive", 25: "inconclusive", 26: "inconclusive"},
    "paper": {1: "not supported", 2: "supported", 3: "inconclusive", 4: "supported", 5: "supported",
              6: "supported", 7: "inconclusive", 8: "supported", 9: "not supported", 10: "inconclusive",
              11: "inconclusive", 12: "not supported", 13: "inconclusive", 14: "inconclusive",
              15: "not supported", 16: "not supported", 17: "not supported", 18: "inconclusive",
              19: "not supported", 20: "not supported", 21: "supported", 22: "inconclusive", 23: "inconclusive"},
    "authors": {1: "supported", 2: "supported", 3: "not supported", 4: "supported", 5: "supported",
                6: "not supported", 7: "not supported", 8: "supported", 9: "not supported", 10: "inconclusive",
                11: "inconclusive", 12: "not supported", 13: "supported", 14: "supported", 15: "not supported",
                16: "not supported", 17: "supported", 18: "inconclusive", 19: "inconclusive",
                20: "inconclusive", 21: "inconclusive", 22: "supported", 23: "inconclusive"},
}


def table(claims, preset_name: str, partial: bool = False) -> str:
    """The markdown section: one row per changed rule that this ledger has (claims [Row] with
    their numbers), and per claim whose verdict moved without its own rule changing: its
    verdict before and now ("—" before: a preset or claim the frozen ledgers did not have),
    and why; per claim that had a verdict before and is ``RETIRED``, that verdict beside
    "retired" and why. A ``partial`` ledger also lists each claim it leaves out that had a verdict
    before: that verdict beside "not measured yet" (so no earlier verdict vanishes unsaid)."""
    before = BEFORE.get(preset_name, {})
    now = {c.n: c.verdict for c in claims}
    moved = {n: OTHER for n in now if n in before and before[n] != now[n] and n not in CHANGES}
    retired = {n: RETIRED[n] for n in before if n in RETIRED and n not in now}
    left = {n: CHANGES.get(n, "rule unchanged") for n in before if n not in now and n not in RETIRED} \
        if partial else {}
    now.update({n: NOT_YET for n in left})
    now.update({n: RETIRED_NOW for n in retired})
    rows = [f"| {n} | {before.get(n, '—')} | {now[n]} | {cell(why)} |"
            for n, why in sorted({**CHANGES, **moved, **left, **retired}.items()) if n in now]
    if not rows:
        return ""
    return "\n".join([f"Rules changed after the data were seen ({ISSUE}); each rule's text above is the new one (a retired claim has none). "
                      f"Every rule: {EVERY}.", "",
                      "| # | verdict before | verdict now | why the rule changed (or the claim was retired) |", "|---|---|---|---|", *rows])


def side_by_side(ledgers: dict) -> str:
    """Every ledger's rule-change table in one (``figures/ledgers.md``, which the README
    links): per changed or retired claim, each preset's verdict before the change (``BEFORE``)
    and now, and why. ``ledgers``: {column heading "preset: command": its claims (claims.json
    rows) or None}. A ledger that still has a retired claim's row was written under the old
    rules and says so."""
    names = [heading.split(":")[0] for heading in ledgers]
    rows = []
    for n, why in sorted({**CHANGES, **RETIRED}.items()):
        cells = []
        for name, claims in zip(names, ledgers.values()):
            before = BEFORE.get(name, {}).get(n, "—")
            if claims is None:
                now = "not yet run"
            elif any(c.get("n") in RETIRED for c in claims):
                now = "not redrawn under the new rules yet"
            else:
                now = next((c["verdict"] for c in claims if c.get("n") == n), RETIRED_NOW if n in RETIRED else "—")
            cells.append(f"{before} → {now}")
        rows.append(f"| {n} | " + " | ".join(cells) + f" | {cell(why)} |")
    return "\n".join(["## Rules changed after the data were seen", "",
                      f"Each cell: the preset's verdict before the change ({ISSUE}; the ledgers of commit 890fe49, "
                      f"\"—\" where it had no such row) → now (\"—\": not in its ledger yet). Every rule: {EVERY}.", "",
                      "| # | " + " | ".join(names) + " | why the rule changed (or the claim was retired) |",
                      "|---|" + "---|" * len(names) + "---|", *rows])

