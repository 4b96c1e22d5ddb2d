"""Logging set-up: tee ``sys.stdout`` into ``log.txt`` and route the root logger through it.

``setup_logger(output)`` replaces ``sys.stdout`` by a tee that writes to the console and to the log
file, flushing the file at every newline (so a reader in the same process, or ``tail``, sees whole
lines immediately). An existing log file is appended to after a separator line
``======== new run YYYY-MM-DD HH:MM:SS ========`` (never a new timestamped file). The root ``logging``
logger gets one handler that writes ``%(message)s`` to whatever ``sys.stdout`` is at emit time, so
``logger.info`` lines look exactly like Dassl's prints and land in the log file.

``setup_logger(output, defer=True)`` keeps the file lines in memory (the console still gets them at once) until
:func:`commit_log` opens the file: ``train.py`` commits only once every check passed and the trainer is built, so
a failing invocation leaves an existing ``log.txt`` byte-identical.

Robustness: a broken console (``train.py ... | head``) is dropped silently (the file keeps being written); a full
disk while writing the file truncates it back to its last complete write and raises
:class:`~dassl.utils.errors.DiskFullError` from the logging call (no ``--- Logging error ---`` blocks).
"""
from __future__ import annotations

import errno
import logging
import os
import os.path as osp
import sys
import time
from typing import TextIO

from .errors import DiskFullError
from .tools import mkdir_if_missing

__all__ = ["setup_logger", "close_logger", "commit_log", "log_position", "supersede_log_after", "Logger",
           "RUN_SEPARATOR_PREFIX", "SUPERSEDED_FILE"]

RUN_SEPARATOR_PREFIX = "======== new run"
#: where a resumed run moves the lines ``log.txt`` holds after its resume point (they are logged again)
SUPERSEDED_FILE = "log.superseded.txt"

_CURRENT: "Logger | None" = None


