#!/usr/bin/env python
"""Train or evaluate a CLIP prompt-learning trainer (Dassl-style command line).

Examples::

    python train.py --root DATA --seed 1 --trainer CoOp \
        --dataset-config-file configs/datasets/oxford_pets.yaml \
        --config-file configs/trainers/CoOp/rn50_ep50.yaml \
        --output-dir output/oxford_pets/CoOp/seed1 DATASET.NUM_SHOTS 16

    python train.py ... --eval-only --model-dir output/oxford_pets/CoOp/seed1 --load-epoch 50

Config merge order: defaults -> ``extend_cfg`` -> ``--dataset-config-file`` -> each ``--config-file``
(repeatable overlays, in order) -> CLI flags (``reset_cfg``) -> trailing ``KEY VALUE`` opts -> validation
-> freeze. Named flags may appear anywhere, also after the opts. ``--list`` prints the registries.

Extra modules (e.g. a test trainer or a private dataset reader) can be registered without editing
this file: ``PROMPTCLIP_EXTRA_MODULES=pkg.mod_a,pkg.mod_b python train.py ...`` imports them before
the config is built.

Wrong input (missing file, unknown trainer/dataset/config key, bad value) prints one line
``error: <message>`` on stderr and exits with code 2.

Run folder contract (docs/ARCHITECTURE.md "Run folders"): nothing is written into ``OUTPUT_DIR`` until every check
passed (config, :func:`dassl.engine.preflight.preflight`, the comparison with the config the folder was started
with, the lock, the dataset, CLIP and the checkpoints to load); log lines are kept in memory until then. An
existing folder is continued (training resumes from ``resume.pth.tar``) only with the same config; otherwise the
run is refused naming the differing keys (``--force`` starts over, moving the old files into
``.replaced/<timestamp>/``). The last thing a finished training or evaluation writes is ``run.json``. SIGINT and
SIGTERM stop at the end of the current iteration, write the resume checkpoint and exit 130 / 143.
"""
from __future__ import annotations

import argparse
import logging
import os
import os.path as osp
import sys

logger = logging.getLogger("train")


# The config (parser, merge order, plugin hooks) lives in dassl.config.setup / dassl.config.sources; these names
# stay importable from train.py (thin lazy re-exports: importing train.py loads nothing heavy).
_REEXPORTS = {
    "EXTRA_MODULES_ENV": ("dassl.config.setup", "EXTRA_MODULES_ENV"),
    "build_parser": ("dassl.config.setup", "build_parser"),
    "parse_args": ("dassl.config.setup", "parse_args"),
    "extend_cfg": ("dassl.config.setup", "extend_cfg"),
    "reset_cfg": ("dassl.config.setup", "reset_cfg"),
    "setup_cfg": ("dassl.config.setup", "setup_cfg"),
    "validate_cfg": ("dassl.config.setup", "validate_cfg"),
    "_import_plugins": ("dassl.config.setup", "import_plugins"),
    "_merge_file": ("dassl.config.sources", "merge_file"),
    "_merge_opts": ("dassl.config.sources", "merge_opts"),
    "_has_key": ("dassl.config.sources", "has_key"),
    "_key_hint": ("dassl.config.sources", "key_hint"),
    "YAML_CONFIG_EXTS": ("dassl.config.sources", "YAML_CONFIG_EXTS"),
}


