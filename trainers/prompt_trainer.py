"""The one shared trainer for prompt-learning methods (style.md §2.7).

A concrete trainer only names its learner / head / regularisers and maps its config node onto their
constructor arguments; everything else (freezing, optimiser, precision, loss summation, logging,
checkpoints of the trainable state, per-epoch test, norm bookkeeping) lives here.
"""
from __future__ import annotations

import json
import logging
import os
import os.path as osp
from contextlib import nullcontext
from typing import Any, Sequence

import torch
from torch import nn

from dassl.engine import TrainerX
from dassl.metrics import compute_accuracy
from dassl.optim import build_lr_scheduler, build_optimizer
from dassl.utils import load_checkpoint
from dassl.utils.torchtools import get_rng_state, set_rng_state
from dassl.utils.errors import CheckpointNotFoundError, ConfigError

from .config import resolve_prompt_node
from .modules import (
    HEAD_REGISTRY,
    PROMPT_LEARNER_REGISTRY,
    REGULARISER_REGISTRY,
    Head,
    PromptedCLIP,
    PromptLearner,
    Regulariser,
)
from .modules.regularisers.nemesis import matrix_norm, position_norms

logger = logging.getLogger(__name__)

#: class-dependent buffers the reference stored in checkpoints; dropped at load time
DROPPED_CHECKPOINT_KEYS = ("token_prefix", "token_suffix")


def freeze_except(model: nn.Module, trainable: Sequence[nn.Module]) -> tuple[int, int]:
    """Freeze every parameter of ``model``, then unfreeze those of ``trainable``.

    Returns:
        (number of trainable parameters, total number of parameters).
    """
    model.requires_grad_(False)
    for module in trainable:
        module.requires_grad_(True)
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_total = sum(p.numel() for p in model.parameters())
    return n_train, n_total


