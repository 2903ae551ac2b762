"""The documentation as a reader meets it: every relative link leads somewhere, every
Python example runs as written, every command line of the main job and the entry points
parses, the README stays short and hand-written, and its verdict table says what the
committed ledgers say.

Pages: README.md, docs/*.md and figures/*/README.md. A ```python block that cannot run
here (it needs torch, JAX, TransformerLens, Dask, a GPU or hours of training) is preceded
by ``<!-- not run: the reason -->``. A ```bash block's commands that start with
``python run_all.py`` or ``python -m minimanifold.<module>`` are run with ``--help``
appended (argparse checks the types and choices of every option before it reaches the
``--help``, which then exits without running anything), and each flag they use must be
one the command's help lists.
"""
import glob
import json
import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = sorted(["README.md",
                *(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md"))),
                *(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "figures", "*", "README.md")))])
PRESETS = ("quick", "paper", "authors")          # the README's verdict table, column by column
README_MAX_LINES = 200
FENCE = re.compile(r"^(`{3,})([\w+-]*)[^\n]*\n(.*?)^\1[ \t]*$", re.M | re.S)
NOT_RUN = re.compile(r"<!--\s*not run\s*(?::\s*(.*?))?\s*-->\s*\Z", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def env():
    e = dict(os.environ, MPLBACKEND="Agg", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    e["PYTHONPATH"] = ROOT + os.pathsep + e.get("PYTHONPATH", "")
    return e


@lru_cache(maxsize=None)
def text(page) -> str:
    with open(os.path.join(ROOT, page), encoding="utf-8") as f:
        return f.read()


def blocks(page):
    """[(language, code, the text before the block)] of every fenced block in ``page``."""
    t = text(page)
    return [(m.group(2).lower(), m.group(3), t[:m.start()]) for m in FENCE.finditer(t)]


def prose(page) -> str:
    """The page without its fenced blocks and inline code spans (no links live there)."""
    t = FENCE.sub("", text(page))
    return re.sub(r"(`+)(?:(?!\1).)+?\1", "", t, flags=re.S)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    h = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())   # a link keeps its text
    return re.sub(r"[^\w\- ]", "", h).replace(" ", "-")


@lru_cache(maxsize=None)
def anchors(page) -> frozenset:
    seen, out = {}, set()
    for line in FENCE.sub("", text(page)).splitlines():
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            s = slug(m.group(1))
            out.add(s if s not in seen else f"{s}-{seen[s]}")
            seen[s] = seen.get(s, 0) + 1
    return frozenset(out)


# ---------------------------------------------------------------- links

def test_the_pages_are_found():
    assert "README.md" in PAGES and len(PAGES) > 10, PAGES
    for p in ("quick", "paper", "authors"):
        assert f"figures/{p}/README.md" in PAGES


@pytest.mark.parametrize("page", PAGES)
def test_every_relative_link_leads_to_a_file_and_heading(page):
    here = os.path.dirname(os.path.join(ROOT, page))
    bad = []
    for target in LINK.findall(prose(page)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):          # http:, https:, mailto: ...
            continue
        path, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(here, path)) if path else os.path.join(ROOT, page)
        if os.path.relpath(full, ROOT).startswith(".."):
            bad.append(f"{target}: outside the repository")
        elif not os.path.exists(full):
            bad.append(f"{target}: no such file ({os.path.relpath(full, ROOT)})")
        elif anchor and full.endswith(".md") and anchor not in anchors(os.path.relpath(full, ROOT)):
            bad.append(f"{target}: no heading #{anchor} in {os.path.relpath(full, ROOT)}")
    assert not bad, f"{page}: " + "; ".join(bad)


def test_the_slug_is_githubs():
    assert slug("Before paying hours: `--plan`") == "before-paying-hours---plan"
    assert slug("Defaults, and the measurements behind them") == "defaults-and-the-measurements-behind-them"
    assert slug("fig1_effective_rank") == "fig1_effective_rank"
    assert slug("The task (§3.1)") == "the-task-31"


# ---------------------------------------------------------------- python blocks

def python_blocks():
    out = []
    for page in PAGES:
        if not (page == "README.md" or page.startswith("docs" + os.sep) or page.startswith("docs/")):
            continue
        for i, (lang, code, before) in enumerate(b for b in blocks(page) if b[0] in ("python", "py")):
            out.append(pytest.param(page, code, before, id=f"{page}:{i + 1}"))
    return out