def __getattr__(name: str):
    if name in _REEXPORTS:
        import importlib

        module, attr = _REEXPORTS[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------------------------------------- main
def print_args(args: argparse.Namespace, cfg) -> None:
    logger.info("***************")
    logger.info("** Arguments **")
    logger.info("***************")
    for key in sorted(args.__dict__):
        logger.info(f"{key}: {args.__dict__[key]}")
    logger.info("************")
    logger.info("** Config **")
    logger.info("************")
    logger.info(cfg)


def list_registries() -> None:
    """Print every registered trainer and dataset (and the registries ``trainers.REGISTRIES`` exposes)."""
    from dassl.data.datasets import DATASET_REGISTRY
    from dassl.engine import TRAINER_REGISTRY

    from dassl.config.setup import import_plugins

    import_plugins()
    registries = {"trainers": TRAINER_REGISTRY, "datasets": DATASET_REGISTRY}
    for pkg in ("trainers", "datasets"):
        extra = getattr(sys.modules.get(pkg), "REGISTRIES", None)
        if isinstance(extra, dict):
            for name, reg in extra.items():
                registries.setdefault(str(name), reg)
    seen: set[int] = set()
    for title, reg in registries.items():
        if id(reg) in seen:  # e.g. trainers.REGISTRIES["trainer"] is TRAINER_REGISTRY
            continue
        seen.add(id(reg))
        names = sorted(reg.registered_names()) if hasattr(reg, "registered_names") else sorted(reg)
        print(f"{title} ({len(names)}):")
        for name in names:
            print(f"  {name}")


def check_run_folder(cfg, args: argparse.Namespace) -> None:
    """Refuse (before anything is written) a folder locked by a live process, or one started with another config
    (unless ``--force``). Reads only."""
    from dassl.utils import run_record
    from dassl.utils.errors import ConfigMismatchError, RunLockedError

    out = cfg.OUTPUT_DIR
    if not osp.isdir(out):
        return
    lock = run_record.lock_held(out)
    if lock is not None:
        raise RunLockedError(run_record.locked_message(out, lock))
    if getattr(args, "force", False):
        return
    diffs = run_record.compare_folder(out, cfg, args)
    if diffs:
        raise ConfigMismatchError(run_record.mismatch_message(out, diffs))
    rec = run_record.recorded_config(out)
    if rec is not None and rec[1] is not None:
        changes = run_record.schema_changes(rec[0], cfg)
        if changes:
            new = [k for k, what in changes if what == "new"]
            gone = [k for k, what in changes if what == "removed"]
            _DEFERRED_WARNINGS.append(
                "Config keys changed since this run started (a newer version of the code): "
                + (f"{len(new)} new key(s) at their defaults ({', '.join(new[:6])}{' ...' if len(new) > 6 else ''})"
                   if new else "")
                + ("; " if new and gone else "")
                + (f"{len(gone)} key(s) no longer exist ({', '.join(gone[:6])}{' ...' if len(gone) > 6 else ''})"
                   if gone else ""))
    for key, was, now in run_record.soft_differences(out, cfg):
        _DEFERRED_WARNINGS.append(f"Warning: {key} is {now!r} now but was {was!r} when this run started: the continued "
                                  "run draws its random augmentations differently (not bit-identical to an "
                                  "uninterrupted run)")


_DEFERRED_WARNINGS: list[str] = []


def clean_temporaries(folder: str) -> int:
    """Remove the hidden ``.<name>.*.tmp`` files an interrupted atomic write left in ``folder`` and its
    model sub-folders; returns how many."""
    n = 0
    for d in [folder] + [osp.join(folder, x) for x in os.listdir(folder) if not x.startswith(".")]:
        if not osp.isdir(d):
            continue
        for name in os.listdir(d):
            path = osp.join(d, name)
            if name.startswith(".") and name.endswith(".tmp") and osp.isfile(path):
                os.remove(path)
                n += 1
    return n


def main(args: argparse.Namespace) -> None:
    """Set up the run (config, checks, lock, logger, seed, env info), build the trainer, then, with nothing left
    to fail on the user's input, write into the folder (log, config) and train or evaluate; ``run.json`` last."""
    import torch

    from dassl.engine import build_trainer
    from dassl.engine.preflight import preflight
    from dassl.utils import collect_env_info, get_git_sha, run_record, set_random_seed, setup_logger
    from dassl.utils.run_header import log_run_header
    from dassl.utils.logger import commit_log
    from dassl.utils.tools import atomic_write_text

    from dassl.config.setup import setup_cfg

    _start_env_info(collect_env_info)  # overlaps the config and the checks (joined where it is logged)
    cfg = setup_cfg(args)
    preflight(cfg, args)  # everything checkable without data or CLIP, before anything is written
    check_run_folder(cfg, args)
    out = cfg.OUTPUT_DIR
    if skip_finished(cfg, args):
        return
    setup_logger(out, defer=True)  # lines are kept in memory until the folder may be written
    lock = run_record.acquire_lock(out, argv=[sys.argv[0]] + list(getattr(args, "argv", []) or []),
                                   warn=logger.warning)
    try:
        while _DEFERRED_WARNINGS:
            logger.warning(_DEFERRED_WARNINGS.pop(0))
        if cfg.SEED >= 0:
            logger.info(f"Setting fixed seed: {cfg.SEED}")
            set_random_seed(cfg.SEED)

        if torch.cuda.is_available() and cfg.USE_CUDA:
            torch.backends.cudnn.benchmark = True

        print_args(args, cfg)
        logger.info("Collecting env info ...")
        logger.info(f"** System info **\n{_env_info(collect_env_info)}\n")
        logger.info(f"Git commit: {get_git_sha() or 'unknown'}")
        log_run_header(cfg, logger)  # transform pipelines, git commit/dirty, versions, GPU
        trainer = build_trainer(cfg)
        train_run = not args.eval_only and not args.no_train
        if args.eval_only:
            trainer.load_model(args.model_dir, epoch=args.load_epoch)
        elif train_run and not args.force:
            trainer.resume_if_needed()  # a bad checkpoint fails here, before the folder is touched

        # ---- every check passed: from here on the run writes into its folder
        lock.keep_folder()
        if args.force:
            moved = run_record.move_aside(out)
            if moved:
                logger.info(f"--force: moved the previous files of {out} to {moved}")
        removed = clean_temporaries(out)
        if removed:
            logger.info(f"Removed {removed} temporary file(s) left by an interrupted write")
        commit_log()
        run_record.write_run_config(out, cfg, args)
        atomic_write_text(cfg.dump(), osp.join(out, "config.yaml"))

        if args.eval_only:
            trainer.test()
            _write_completion(trainer, cfg, "eval", args)
            return
        if train_run:
            trainer.train()
            _write_completion(trainer, cfg, "train", args)
    finally:
        lock.release()


def run_kind(args: argparse.Namespace) -> str | None:
    """``eval`` (``--eval-only``), ``train`` (a training run) or None (``--no-train``: nothing recorded)."""
    if args.eval_only:
        return "eval"
    return None if args.no_train else "train"


def skip_finished(cfg, args: argparse.Namespace) -> bool:
    """A folder that already holds a finished run of this kind with this config (``check_run_folder`` has compared
    it key by key) is left untouched: one line, exit 0. ``--force`` redoes it."""
    from dassl.utils import run_record

    kind = run_kind(args)
    if kind is None or getattr(args, "force", False) or run_record.read_record(cfg.OUTPUT_DIR) is None:
        return False  # (a reference fork's folder has no record: handled as before, by its config and checkpoints)
    if not run_record.is_finished(cfg.OUTPUT_DIR, kind):
        return False
    what = "evaluation" if kind == "eval" else "training"
    print(f"skip (finished): {cfg.OUTPUT_DIR} already holds a finished {what} with this config (run.json); "
          "nothing was changed. --force redoes it (the old files are moved to .replaced/)", flush=True)
    return True


def _write_completion(trainer, cfg, kind: str, args: argparse.Namespace | None = None) -> None:
    from dassl.utils import run_record

    results = {k: float(v) for k, v in (getattr(trainer, "last_results", None) or {}).items()}
    extra = {}
    argv = getattr(args, "argv", None)
    if argv is not None:
        extra["request"] = run_record.request_fingerprint(list(argv))
    run_record.write_record(cfg.OUTPUT_DIR, kind, results, run_record.config_hash(cfg),
                            epoch=getattr(trainer, "_model_epoch", None), **extra)


_ENV_INFO_CACHE: list[str] = []
_ENV_INFO_THREAD: list = []


def _start_env_info(collect) -> None:
    """Start torch's environment report (a few probing subprocesses) in a background thread, so that it overlaps
    the config and checks instead of blocking the run; :func:`_env_info` waits for it where it is logged."""
    import threading

    if _ENV_INFO_CACHE or _ENV_INFO_THREAD:
        return
    thread = threading.Thread(target=lambda: _ENV_INFO_CACHE.append(collect()), name="env-info", daemon=True)
    _ENV_INFO_THREAD.append(thread)
    thread.start()


def _env_info(collect) -> str:
    # torch's report runs subprocesses; compute it once per process
    if _ENV_INFO_THREAD:
        _ENV_INFO_THREAD.pop().join()
    if not _ENV_INFO_CACHE:
        _ENV_INFO_CACHE.append(collect())
    return _ENV_INFO_CACHE[0]


def _user_error_types() -> tuple[type[BaseException], ...]:
    from dassl.utils.errors import UsageError

    types: list[type[BaseException]] = [UsageError]
    try:
        import clip  # noqa: PLC0415

        for name in ("MissingWeightsError", "CorruptWeightsError", "BackboneConfigError"):
            err = getattr(clip, name, None)
            if isinstance(err, type) and issubclass(err, BaseException):
                types.append(err)
    except Exception:  # the clip package is optional for the engine
        pass
    return tuple(types)


def _install_signal_handlers():
    """SIGINT/SIGTERM -> stop at a safe point (see ``dassl.engine.trainer.STOP``); returns the old handlers."""
    import signal
    import threading

    from dassl.engine.trainer import STOP, handle_stop_signal

    STOP.reset()
    if threading.current_thread() is not threading.main_thread():
        return None
    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        old[sig] = signal.signal(sig, handle_stop_signal)
    return old


def _restore_signal_handlers(old) -> None:
    import signal

    for sig, handler in (old or {}).items():
        signal.signal(sig, handler)


def cli(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 and one ``error:`` line on stderr for wrong input;
    130 / 143 after SIGINT / SIGTERM)."""
    from dassl.utils.errors import DiskFullError, Interrupted
    from dassl.utils.logger import close_logger
    from dassl.utils.tools import is_disk_full

    old_handlers = None
    raise_exc = logging.raiseExceptions
    logging.raiseExceptions = False  # never "--- Logging error ---" blocks (e.g. a closed stdout pipe)
    try:
        try:
            old_handlers = _install_signal_handlers()
            from dassl.config.setup import parse_args

            args = parse_args(argv)
            args.argv = list(sys.argv[1:] if argv is None else argv)
            if args.list:
                list_registries()
                return 0
            if args.list_backbones:
                from clip.listing import print_backbones

                print_backbones()
                return 0
            main(args)
            return 0
        except Interrupted as e:
            if not e.message:  # outside the training loop (data loading, evaluation): nothing to save
                try:
                    logger.info("interrupted before training finished its first step or during evaluation; "
                                "rerun the same command to continue")
                except Exception:
                    pass
            return 128 + int(e.signum)
        except Exception as e:
            if not isinstance(e, DiskFullError) and is_disk_full(e):
                e = DiskFullError(getattr(e, "filename", None) or "a file of the run")
            if isinstance(e, _user_error_types()) or isinstance(e, DiskFullError):
                msg = " ".join(str(e).split()) or type(e).__name__
                print(f"error: {msg}", file=sys.stderr)
                return getattr(e, "exit_code", 2) or 2
            raise
    finally:
        close_logger()
        _restore_signal_handlers(old_handlers)
        logging.raiseExceptions = raise_exc


if __name__ == "__main__":
    sys.exit(cli())
