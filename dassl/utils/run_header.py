"""The run header: what a run folder's log states about how the run was made, beyond ``config.yaml``.

``log_run_header(cfg)`` logs (and returns) the exact train / test transform pipelines with every parameter
(torchvision's own ``repr``), the git commit and whether the working tree was dirty, the Python / torch / CUDA /
cuDNN versions and the GPU names. Released logs of the reference repos lack the transforms, a known source of
confusion when numbers do not match.

Cheap by design: the commit is read from the ``.git`` files (no subprocess); the dirty check is one
``git diff-index --quiet HEAD`` (a stat of the tracked files, skipped when git is missing); nothing here touches
the random-number generators, so calling it never changes a run's numbers.
"""
from __future__ import annotations

import logging
import os
import os.path as osp
import platform
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
logger = logging.getLogger(__name__)


def _git_dir(repo: str) -> str | None:
    dot = osp.join(repo, ".git")
    if osp.isdir(dot):
        return dot
    if osp.isfile(dot):  # a worktree or submodule: "gitdir: <path>"
        try:
            with open(dot) as f:
                line = f.read().strip()
        except OSError:
            return None
        if line.startswith("gitdir:"):
            path = line[len("gitdir:"):].strip()
            return path if osp.isabs(path) else osp.normpath(osp.join(repo, path))
    return None


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def git_commit(repo: str = REPO) -> str | None:
    """The checked-out commit, read from ``.git`` (HEAD, loose ref, packed-refs); None outside a git checkout."""
    gd = _git_dir(repo)
    if gd is None:
        return None
    head = _read(osp.join(gd, "HEAD"))
    if not head:
        return None
    if not head.startswith("ref:"):
        return head
    ref = head[4:].strip()
    common = _read(osp.join(gd, "commondir"))  # worktrees keep refs in the main repository's git folder
    roots = [gd] + ([osp.normpath(osp.join(gd, common))] if common else [])
    for root in roots:
        sha = _read(osp.join(root, ref))
        if sha:
            return sha
    for root in roots:
        packed = _read(osp.join(root, "packed-refs")) or ""
        for line in packed.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == ref:
                return parts[0]
    return None


def git_dirty(repo: str = REPO, timeout: float = 5.0) -> bool | None:
    """True when tracked files differ from HEAD (``git diff-index``); None when git cannot tell."""
    if _git_dir(repo) is None:
        return None
    try:
        subprocess.run(["git", "update-index", "-q", "--refresh"], cwd=repo, capture_output=True, timeout=timeout)
        r = subprocess.run(["git", "diff-index", "--quiet", "HEAD", "--"], cwd=repo, capture_output=True,
                           timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return {0: False, 1: True}.get(r.returncode)


def transform_pipelines(cfg) -> tuple[str, str]:
    """``repr`` of the train and test transforms ``build_transform`` makes for ``cfg`` (its own log lines muted)."""
    from dassl.data.transforms import build_transform

    tlog = logging.getLogger("dassl.data.transforms.transforms")
    old, tlog.disabled = tlog.disabled, True
    try:
        out = []
        for is_train in (True, False):
            try:
                out.append(repr(build_transform(cfg, is_train=is_train)))
            except Exception as e:  # a bad transform name is reported by the data manager itself
                out.append(f"(cannot build: {e})")
        return out[0], out[1]
    finally:
        tlog.disabled = old


def _torchvision_version() -> str | None:
    """The imported torchvision's ``__version__``, else the installed one's (without importing it: ~3 s)."""
    module = sys.modules.get("torchvision")
    if module is not None and getattr(module, "__version__", None):
        return str(module.__version__)
    try:  # the package's version.py, read as text (find_spec of a top-level package imports nothing)
        import importlib.util
        import re

        spec = importlib.util.find_spec("torchvision")
        for folder in (spec.submodule_search_locations or []) if spec else []:
            with open(osp.join(folder, "version.py"), encoding="utf-8") as f:
                match = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", f.read(), re.M)
            if match:
                return match.group(1)
        import importlib.metadata

        return importlib.metadata.version("torchvision")
    except Exception:
        return None


def versions() -> list[str]:
    import torch

    lines = [f"Python {platform.python_version()} ({sys.executable})", f"torch {torch.__version__}"]
    tv_version = _torchvision_version()
    if tv_version:
        lines.append(f"torchvision {tv_version}")
    cuda = torch.version.cuda
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    lines.append(f"CUDA (torch build) {cuda or 'none'}, cuDNN {cudnn or 'none'}")
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        lines.append(f"GPU: {', '.join(names)} (CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')})")
    else:
        lines.append("GPU: none (CPU run)")
    return lines


def run_header(cfg) -> str:
    """The header text (see the module docstring)."""
    sha = git_commit()
    dirty = git_dirty() if sha else None
    state = {True: "dirty (uncommitted changes to tracked files)", False: "clean", None: "unknown"}[dirty]
    train_tfm, test_tfm = transform_pipelines(cfg)
    lines = ["** Run header **", f"Git commit: {sha or 'unknown (not a git checkout)'}, working tree {state}"]
    lines += versions()
    lines += ["Transform (train):", train_tfm, "Transform (test):", test_tfm]
    return "\n".join(lines)


def log_run_header(cfg, log: logging.Logger | None = None) -> str:
    """Log :func:`run_header` at INFO (to the run's log.txt) and return it."""
    text = run_header(cfg)
    (log or logger).info(text)
    return text
