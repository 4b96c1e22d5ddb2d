#!/usr/bin/env python
"""Fast corruption sweep: one process evaluates a grid (types x positions x factors x seeds) of CoOpCRT
settings for trained CoOp checkpoints, encoding the test images ONCE (the image encoder is frozen and the test
split does not depend on the seed) and the text features of all corrupted contexts of a seed in batched calls
(``learner.with_context([K, ...])``; checked bit for bit against the single-context path, with a fallback).

Each setting gets the folder, log lines (``=> result`` block ending with ``macro_f1``), ``results.json`` and
``data.pth`` that a separate ``train.py --trainer CoOpCRT --eval-only --corrupt-type ...`` run writes, with the
same accuracy (same image-feature batches, same seeded replacement noise)::

    <output-base>/original/seed<S>
    <output-base>/replace/pos-<P>_std-<F>/seed<S>
    <output-base>/rescale/pos-<P>_scale-<F>/seed<S>

Finished settings (completion record ``run.json``, read through ``dassl.utils.run_record``; older folders by the
``macro_f1`` log tail) are skipped; one evaluated from another model folder, epoch, config file or opts (the
record's ``request``) is refused naming what differs, and ``--force`` redoes it after moving its files into
``.replaced/<timestamp>/``. Unfinished settings are redone in place (files overwritten, ``run.json`` last). Every
setting folder is locked (``.lock``) while this process works on it; a folder another live process holds is
skipped.

Example::

    python tools/crt_sweep.py --root $DATA --dataset-config-file configs/datasets/eurosat.yaml \
        --config-file configs/trainers/CoOpCRT/rn50_ep50.yaml \
        --model-dir 'output/eurosat/CoOp/rn50_ep50_1shots/nctx16_cscFalse_ctpend/seed{seed}' --load-epoch 50 \
        --output-base output_crt/CoOpCRT/eurosat/CoOp/rn50_ep50_1shots --seeds 1 2 3 \
        --types original replace scale --positions 0 1 2 --replace-factors 0 --scale-factors 0.001 \
        --opts DATASET.NUM_SHOTS 1
"""
from __future__ import annotations

import argparse
import json
import logging
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, ROOT)

logger = logging.getLogger("crt_sweep")


def setting_dir(base: str, kind: str, pos: int, factor: str, seed: int) -> str:
    if kind == "original":
        return osp.join(base, "original", f"seed{seed}")
    if kind == "replace":
        return osp.join(base, "replace", f"pos-{pos}_std-{factor}", f"seed{seed}")
    return osp.join(base, "rescale", f"pos-{pos}_scale-{factor}", f"seed{seed}")


def is_finished(folder: str) -> bool:
    """A finished setting folder (``run.json`` of an evaluation, or a legacy log ending with ``macro_f1``)."""
    from dassl.utils import run_record

    return run_record.is_finished(folder, kind="eval")


def grid(args) -> list[tuple[str, int, str]]:
    out = []
    for kind in args.types:
        kind = "scale" if kind == "rescale" else kind
        if kind == "original":
            out.append(("original", 0, "0"))
        elif kind == "replace":
            out += [("replace", p, f) for p in args.positions for f in args.replace_factors]
        elif kind == "scale":
            out += [("scale", p, f) for p in args.positions for f in args.scale_factors]
        else:
            from dassl.utils.errors import UsageError

            raise UsageError(f"unknown corruption type {kind!r} (--types original | replace | scale)")
    return out


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default="")
    p.add_argument("--dataset-config-file", required=True)
    p.add_argument("--config-file", action="append", required=True)
    p.add_argument("--model-dir", required=True, help="model folder; '{seed}' is replaced by the seed")
    p.add_argument("--load-epoch", type=int, default=None,
                   help="checkpoint epoch to evaluate (default: OPTIM.MAX_EPOCH of the config actually used, "
                        "i.e. after --config-file and --opts)")
    p.add_argument("--output-base", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--types", nargs="+", default=["original"])
    p.add_argument("--positions", type=int, nargs="+", default=[0])
    p.add_argument("--replace-factors", nargs="+", default=["0"])
    p.add_argument("--scale-factors", nargs="+", default=["0.001"])
    p.add_argument("--force", action="store_true", help="redo finished settings")
    p.add_argument("--max-prompts", type=int, default=2048,
                   help="most prompts per text-encoder call when the corrupted contexts are encoded together")
    p.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="KEY VALUE config overrides (last argument)")
    return p


