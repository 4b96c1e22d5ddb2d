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
import difflib
import importlib
import logging
import os
import os.path as osp
import re
import sys

logger = logging.getLogger("train")

EXTRA_MODULES_ENV = "PROMPTCLIP_EXTRA_MODULES"


class _UsageArgumentParser(argparse.ArgumentParser):
    """argparse that raises ``UsageError`` (one ``error:`` line) instead of printing usage and exiting."""

    def error(self, message: str):  # type: ignore[override]
        from dassl.utils.errors import UsageError

        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _UsageArgumentParser(
        description="Prompt learning on CLIP (CoOp, CoCoOp, KgCoOp, MaPLe, DePT, Nemesis)",
        allow_abbrev=False,
        epilog="Trailing KEY VALUE pairs modify config options, e.g. OPTIM.MAX_EPOCH 5 DATASET.NUM_SHOTS 16.",
    )
    parser.add_argument("--root", type=str, default="", help="path to dataset")
    parser.add_argument("--output-dir", type=str, default="", help="output directory")
    parser.add_argument("--resume", type=str, default="",
                        help="checkpoint directory (from which the training resumes; default: the output directory)")
    parser.add_argument("--seed", type=int, default=-1, help="only non-negative values enable a fixed seed")
    parser.add_argument("--source-domains", type=str, nargs="+", help="source domains for DA/DG")
    parser.add_argument("--target-domains", type=str, nargs="+", help="target domains for DA/DG")
    parser.add_argument("--transforms", type=str, nargs="+", help="data augmentation methods")
    parser.add_argument("--config-file", type=str, action="append", default=None,
                        help="path to a config file (repeatable: later files overlay earlier ones)")
    parser.add_argument("--dataset-config-file", type=str, default="", help="path to config file for dataset setup")
    parser.add_argument("--trainer", type=str, default="", help="name of trainer")
    parser.add_argument("--backbone", type=str, default="", help="name of CNN backbone")
    parser.add_argument("--head", type=str, default="", help="name of head")
    parser.add_argument("--eval-only", action="store_true", help="evaluation only")
    parser.add_argument("--model-dir", type=str, default="", help="load model from this directory for eval-only mode")
    parser.add_argument("--load-epoch", type=int,
                        help="load model weights at this epoch for evaluation (negative: the newest)")
    parser.add_argument("--no-train", action="store_true", help="do not call trainer.train()")
    parser.add_argument("--do-test", action="store_true", help="test after every epoch (sets TEST.DO_TEST)")
    parser.add_argument("--corrupt-type", type=str, choices=["original", "replace", "scale"], default=None,
                        help="prompt corruption at evaluation (sets CORRUPT.TYPE)")
    parser.add_argument("--corrupt-position", type=int, default=None,
                        help="corrupted context position (CORRUPT.POSITION)")
    parser.add_argument("--crt-factor", type=float, default=None, help="corruption std or scale (CORRUPT.FACTOR)")
    parser.add_argument("--list", action="store_true", help="print the registered trainers, datasets, ... and exit")
    parser.add_argument("--list-backbones", action="store_true",
                        help="print the known CLIP backbones (OpenAI, open_clip tags) and which are on disk, and exit")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; trailing ``KEY VALUE`` pairs end up in ``args.opts``."""
    from dassl.utils.errors import UsageError

    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    for i in range(0, len(rest), 2):
        if rest[i].startswith("-"):
            raise UsageError(f"unrecognized argument: {rest[i]} (config options are given as KEY VALUE pairs)")
    args.opts = rest
    return args


# ---------------------------------------------------------------------------------------------- config
def _import_plugins() -> None:
    """Import the packages that register trainers and datasets, plus ``$PROMPTCLIP_EXTRA_MODULES``."""
    from dassl.utils.errors import UsageError

    importlib.import_module("datasets")
    importlib.import_module("trainers")
    for name in filter(None, (m.strip() for m in os.environ.get(EXTRA_MODULES_ENV, "").split(","))):
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and name.startswith(e.name):
                raise UsageError(f"cannot import {name!r} listed in ${EXTRA_MODULES_ENV}: {e}") from e
            raise


def extend_cfg(cfg) -> None:
    """Add the keys owned by train.py, then the dataset and trainer keys (``add_dataset_cfg``/``add_trainer_cfg``)."""
    from yacs.config import CfgNode as CN

    import datasets
    import trainers

    # Per-epoch test accuracy while training (Nemesis' --do-test)
    cfg.TEST.DO_TEST = False
    # Prompt corruption at evaluation (CoOpCRT): "" (off) | original | replace | scale
    cfg.CORRUPT = CN()
    cfg.CORRUPT.TYPE = ""
    cfg.CORRUPT.POSITION = 0  # context position to corrupt
    cfg.CORRUPT.FACTOR = 0.0  # replace: std of the new vector; scale: multiplier

    datasets.add_dataset_cfg(cfg)
    trainers.add_trainer_cfg(cfg)


def reset_cfg(cfg, args: argparse.Namespace) -> None:
    """Apply the named CLI flags (each only when given; ``--seed 0`` is honoured, negative means unseeded)."""
    if args.root:
        cfg.DATASET.ROOT = args.root
    if args.output_dir:
        cfg.OUTPUT_DIR = args.output_dir
    if args.resume:
        cfg.RESUME = args.resume
    if args.seed is not None and args.seed >= 0:
        cfg.SEED = args.seed
    if args.source_domains:
        cfg.DATASET.SOURCE_DOMAINS = args.source_domains
    if args.target_domains:
        cfg.DATASET.TARGET_DOMAINS = args.target_domains
    if args.transforms:
        cfg.INPUT.TRANSFORMS = args.transforms
    if args.trainer:
        cfg.TRAINER.NAME = args.trainer
    if args.backbone:
        cfg.MODEL.BACKBONE.NAME = args.backbone
    if args.head:
        cfg.MODEL.HEAD.NAME = args.head
    if args.do_test:
        cfg.TEST.DO_TEST = True
    if args.corrupt_type:
        cfg.CORRUPT.TYPE = args.corrupt_type
        if args.corrupt_position is not None:
            cfg.CORRUPT.POSITION = args.corrupt_position
        if args.crt_factor is not None:
            cfg.CORRUPT.FACTOR = args.crt_factor


def _key_hint(cfg, key: str) -> str:
    from dassl.config import cfg_keys

    close = difflib.get_close_matches(key, cfg_keys(cfg), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _has_key(cfg, key: str) -> bool:
    node = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


YAML_CONFIG_EXTS = (".yaml", ".yml")


def _merge_file(cfg, path: str, flag: str) -> None:
    import yaml

    from dassl.utils.errors import ConfigError

    if not osp.isfile(path):
        raise ConfigError(f"config file not found: {path} ({flag})")
    if osp.splitext(path)[1].lower() not in YAML_CONFIG_EXTS:
        # yacs would execute a .py config: config files are data, never code
        raise ConfigError(
            f"{path} ({flag}) is not a YAML file: config files must end in .yaml or .yml (other files, e.g. Python, "
            "are refused because loading them could run code); convert it to YAML"
        )
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        # = cfg.merge_from_file for YAML, without yacs' extension dispatch (which runs .py files)
        cfg.merge_from_other_cfg(type(cfg).load_cfg(text))
    except KeyError as e:
        msg = str(e.args[0]) if e.args else str(e)
        m = re.search(r"Non-existent config key: (\S+)", msg)
        if m:
            key = m.group(1)
            raise ConfigError(f"unknown config key {key} in {path}{_key_hint(cfg, key)}") from None
        raise ConfigError(f"{path}: {msg}") from None
    except (ValueError, AssertionError, TypeError) as e:
        raise ConfigError(f"{path}: {e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {' '.join(str(e).split())}") from None


def _merge_opts(cfg, opts: list[str]) -> None:
    from dassl.utils.errors import ConfigError

    if not opts:
        return
    if len(opts) % 2 != 0:
        raise ConfigError(f"config options must be KEY VALUE pairs, got an odd number of items: {' '.join(opts)}")
    for key in opts[0::2]:
        if not _has_key(cfg, key):
            raise ConfigError(f"unknown config key {key} (command-line opts){_key_hint(cfg, key)}")
    try:
        cfg.merge_from_list(opts)
    except (ValueError, AssertionError, KeyError, TypeError) as e:
        raise ConfigError(f"bad command-line option: {e}") from None


def validate_cfg(cfg) -> None:
    """Engine checks (``dassl.config.validate_cfg``), then the packages' own ``validate_cfg`` hooks if any."""
    from dassl.config import validate_cfg as validate_engine_cfg

    validate_engine_cfg(cfg)
    for pkg in ("datasets", "trainers"):
        hook = getattr(sys.modules.get(pkg), "validate_cfg", None)
        if callable(hook):
            hook(cfg)


def setup_cfg(args: argparse.Namespace):
    """Build the frozen config from the parsed arguments (merge order in the module docstring)."""
    from dassl.config import get_cfg_default

    _import_plugins()
    cfg = get_cfg_default()
    extend_cfg(cfg)
    if args.dataset_config_file:
        _merge_file(cfg, args.dataset_config_file, "--dataset-config-file")
    for path in args.config_file or []:
        _merge_file(cfg, path, "--config-file")
    from clip.config import finalize_backbone_cfg, normalize_pretrained

    normalize_pretrained(cfg)  # Dassl YAMLs' PRETRAINED True -> None, so that a tag merges
    reset_cfg(cfg, args)
    _merge_opts(cfg, list(getattr(args, "opts", []) or []))
    finalize_backbone_cfg(cfg, get_cfg_default().INPUT)  # PRETRAINED a string; open_clip INPUT.* defaults
    validate_cfg(cfg)
    cfg.freeze()
    return cfg


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

    _import_plugins()
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