def not_run_reason(before: str):
    """The reason of a ``<!-- not run: ... -->`` right before a block, "" for a marker
    without one, None without a marker."""
    m = NOT_RUN.search(before.rstrip())
    return None if m is None else (m.group(1) or "").strip()


@pytest.mark.parametrize("page, code, before", python_blocks())
def test_every_python_block_runs_as_written(page, code, before):
    reason = not_run_reason(before)
    if reason is not None:
        assert len(reason) >= 10, f"{page}: a <!-- not run --> marker needs its reason, got {reason!r}"
        pytest.skip(f"not run: {reason}")
    listed = set(os.listdir(ROOT))
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env(), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, f"{page}: the block fails\n{code}\n--- stderr ---\n{r.stderr[-3000:]}"
    left = {f for f in set(os.listdir(ROOT)) - listed if f.endswith((".npz", ".json", ".png", ".md", ".pt"))}
    assert not left, f"{page}: the block left files in the repository root: {sorted(left)}"


def test_a_not_run_marker_needs_a_reason_and_a_block():
    assert not_run_reason("text\n<!-- not run: needs torch and a GPU -->\n") == "needs torch and a GPU"
    assert not_run_reason("text\n<!-- not run -->\n") == ""
    assert not_run_reason("text\n") is None
    assert not_run_reason("<!-- not run: needs torch -->\n\nmore prose\n") is None   # only right before
    for page in PAGES:                                   # a marker is a line of its own
        for m in re.finditer(r"^[ \t]*<!--\s*not run", text(page), re.M):
            rest = text(page)[m.end() - len(m.group().lstrip()):]
            assert re.match(r"<!--\s*not run:\s*\S[^\n]*?-->\s*\n```python", rest), \
                f"{page}: a <!-- not run: reason --> marker must sit right above a python block"


def test_python_blocks_are_found():
    ids = [p.id for p in python_blocks()]
    assert any(i.startswith("README.md:") for i in ids), ids
    assert len(ids) >= 5, ids


# ---------------------------------------------------------------- command lines

def commands(code: str):
    """Each command line of a bash block, as tokens, split at && || ; | (comments dropped,
    continuation lines joined, leading VAR=value and ``time`` removed)."""
    out = []
    for line in code.replace("\\\n", " ").splitlines():
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:
            continue
        cmd = []
        for tok in tokens + ["&&"]:
            if tok in ("&&", "||", ";", "|"):
                while cmd and (re.match(r"[A-Za-z_][A-Za-z0-9_]*=", cmd[0]) or cmd[0] in ("time", "nohup")):
                    cmd = cmd[1:]
                if cmd:
                    out.append(cmd)
                cmd = []
            else:
                cmd.append(tok)
    return out


def entry(cmd):
    """(the program's argv prefix, its arguments) for ``python run_all.py ...`` and
    ``python -m minimanifold.<module> ...``; None for any other command."""
    if not cmd or cmd[0] not in ("python", "python3"):
        return None
    if len(cmd) > 1 and cmd[1] == "run_all.py":
        return ("run_all.py",), tuple(cmd[2:])
    if len(cmd) > 2 and cmd[1] == "-m" and cmd[2].startswith("minimanifold."):
        return ("-m", cmd[2]), tuple(cmd[3:])
    return None


def checked_commands():
    out = {}
    for page in PAGES:
        for lang, code, _ in blocks(page):
            if lang in ("bash", "sh", "shell", "console"):
                for cmd in commands(code):
                    e = entry(cmd)
                    if e is not None:
                        out.setdefault(e, []).append(page)
    return out


# Runs every argument list of one program in one process (imports are paid once), each
# with --help appended: [(exit code, printed text)] as JSON on stdout.
HELP_DRIVER = r"""
import contextlib, io, json, runpy, sys
prog, arglists = json.loads(sys.argv[1])
out = []
for args in arglists:
    sys.argv = [prog[-1], *args, "--help"]
    buf, code = io.StringIO(), None
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        try:
            if prog[0] == "-m":
                runpy.run_module(prog[1], run_name="__main__", alter_sys=True)
            else:
                runpy.run_path(prog[0], run_name="__main__")
            code = "ran without exiting: --help was not reached"
        except SystemExit as e:
            code = e.code or 0
    out.append((code, buf.getvalue()))
sys.__stdout__.write("\n@@HELP@@" + json.dumps(out))
"""


