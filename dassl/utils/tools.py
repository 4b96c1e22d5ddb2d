"""Small file-system and misc helpers (Dassl ``dassl.utils.tools``)."""
from __future__ import annotations

import errno
import json
import os
import os.path as osp
import random
import re
import tempfile
import threading
import warnings
from contextlib import contextmanager
from typing import IO, Any, Iterator

import numpy as np
import torch

__all__ = [
    "mkdir_if_missing",
    "check_isfile",
    "read_json",
    "write_json",
    "atomic_open",
    "atomic_write_text",
    "upsert_jsonl",
    "is_disk_full",
    "set_random_seed",
    "collect_env_info",
    "listdir_nohidden",
    "read_image",
    "tolist_if_not",
    "get_git_sha",
    "check_availability",
]


def mkdir_if_missing(dirname: str) -> None:
    """``os.makedirs`` that ignores an existing directory."""
    if not osp.exists(dirname):
        try:
            os.makedirs(dirname)
        except OSError as e:
            if e.errno != errno.EEXIST:
                raise


def check_isfile(fpath: str) -> bool:
    """True if ``fpath`` is a file; warns when it is not."""
    isfile = osp.isfile(fpath)
    if not isfile:
        warnings.warn(f'No file found at "{fpath}"', stacklevel=2)
    return isfile


def read_json(fpath: str) -> Any:
    with open(fpath, encoding="utf-8") as f:
        return json.load(f)


def write_json(obj: Any, fpath: str) -> None:
    """Dump ``obj`` as JSON (4-space indent, ``(",", ": ")`` separators) atomically, creating the parent folder."""
    atomic_write_text(json.dumps(obj, indent=4, separators=(",", ": ")), fpath)


@contextmanager
def atomic_open(fpath: str, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file next to ``fpath`` for writing; on success it is flushed, fsynced, given the usual
    permissions (``0o666 & ~umask``) and ``os.replace``-d onto ``fpath`` (then the folder is fsynced). On any
    error the temporary file is removed and ``fpath`` is left as it was.

    Example: ``with atomic_open(path, "wb") as f: torch.save(obj, f)``.
    """
    dirname = osp.dirname(osp.abspath(fpath))
    mkdir_if_missing(dirname)
    fd, tmp = tempfile.mkstemp(prefix=f".{osp.basename(fpath)}.", suffix=".tmp", dir=dirname)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600
        os.replace(tmp, fpath)
    except BaseException as e:
        if osp.exists(tmp):
            os.remove(tmp)
        if is_disk_full(e):
            from .errors import DiskFullError

            if not isinstance(e, DiskFullError):
                raise DiskFullError(fpath) from e
        raise
    _fsync_dir(dirname)


def is_disk_full(e: BaseException | None) -> bool:
    """True when ``e`` (or an exception it wraps, e.g. torch's ``RuntimeError`` around a failed write) is ENOSPC."""
    seen = 0
    while e is not None and seen < 10:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(e) or e.__class__.__name__ == "DiskFullError":
            return True
        e = e.__cause__ or e.__context__
        seen += 1
    return False


def upsert_jsonl(fpath: str, record: dict, key: str = "epoch") -> None:
    """Write ``record`` into the JSON-lines file ``fpath`` idempotently: lines whose ``key`` is >= the record's
    (left by an interrupted run that is being continued) are replaced; the file is rewritten atomically."""
    kept: list[str] = []
    if osp.isfile(fpath):
        with open(fpath, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    value = json.loads(line).get(key)
                except (ValueError, AttributeError):
                    kept.append(line.rstrip("\n"))  # not ours to judge: keep it
                    continue
                if value is None or value < record[key]:
                    kept.append(line.rstrip("\n"))
    kept.append(json.dumps(record))
    atomic_write_text("\n".join(kept) + "\n", fpath)


def _fsync_dir(dirname: str) -> None:
    try:
        fd = os.open(dirname, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write_text(text: str, fpath: str) -> None:
    """Write ``text`` to ``fpath`` atomically (see :func:`atomic_open`)."""
    with atomic_open(fpath, "w") as f:
        f.write(text)


def set_random_seed(seed: int) -> None:
    """Seed Python ``random``, NumPy and torch (CPU and every CUDA device). Seed 0 is a valid seed."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


_ENV_LOCK = threading.Lock()


def _installed_packages_freeze() -> str:
    """``pip list --format=freeze`` text read from the installed distributions' metadata (milliseconds, where
    running pip takes ~2 s): ``Name==version`` lines sorted by lower-case name, first distribution of a name wins."""
    import importlib.metadata as md

    seen: dict[str, str] = {}
    for dist in md.distributions():
        text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
        name = version = None
        for line in text.splitlines():  # only the two header fields (a full email parse of ~500 files: ~0.7 s)
            if not line.strip():
                break
            if name is None and line.startswith("Name:"):
                name = line[5:].strip()
            elif version is None and line.startswith("Version:"):
                version = line[8:].strip()
        if not name:
            continue
        key = re.sub(r"[-_.]+", "-", name).lower()
        seen.setdefault(key, f"{name}=={version}")
    return "\n".join(seen[k] for k in sorted(seen))


def collect_env_info() -> str:
    """torch's environment report plus the Pillow version.

    The report's one slow part, a ``python -m pip list`` subprocess (~2 s of every run's start-up), is answered
    from the package metadata instead (same lines); every other probe runs as torch runs it."""
    try:
        import torch.utils.collect_env as ce

        real_run = ce.run

        def run(command):
            if isinstance(command, (list, tuple)) and "-mpip" in command and "list" in command:
                return 0, _installed_packages_freeze(), ""
            return real_run(command)

        with _ENV_LOCK:
            ce.run = run
            try:
                env_str = ce.get_pretty_env_info()
            finally:
                ce.run = real_run
    except Exception as e:  # pragma: no cover - depends on the host
        env_str = f"(torch environment report unavailable: {e})\nPyTorch version: {torch.__version__}"
    import PIL

    env_str += f"\n        Pillow ({PIL.__version__})"
    return env_str


def listdir_nohidden(path: str, sort: bool = False) -> list[str]:
    """Entries of ``path`` that do not start with ``.`` (sorted only when ``sort``)."""
    items = [f for f in os.listdir(path) if not f.startswith(".")]
    if sort:
        items.sort()
    return items


def read_image(path: str):
    """Open an image with PIL and convert it to RGB."""
    from PIL import Image

    with Image.open(path) as img:
        return img.convert("RGB")


def tolist_if_not(x: Any) -> list:
    """Wrap ``x`` in a list unless it already is one."""
    if not isinstance(x, list):
        x = [x]
    return x


def get_git_sha(path: str | None = None) -> str | None:
    """The git commit of the repository holding ``path`` (``+dirty`` if modified), or None."""
    import subprocess

    cwd = path or osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True,
            timeout=10,
        ).stdout.strip()
    except Exception:
        return None
    return sha + ("+dirty" if dirty else "") if sha else None




def check_availability(requested: str, available: list[str]) -> None:
    """Raise ``ValueError`` naming the closest available string when ``requested`` is not available."""
    if requested not in available:
        import difflib

        best = max(available, key=lambda a: difflib.SequenceMatcher(None, requested, a).ratio(), default=None)
        raise ValueError(f"The requested one is expected to belong to {available}, but got [{requested}] "
                         f"(do you mean [{best}]?)")
