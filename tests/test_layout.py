"""The package's shape: imports flow one way (model -> trajectories -> analysis ->
experiments -> pipeline), analyses touch no files or plots, modules stay readable in one
sitting, and the pipeline refuses experiments that disagree with their rules."""
import ast
import os
import types

import pytest

import minimanifold
from minimanifold import pipeline

PKG = os.path.dirname(minimanifold.__file__)

# which top-level parts of the package each part may import (itself always)
ALLOWED = {
    "model": set(),
    "trajectories": {"model"},
    "analysis": {"model"},
    "report": {"model"},
    "experiments": {"model", "trajectories", "analysis", "report"},
    "tools": {"model", "trajectories", "analysis"},
    "pipeline": {"model", "trajectories", "experiments", "report"},
    "planning": {"model", "trajectories", "experiments", "pipeline"},
    "audit": {"model", "trajectories", "analysis", "experiments", "report"},
    "options": {"model", "trajectories", "experiments"},
}
ENTRY_POINTS = {"__init__", "train", "oracle", "bench"}
NOT_IN_ANALYSIS = {"matplotlib", "json", "os", "minimanifold.model.io"}


def modules():
    for root, _, files in os.walk(PKG):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(root, f)
                rel = os.path.relpath(path, PKG)[:-3].replace(os.sep, ".")
                yield rel, path


def imports(rel, path) -> set:
    """Absolute names of everything a module imports (relative imports resolved)."""
    tree = ast.parse(open(path).read())
    pkg = ("minimanifold." + rel).split(".")[:-1]          # the package the module sits in
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = pkg[:len(pkg) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    return out


def part(name) -> str:
    return name.split(".")[1] if name.startswith("minimanifold.") and name.count(".") >= 1 else ""


def test_imports_flow_one_way():
    bad = []
    for rel, path in modules():
        top = rel.split(".")[0]
        if top in ENTRY_POINTS:
            continue
        for name in imports(rel, path):
            p = part(name)
            if p and p != top and p not in ALLOWED[top] and name != "minimanifold":
                bad.append(f"{rel} imports {name}")
            if top == "analysis" and (name.split(".")[0] in NOT_IN_ANALYSIS or name in NOT_IN_ANALYSIS):
                bad.append(f"{rel} (an analysis) imports {name}")
    assert not bad, "\n".join(bad)


def test_the_import_checker_sees_relative_imports():
    """The checker itself: a planted backward import must be found."""
    src = "from ..experiments import collapse\nfrom . import pca\nimport matplotlib.pyplot\n"
    tree_file = os.path.join(os.path.dirname(__file__), "_planted.py")
    try:
        open(tree_file, "w").write(src)
        got = imports("analysis.planted", tree_file)
    finally:
        os.remove(tree_file)
    assert {"minimanifold.experiments", "minimanifold.analysis.pca", "matplotlib.pyplot"} <= got


def test_no_module_is_over_about_250_lines():
    long = {rel: n for rel, path in modules() if (n := sum(1 for _ in open(path))) > 260}
    assert not long, long


def test_pipeline_refuses_rows_without_rules_and_taken_numbers(monkeypatch, tmp_path):
    def module(name, rows, rules):
        return types.SimpleNamespace(__name__=f"x.{name}", RULES=rules, report=lambda ctx: (rows, []))
    rule = lambda: None  # noqa: E731
    monkeypatch.setattr(pipeline, "EXPERIMENTS", (module("a", {1: {}}, {2: rule}),))
    with pytest.raises(pipeline.PipelineError, match="a: claims"):
        pipeline.analyse(None, log=lambda s: None)
    monkeypatch.setattr(pipeline, "EXPERIMENTS", (module("a", {1: {"n": 1}}, {1: rule}),
                                                  module("b", {1: {"n": 2}}, {1: rule})))
    with pytest.raises(pipeline.PipelineError, match="already taken"):
        pipeline.analyse(None, log=lambda s: None)
    monkeypatch.setattr(pipeline, "EXPERIMENTS", (module("a", {3: {"n": 3}}, {3: rule}),
                                                  module("b", {1: {"n": 1}}, {1: rule})))
    claims, rules, _ = pipeline.analyse(None, log=lambda s: None)
    assert [c["n"] for c in claims] == [1, 3] and sorted(rules) == [1, 3]