def run_helps(prog, arglists):
    r = subprocess.run([sys.executable, "-c", HELP_DRIVER, json.dumps([prog, arglists])], cwd=ROOT, env=env(),
                       capture_output=True, text=True, timeout=300)
    assert "@@HELP@@" in r.stdout, f"the --help driver failed for {prog}:\n{r.stdout[-2000:]}{r.stderr[-2000:]}"
    return [tuple(x) for x in json.loads(r.stdout.rsplit("@@HELP@@", 1)[1])]


@pytest.fixture(scope="module")
def helps():
    by_prog = {}
    for prog, args in checked_commands():
        by_prog.setdefault(prog, []).append(args)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(zip(by_prog, pool.map(lambda p: run_helps(p, by_prog[p]), by_prog)))
    return {(prog, args): res for prog in by_prog for args, res in zip(by_prog[prog], results[prog])}


def test_bash_commands_are_found():
    cmds = checked_commands()
    progs = {prog for prog, _ in cmds}
    assert ("run_all.py",) in progs and ("-m", "minimanifold.oracle") in progs, progs
    assert commands("A=1 time python run_all.py --jobs 2  # note\n") == [["python", "run_all.py", "--jobs", "2"]]
    assert commands("pip install -e . && python run_all.py") == [["pip", "install", "-e", "."],
                                                                  ["python", "run_all.py"]]


def test_every_command_line_parses_and_uses_only_its_flags(helps):
    bad = []
    for (prog, args), pages in checked_commands().items():
        rc, out = helps[(prog, args)]
        shown = " ".join(["python", *prog, *args])
        if rc != 0:
            bad.append(f"{shown} (in {', '.join(sorted(set(pages)))}): exit {rc}\n{out[-800:]}")
            continue
        for flag in (a.split("=", 1)[0] for a in args if a.startswith("--")):
            if not re.search(r"(?<![\w-])" + re.escape(flag) + r"(?![\w-])", out):
                bad.append(f"{shown} (in {', '.join(sorted(set(pages)))}): {flag} is not in its --help")
    assert not bad, "\n".join(bad)


# ---------------------------------------------------------------- the README itself

def test_the_readme_is_short():
    n = text("README.md").count("\n")
    assert n <= README_MAX_LINES, f"README.md has {n} lines; at most {README_MAX_LINES} (detail goes in docs/)"


def test_nothing_in_the_readme_is_generated():
    t = text("README.md")
    assert not re.search(r"<!--\s*\w+:(start|end)", t), "a generated block in README.md: generate into figures/"
    assert "generated by run_all.py" not in t.lower()


def readme_verdicts():
    """{claim number: (claim, {preset: cell})} from the README's findings table."""
    t = text("README.md")
    head = "| # | claim | " + " | ".join(PRESETS) + " |"
    assert head in t, f"README.md: the verdict table's header {head!r} is missing"
    rows = {}
    for line in t[t.index(head):].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[int(cells[0])] = (cells[1], dict(zip(PRESETS, cells[2:])))
    return rows


def test_the_readme_verdicts_are_the_committed_ledgers():
    """The README's hand-written table against figures/<preset>/claims.json: a rerun that
    changes a verdict fails here until the README says so too."""
    from minimanifold.report.rule_changes import RETIRED
    rows = readme_verdicts()
    ledgers = {}
    for p in PRESETS:
        with open(os.path.join(ROOT, "figures", p, "claims.json"), encoding="utf-8") as f:
            ledgers[p] = {c.get("n", i): c for i, c in enumerate(json.load(f)["claims"], 1)}
    numbers = sorted(set().union(*ledgers.values()))
    assert sorted(rows) == numbers, f"README rows {sorted(rows)} against ledger claims {numbers}"
    bad = []
    for n, (claim, cells) in rows.items():
        first = next(ledgers[p][n] for p in PRESETS if n in ledgers[p])
        if claim != first["claim"]:
            bad.append(f"claim {n}: README {claim!r}, ledger {first['claim']!r}")
        for p in PRESETS:
            row = ledgers[p].get(n)
            want = "—" if row is None else row["verdict"]
            got = cells[p].split(" (")[0].strip("* ")
            if "retired" in cells[p] and n not in RETIRED:
                bad.append(f"claim {n}, {p}: README says retired, rule_changes.RETIRED does not")
            if got != want:
                bad.append(f"claim {n}, {p}: README {cells[p]!r}, ledger {want!r}")
            elif row is not None and ("not measured" in cells[p]) != row["measured"].startswith("not measured"):
                bad.append(f"claim {n}, {p}: README {cells[p]!r}, ledger measured {row['measured']!r}")
    assert not bad, "\n".join(bad)
