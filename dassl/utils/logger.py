"""Logging set-up: tee ``sys.stdout`` into ``log.txt`` and route the root logger through it.

``setup_logger(output)`` replaces ``sys.stdout`` by a tee that writes to the console and to the log
file, flushing the file at every newline (so a reader in the same process, or ``tail``, sees whole
lines immediately). An existing log file is appended to after a separator line
``======== new run YYYY-MM-DD HH:MM:SS ========`` (never a new timestamped file). The root ``logging``
logger gets one handler that writes ``%(message)s`` to whatever ``sys.stdout`` is at emit time, so
``logger.info`` lines look exactly like Dassl's prints and land in the log file.
"""
from __future__ import annotations

import logging
import os
import os.path as osp
import sys
import time
from typing import TextIO

from .tools import mkdir_if_missing

__all__ = ["setup_logger", "close_logger", "Logger", "RUN_SEPARATOR_PREFIX"]

RUN_SEPARATOR_PREFIX = "======== new run"

_CURRENT: "Logger | None" = None


class Logger:
    """A ``sys.stdout`` replacement writing to the console and to a file (line-flushed).

    Args:
        fpath: log file path; appended to (after a separator line) when it exists and is non-empty.
        console: the stream to echo to (defaults to the current ``sys.stdout``).
    """

    def __init__(self, fpath: str, console: TextIO | None = None) -> None:
        self.console = console if console is not None else sys.stdout
        self.fpath = fpath
        mkdir_if_missing(osp.dirname(osp.abspath(fpath)))
        existed = osp.isfile(fpath) and osp.getsize(fpath) > 0
        self.file: TextIO | None = open(fpath, "a", encoding="utf-8")
        if existed:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            self.file.write(f"\n{RUN_SEPARATOR_PREFIX} {stamp} ========\n")
            self.file.flush()

    def write(self, msg: str) -> int:
        self._to_console("write", msg)
        if self.file is not None and not self.file.closed:
            self.file.write(msg)
            if "\n" in msg:
                self.file.flush()
        return len(msg)

    def _to_console(self, method: str, *args) -> None:
        """Echo to the console; a closed pipe (``train.py ... | head``) only ends the echo, never the log file."""
        if getattr(self, "_console_closed", False):
            return
        try:
            getattr(self.console, method)(*args)
        except (BrokenPipeError, ValueError):  # reader went away / stream closed
            self._console_closed = True
            try:  # later flushes of the console (also at interpreter exit) go to /dev/null instead of raising
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self.console.fileno())
                os.close(devnull)
            except (OSError, ValueError, AttributeError):
                pass

    def flush(self) -> None:
        self._to_console("flush")
        if self.file is not None and not self.file.closed:
            self.file.flush()
            try:
                os.fsync(self.file.fileno())
            except OSError:  # pragma: no cover - e.g. special files
                pass

    def close(self) -> None:
        if self.file is not None and not self.file.closed:
            self.flush()
            self.file.close()

    def isatty(self) -> bool:
        return bool(getattr(self.console, "isatty", lambda: False)())

    def fileno(self) -> int:
        return self.console.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self.console, "encoding", "utf-8")

    def __getattr__(self, name: str):
        # Anything else (e.g. ``buffer``, ``errors``) comes from the console stream.
        return getattr(self.console, name)


class _StdoutHandler(logging.StreamHandler):
    """A StreamHandler bound to the *current* ``sys.stdout`` (the tee, pytest's capture, ...)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property  # type: ignore[override]
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; always follow sys.stdout
        pass


def _configure_root_logger() -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StdoutHandler):
            root.removeHandler(handler)
    handler = _StdoutHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # Third-party chatter that would otherwise end up in log.txt
    for name in ("PIL", "matplotlib", "urllib3", "h5py", "fsspec"):
        logging.getLogger(name).setLevel(logging.WARNING)


def setup_logger(output: str | None = None) -> None:
    """Tee ``sys.stdout`` into a log file and point the root logger at ``sys.stdout``.

    Args:
        output: an output directory (the file is ``<output>/log.txt``) or a path ending in ``.txt`` or
            ``.log``. ``None`` only configures the root logger.

    Calling it again closes the previous file and installs a fresh tee, so lines are never duplicated
    and no file handle leaks.
    """
    global _CURRENT
    close_logger()
    _configure_root_logger()
    if output is None:
        return
    if output.endswith(".txt") or output.endswith(".log"):
        fpath = output
    else:
        fpath = osp.join(output, "log.txt")
    _CURRENT = Logger(fpath)
    sys.stdout = _CURRENT


def close_logger() -> None:
    """Close the current log file and restore the console stream as ``sys.stdout`` (when still teed)."""
    global _CURRENT
    if _CURRENT is None:
        return
    tee, _CURRENT = _CURRENT, None
    # Unwind our tee wherever it is in a chain of stdout wrappers we created.
    if sys.stdout is tee:
        sys.stdout = tee.console
    tee.close()
