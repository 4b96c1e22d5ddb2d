"""The completion record and lock of a run folder: the ONE place that decides whether a run is finished.

Every reader (``train.py``, the bash scripts through ``python -m dassl.utils.run_record``, ``tools/crt_sweep.py``,
``tools/embedded_default.py``, ``tools/parse_test_res.py``, the sweep launcher, the results report) goes through
:func:`run_status` / :func:`read_record`; nobody greps log tails elsewhere.

Files in a run folder:

* ``run.json`` (:data:`RECORD_FILE`): written atomically as the *last* thing a finished training or evaluation
  does: ``{"finished": true, "kind": "train" | "eval", "config_hash": "...", "results": {...}, "time": ...}``.
* ``run_config.json`` (:data:`RUN_CONFIG_FILE`): the resolved config (flat ``{"KEY.SUB": value}``) and the
  result-relevant arguments (``eval_only``, ``model_dir``, ``load_epoch``) the folder was started with, written
  (with ``config.yaml``) once the trainer is built. A later invocation into the folder is compared with it key by
  key (:func:`compare_folder`), ignoring :data:`IGNORED_KEYS`; any difference is refused (``--force`` starts over,
  moving the old files aside into ``.replaced/<timestamp>/``).
* ``.lock`` (:data:`LOCK_FILE`): ``{"pid": P, "host": H, "started": T, "argv": [...]}`` while a process works on the
  folder (:func:`acquire_lock`); a stale lock (dead pid on this host) is taken over with a warning.

Folders written by the reference forks (no record and no ``run_config.json``) count as finished when their
``log.txt`` ends with ``Elapsed`` (training) or ``macro_f1`` (evaluation) in its last lines.
"""
from __future__ import annotations

import hashlib
import json
import os
import os.path as osp
import socket
import sys
import tempfile
import time
from typing import Any, Iterable, Literal

# NOTE: no torch / dassl.utils imports at module level: the bash scripts load this file on its own
# (``python dassl/utils/run_record.py status DIR``) to stay fast.

RECORD_FILE = "run.json"
RUN_CONFIG_FILE = "run_config.json"
LOCK_FILE = ".lock"
#: where ``--force`` moves the files of the run it replaces (``<folder>/.replaced/<timestamp>/``)
REPLACED_DIR = ".replaced"

#: config keys (and prefixes ending with ".") that do not change a run's results: ignored by :func:`config_hash`
#: and :func:`compare_folder` (so a run can be continued with another print frequency, worker count, data root
#: or output path). Everything else must match.
IGNORED_KEYS: tuple[str, ...] = (
    "OUTPUT_DIR",
    "RESUME",
    "VERBOSE",
    "DATASET.ROOT",
    "DATALOADER.NUM_WORKERS",  # see WARN_KEYS
    "TRAIN.PRINT_FREQ",
    "TRAIN.RESUME_EVERY_ITERS",
    "TRAIN.RESUME_EVERY_MINUTES",
)
#: ignored keys that still change the random stream: with random augmentations, the loader worker count decides
#: which RNG (main process or each worker's) draws them, so a run continued with another value is not bit-identical
#: to an uninterrupted one. Allowed, with a warning (a moved run should not be blocked by the machine's core count).
WARN_KEYS: tuple[str, ...] = ("DATALOADER.NUM_WORKERS",)
#: train.py arguments that change what a folder holds (compared like config keys, as ``ARGS.<name>``)
RESULT_ARGS: tuple[str, ...] = ("eval_only", "model_dir", "load_epoch")


def _atomic_write_text(text: str, path: str) -> None:
    try:
        from .tools import atomic_write_text
    except ImportError:  # loaded as a plain file by the scripts
        d = osp.dirname(osp.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=f".{osp.basename(path)}.", suffix=".tmp", dir=d)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if osp.exists(tmp):
                os.remove(tmp)
            raise
        return
    atomic_write_text(text, path)


# ---------------------------------------------------------------------------------------------- config
def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def flatten_config(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """``{"OPTIM.LR": 0.002, ...}`` of a (yacs) config or nested dict; tuples become lists."""
    out: dict[str, Any] = {}
    for k, v in dict(cfg).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten_config(v, key + "."))
        else:
            out[key] = _plain(v)
    return out


