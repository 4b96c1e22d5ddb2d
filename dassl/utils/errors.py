"""User-facing errors: bad input that the user can fix (missing data/weights, bad config values).

``train.py`` catches :class:`UsageError` (and ``clip.MissingWeightsError``) and prints one line
``error: <message>`` to stderr, exiting with code 2, instead of a traceback.
"""
from __future__ import annotations


class UsageError(Exception):
    """Base class of errors caused by the user's input; the message says what is wrong and how to fix it."""

    exit_code = 2


class ConfigError(UsageError, ValueError):
    """An impossible or inconsistent configuration value (names the key)."""


class DataNotFoundError(UsageError, FileNotFoundError):
    """A dataset folder, split file or image is missing (names the path and the DATASETS.md section)."""


class CheckpointNotFoundError(UsageError, FileNotFoundError):
    """A checkpoint file or folder the user pointed at (``--model-dir``, ``--resume``) does not exist."""


class RunLockedError(UsageError):
    """Another live process holds the lock of the run folder (names its pid and host)."""


class ConfigMismatchError(UsageError):
    """The run folder was started with another config (names the differing keys and the way out)."""


class DiskFullError(UsageError, OSError):
    """No space left on the device while writing a file of the run (``error: no space left on device ...``)."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"no space left on device while writing {path}")

    def __str__(self) -> str:  # OSError would format it as "[Errno ...]"
        return f"no space left on device while writing {self.path}"


class Interrupted(BaseException):
    """SIGINT / SIGTERM: the run stopped at a safe point (``train.py`` exits 128 + signal number)."""

    def __init__(self, signum: int, message: str = "") -> None:
        self.signum = signum
        self.message = message
        super().__init__(message or f"interrupted by signal {signum}")


class UnsafeFileError(UsageError, RuntimeError):
    """A file given as data (checkpoint, cache, config) holds code: refused before anything in it is read."""


class CorruptCheckpointError(UsageError, RuntimeError):
    """A checkpoint file is empty, truncated or not a PyTorch checkpoint (names the file and what to do)."""


class NonFiniteLossError(UsageError, FloatingPointError):
    """The training loss became NaN/Inf (names epoch and iteration; the last good checkpoint is kept)."""


class BadImageError(UsageError, OSError):
    """An image file cannot be read (names the file and its split; ``DATASET.SKIP_BAD_IMAGES`` skips such files).

    Raised inside a DataLoader worker, torch re-raises it with the worker's traceback in the message; the
    constructor keeps only this error's own message so the command line still prints one line.
    """

    def __init__(self, message: str = "") -> None:
        marker = "BadImageError: "
        if "\n" in message and marker in message:
            message = message.rsplit(marker, 1)[1].strip().splitlines()[0]
        super().__init__(message)
