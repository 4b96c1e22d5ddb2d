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
"""
from __future__ import annotations

import argparse
import logging
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


def main(args: argparse.Namespace) -> None:
    """Set up the run (config, logger, seed, env info, config.yaml), then train or evaluate."""
    import torch

    from dassl.engine import build_trainer
    from dassl.utils import collect_env_info, get_git_sha, set_random_seed, setup_logger
    from dassl.utils.tools import atomic_write_text

    from dassl.engine.preflight import preflight

    from dassl.config.setup import setup_cfg

    cfg = setup_cfg(args)
    preflight(cfg, args)  # everything checkable without data or CLIP, before anything is written
    setup_logger(cfg.OUTPUT_DIR)
    if cfg.SEED >= 0:
        logger.info(f"Setting fixed seed: {cfg.SEED}")
        set_random_seed(cfg.SEED)

    if torch.cuda.is_available() and cfg.USE_CUDA:
        torch.backends.cudnn.benchmark = True

    print_args(args, cfg)
    logger.info("Collecting env info ...")
    logger.info(f"** System info **\n{_env_info(collect_env_info)}\n")
    logger.info(f"Git commit: {get_git_sha() or 'unknown'}")
    __import__("dassl.utils.run_header", fromlist=["_"]).log_run_header(cfg, logger)  # transforms, git, versions, GPU
    trainer = build_trainer(cfg)
    if args.eval_only:
        trainer.load_model(args.model_dir, epoch=args.load_epoch)
    # written once the trainer (and for --eval-only the model) loaded, so a bad command never replaces the
    # config.yaml of a finished run in the same folder
    atomic_write_text(cfg.dump(), osp.join(cfg.OUTPUT_DIR, "config.yaml"))

    if args.eval_only:
        trainer.test()
        return

    if not args.no_train:
        trainer.train()


_ENV_INFO_CACHE: list[str] = []


def _env_info(collect) -> str:
    # torch's report runs subprocesses (~seconds); compute it once per process
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


def cli(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 and one ``error:`` line on stderr for wrong input)."""
    from dassl.utils.logger import close_logger

    try:
        try:
            from dassl.config.setup import parse_args

            args = parse_args(argv)
            if args.list:
                list_registries()
                return 0
            if args.list_backbones:
                from clip.listing import print_backbones

                print_backbones()
                return 0
            main(args)
            return 0
        except Exception as e:
            if isinstance(e, _user_error_types()):
                msg = " ".join(str(e).split()) or type(e).__name__
                print(f"error: {msg}", file=sys.stderr)
                return getattr(e, "exit_code", 2) or 2
            raise
    finally:
        close_logger()


if __name__ == "__main__":
    sys.exit(cli())
