"""The command line's config: argument parser, merge order, and the plugin packages' config hooks.

``train.py`` and the tools build their config here (``setup_cfg(parse_args(argv))``), so no tool imports the
script. Merge order: defaults -> ``extend_cfg`` (the plugin packages' keys) -> ``--dataset-config-file`` -> each
``--config-file`` (repeatable overlays, in order) -> CLI flags (``reset_cfg``) -> trailing ``KEY VALUE`` opts ->
the plugin packages' ``resolve_cfg(cfg, sources)`` (canonical nodes from the reference spellings, by source) ->
validation -> freeze.

Plugin packages (``datasets``, ``trainers`` and the comma-separated modules named by ``$PROMPTCLIP_EXTRA_MODULES``)
register themselves on import; a package may define ``extend_cfg(cfg)`` (add its keys), ``after_file_merges(cfg)``
(between the YAML files and the command line) and ``resolve_cfg(cfg, sources)`` (fill derived keys once, right after merging; ``sources`` is a
:class:`~dassl.config.sources.ConfigSources`).
"""
from __future__ import annotations

import argparse
import importlib
import os

from yacs.config import CfgNode as CN

from dassl.utils.errors import UsageError

from . import get_cfg_default
from . import validate_cfg as validate_engine_cfg
from .sources import ConfigSources, merge_file, merge_opts

__all__ = ["EXTRA_MODULES_ENV", "PLUGIN_PACKAGES", "build_parser", "parse_args", "import_plugins", "extend_cfg",
           "reset_cfg", "validate_cfg", "setup_cfg", "CORRUPT_TYPES"]

EXTRA_MODULES_ENV = "PROMPTCLIP_EXTRA_MODULES"
PLUGIN_PACKAGES = ("datasets", "trainers")
#: ``--corrupt-type`` choices (CoOpCRT's corruption types; "" = off)
CORRUPT_TYPES = ("original", "replace", "scale")


class _UsageArgumentParser(argparse.ArgumentParser):
    """argparse that raises ``UsageError`` (one ``error:`` line) instead of printing usage and exiting."""

    def error(self, message: str):  # type: ignore[override]
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
    parser.add_argument("--corrupt-type", type=str, choices=list(CORRUPT_TYPES), default=None,
                        help="prompt corruption at evaluation (sets CORRUPT.TYPE)")
    parser.add_argument("--corrupt-position", type=int, default=None,
                        help="corrupted context position (CORRUPT.POSITION)")
    parser.add_argument("--crt-factor", type=float, default=None, help="corruption std or scale (CORRUPT.FACTOR)")
    parser.add_argument("--list", action="store_true", help="print the registered trainers, datasets, ... and exit")
    parser.add_argument("--force", action="store_true",
                        help="start over in an OUTPUT_DIR that holds another (or the same) run: its files are moved "
                             "into OUTPUT_DIR/.replaced/<timestamp>/, never deleted")
    parser.add_argument("--list-backbones", action="store_true",
                        help="print the known CLIP backbones (OpenAI, open_clip tags) and which are on disk, and exit")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; trailing ``KEY VALUE`` pairs end up in ``args.opts``."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    for i in range(0, len(rest), 2):
        if rest[i].startswith("-"):
            raise UsageError(f"unrecognized argument: {rest[i]} (config options are given as KEY VALUE pairs)")
    args.opts = rest
    return args


def import_plugins() -> list:
    """Import the plugin packages and ``$PROMPTCLIP_EXTRA_MODULES``; returns the imported modules."""
    mods = [importlib.import_module(name) for name in PLUGIN_PACKAGES]
    for name in filter(None, (m.strip() for m in os.environ.get(EXTRA_MODULES_ENV, "").split(","))):
        try:
            mods.append(importlib.import_module(name))
        except ModuleNotFoundError as e:
            if e.name and name.startswith(e.name):
                raise UsageError(f"cannot import {name!r} listed in ${EXTRA_MODULES_ENV}: {e}") from e
            raise
    return mods