class Logger:
    """A ``sys.stdout`` replacement writing to the console and to a file (line-flushed).

    Args:
        fpath: log file path; appended to (after a separator line) when it exists and is non-empty.
        console: the stream to echo to (defaults to the current ``sys.stdout``).
        defer: keep the file's lines in memory until :meth:`commit` (nothing touches ``fpath`` before).
    """

    def __init__(self, fpath: str, console: TextIO | None = None, defer: bool = False) -> None:
        self.console = console if console is not None else sys.stdout
        self.fpath = fpath
        self.file: TextIO | None = None
        self._pending: list[str] | None = []
        self._good_size = 0
        self._console_broken = False
        self._supersede: int | None = None
        if not defer:
            self.commit()

    @property
    def committed(self) -> bool:
        return self._pending is None

    def commit(self) -> None:
        """Open the file (separator line when it already has content) and write the lines kept so far."""
        if self._pending is None:
            return
        pending, self._pending = self._pending, None
        mkdir_if_missing(osp.dirname(osp.abspath(self.fpath)))
        note = self._move_superseded()
        existed = osp.isfile(self.fpath) and osp.getsize(self.fpath) > 0
        try:
            self.file = open(self.fpath, "a", encoding="utf-8")
        except OSError as e:
            self._file_error(e)
        self._good_size = self.file.tell()
        text = "".join(pending)
        if note:
            text = note + text
        if existed:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            text = f"\n{RUN_SEPARATOR_PREFIX} {stamp} ========\n" + text
        self._file_write(text, flush=True)

    def position(self) -> int | None:
        """Bytes of the log file written so far (flushed), None before :meth:`commit` or without a file."""
        if self._pending is not None or self.file is None or self.file.closed:
            return None
        self.flush()
        return self._good_size

    def supersede_after(self, offset: int) -> None:
        """At :meth:`commit`, move what the file holds after byte ``offset`` (lines a resumed run logs again)
        into ``log.superseded.txt`` beside it, so ``log.txt`` has every epoch once and nothing is lost."""
        self._supersede = int(offset)

    def _move_superseded(self) -> str:
        offset, self._supersede = self._supersede, None
        if offset is None or offset <= 0 or not osp.isfile(self.fpath):
            return ""
        size = osp.getsize(self.fpath)
        if size <= offset:
            return ""
        with open(self.fpath, "rb") as f:
            f.seek(offset)
            tail = f.read()
        dest = osp.join(osp.dirname(osp.abspath(self.fpath)), SUPERSEDED_FILE)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(dest, "ab") as f:
            f.write(f"======== {stamp}: lines {osp.basename(self.fpath)} held after its resume point (byte "
                    f"{offset}); the resumed run logged them again ========\n".encode())
            f.write(tail if tail.endswith(b"\n") else tail + b"\n")
            f.flush()
            os.fsync(f.fileno())
        os.truncate(self.fpath, offset)
        n = tail.count(b"\n") + (0 if tail.endswith(b"\n") else 1)
        return (f"Moved the {n} line(s) logged after the resume point to {SUPERSEDED_FILE} (they are logged again "
                "below)\n")

    def _file_error(self, e: OSError):
        """Drop what the failed write left (no fragment in the log) and raise the one-line error."""
        f, self.file = self.file, None
        if f is not None:
            try:
                f.close()
            except OSError:
                pass
            try:
                os.truncate(self.fpath, self._good_size)
            except OSError:
                pass
        if e.errno == errno.ENOSPC:
            raise DiskFullError(self.fpath) from None
        raise e

    def _file_write(self, msg: str, flush: bool) -> None:
        if self.file is None or self.file.closed:
            return
        try:
            self.file.write(msg)
            if flush:
                self.file.flush()
                self._good_size = self.file.tell()
        except OSError as e:
            self._file_error(e)

    def write(self, msg: str) -> int:
        if not self._console_broken:
            try:
                self.console.write(msg)
            except (BrokenPipeError, ValueError, OSError):
                self._drop_console()
        if self._pending is not None:
            self._pending.append(msg)
        else:
            self._file_write(msg, flush="\n" in msg)
        return len(msg)

    def _drop_console(self) -> None:
        """The console went away (a closed pipe): keep logging to the file only, and point fd 1 at /dev/null so
        the interpreter's exit-time flush of stdout does not complain either."""
        self._console_broken = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.console.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass

    def flush(self) -> None:
        if not self._console_broken:
            try:
                self.console.flush()
            except (BrokenPipeError, ValueError, OSError):
                self._drop_console()
        if self.file is not None and not self.file.closed:
            try:
                self.file.flush()
                self._good_size = self.file.tell()
            except OSError as e:
                self._file_error(e)
            try:
                os.fsync(self.file.fileno())
            except OSError:  # pragma: no cover - e.g. special files
                pass

    def close(self) -> None:
        self._pending = None  # lines of an uncommitted (failed) invocation are dropped
        if self.file is not None and not self.file.closed:
            try:
                self.flush()
            except OSError:
                pass
            finally:
                if self.file is not None:
                    try:
                        self.file.close()
                    except OSError:
                        pass

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

    def handleError(self, record) -> None:  # noqa: N802
        exc = sys.exc_info()[1]
        if isinstance(exc, DiskFullError):  # one clear error instead of "--- Logging error ---" blocks
            raise exc
        if isinstance(exc, (BrokenPipeError, ValueError)):  # console gone: nothing to report it to
            return
        super().handleError(record)


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


def setup_logger(output: str | None = None, defer: bool = False) -> None:
    """Tee ``sys.stdout`` into a log file and point the root logger at ``sys.stdout``.

    Args:
        output: an output directory (the file is ``<output>/log.txt``) or a path ending in ``.txt`` or
            ``.log``. ``None`` only configures the root logger.
        defer: write nothing to the file until :func:`commit_log` (the lines are kept in memory).

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
    _CURRENT = Logger(fpath, defer=defer)
    sys.stdout = _CURRENT


def commit_log() -> None:
    """Start writing the deferred log file (see ``setup_logger(defer=True)``)."""
    if _CURRENT is not None:
        _CURRENT.commit()


def log_position() -> int | None:
    """Bytes of the current log file written so far (None when there is none or it is still deferred)."""
    return _CURRENT.position() if _CURRENT is not None else None


def supersede_log_after(offset: int) -> None:
    """A resumed run: when the deferred log file is committed, move its lines after byte ``offset`` (the resume
    point) into ``log.superseded.txt`` (see :meth:`Logger.supersede_after`). No effect once committed."""
    if _CURRENT is not None and not _CURRENT.committed:
        _CURRENT.supersede_after(offset)


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