class PromptTrainer(TrainerX):
    """Shared Dassl trainer on a :class:`PromptedCLIP`.

    Class attributes a concrete trainer sets:
        LEARNER: name in ``PROMPT_LEARNER_REGISTRY``.
        HEAD: name in ``HEAD_REGISTRY`` (``cfg.MODEL.HEAD.NAME`` / ``--head`` overrides it, e.g. ``DePT``).
        REGULARISERS: regulariser names always used (``cfg.REGULARISERS.NAMES`` adds more).
        PROMPT_NODE: ``cfg.TRAINER.<node>`` holding N_CTX/CSC/CTX_INIT/PREC/CLASS_TOKEN_POSITION (None: none).
        LEARNER_NAME: registered model name of the learner (checkpoint folder; reference: ``prompt_learner``).

    Hooks (override as needed): :meth:`prompt_settings`, :meth:`precision`, :meth:`learner_kwargs`,
    :meth:`build_learner`, :meth:`build_head`, :meth:`regulariser_kwargs`, :meth:`build_regularisers`,
    :meth:`trainable_modules`, :meth:`param_groups`, :meth:`loss_terms`, :meth:`log_context_norms`.
    """

    LEARNER: str = "CoOpPromptLearner"
    HEAD: str = "Similarity"
    REGULARISERS: tuple[str, ...] = ()
    PROMPT_NODE: str | None = "COOP"
    LEARNER_NAME: str = "prompt_learner"

    # -- config --------------------------------------------------------------------------------
    def prompt_settings(self, cfg) -> dict[str, Any]:
        return resolve_prompt_node(cfg, self.PROMPT_NODE) if self.PROMPT_NODE else {}

    def head_name(self, cfg) -> str:
        return cfg.MODEL.HEAD.NAME or self.HEAD

    def check_cfg(self, cfg) -> None:
        self.prompt_settings(cfg)  # raises ConfigError naming the key
        head = self.head_name(cfg)
        if head not in HEAD_REGISTRY:
            raise ConfigError(f"MODEL.HEAD.NAME: {HEAD_REGISTRY.unknown_message(head)}")
        self.head_kwargs(cfg, head)  # validates
        for name in list(self.REGULARISERS) + list(cfg.REGULARISERS.NAMES):
            if name not in REGULARISER_REGISTRY:
                raise ConfigError(f"REGULARISERS.NAMES: {REGULARISER_REGISTRY.unknown_message(name)}")
            self.regulariser_kwargs(cfg, name)  # validates
        if cfg.get("CORRUPT") is not None and cfg.CORRUPT.TYPE not in ("", "original", "replace", "scale"):
            raise ConfigError(f"CORRUPT.TYPE must be original, replace or scale, got {cfg.CORRUPT.TYPE!r}")

    def precision(self) -> str:
        return self.prompt_settings(self.cfg).get("PREC", "fp16")

    # -- building --------------------------------------------------------------------------------
    def learner_kwargs(self) -> dict[str, Any]:
        s = self.prompt_settings(self.cfg)
        return dict(
            n_ctx=s["N_CTX"], ctx_init=s["CTX_INIT"], csc=s["CSC"], class_token_position=s["CLASS_TOKEN_POSITION"]
        )

    def build_learner(self, classnames: Sequence[str], clip_model: nn.Module) -> PromptLearner:
        return PROMPT_LEARNER_REGISTRY.get(self.LEARNER)(classnames, clip_model, **self.learner_kwargs())

    def head_kwargs(self, cfg, name: str) -> dict[str, Any]:
        """Constructor kwargs of a head (validated), from ``trainers.config.HEAD_OPTIONS``."""
        from .config import HEAD_OPTIONS

        fn = HEAD_OPTIONS.get(name)
        return fn(cfg) if fn is not None else {}

    def build_head(self, classnames: Sequence[str], clip_model: nn.Module) -> Head:
        name = self.head_name(self.cfg)
        return HEAD_REGISTRY.get(name)(clip_model, classnames, **self.head_kwargs(self.cfg, name))

    def text_chunk(self) -> int:
        """Images per text-encoder call for image-conditioned learners (0: all at once)."""
        return 0

    def regulariser_kwargs(self, cfg, name: str) -> dict[str, Any]:
        """Constructor kwargs of a regulariser (validated). Default: its canonical ``REGULARISER.<NAME>``."""
        from .config import REGULARISER_OPTIONS

        fn = REGULARISER_OPTIONS.get(name)
        return fn(cfg) if fn is not None else {}

    def build_regularisers(self, classnames: Sequence[str]) -> list[Regulariser]:
        names = list(dict.fromkeys(list(self.REGULARISERS) + list(self.cfg.REGULARISERS.NAMES)))
        regs = []
        for name in names:
            reg = REGULARISER_REGISTRY.get(name)(**self.regulariser_kwargs(self.cfg, name))
            reg.setup(self.model, classnames)
            regs.append(reg.to(self.device))
        return regs

    def trainable_modules(self) -> dict[str, nn.Module]:
        """Registered name -> module whose parameters are trained (and checkpointed)."""
        mods: dict[str, nn.Module] = {}
        if any(True for _ in self.model.learner.parameters()):
            mods[self.LEARNER_NAME] = self.model.learner
        if any(True for _ in self.model.head.parameters()):
            mods["head"] = self.model.head
        return mods

    def param_groups(self) -> list[dict] | None:
        """Optimizer param groups (None: one group of all trainable parameters).

        A head with an ``lr_mult`` attribute (DePT: ``OPTIM.LR_EXP``) gets its own group at ``LR * lr_mult``;
        the learner then runs at ``LR * BASE_LR_MULT`` when ``OPTIM.STAGED_LR`` is on, else at ``LR``
        (DePT's staged learning rates; the warm-up sets every group to ``WARMUP_CONS_LR``).
        """
        head = self.model.head
        head_params = [p for p in head.parameters() if p.requires_grad]
        if not head_params or getattr(head, "lr_mult", None) is None:
            return None
        optim = self.cfg.OPTIM
        base_mult = optim.BASE_LR_MULT if optim.STAGED_LR else 1.0
        head_ids = {id(p) for p in head_params}
        rest = [p for p in self.model.parameters() if p.requires_grad and id(p) not in head_ids]
        groups = [{"params": rest, "lr": optim.LR * base_mult}, {"params": head_params, "lr": optim.LR * head.lr_mult}]
        return [g for g in groups if g["params"]]

    def build_model(self) -> None:
        from clip import clip
        from clip.config import check_input_cfg

        cfg = self.cfg
        classnames = [self.lab2cname[i] for i in range(self.num_classes)]
        prec = self.precision()
        self.prec = prec
        logger.info(f"Loading CLIP (backbone: {cfg.MODEL.BACKBONE.NAME})")
        clip_model = clip.load_clip(
            cfg.MODEL.BACKBONE.NAME, precision=prec, device=self.device, pretrained=cfg.MODEL.BACKBONE.PRETRAINED
        )
        from dassl.engine.preflight import check_finite_backbone

        check_finite_backbone(clip_model, cfg.MODEL.BACKBONE.NAME)  # NaN/Inf weights: error, not chance accuracy
        check_input_cfg(cfg.INPUT, clip_model)  # INPUT.* vs the backbone's preprocessing (warnings; size error)
        logger.info("Building custom CLIP")
        learner = self.build_learner(classnames, clip_model).to(self.device)
        head = self.build_head(classnames, clip_model).to(self.device)
        self.model = PromptedCLIP(clip_model, learner, head, text_chunk=self.text_chunk())
        logger.info("Turning off gradients in both the image and the text encoder")
        mods = self.trainable_modules()
        n_train, n_total = freeze_except(self.model, list(mods.values()))
        logger.info(f"Parameters to be updated: {sorted(n for n, p in self.model.named_parameters() if p.requires_grad)}")
        logger.info(f"# params: trainable {n_train:,} / total {n_total:,}")
        self.regularisers = self.build_regularisers(classnames)

        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optim = self.sched = None
        if params:
            groups = self.param_groups()
            optim_cfg = cfg.OPTIM
            if groups is not None and optim_cfg.STAGED_LR:  # the groups already implement the staged LRs
                optim_cfg = optim_cfg.clone()
                optim_cfg.defrost()
                optim_cfg.STAGED_LR = False
            self.optim = build_optimizer(params, optim_cfg, param_groups=groups)
            self.sched = build_lr_scheduler(self.optim, cfg.OPTIM)
        first = True
        for name, module in mods.items():
            self.register_model(name, module, self.optim if first else None, self.sched if first else None)
            first = False
        self.scaler = None
        if prec == "amp" and self.device.type == "cuda":
            self.scaler = torch.amp.GradScaler("cuda")
        self._norm_log: dict[str, float] = {}

    # -- modes -----------------------------------------------------------------------------------
    def set_model_mode(self, mode: str = "train", names=None) -> None:
        super().set_model_mode(mode, names)
        self.model.train(mode == "train")  # frozen CLIP stays in eval mode (PromptedCLIP.train)

    def autocast(self):
        if self.prec == "amp" and self.device.type == "cuda":
            return torch.autocast(device_type="cuda")
        return nullcontext()

    # -- training --------------------------------------------------------------------------------
    def parse_batch_train(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        return batch["img"].to(self.device), batch["label"].to(self.device)

    def loss_terms(self, output, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Head terms + every regulariser's (already weighted) terms."""
        terms = dict(self.model.head.loss(output, labels))
        batch = {"img": images, "label": labels}
        for reg in self.regularisers:
            for k, v in reg(self.model, output, batch).items():
                if k in terms:
                    raise KeyError(f"loss term {k!r} produced twice")
                terms[k] = v
        return terms

    def forward_backward(self, batch: dict) -> dict[str, float]:
        images, labels = self.parse_batch_train(batch)
        with self.autocast():
            output = self.model(images)
            terms = self.loss_terms(output, images, labels)
            loss = sum(terms.values())
        if self.scaler is not None:
            self.model_zero_grad()
            self.detect_anomaly(loss)
            self.scaler.scale(loss).backward()
            for name in self.get_model_names():
                if self._optims[name] is not None:
                    self.scaler.step(self._optims[name])
            self.scaler.update()
        else:
            self.model_backward_and_update(loss)
        summary: dict[str, float] = {"loss": loss.item()} if len(terms) > 1 else {}
        summary.update({k: v.item() for k, v in terms.items()})
        summary["acc"] = compute_accuracy(output.logits, labels)[0].item()
        summary.update(self.log_context_norms())
        for reg in self.regularisers:
            summary.update(reg.log_values())
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
        return summary

    @torch.no_grad()
    def log_context_norms(self) -> dict[str, float]:
        """Frobenius norm of the context (mean over classes) and per-position L2 norms ``v{i}_norm``."""
        ctx = self.model.learner.context_vectors()
        if ctx is None:
            return {}
        out = {"matrix_norm": float(matrix_norm(ctx, "two"))}
        per_pos = position_norms(ctx, "two").reshape(-1, ctx.shape[-2]).mean(dim=0)
        out.update({f"v{i}_norm": float(v) for i, v in enumerate(per_pos)})
        return out

    def before_epoch(self) -> None:
        super().before_epoch()
        for reg in self.regularisers:
            reg.on_epoch_start(self.epoch, self.max_epoch)

    @torch.no_grad()
    def quick_test_accuracy(self) -> float:
        """Top-1 accuracy (percent) on the test split, no result block printed.

        The RNG states are restored afterwards: iterating a DataLoader draws a seed from the global torch
        RNG, so without this ``--do-test`` would change the training batches and augmentations that
        follow (a run with per-epoch testing must train exactly like one without).
        """
        rng_state = get_rng_state()
        self.set_model_mode("eval")
        correct = total = 0
        try:
            for batch in self.test_loader:
                images, labels = self.parse_batch_test(batch)
                pred = self.model_inference(images).argmax(dim=-1)
                correct += int((pred == labels).sum())
                total += labels.numel()
        finally:
            self.set_model_mode("train")
            set_rng_state(rng_state)
        return 100.0 * correct / max(total, 1)

    def after_epoch(self) -> None:
        record: dict[str, Any] = {"epoch": self.epoch + 1}
        ctx = self.model.learner.context_vectors()
        if ctx is not None:
            norms = self.log_context_norms()
            record["matrix_norm"] = norms.pop("matrix_norm")
            record["v_norms"] = [norms[f"v{i}_norm"] for i in range(ctx.shape[-2])]
            for reg in self.regularisers:
                vals = reg.log_values()
                alphas = [vals[k] for k in sorted((k for k in vals if k.startswith("alpha_")), key=lambda s: int(s[6:]))]
                if alphas:
                    record["alpha"] = alphas
        if self.cfg.TEST.get("DO_TEST", False):
            acc = self.quick_test_accuracy()
            logger.info(f"epoch [{self.epoch + 1}/{self.max_epoch}] test accu ({acc:.4f})")
            self.write_scalar("train/test_accu", acc, self.epoch)
            record["test_acc"] = acc
        self._append_norm_record(record)
        super().after_epoch()

    def _append_norm_record(self, record: dict[str, Any]) -> None:
        path = osp.join(self.output_dir, "norms.jsonl")
        os.makedirs(self.output_dir, exist_ok=True)
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")

    # -- evaluation ------------------------------------------------------------------------------
    def model_inference(self, images: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            return self.model(images).logits

    def test(self, split: str | None = None):
        self.model.invalidate_cache()  # parameters may have been loaded/changed
        return super().test(split)

    # -- checkpoints -----------------------------------------------------------------------------
    def load_model(self, directory: str | None, epoch: int | None = None) -> None:
        """Load the trainable state of every registered model from ``directory/<name>/``.

        Accepts our checkpoints and the reference ones (``token_prefix``/``token_suffix`` are dropped,
        pickled schedulers are read safely by ``dassl.utils.load_checkpoint``). ``epoch``: N, a negative
        value (newest) or None (``model-best.pth.tar``, else the ``checkpoint`` pointer). The remaining
        keys load strictly; a shape mismatch raises :class:`ConfigError` explaining the likely cause.
        """
        if not directory:
            logger.info("Note that load_model() is skipped as no pretrained model is given")
            return
        if not osp.isdir(directory):
            raise CheckpointNotFoundError(f'model directory not found: "{directory}"')
        for name in self.get_model_names():
            fdir = osp.join(directory, name)
            path = osp.join(fdir, self._resolve_model_file(fdir, None if epoch is None else int(epoch)))
            ckpt = load_checkpoint(path)
            state = dict(ckpt["state_dict"])
            for key in DROPPED_CHECKPOINT_KEYS:
                state.pop(key, None)
            module = self._models[name]
            adapt = getattr(module, "adapt_to_state_dict", None)
            if callable(adapt):  # e.g. the DePT head resizes its classifier to the training classes
                adapt(state)
            own = module.state_dict()
            for key, value in state.items():
                if not torch.is_tensor(value) or not torch.is_tensor(own.get(key)):
                    continue  # extra state (plain values)
                if key in own and tuple(own[key].shape) != tuple(value.shape):
                    raise ConfigError(
                        f'checkpoint "{path}": {name}.{key} has shape {tuple(value.shape)} but the model expects '
                        f"{tuple(own[key].shape)} (different N_CTX, CSC across class sets, or backbone?)"
                    )
            missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
            if missing or unexpected:
                raise ConfigError(f'checkpoint "{path}" does not match {name}: missing {missing}, unexpected {unexpected}')
            logger.info(f'Loading weights to {name} from "{path}" (epoch = {ckpt.get("epoch")})')
            cast = {k: v.to(own[k].dtype) if torch.is_tensor(v) and torch.is_tensor(own[k]) else v for k, v in state.items()}
            module.load_state_dict(cast, strict=True)
            self._model_epoch = ckpt.get("epoch")
        self.model.invalidate_cache()