def extend_cfg(cfg) -> None:
    """Add the command line's own keys, then each plugin package's (its ``extend_cfg``)."""
    # Per-epoch test accuracy while training (Nemesis' --do-test)
    cfg.TEST.DO_TEST = False
    # Prompt corruption at evaluation (CoOpCRT): "" (off) | original | replace | scale
    cfg.CORRUPT = CN()
    cfg.CORRUPT.TYPE = ""
    cfg.CORRUPT.POSITION = 0  # context position to corrupt
    cfg.CORRUPT.FACTOR = 0.0  # replace: std of the new vector; scale: multiplier
    for mod in import_plugins():
        hook = getattr(mod, "extend_cfg", None)
        if callable(hook):
            hook(cfg)


def reset_cfg(cfg, args: argparse.Namespace) -> list[str]:
    """Apply the named CLI flags (each only when given; ``--seed 0`` is honoured, negative means unseeded).

    Returns the keys written (recorded as the "command-line flags" source)."""
    written: list[str] = []

    def put(key: str, value) -> None:
        node = cfg
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
        written.append(key)

    if args.root:
        put("DATASET.ROOT", args.root)
    if args.output_dir:
        put("OUTPUT_DIR", args.output_dir)
    if args.resume:
        put("RESUME", args.resume)
    if args.seed is not None and args.seed >= 0:
        put("SEED", args.seed)
    if args.source_domains:
        put("DATASET.SOURCE_DOMAINS", args.source_domains)
    if args.target_domains:
        put("DATASET.TARGET_DOMAINS", args.target_domains)
    if args.transforms:
        put("INPUT.TRANSFORMS", args.transforms)
    if args.trainer:
        put("TRAINER.NAME", args.trainer)
    if args.backbone:
        put("MODEL.BACKBONE.NAME", args.backbone)
    if args.head:
        put("MODEL.HEAD.NAME", args.head)
    if args.do_test:
        put("TEST.DO_TEST", True)
    if args.corrupt_type:
        put("CORRUPT.TYPE", args.corrupt_type)
        if args.corrupt_position is not None:
            put("CORRUPT.POSITION", args.corrupt_position)
        if args.crt_factor is not None:
            put("CORRUPT.FACTOR", args.crt_factor)
    return written


def validate_cfg(cfg) -> None:
    """Engine checks (:func:`dassl.config.validate_cfg`); component options are checked by the trainer's
    ``validate_cfg`` (``dassl.engine.preflight``). Also the command-line node ``CORRUPT`` (set in a YAML too)."""
    validate_engine_cfg(cfg)
    if cfg.get("CORRUPT") is not None and cfg.CORRUPT.TYPE not in ("", *CORRUPT_TYPES):
        from dassl.utils.errors import ConfigError

        raise ConfigError(f"CORRUPT.TYPE must be {', '.join(CORRUPT_TYPES)}, got {cfg.CORRUPT.TYPE!r}")


def setup_cfg(args: argparse.Namespace):
    """Build the frozen config from the parsed arguments (merge order in the module docstring).

    The :class:`ConfigSources` record of the merge is kept as ``cfg.__dict__["sources"]`` (not a config key)."""
    mods = import_plugins()
    cfg = get_cfg_default()
    extend_cfg(cfg)
    sources = ConfigSources()
    if args.dataset_config_file:
        merge_file(cfg, args.dataset_config_file, "--dataset-config-file", sources)
    for path in args.config_file or []:
        merge_file(cfg, path, "--config-file", sources)
    for mod in mods:  # e.g. Dassl YAMLs' PRETRAINED True -> None, so that a tag given on the command line merges
        hook = getattr(mod, "after_file_merges", None)
        if callable(hook):
            hook(cfg)
    sources.add("command-line flags", reset_cfg(cfg, args))
    merge_opts(cfg, list(getattr(args, "opts", []) or []), sources)
    for mod in mods:
        hook = getattr(mod, "resolve_cfg", None)
        if callable(hook):
            hook(cfg, sources)
    cfg.__dict__["sources"] = sources
    validate_cfg(cfg)
    cfg.freeze()
    return cfg