def _text_features_per_context(model, contexts: list, max_prompts: int) -> list:
    """Text features ``[C, D]`` for each context of ``contexts`` (each shaped like the learner's context; a PLOT
    learner and head: ``[N*C, D]``).

    The contexts are stacked and encoded in as few text-tower calls as ``max_prompts`` (prompts per call)
    allows, through ``learner.with_context([K, ...]) -> K*C prompts``. The first batched result is checked
    bit for bit against the single-context path (``model.text_features()`` under ``model.context_override``, what
    ``evaluate_context`` and a separate ``train.py`` run compute); on any difference (another backend whose
    kernels depend on the batch size) every context is encoded on its own, so the outputs never depend on the
    batching.
    """
    import torch

    learner = model.learner

    def single(ctx):
        with model.context_override(ctx):
            return model.text_features()[0]

    n_cls = int(learner.n_cls) * int(getattr(learner, "n_sets", 1))  # prompts per context (PLOT: N sets x C)
    step = max(1, max_prompts // max(1, n_cls))
    out: list = []
    for i in range(0, len(contexts), step):
        stack = torch.stack(contexts[i : i + step])  # [K, M, Dt] or [K, C, M, Dt]
        try:
            feats = model.encode_text(learner.with_context(stack))  # [K*C, D], context-major
        except NotImplementedError:
            return [single(c) for c in contexts]
        out += list(feats.view(stack.shape[0], -1, feats.shape[-1]))  # [C, D] (PLOT head: [N*C, D]) per context
        if i == 0 and not torch.equal(out[0], single(contexts[0])):
            logger.info("batched text encoding differs from the single-context path here: encoding one by one")
            return [single(c) for c in contexts]
    return out


def setting_request(args, seed: int) -> dict:
    """What a setting folder was evaluated from (stored in its ``run.json`` as ``request``): the model folder, the
    epoch, the config files (with their SHA-256) and the opts. A finished folder with another request is refused."""
    from dassl.utils import run_record

    files = [args.dataset_config_file, *args.config_file]
    return {"model_dir": osp.abspath(args.model_dir.replace("{seed}", str(seed))), "load_epoch": args.load_epoch,
            "config_files": {osp.abspath(f): run_record.request_fingerprint([f])["files"].get(f) for f in files},
            "opts": [str(o) for o in args.opts]}


def plan(args, settings: list) -> list:
    """The settings to evaluate now: finished ones with the same request are skipped, folders another process
    works on are skipped, a finished folder evaluated from another model / config is an error (``--force`` redoes
    it, moving its files aside into ``.replaced/``)."""
    from dassl.utils import run_record
    from dassl.utils.errors import ConfigMismatchError

    todo, clashes = [], []
    for t in settings:
        folder = setting_dir(args.output_base, t[1], t[2], t[3], t[0])
        lock = run_record.lock_held(folder)
        if lock is not None:
            logger.info(f"skip (running {run_record.describe_lock(lock)}): {folder}")
            continue
        if not args.force and is_finished(folder):
            req = (run_record.read_record(folder) or {}).get("request")
            want = setting_request(args, t[0])
            if req is not None and req != want:
                keys = sorted(k for k in set(req) | set(want) if req.get(k) != want.get(k))
                clashes.append(f"{folder} ({', '.join(keys)})")
                continue
            logger.info(f"skip (finished): {folder}")
            continue
        todo.append(t)
    if clashes:
        raise ConfigMismatchError(
            f"{len(clashes)} finished setting folder(s) were evaluated from another model folder, epoch, config or "
            f"opts: {'; '.join(clashes[:4])}{' ...' if len(clashes) > 4 else ''}; use another --output-base, or "
            "--force to redo them (their files are moved to .replaced/)")
    return todo


def run(argv: list[str] | None = None) -> dict[str, float]:
    """Run the sweep; returns {setting folder: accuracy (percent)} for the settings evaluated now."""
    args = build_parser().parse_args(argv)
    settings = [(s, k, p, f) for s in args.seeds for (k, p, f) in grid(args)]
    todo = plan(args, settings)
    if not todo:
        return {}  # nothing to do: the heavy imports below are never paid

    import torch

    from dassl.config.setup import parse_args, setup_cfg
    from dassl.data import DataManager
    from dassl.engine.preflight import preflight
    from dassl.evaluation import build_evaluator
    from trainers.coop_crt import encode_images, images_depend_on_context
    from dassl.utils import run_record
    from trainers.modules.factory import build_prompted_clip

    targs = ["--root", args.root, "--seed", str(todo[0][0]), "--trainer", "CoOpCRT",
             "--dataset-config-file", args.dataset_config_file, "--output-dir", args.output_base, "--eval-only"]
    for c in args.config_file:
        targs += ["--config-file", c]
    from dassl.data.cache_policy import set_fewshot_cache_writable
    from dassl.engine.preflight import context_length_of, prompt_settings
    from dassl.utils import set_random_seed
    from dassl.utils.errors import ConfigError

    targv = parse_args(targs + list(args.opts))
    cfg = setup_cfg(targv)
    load_epoch = cfg.OPTIM.MAX_EPOCH if args.load_epoch is None else args.load_epoch
    # every checkpoint (and the config) is checked before any image is encoded
    for seed in sorted({t[0] for t in todo}):
        targv.model_dir, targv.load_epoch = args.model_dir.replace("{seed}", str(seed)), load_epoch
        preflight(cfg, targv)
    n_ctx = context_length_of(prompt_settings(cfg), cfg)
    bad = sorted({p for _, k, p, _ in todo if k != "original" and n_ctx is not None and not 0 <= p < n_ctx})
    if bad:
        raise ConfigError(f"--positions {' '.join(map(str, bad))} outside [0, {n_ctx}) (N_CTX = {n_ctx}): "
                          f"pass positions from 0 to {n_ctx - 1}")
    device = torch.device("cuda" if torch.cuda.is_available() and cfg.USE_CUDA else "cpu")
    set_fewshot_cache_writable(False)  # an evaluation never writes a few-shot cache
    try:
        if cfg.SEED >= 0:
            set_random_seed(cfg.SEED)  # seeded exactly as train.py seeds before building the data
        dm = DataManager(cfg)
    finally:
        set_fewshot_cache_writable(True)
    classnames = [dm.lab2cname[i] for i in range(dm.num_classes)]
    model, _ = build_prompted_clip(cfg, classnames, device)
    if images_depend_on_context(model.learner):
        raise SystemExit("error: the corruption sweep needs a learner whose image features do not depend on the "
                         "context (CoOp-style); run train.py --trainer CoOpCRT per setting instead")
    evaluator = build_evaluator(cfg, lab2cname=dm.lab2cname)
    name = model.learner.checkpoint_name
    start = time.time()
    model.eval()
    feats, labels = encode_images(model, dm.test_loader, device, cfg.TRAINER.PREC)  # once for the whole grid
    logger.info(f"encoded {sum(len(x) for x in labels)} test images in {time.time() - start:.1f}s")
    flat = torch.cat(feats).float()
    flat = (flat / flat.norm(dim=-1, keepdim=True)).half().cpu()  # data.pth's image_feature, computed once
    label_cat = torch.cat(labels).long().cpu()
    accs: dict[str, float] = {}
    locks = {}
    try:
        for t in todo:  # one process per setting folder: a second sweep on the same folders stops here
            folder = setting_dir(args.output_base, t[1], t[2], t[3], t[0])
            locks[folder] = run_record.acquire_lock(folder, argv=["tools/crt_sweep.py", *(argv or sys.argv[1:])],
                                                    warn=logger.warning)
        _evaluate(args, todo, model, evaluator, name, feats, labels, flat, label_cat, load_epoch, cfg, accs, locks)
    finally:
        for lock in locks.values():
            lock.release()
    return accs


def _evaluate(args, todo, model, evaluator, name, feats, labels, flat, label_cat, load_epoch, cfg, accs, locks):
    """Evaluate every corrupted context of ``todo`` (the folders' locks are held) and write each setting folder."""
    import torch

    from dassl.engine import TrainerBase
    from dassl.utils import run_record
    from dassl.utils.tools import atomic_write_text
    from trainers.coop_crt import evaluate_text_features, save_data_pth
    from trainers.corruption import corrupt_context
    from trainers.prompt_trainer import load_trainable_state

    root_logger = logging.getLogger()
    if root_logger.getEffectiveLevel() > logging.INFO:
        root_logger.setLevel(logging.INFO)
    for seed in sorted({t[0] for t in todo}):
        model_dir = args.model_dir.replace("{seed}", str(seed))
        if not osp.isdir(model_dir):
            from dassl.utils.errors import CheckpointNotFoundError

            raise CheckpointNotFoundError(f'model directory not found: "{model_dir}"')
        fdir = osp.join(model_dir, name)
        load_trainable_state(model.learner, osp.join(fdir, TrainerBase._resolve_model_file(fdir, load_epoch)),
                             name)
        model.eval()
        original = model.learner.context_vectors().detach().clone()
        jobs = [t for t in todo if t[0] == seed]
        contexts = [corrupt_context(original, kind, pos, float(factor), seed=seed) for _, kind, pos, factor in jobs]
        with torch.no_grad():
            text = _text_features_per_context(model, contexts, args.max_prompts)  # all settings of the seed
        for (_, kind, pos, factor), ctx, text_features in zip(jobs, contexts, text):
            folder = setting_dir(args.output_base, kind, pos, factor, seed)
            locks[folder].keep_folder()
            if args.force:
                moved = run_record.move_aside(folder)  # never deleted: the old files go to .replaced/<time>/
                if moved:
                    logger.info(f"--force: moved the previous files of {folder} to {moved}")
            # an interrupted setting is redone in place (its files are overwritten, run.json last)
            capture = _Capture()
            root_logger.addHandler(capture)
            try:
                logger.info(f'Loading weights from "{model_dir}" (epoch = {load_epoch}); corrupt type={kind} '
                            f"position={pos} factor={factor} seed={seed}")
                logger.info("Evaluate on the *test* set")
                results = evaluate_text_features(model, evaluator, text_features, feats, labels)
            finally:
                root_logger.removeHandler(capture)
            save_data_pth(osp.join(folder, "data.pth"), flat, label_cat, text_features, ctx,
                          results["accuracy"] / 100.0)
            record = {"split": "test", **{k: float(v) for k, v in results.items()},
                      "total": int(getattr(evaluator, "total", 0)),
                      "correct": int(getattr(evaluator, "correct", 0)), "epoch": load_epoch}
            atomic_write_text(json.dumps(record, indent=4) + "\n", osp.join(folder, "results.json"))
            # written last: its macro_f1 marks completion
            atomic_write_text("\n".join(capture.lines) + "\n", osp.join(folder, "log.txt"))
            # the completion record, last
            run_record.write_record(folder, "eval", {k: float(v) for k, v in results.items()},
                                    run_record.config_hash(cfg), epoch=args.load_epoch,
                                    corrupt={"type": kind, "position": pos, "factor": factor, "seed": seed},
                                    request=setting_request(args, seed))
            accs[folder] = float(results["accuracy"])


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    try:
        run()
    except Exception as e:  # user errors (bad config, checkpoint, weights, data): one line, exit 2
        import train

        if isinstance(e, train._user_error_types()):
            print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
            sys.exit(2)
        raise
