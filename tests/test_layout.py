"""The package's shape: imports flow one way (model -> trajectories -> analysis ->
experiments -> pipeline), analyses touch no files or plots, modules stay readable in one
sitting, and the pipeline refuses experiments that disagree with their rules."""
import ast
import os
import re

import pytest

import minimanifold
from minimanifold import pipeline

PKG = os.path.dirname(minimanifold.__file__)

# which top-level parts of the package each part may import (itself always)
ALLOWED = {
    "files": set(),                      # atomic writes, .npz/JSON, digests: under every floor
    "model": {"files"},
    "trajectories": {"files", "model"},
    "analysis": {"model"},
    "report": {"files", "model"},
    "experiments": {"files", "model", "trajectories", "analysis", "report"},
    "tools": {"files", "model", "trajectories", "analysis"},
    "pipeline": {"files", "model", "trajectories", "experiments", "report"},
    "planning": {"files", "model", "trajectories", "experiments", "pipeline"},
    "audit": {"files", "model", "trajectories", "analysis", "experiments", "report"},
    "options": {"files", "model", "trajectories", "experiments"},
}
ENTRY_POINTS = {"__init__", "train", "oracle", "bench"}
NOT_IN_ANALYSIS = {"matplotlib", "json", "os", "minimanifold.model.io", "minimanifold.files"}


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


def test_one_module_owns_a_run_directory():
    """Whether a run is finished is asked of ``trajectories.rundir.is_finished``: no other
    module tests for its summary.json itself (it was written out in 8 places)."""
    bad = [rel for rel, path in modules() if rel != "trajectories.rundir"
           and re.search(r"exists\([^\n]*summary\.json", open(path).read())]
    assert not bad, bad


def test_no_one_letter_module_aliases():
    """``import pca as G`` (a leftover of "geometry") hides what a call reads from: package
    modules are imported under their own names."""
    bad = [f"{rel}: {m.group(0)}" for rel, path in modules()
           for m in re.finditer(r"import (\w+) as [A-Za-z]\b", open(path).read())
           if m.group(1) not in ("functional",)]            # torch.nn.functional as F: PyTorch's idiom
    assert not bad, bad


def test_each_module_name_says_one_thing():
    """One name per thing: no two package modules share a file name (two attention.py, two
    oracle.py, ...), entry points and package faces aside."""
    seen = {}
    for rel, _ in modules():
        name = rel.split(".")[-1]
        if name not in ("__init__", "__main__"):
            seen.setdefault(name, []).append(rel)
    assert not {n: r for n, r in seen.items() if len(r) > 1}, {n: r for n, r in seen.items() if len(r) > 1}


def test_no_module_is_over_about_250_lines():
    long = {rel: n for rel, path in modules() if (n := sum(1 for _ in open(path))) > 260}
    assert not long, long


def test_pipeline_refuses_rows_without_rules_and_taken_numbers(monkeypatch, tmp_path):
    from minimanifold.experiments.context import Context
    from minimanifold.experiments.contract import Experiment
    from minimanifold.report.ledger import Row
    from minimanifold.trajectories.presets import QUICK

    def experiment(name, numbers, rules):
        rows = {n: Row(f"claim {n}", "s", "p", "m", "", "", "inconclusive", None) for n in numbers}
        return Experiment(name, "s", rules, lambda ctx: (rows, []))
    rule = lambda: None  # noqa: E731
    ctx = Context(QUICK, [], {}, str(tmp_path), "c")
    monkeypatch.setattr(pipeline, "EXPERIMENTS", (experiment("a", [1], {2: rule}),))
    with pytest.raises(pipeline.PipelineError, match="a: claims"):
        pipeline.analyse(ctx, log=lambda s: None)
    monkeypatch.setattr(pipeline, "EXPERIMENTS", (experiment("a", [1], {1: rule}),
                                                  experiment("b", [1], {1: rule})))
    with pytest.raises(pipeline.PipelineError, match="already taken"):
        pipeline.analyse(ctx, log=lambda s: None)
    monkeypatch.setattr(pipeline, "EXPERIMENTS", (experiment("a", [3], {3: rule}),
                                                  experiment("b", [1], {1: rule})))
    claims, rules, _ = pipeline.analyse(ctx, log=lambda s: None)
    assert [c.n for c in claims] == [1, 3] and sorted(rules) == [1, 3]
    assert [c.claim for c in claims] == ["claim 1", "claim 3"]


def _experiment_modules() -> dict:
    """{module name: source} of every module under experiments/ that defines ``EXPERIMENT``."""
    out = {}
    for rel, path in modules():
        if rel.startswith("experiments.") and any(
                isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "EXPERIMENT" for t in node.targets)
                for node in ast.parse(open(path).read()).body):
            out[rel.removesuffix(".__init__")] = path
    return out


def test_every_experiment_module_is_registered_once_in_order():
    """Each module's ``EXPERIMENT`` is in ``EXPERIMENTS`` exactly once, in the registry's
    order of the paper's sections, and every registered experiment is a module's."""
    import importlib
    from minimanifold.experiments import EXPERIMENTS
    from minimanifold.experiments.contract import Experiment
    found = {importlib.import_module(f"minimanifold.{m}").EXPERIMENT for m in _experiment_modules()}
    assert len(EXPERIMENTS) == len(set(EXPERIMENTS)) == len(found) and set(EXPERIMENTS) == found
    assert all(isinstance(e, Experiment) for e in EXPERIMENTS)
    assert [e.name for e in EXPERIMENTS] == [
        "training", "collapse", "m_scaling", "bubbling", "commutators", "sae_probing", "architecture",
        "compositional", "multiplication", "optimizer", "factorial", "functional_dimension",
        "restricted_training"]


def test_the_pipeline_reads_the_contract_and_probes_nothing():
    """pipeline.py, planning.py and experiments/groups.py use no hasattr/getattr and import
    from experiments/ only the registry, the contract, the context, the groups and the run
    directory helpers: never an experiment module."""
    allowed = {"minimanifold.experiments", "minimanifold.experiments.EXPERIMENTS",
               "minimanifold.experiments.AUTHORS_FIGURES"}
    shared = ("context", "contract", "groups", "measuring", "rundir")
    for rel in ("pipeline", "planning", "experiments.groups"):
        path = os.path.join(PKG, *rel.split(".")) + ".py"
        tree = ast.parse(open(path).read())
        calls = [n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
        assert not {"hasattr", "getattr"} & set(calls), rel
        bad = [name for name in imports(rel, path) if name.startswith("minimanifold.experiments")
               and name not in allowed and name.split(".")[2] not in shared]
        assert not bad, f"{rel} imports {bad}"
