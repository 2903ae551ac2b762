"""Progress as people expect it: on a terminal one updating line per run (ANSI redraw),
in a log every line; a pool sweep's worker lines reach the parent's log."""
import io
import re

from minimanifold.trajectories.progress import Board, progress_tag


def screen(raw: str) -> list:
    """Replay the output on a minimal terminal: \\x1b[nF moves n lines up to column 0,
    \\x1b[J clears from there down; returns the visible lines."""
    rows, y = [""], 0
    for tok in re.split(r"(\x1b\[\d+F|\x1b\[J|\n)", raw):
        if tok == "\n":
            y += 1
            rows += [""] * (y + 1 - len(rows))
        elif tok.startswith("\x1b[") and tok.endswith("F"):
            y = max(0, y - int(tok[2:-1]))
        elif tok == "\x1b[J":
            del rows[y + 1:]
            rows[y] = ""
        elif tok:
            rows[y] += tok
    return [r for r in rows if r]


def line(tag, step, eta):
    return f"[{tag}] step {step:>6}/2000 loss 1.0000 acc m1=0.50 | {step // 10:5d}s elapsed, ETA {eta:4d}s"


def test_terminal_shows_one_updating_line_per_run():
    out = io.StringIO()
    b = Board(out, tty=True, columns=200)
    b("2 runs: 0 cached, 2 to train")
    b(line("add seed 0", 100, 900))
    b(line("add seed 1", 100, 950))
    b(line("add seed 0", 200, 800))
    assert screen(out.getvalue()) == ["2 runs: 0 cached, 2 to train", line("add seed 0", 200, 800),
                                      line("add seed 1", 100, 950)]
    b.finish("add seed 0")
    b("  [1/2] add seed 0: m1=1.00 (90s)")
    b(line("add seed 1", 300, 10))
    assert screen(out.getvalue()) == ["2 runs: 0 cached, 2 to train", "  [1/2] add seed 0: m1=1.00 (90s)",
                                      line("add seed 1", 300, 10)]


def test_live_lines_are_cut_to_the_terminal_width():
    """A wrapped line would break the redraw's line count."""
    out = io.StringIO()
    b = Board(out, tty=True, columns=40)
    b(line("add seed 0", 100, 900))
    b(line("add seed 0", 200, 800))
    assert screen(out.getvalue()) == [line("add seed 0", 200, 800)[:39]]


def test_a_log_gets_every_line_as_it_comes():
    out = io.StringIO()
    b = Board(out, tty=False)
    lines = [line("a seed 0", 100, 5), line("a seed 0", 200, 4), "done"]
    for s in lines:
        b(s)
    b.finish("a seed 0")
    assert out.getvalue() == "".join(s + "\n" for s in lines)
    assert progress_tag(lines[0]) == "a seed 0" and progress_tag("done") is None
