"""Output channels never stop the work or lose its results: files are UTF-8 in any
locale, a closed or broken stdout silences the progress and ``--plan``'s printout, and
importing the figures' module leaves the user's matplotlib backend alone. Each check runs
the behaviour in a child Python, where the locale, fd 1 and the environment are real."""
import json
import os
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child_env(**changes):
    """This environment for a child Python that imports minimanifold from the checkout;
    PYTHONUNBUFFERED and PYTHONIOENCODING are dropped (a user's shell has neither), a
    value None drops that variable too."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONUNBUFFERED", "PYTHONIOENCODING")}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    for k, v in changes.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def test_files_are_utf8_in_an_ascii_locale(tmp_path):
    """LC_ALL=C: the locale's encoding is ASCII, and "±" or "—" in a ledger must still be written."""
    (tmp_path / "committed.json").write_bytes(
        '{"caption": "c", "claims": [{"claim": "a \u00b1 b", "paper": "p", "verdict": "supported"}]}'.encode())
    code = r"""
import locale, sys
from minimanifold.files import atomic_write
from minimanifold.report import ledger
assert locale.getpreferredencoding(False).lower() not in ("utf-8", "utf8")   # the test's premise
d = sys.argv[1]
atomic_write(d + "/text.txt", lambda f: f.write("0.50 \u00b1 0.01 \u2014 ok\n"), mode="w")
def rule():
    '''supported \u2014 if the interval is above 0.5 \u00b1 nothing.'''
row = ledger.Row(claim="c \u2014 d", section="\u00a74.1", paper="p", measured="1.00 \u00b1 0.10",
                 null="n", interval="[1, 2]", verdict="supported", value=1.0)
ledger.write([row], {1: rule}, "caption \u00b1", d + "/claims.md", d + "/claims.json")
ledger.write_side_by_side(d, [("quick \u00b1", "committed.json")], d + "/ledgers.md")
print(ledger.committed_ledgers(d, [("quick", "committed.json")])["quick"][0]["claim"] == "a \u00b1 b")
"""
    env = child_env(LC_ALL="C", LANG="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0", LC_CTYPE=None)
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "True"
    assert (tmp_path / "text.txt").read_bytes().decode("utf-8") == "0.50 \u00b1 0.01 \u2014 ok\n"
    md = (tmp_path / "claims.md").read_bytes().decode("utf-8")
    assert "| 1.00 \u00b1 0.10 |" in md and "supported \u2014 if" in md and "caption \u00b1" in md
    assert json.loads((tmp_path / "claims.json").read_bytes().decode("utf-8"))["claims"][0]["claim"] == "c \u2014 d"
    assert "| quick \u00b1 |" in (tmp_path / "ledgers.md").read_bytes().decode("utf-8")


def read_one_line_then_close(code, *args):
    """Run ``code`` with stdout a pipe the reader closes after its first line (``| head -1``);
    returns (exit code, stderr)."""
    p = subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, env=child_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read()
    p.stderr.close()
    assert first.strip(), err
    return p.wait(timeout=120), err


QUIET = ("Traceback", "BrokenPipeError", "Exception ignored")


def test_safe_print_into_a_pipe_whose_reader_has_gone():
    """``run_all.py --plan | head -1``: many lines after the reader left, and no error at exit."""
    code = r"""
import sys
from minimanifold.trajectories.progress import safe_print
text = "\n".join(f"line {i:4d} " + "x" * 90 for i in range(100))        # 10 kB, the pipe holds 64 kB
ok = [safe_print(text) for _ in range(200)]
print("lost" if not all(ok) else "all written", file=sys.stderr)
"""
    rc, err = read_one_line_then_close(code)
    assert rc == 0 and not any(q in err for q in QUIET), err
    assert "lost" in err


def test_progress_into_a_pipe_whose_reader_has_gone_lets_the_work_finish(tmp_path):
    code = r"""
import sys
from minimanifold.files import atomic_write
from minimanifold.trajectories.progress import Board
log = Board(sys.stdout)
for step in range(2000):                          # 200 kB of short lines, the pipe holds 64 kB
    log(f"[a seed 0] step {step:5d}/2000 " + "x" * 80)
log.finish("a seed 0")
atomic_write(sys.argv[1], lambda f: f.write("results"), mode="w")
"""
    rc, err = read_one_line_then_close(code, str(tmp_path / "out.txt"))
    assert rc == 0 and not any(q in err for q in QUIET), err
    assert (tmp_path / "out.txt").read_text() == "results"


def test_progress_with_stdout_closed_lets_the_work_finish(tmp_path):
    """``run_all.py >&-``: Python starts with sys.stdout None."""
    code = r"""
import sys
from minimanifold.files import atomic_write
from minimanifold.trajectories.progress import Board
assert sys.stdout is None
log = Board(sys.stdout)
log("2 runs: 0 cached, 2 to train")
log("[a seed 0] step   100/2000 loss 1.0")
log.finish("a seed 0")
atomic_write(sys.argv[1], lambda f: f.write("results"), mode="w")
"""
    cmd = " ".join(shlex.quote(a) for a in (sys.executable, "-c", code, str(tmp_path / "out.txt")))
    r = subprocess.run(cmd + " >&-", shell=True, cwd=ROOT, env=child_env(), capture_output=False,
                       stderr=subprocess.PIPE, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.txt").read_text() == "results"


def test_importing_the_figures_module_keeps_the_users_backend(tmp_path):
    code = r"""
import sys
import minimanifold.report.plotting as plotting
import matplotlib
print(matplotlib.get_backend().lower())
fig, ax = plotting.plt.subplots()
ax.plot([0, 1], [1, 0])
plotting.save_figure(fig, sys.argv[1])          # PNG under any backend
plotting.use_file_backend()
print(matplotlib.get_backend().lower())
"""
    for backend in ("svg", "pdf"):
        png = tmp_path / f"{backend}.png"
        r = subprocess.run([sys.executable, "-c", code, str(png)], cwd=ROOT, env=child_env(MPLBACKEND=backend),
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == [backend, "agg"]
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_all_plan_with_stdout_closed_or_its_reader_gone(tmp_path):
    """The reported cases, as a user types them: ``run_all.py --plan >&-`` and
    ``run_all.py --plan | head -1``; each exits 0 with no traceback, in an ASCII locale
    too (its printout has none, the ledger lines it shares a printer with do)."""
    cmd = f"{shlex.quote(sys.executable)} run_all.py --preset smoke --plan --runs-dir {shlex.quote(str(tmp_path))}"
    env = child_env(LC_ALL="C", LANG="C", PYTHONUTF8="0")
    closed = subprocess.run(["bash", "-c", cmd + " >&-"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert closed.returncode == 0 and "Traceback" not in closed.stderr, closed.stderr
    piped = subprocess.run(["bash", "-c", "set -o pipefail; " + cmd + " | head -1"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=600)
    assert piped.returncode == 0 and piped.stdout.startswith("preset smoke"), piped.stderr
    assert "Traceback" not in piped.stderr and "BrokenPipeError" not in piped.stderr
    assert not os.listdir(tmp_path)                                # a plan trains nothing
