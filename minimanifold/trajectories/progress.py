"""Where long work shows its progress.

On a terminal: one line per run in progress (its step, loss, accuracies and ETA),
rewritten in place, with each finished run's line scrolling above them. Anywhere else (a
log file, a pipe, CI): every line as it comes, so a log holds the current lines.
"""
from __future__ import annotations

import re
import shutil
import sys
import threading

_PROGRESS = re.compile(r"^\[(?P<tag>[^\]]+)\] step\s+\d+/\d+")


def progress_tag(line: str):
    """The run tag of a training progress line ("[add seed 0] step  100/2000 ..."), else None."""
    m = _PROGRESS.match(line)
    return m.group("tag") if m else None


class Board:
    """A callable log: ``board(line)`` shows a line, ``board.finish(tag)`` drops a run's live
    line. Thread-safe (a sweep's worker lines arrive on a reader thread)."""

    def __init__(self, stream=None, tty: bool | None = None, columns: int | None = None):
        self.stream = sys.stdout if stream is None else stream
        self.columns = columns       # None: the terminal's width, asked at each redraw
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)()) if tty is None else tty
        self.live = {}               # tag -> its latest progress line, in start order
        self.drawn = 0               # live lines now on the screen, below the cursor's block start
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            tag = progress_tag(line)
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

    def finish(self, tag: str) -> None:
        with self._lock:
            if tag in self.live:
                if self.tty:
                    self._erase()
                del self.live[tag]
                if self.tty:
                    self._draw()
                    self.stream.flush()

    def _erase(self) -> None:
        if self.drawn:
            self.stream.write(f"\x1b[{self.drawn}F\x1b[J")     # up to the block's first line, clear below
        self.drawn = 0

    def _draw(self) -> None:
        width = max(20, (self.columns or shutil.get_terminal_size().columns) - 1)  # no wrap: exact line count
        for line in self.live.values():
            self.stream.write(line[:width] + "\n")
        self.drawn = len(self.live)
