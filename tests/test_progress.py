"""Progress as people expect it: on a terminal one updating line per run (ANSI redraw),
in a log every line; a pool sweep's worker lines reach the parent's log."""
import io
import re
import sys

from minimanifold.trajectories.progress import Board, progress_tag, safe_print


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


class Breaking(io.StringIO):
    """A stream whose reader goes away when ``broken`` is set: every write then raises
    BrokenPipeError, as stdout does under ``| head -1``."""

    def __init__(self, broken=False, tty=False):
        super().__init__()
        self.broken, self._tty, self.tries = broken, tty, 0

    def write(self, s):
        if self.broken:
            self.tries += 1
            raise BrokenPipeError(32, "Broken pipe")
        return super().write(s)

    def isatty(self):
        return self._tty


def test_a_broken_pipe_stops_the_board_not_the_work():
    out = Breaking(broken=True)
    b = Board(out, tty=False)
    for step in (100, 200, 300):
        b(line("a seed 0", step, 5))                   # must not raise
    b.finish("a seed 0")
    b("done")
    assert out.tries == 1 and b.stream is None         # tried once, then quiet


def test_a_broken_pipe_on_a_terminal_stops_the_board_in_a_redraw_or_a_finish():
    out = Breaking(tty=True)
    b = Board(out, columns=200)
    b(line("a seed 0", 100, 5))
    out.broken = True
    b.finish("a seed 0")                               # the erase fails here
    b(line("a seed 1", 100, 5))
    assert out.tries == 1 and b.stream is None
    out2 = Breaking(tty=True)
    b2 = Board(out2, columns=200)
    b2(line("a seed 0", 100, 5))
    out2.broken = True
    b2(line("a seed 0", 200, 5))                       # the redraw fails here
    b2.finish("a seed 0")
    assert out2.tries == 1 and b2.stream is None


def test_a_closed_stream_stops_the_board():
    for tty in (None, True, False):
        out = io.StringIO()
        out.close()
        b = Board(out, tty=tty, columns=200)            # isatty() on a closed file raises too
        b(line("a seed 0", 100, 5))
        b("done")
        b.finish("a seed 0")
        assert b.stream is None


def test_no_stdout_at_all_is_a_board_that_writes_nothing(monkeypatch):
    """``run_all.py >&-``: Python starts with sys.stdout None."""
    monkeypatch.setattr(sys, "stdout", None)
    for b in (Board(), Board(sys.stdout), Board(sys.stdout, tty=True)):
        b(line("a seed 0", 100, 5))
        b("done")
        b.finish("a seed 0")
        assert b.stream is None


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_a_dumb_terminal_gets_plain_lines(monkeypatch):
    lines = [line("a seed 0", 100, 5), line("a seed 0", 200, 4), "done"]
    for term, escapes in (("dumb", False), ("xterm", True), (None, True)):   # TERM unset: as before
        if term is None:
            monkeypatch.delenv("TERM", raising=False)
        else:
            monkeypatch.setenv("TERM", term)
        out = FakeTerminal()
        b = Board(out, columns=200)
        for s in lines:
            b(s)
        assert ("\x1b" in out.getvalue()) == escapes, term
        if not escapes:
            assert out.getvalue() == "".join(s + "\n" for s in lines)


def test_safe_print_drops_text_for_a_missing_or_closed_stdout(monkeypatch):
    out = io.StringIO()
    assert safe_print("plan", out) and out.getvalue() == "plan\n"
    out.close()
    assert safe_print("plan", out) is False
    monkeypatch.setattr(sys, "stdout", None)            # fd 1 closed at start
    assert safe_print("plan") is False
