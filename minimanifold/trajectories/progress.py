"""Where long work shows its progress.

On a terminal: one line per run in progress (its step, loss, accuracies and ETA),
rewritten in place, with each finished run's line scrolling above them. Anywhere else (a
log file, a pipe, CI, a terminal with TERM=dumb): every line as it comes, so a log holds
the current lines.

Output is never worth the work: a closed stdout (``run_all.py >&-``), a reader that has
gone (``| head -1``) or a full disk under a log stops the output, quietly, and the work
goes on to write its results.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
import threading

_PROGRESS = re.compile(r"^\[(?P<tag>[^\]]+)\] step\s+\d+/\d+")


def progress_tag(line: str):
    """The run tag of a training progress line ("[add seed 0] step  100/2000 ..."), else None."""
    m = _PROGRESS.match(line)
    return m.group("tag") if m else None


def is_terminal(stream) -> bool:
    """Whether ``stream`` is a terminal that moves its cursor on ANSI escapes: a tty whose
    TERM is not "dumb" (Emacs's shell, some CI consoles). TERM unset counts as capable."""
    try:
        return bool(stream.isatty()) and os.environ.get("TERM") != "dumb"
    except (AttributeError, OSError, ValueError):   # None, no isatty, a closed file
        return False


def silence(stream) -> None:
    """Point ``stream``'s file descriptor at os.devnull, so what is still buffered in it (and
    the interpreter's flush at exit) goes nowhere instead of raising BrokenPipeError again.
    Python's recipe: https://docs.python.org/3/library/signal.html#note-on-sigpipe .
    A stream without a usable descriptor (io.StringIO, a closed file) is left as it is."""
    try:
        fd = stream.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
    except (AttributeError, OSError, ValueError):
        return
    try:
        os.dup2(devnull, fd)
    except OSError:
        pass
    finally:
        os.close(devnull)


def safe_print(text: str, stream=None) -> bool:
    """print(text) to ``stream`` (default sys.stdout), flushed. If the stream is gone (closed
    at start, closed file, a pipe whose reader has exited: ``run_all.py --plan | head -1``)
    the text is dropped and the stream silenced, so neither this call nor the interpreter's
    exit raises. Returns False where this call found the stream gone (later calls go to
    os.devnull)."""
    stream = sys.stdout if stream is None else stream
    if stream is None:                              # fd 1 was closed when Python started
        return False
    try:
        print(text, file=stream, flush=True)
        return True
    except (OSError, ValueError):                   # BrokenPipeError is an OSError
        silence(stream)
        return False


class Board:
    """A callable log: ``board(line)`` shows a line, ``board.finish(tag)`` drops a run's live
    line. Thread-safe (a sweep's worker lines arrive on a reader thread). If its stream is
    None or a write to it fails, the board stops writing (``stream`` becomes None) and
    every later call does nothing."""

    def __init__(self, stream=None, tty: bool | None = None, columns: int | None = None):
        self.stream = sys.stdout if stream is None else stream    # still None if fd 1 is closed
        self.columns = columns       # None: the terminal's width, asked at each redraw
        self.tty = is_terminal(self.stream) if tty is None else tty
        self.live = {}               # tag -> its latest progress line, in start order
        self.drawn = 0               # live lines now on the screen, below the cursor's block start
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            if self.stream is None:
                return
            tag = progress_tag(line)
            try:
                if not self.tty:
                    self.stream.write(line + "\n")
                else:
                    self._erase()
                    if tag is None:
                        self.stream.write(line + "\n")
                    else:
                        self.live[tag] = line
                    self._draw()
                self.stream.flush()
            except (OSError, ValueError):           # broken pipe, closed file, disk full
                self._stop()

    def finish(self, tag: str) -> None:
        with self._lock:
            if tag not in self.live:
                return
            del self.live[tag]
            if self.tty and self.stream is not None:
                try:
                    self._erase()                   # the old block, by its drawn count
                    self._draw()
                    self.stream.flush()
                except (OSError, ValueError):
                    self._stop()

    def _stop(self) -> None:
        stream, self.stream = self.stream, None
        silence(stream)

    def _erase(self) -> None:
        if self.drawn:
            self.stream.write(f"\x1b[{self.drawn}F\x1b[J")     # up to the block's first line, clear below
        self.drawn = 0

    def _draw(self) -> None:
        width = max(20, (self.columns or shutil.get_terminal_size().columns) - 1)  # no wrap: exact line count
        for line in self.live.values():
            self.stream.write(line[:width] + "\n")
        self.drawn = len(self.live)


def printable_streams() -> None:
    """Let stdout and stderr print any text, escaping what their encoding cannot take (an
    ASCII terminal, LC_ALL=C: the en dash of "eq 3–5" prints as \\u2013 instead of
    raising UnicodeEncodeError). For command-line entry points only."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
