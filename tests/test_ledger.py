"""The ledger's verdict rules on synthetic analysis results: each rule can say each verdict."""
import numpy as np
import pytest

from minimanifold import ledger
from minimanifold.analysis import ALL
from minimanifold.figures import MATS


def fake_geoms(r90s, null=6.0, stab=0.2, null_stab=0.6, n_layers=1):
    """One geometry dict per seed; r90s[seed] is a list over (layer, matrix)."""
    out = []
    for r in r90s:
        g = {}
        for i, (l, W) in enumerate((l, W) for l in range(n_layers) for W in MATS):
            g[f"blocks.{l}.attn.{W}"] = {"r90": r[i], "null": {"matched": {"mean": null},
                                                               "constant": {"mean": null + 1}}}
        g[ALL] = {"stabilization": stab, "null_stabilization": null_stab}
        out.append(g)
    return out


@pytest.mark.parametrize("r90, null, verdict", [(3, 6.0, "supported"), (3, 3.5, "inconclusive"),
                                                (2, 6.0, "not supported"), (7, 9.0, "not supported")])
def test_r90_range_rule(r90, null, verdict):
    assert ledger.claim_r90_range(fake_geoms([[r90] * 4] * 3, null=null), 1)["verdict"] == verdict


def test_vo_below_qk_rule():
    assert ledger.claim_vo_below_qk(fake_geoms([[4, 4, 3, 3]] * 3), 1)["verdict"] == "supported"
    assert ledger.claim_vo_below_qk(fake_geoms([[3, 3, 4, 4]] * 3), 1)["verdict"] == "not supported"
    mixed = fake_geoms([[4, 4, 3, 3], [4, 4, 3, 3], [3, 3, 3.5, 3.5]])
    assert ledger.claim_vo_below_qk(mixed, 1)["verdict"] == "inconclusive"


def test_collapse_and_same_dimension_rules():
    assert ledger.claim_early_collapse(fake_geoms([[3] * 4] * 3, stab=0.2))["verdict"] == "supported"
    assert ledger.claim_early_collapse(fake_geoms([[3] * 4] * 3, stab=0.2, null_stab=0.1))["verdict"] == "inconclusive"
    assert ledger.claim_early_collapse(fake_geoms([[3] * 4] * 3, stab=0.5))["verdict"] == "not supported"
    assert ledger.claim_same_dimension(fake_geoms([[3] * 4, [4] * 4, [3] * 4]), 1)["verdict"] == "supported"
    assert ledger.claim_same_dimension(fake_geoms([[2] * 4, [4] * 4, [3] * 4]), 1)["verdict"] == "not supported"
    assert ledger.claim_same_dimension(fake_geoms([[3] * 4, [3] * 4]), 1)["verdict"] == "inconclusive"


def test_orientation_and_entropy_rules():
    orient = lambda deg: {"m": {"seed_pairs_deg": [[deg, 89.0]], "random_deg": [[88.0, 89.0]]}}
    assert ledger.claim_orientation(orient(80.0))["verdict"] == "supported"
    assert ledger.claim_orientation(orient(5.0))["verdict"] == "not supported"
    assert ledger.claim_orientation(orient(30.0))["verdict"] == "inconclusive"

    def bubbles(curve):
        return [{"entropy": {1: [[c, c] for c in curve]}, "T": 32}]
    smooth = np.linspace(3.4, 1.0, 30)
    abrupt = np.r_[np.full(15, 3.4), np.full(15, 1.0)]
    assert ledger.claim_entropy_smooth(bubbles(smooth))["verdict"] == "supported"
    assert ledger.claim_entropy_smooth(bubbles(abrupt))["verdict"] == "not supported"
    assert ledger.claim_entropy_smooth(bubbles(np.full(30, 3.4)))["verdict"] == "not supported"


def test_write(tmp_path):
    claims = [ledger.claim_r90_range(fake_geoms([[3] * 4] * 3), 1)]
    ledger.write(claims, "caption", tmp_path / "c.md", tmp_path / "c.json")
    text = (tmp_path / "c.md").read_text()
    assert "| 1 | attention trajectories collapse" in text and "Verdict rules" in text


def test_readme_findings_match_the_committed_ledger():
    """The README's findings table is generated from figures/claims.json: they must agree."""
    import json
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "figures", "claims.json")) as f:
        claims = json.load(f)["claims"]
    with open(os.path.join(root, "README.md")) as f:
        readme = f.read()
    block = readme.split(ledger.FINDINGS_START)[1].split(ledger.FINDINGS_END)[0].strip()
    assert block == ledger.findings_markdown(claims)
    assert len(claims) == 20


def test_update_readme(tmp_path):
    p = tmp_path / "R.md"
    p.write_text(f"intro\n{ledger.FINDINGS_START}\nold\n{ledger.FINDINGS_END}\noutro\n")
    claims = [ledger.claim_r90_range(fake_geoms([[3] * 4] * 3), 1)]
    assert ledger.update_readme(p, claims)
    text = p.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text
    assert ledger.findings_markdown(claims) in text


def test_norms_and_bubbling_rules():
    from minimanifold import ledger_extra as LX

    def proj(norms):
        n = len(norms)
        return {"steps": np.linspace(0, 1000, n), "kind": np.zeros((n, 2), int),
                "norm": np.repeat(np.asarray(norms, float)[:, None], 2, 1)}
    assert LX.claim_norms_stay_large([proj(np.full(11, 1.0))])["verdict"] == "supported"
    assert LX.claim_norms_stay_large([proj(np.logspace(0, -5, 11))])["verdict"] == "not supported"
    steps = list(range(0, 1001, 100))
    ent = np.r_[3.4, np.linspace(3.0, 1.0, 10)]
    b = [{"steps": steps, "entropy": {1: [[e] for e in ent]}}]
    near = [{ALL: {"stabilization": 0.9}}]
    far = [{ALL: {"stabilization": 0.1}}]
    assert LX.claim_bubbling_with_collapse(b, near)["verdict"] == "supported"
    assert LX.claim_bubbling_with_collapse(b, far)["verdict"] == "not supported"


def test_pipes_in_cells_are_escaped():
    claims = [{"claim": "c", "section": "s", "paper": "p", "measured": "|corr| > 0.5", "null": "n",
               "verdict": "supported"}]
    row = ledger.findings_markdown(claims).splitlines()[-1]
    assert row.count("|") - row.count("\\|") == 6          # 5 columns: 6 unescaped bars