def is_ignored(key: str, ignored: Iterable[str] = IGNORED_KEYS) -> bool:
    return any(key == k or (k.endswith(".") and key.startswith(k)) for k in ignored)


def relevant_config(cfg: Any) -> dict[str, Any]:
    """The flat config without :data:`IGNORED_KEYS` (what :func:`config_hash` hashes)."""
    return {k: v for k, v in flatten_config(cfg).items() if not is_ignored(k)}


def config_hash(cfg: Any) -> str:
    """sha256 (first 16 hex digits) of the resolved config minus :data:`IGNORED_KEYS`."""
    text = json.dumps(relevant_config(cfg), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def result_args(args: Any) -> dict[str, Any]:
    """The :data:`RESULT_ARGS` of a train.py namespace (``model_dir`` made absolute)."""
    out: dict[str, Any] = {}
    for name in RESULT_ARGS:
        value = getattr(args, name, None)
        if name == "model_dir":
            value = osp.abspath(value) if value else ""
        if name == "eval_only":
            value = bool(value)
        if name == "load_epoch" and not getattr(args, "eval_only", False):
            value = None  # only evaluation reads it
        out[name] = value
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or a == b and type(a) is type(b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


_ABSENT = "<absent>"


def diff_configs(recorded: dict[str, Any], requested: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``[(key, recorded value, requested value)]`` of the differing keys (flat dicts, ignored keys skipped)."""
    out = []
    for key in sorted(set(recorded) | set(requested)):
        if is_ignored(key):
            continue
        a, b = recorded.get(key, _ABSENT), requested.get(key, _ABSENT)
        if not _same(a, b):
            out.append((key, a, b))
    return out


def write_run_config(folder: str, cfg: Any, args: Any = None) -> None:
    """Record the config and result arguments the folder is started with (see :func:`compare_folder`)."""
    data = {"config_hash": config_hash(cfg), "config": _requested_flat(cfg),
            "args": result_args(args) if args is not None else {}}
    _atomic_write_text(json.dumps(data, indent=1, sort_keys=True, default=str) + "\n", osp.join(folder, RUN_CONFIG_FILE))


def recorded_config(folder: str) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """(flat config, args or None) the folder was started with: ``run_config.json``, else ``config.yaml``."""
    try:
        with open(osp.join(folder, RUN_CONFIG_FILE)) as f:
            data = json.load(f)
        if isinstance(data, dict) and isinstance(data.get("config"), dict):
            return data["config"], data.get("args") if isinstance(data.get("args"), dict) else None
    except (OSError, ValueError):
        pass
    path = osp.join(folder, "config.yaml")
    if osp.isfile(path):
        import yaml

        try:
            with open(path) as f:
                data = yaml.safe_load(f)
        except (OSError, yaml.YAMLError):
            return None
        if isinstance(data, dict):
            return flatten_config(data), None
    return None


def _requested_flat(cfg: Any) -> dict[str, Any]:
    """The flat config normalised like ``config.yaml`` (what older folders hold), through one YAML dump and load
    per frozen config (kept on it: the pure-Python YAML round trip costs ~0.1 s and several checks need it)."""
    if not hasattr(cfg, "dump"):
        return flatten_config(cfg)
    cached = cfg.__dict__.get("_run_record_flat")
    if cached is not None:
        return dict(cached)
    import yaml

    flat = flatten_config(yaml.safe_load(cfg.dump()))
    if getattr(cfg, "is_frozen", lambda: False)():
        cfg.__dict__["_run_record_flat"] = flat
    return dict(flat)


def compare_folder(folder: str, cfg: Any, args: Any = None) -> list[tuple[str, Any, Any]]:
    """Differences between what ``folder`` was started with and the requested ``cfg``/``args`` ([] = same, or
    nothing recorded). The requested config is normalised like the recorded one (through its YAML dump)."""
    rec = recorded_config(folder)
    if rec is None:
        return []
    rec_cfg, rec_args = rec
    diffs = diff_configs(rec_cfg, _requested_flat(cfg))
    if rec_args is None:  # an older / foreign config.yaml: only the keys it has are compared
        diffs = [d for d in diffs if d[1] != _ABSENT]
    else:  # keys this code added or removed since the folder was started (see schema_changes)
        changed = {k for k, _ in schema_changes(rec_cfg, cfg)}
        diffs = [d for d in diffs if d[0] not in changed]
    if rec_args is not None and args is not None:
        now = result_args(args)
        for name in RESULT_ARGS:
            if not _same(rec_args.get(name), now.get(name)):
                diffs.append((f"--{name.replace('_', '-')}", rec_args.get(name), now.get(name)))
    return diffs


def schema_changes(recorded: dict[str, Any], cfg: Any) -> list[tuple[str, str]]:
    """Keys that are not a difference of the user's request but of the code: ``(key, "new")`` for a key the
    recorded config lacks and no YAML or command line of this invocation wrote (it has its default, which
    reproduces the behaviour from before the key existed), ``(key, "removed")`` for a recorded key this code no
    longer has. A newer checkout can so continue a run an older one started."""
    sources = getattr(cfg, "__dict__", {}).get("sources")
    now = _requested_flat(cfg)
    out = []
    for key in sorted(set(now) - set(recorded)):
        if not is_ignored(key) and (sources is None or sources.rank(key) is None):
            out.append((key, "new"))
    out += [(key, "removed") for key in sorted(set(recorded) - set(now)) if not is_ignored(key)]
    return out


def soft_differences(folder: str, cfg: Any) -> list[tuple[str, Any, Any]]:
    """Differences in :data:`WARN_KEYS` between the folder's recorded config and ``cfg`` (warned about only)."""
    rec = recorded_config(folder)
    if rec is None:
        return []
    now = _requested_flat(cfg)
    return [(k, rec[0][k], now[k]) for k in WARN_KEYS if k in rec[0] and k in now and not _same(rec[0][k], now[k])]


def mismatch_message(folder: str, diffs: list[tuple[str, Any, Any]], limit: int = 8) -> str:
    shown = "; ".join(f"{k}: {a!r} in the folder, {b!r} requested" for k, a, b in diffs[:limit])
    more = f"; and {len(diffs) - limit} more" if len(diffs) > limit else ""
    return (f"{folder} holds a run with another config ({len(diffs)} differing key(s): {shown}{more}); "
            "use a new --output-dir, or pass --force (FORCE=1 for the scripts) to start over "
            f"(the old files are moved to {osp.join(folder, REPLACED_DIR)}/<timestamp>/)")


def move_aside(folder: str) -> str | None:
    """Move every entry of ``folder`` (except the lock and earlier replaced runs) into
    ``folder/.replaced/<timestamp>/``; returns that path (None when there was nothing to move)."""
    names = [n for n in os.listdir(folder) if n not in (LOCK_FILE, REPLACED_DIR)]
    if not names:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest = osp.join(folder, REPLACED_DIR, stamp)
    i = 1
    while osp.exists(dest):
        dest = osp.join(folder, REPLACED_DIR, f"{stamp}-{i}")
        i += 1
    os.makedirs(dest)
    for n in names:
        os.replace(osp.join(folder, n), osp.join(dest, n))
    return dest
#: markers of a finished reference-fork run in the last lines of its log.txt
LEGACY_MARKERS = ("Elapsed", "macro_f1")

RunStatus = Literal["finished", "running", "interrupted", "missing"]


def read_record(folder: str) -> dict[str, Any] | None:
    """The completion record of ``folder`` (None when absent or unreadable)."""
    path = osp.join(folder, RECORD_FILE)
    try:
        with open(path) as f:
            rec = json.load(f)
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def write_record(folder: str, kind: str, results: dict[str, Any], config_hash: str, **extra: Any) -> dict[str, Any]:
    """Atomically write the completion record (call it last, once everything else of the run is on disk)."""
    rec: dict[str, Any] = {"finished": True, "kind": kind, "config_hash": config_hash, "results": results,
                           "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    rec.update(extra)
    _atomic_write_text(json.dumps(rec, indent=2, sort_keys=True) + "\n", osp.join(folder, RECORD_FILE))
    return rec


def legacy_finished(folder: str, markers: tuple[str, ...] = LEGACY_MARKERS, tail: int = 5) -> bool:
    """A reference-fork folder (no record) whose ``log.txt`` ends with one of ``markers``."""
    log = osp.join(folder, "log.txt")
    try:
        with open(log, errors="replace") as f:
            lines = f.readlines()[-tail:]
    except OSError:
        return False
    return any(m in line for line in lines for m in markers)


def is_finished(folder: str, kind: str | None = None) -> bool:
    """True when ``folder`` holds a finished run (our record, or a reference-fork log that ends as finished).

    ``kind`` ("train" | "eval") restricts to that kind of record; a legacy folder counts for either.
    """
    rec = read_record(folder)
    if rec is not None:
        return bool(rec.get("finished")) and (kind is None or rec.get("kind") == kind)
    if osp.isfile(osp.join(folder, RUN_CONFIG_FILE)):  # written by this code: only the record says finished
        return False
    return legacy_finished(folder)


# ------------------------------------------------------------------------------------------ request
#: command-line arguments that do not change what a folder holds (left out of the request fingerprint)
REQUEST_IGNORED_ARGS: tuple[str, ...] = ("--force",)


def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def program_args(command: list[str]) -> list[str]:
    """The arguments of a ``train.py`` command: what follows the first element ending in ``train.py`` (the whole
    list when there is none, i.e. it already is ``sys.argv[1:]``)."""
    for i, a in enumerate(command):
        if osp.basename(a) == "train.py":
            return list(command[i + 1 :])
    return list(command)


def request_fingerprint(argv: list[str]) -> dict[str, Any]:
    """What a run was asked for, cheaply comparable without building the config: the ``train.py`` arguments
    (``--force`` left out) and the SHA-256 of every file they name (config YAMLs, so an edited YAML counts as a
    different request). Stored in ``run.json`` as ``request``."""
    args = [a for a in program_args(argv) if a not in REQUEST_IGNORED_ARGS]
    files = {}
    for a in args:
        if osp.isfile(a):
            try:
                files[a] = _file_sha256(a)
            except OSError:
                files[a] = None
    return {"argv": args, "files": files}


def request_matches(folder: str, command: list[str], kind: str | None = None) -> bool:
    """True when ``folder`` holds a finished run (of ``kind``) started with exactly this command and unchanged
    config files (or a reference fork's finished folder, which has no record): the scripts and the launcher then
    skip it without starting Python with torch. Anything else
    (another command, an edited YAML, a folder without a fingerprint) is left to ``train.py``, which compares the
    resolved configs key by key and either skips (same config) or refuses naming the differing keys."""
    if not is_finished(folder, kind):
        return False
    rec = read_record(folder)
    if rec is None:  # finished by a reference fork's log tail: nothing to compare with, counted as finished
        return True
    req = rec.get("request")
    return isinstance(req, dict) and req == request_fingerprint(command)


# ------------------------------------------------------------------------------------------------ lock
def read_lock(folder: str) -> dict[str, Any] | None:
    try:
        with open(osp.join(folder, LOCK_FILE)) as f:
            lock = json.load(f)
    except (OSError, ValueError):
        return None
    return lock if isinstance(lock, dict) else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_held(folder: str) -> dict[str, Any] | None:
    """The lock of a live owner (None when unlocked or stale: dead pid on this host)."""
    lock = read_lock(folder)
    if lock is None:
        return None
    try:
        pid = int(lock.get("pid", -1))
    except (TypeError, ValueError):
        pid = -1
    if lock.get("host") == socket.gethostname() and (pid <= 0 or not pid_alive(pid)):
        return None
    return lock


class RunLock:
    """The ``.lock`` of a run folder held by this process (:func:`acquire_lock`); :meth:`release` is idempotent."""

    def __init__(self, folder: str, created_folder: bool) -> None:
        self.folder = folder
        self.path = osp.join(folder, LOCK_FILE)
        self.created_folder = created_folder
        self.pid = os.getpid()

    def release(self) -> None:
        lock = read_lock(self.folder)
        if lock is not None and lock.get("pid") == self.pid and lock.get("host") == socket.gethostname():
            try:
                os.remove(self.path)
            except OSError:
                pass
        if self.created_folder:  # a run that failed before writing anything leaves no empty folder behind
            try:
                os.rmdir(self.folder)
            except OSError:
                pass
            self.created_folder = False

    def keep_folder(self) -> None:
        """The run wrote into the folder: release() must not try to remove it."""
        self.created_folder = False


def describe_lock(lock: dict[str, Any]) -> str:
    return f"pid {lock.get('pid')} on host {lock.get('host')} (started {lock.get('started')})"


def locked_message(folder: str, lock: dict[str, Any]) -> str:
    return (f"run folder {folder} is in use by {describe_lock(lock)}; wait for it to finish or stop it "
            f"(if that process is gone, delete {osp.join(folder, LOCK_FILE)})")


def acquire_lock(folder: str, argv: list[str] | None = None, warn=None) -> RunLock:
    """Create ``folder/.lock`` (atomically, with its content); creates the folder when missing.

    Raises:
        RunLockedError: a live process (or a process on another host) holds the lock.
    """
    try:
        from .errors import RunLockedError
    except ImportError:  # loaded as a plain file
        RunLockedError = RuntimeError  # noqa: N806

    created = not osp.isdir(folder)
    os.makedirs(folder, exist_ok=True)
    info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "argv": list(sys.argv if argv is None else argv)}
    path = osp.join(folder, LOCK_FILE)
    fd, tmp = tempfile.mkstemp(prefix=".lock.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(info, f)
        for _ in range(3):
            try:
                os.link(tmp, path)  # atomic create-if-absent, with the content already in place
                return RunLock(folder, created)
            except FileExistsError:
                pass
            lock = read_lock(folder)
            if lock is None:  # unreadable: a lock from a foreign tool, or a writer that just started
                try:
                    age = time.time() - os.path.getmtime(path)
                except OSError:
                    continue
                if age < 60:
                    raise RunLockedError(f"run folder {folder} is locked ({path} exists, unreadable)")
                lock = {"pid": None, "host": socket.gethostname(), "started": "?"}
            elif lock_held(folder) is not None:
                raise RunLockedError(locked_message(folder, lock))
            if warn is not None:
                warn(f"Warning: taking over the stale lock of {describe_lock(lock)}: that process is not running")
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
        raise RunLockedError(f"run folder {folder} is locked ({path}); could not take it over")
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def run_status(folder: str) -> RunStatus:
    """``finished`` | ``running`` (lock held by a live process) | ``interrupted`` (folder with content) | ``missing``."""
    if is_finished(folder):
        return "finished"
    if lock_held(folder) is not None:
        return "running"
    if osp.isdir(folder) and any(not n.startswith(".") for n in os.listdir(folder)):
        return "interrupted"
    return "missing"


def status_line(folder: str, kind: str | None = None) -> str:
    """``finished`` | ``running <owner>`` | ``interrupted`` | ``missing`` (``kind`` restricts ``finished``)."""
    status = run_status(folder)
    if status == "finished" and kind is not None and not is_finished(folder, kind):
        status = "interrupted" if osp.isdir(folder) else "missing"
    if status == "running":
        lock = lock_held(folder) or {}
        return f"running {describe_lock(lock)}"
    return status


def main(argv: list[str] | None = None) -> int:
    """``python -m dassl.utils.run_record [status] [--kind train|eval] FOLDER``: print the status line
    (:func:`status_line`); exit 0 when finished, 1 otherwise.
    ``... matches [--kind train|eval] FOLDER -- COMMAND...``: exit 0 when FOLDER finished with exactly this
    ``train.py`` command (:func:`request_matches`), 1 otherwise. The scripts run this file directly
    (``python dassl/utils/run_record.py status DIR``), which does not import torch."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "matches":
        rest = argv[1:]
        kind = None
        if len(rest) >= 2 and rest[0] == "--kind":
            kind, rest = rest[1], rest[2:]
        if "--" not in rest or rest.index("--") != 1 or kind not in (None, "train", "eval"):
            print("usage: python -m dassl.utils.run_record matches [--kind train|eval] FOLDER -- COMMAND...",
                  file=sys.stderr)
            return 2
        return 0 if request_matches(rest[0], rest[2:], kind) else 1
    if argv and argv[0] == "status":
        argv = argv[1:]
    kind = None
    if len(argv) >= 2 and argv[0] == "--kind":
        kind, argv = argv[1], argv[2:]
    if len(argv) != 1 or kind not in (None, "train", "eval"):
        print("usage: python -m dassl.utils.run_record [status] [--kind train|eval] FOLDER", file=sys.stderr)
        return 2
    line = status_line(argv[0], kind)
    print(line)
    return 0 if line == "finished" else 1


if __name__ == "__main__":
    sys.exit(main())
