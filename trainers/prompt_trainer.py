"""The one shared trainer for prompt-learning methods.

A concrete trainer is a table of defaults (learner, head, regularisers, reference config nodes). The model comes
from the factory; this class keeps the loop, the optimiser (amp through the engine's backward), checkpoints of the
trainable state, logging and the per-epoch test. Method-specific bookkeeping lives behind the components' hooks
(``Regulariser.log_values`` / ``epoch_record`` / ``backward``, ``Head.lr_mult`` / ``adapt_to_state_dict``).
"""
from __future__ import annotations

import logging
import os.path as osp
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn

from dassl.engine import TrainerX
from dassl.metrics import compute_accuracy
from dassl.optim import build_lr_scheduler, build_optimizer
from dassl.utils import load_checkpoint
from dassl.utils.torchtools import get_rng_state, set_rng_state
from dassl.utils.errors import CheckpointNotFoundError, ConfigError

from clip.clip import PRECISIONS

from .modules import Head, PromptLearner
from .modules.factory import build_prompted_clip, freeze_except, validate_components
from .modules.options import key_name
from .modules.norms import matrix_norm, position_norms
from .reference_checkpoints import CLASS_BUFFERS, LoadedState, log_ignored, map_learner_state, read_checkpoints

logger = logging.getLogger(__name__)

#: class-dependent buffers the reference stored in checkpoints; dropped at load time
DROPPED_CHECKPOINT_KEYS = CLASS_BUFFERS  # class-dependent buffers of reference checkpoints, rebuilt here

__all__ = ["PromptTrainer", "freeze_except", "load_state_into", "load_trainable_state", "DROPPED_CHECKPOINT_KEYS"]


class PromptTrainer(TrainerX):
    """Shared Dassl trainer on a :class:`PromptedCLIP`.

    A concrete trainer is a table of defaults (class attributes):
        LEARNER: default ``MODEL.PROMPT_LEARNER.NAME`` (a ``PROMPT_LEARNER_REGISTRY`` name).
        HEAD: default ``MODEL.HEAD.NAME`` (``--head`` overrides it, e.g. ``DePT``).
        REGULARISERS: regularisers always used (``REGULARISERS.NAMES`` adds more).
        REFERENCE_NODES: the reference forks' trainer nodes read as spellings of the canonical keys
            (``TRAINER.COOP.N_CTX`` -> ``MODEL.PROMPT_LEARNER.N_CTX``, ``.PREC`` -> ``TRAINER.PREC``, ...; see
            ``trainers.config``).
        DEFAULTS: other canonical keys' defaults, e.g. ``{"MODEL.PROMPT_LEARNER.ENSEMBLE": True}``.

    The model comes from :func:`trainers.modules.factory.build_prompted_clip`; the learner is registered under
    its ``checkpoint_name`` (reference folder, e.g. ``prompt_learner``), a head with parameters as ``head``.
    """

    LEARNER: str = "CoOpPromptLearner"
    HEAD: str = "Similarity"
    REGULARISERS: tuple[str, ...] = ()
    REFERENCE_NODES: tuple[str, ...] = ("TRAINER.COOP", "TRAINER.CoOp")
    DEFAULTS: dict[str, Any] = {}

    @property
    def LEARNER_NAME(self) -> str:  # noqa: N802 (the previous class attribute's name)
        """Registered name (checkpoint folder) of the learner: its ``checkpoint_name``."""
        return self.model.learner.checkpoint_name

    # -- config --------------------------------------------------------------------------------
    @classmethod
    def validate_cfg(cls, cfg) -> None:
        """Class-level check of a resolved config (components, their options, precision); needs no data or
        CLIP, so ``dassl.engine.preflight`` runs it before anything is written."""
        if cfg.TRAINER.PREC not in PRECISIONS:
            raise ConfigError(f"{key_name(cfg, 'TRAINER.PREC')} must be one of {', '.join(PRECISIONS)}, "
                              f"got {cfg.TRAINER.PREC!r}")
        validate_components(cfg)

    def check_cfg(self, cfg) -> None:
        type(self).validate_cfg(cfg)

    # -- building --------------------------------------------------------------------------------
    def trainable_modules(self) -> dict[str, nn.Module]:
        """Registered name -> module whose parameters are trained (and checkpointed)."""
        mods: dict[str, nn.Module] = {}
        if any(True for _ in self.model.learner.parameters()):
            mods[self.model.learner.checkpoint_name] = self.model.learner
        if any(True for _ in self.model.head.parameters()):
            mods["head"] = self.model.head
        return mods

    def param_groups(self) -> list[dict] | None:
        """Optimizer param groups (None: one group of all trainable parameters).

        A head with an ``lr_mult`` (DePT: ``MODEL.HEAD.DEPT.LR_MULT`` = ``OPTIM.LR_EXP``) gets its own group at
        ``LR * lr_mult``; the learner then runs at ``LR * BASE_LR_MULT`` when ``OPTIM.STAGED_LR`` is on, else at
        ``LR`` (DePT's staged learning rates; the warm-up sets every group to ``WARMUP_CONS_LR``). The head's
        parameters are the "new layers": ``OPTIM.NEW_LAYERS`` (Dassl's name-based grouping) is not consulted.
        """
        head = self.model.head
        head_params = [p for p in head.parameters() if p.requires_grad]
        if not head_params or head.lr_mult is None:
            return None
        optim = self.cfg.OPTIM
        base_mult = optim.BASE_LR_MULT if optim.STAGED_LR else 1.0
        head_ids = {id(p) for p in head_params}
        rest = [p for p in self.model.parameters() if p.requires_grad and id(p) not in head_ids]
        groups = [{"params": rest, "lr": optim.LR * base_mult}, {"params": head_params, "lr": optim.LR * head.lr_mult}]
        return [g for g in groups if g["params"]]

    def build_model(self) -> None:
        cfg = self.cfg
        classnames = [self.lab2cname[i] for i in range(self.num_classes)]
        self.prec = cfg.TRAINER.PREC
        self.model, self.regularisers = build_prompted_clip(cfg, classnames, self.device,
                                                            after_learner=self.after_learner_built)
        mods = self.trainable_modules()
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
        if self.prec == "amp" and self.device.type == "cuda":
            self.scaler = torch.amp.GradScaler("cuda")

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

    def backward(self, loss: torch.Tensor, terms: dict[str, torch.Tensor]) -> None:
        """Gradients of the step: a regulariser's :meth:`~Regulariser.backward` hook if one takes over, else the
        engine's ``model_backward`` (amp loss scaling included)."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        scale = (lambda t: t) if self.scaler is None else self.scaler.scale
        for reg in self.regularisers:
            if reg.backward(terms, params, scale):
                self.detect_anomaly(loss)
                return
        self.model_backward(loss)

    def forward_backward(self, batch: dict) -> dict[str, float]:
        images, labels = self.parse_batch_train(batch)
        with self.autocast():
            output = self.model(images)
            terms = self.loss_terms(output, images, labels)
            loss = sum(terms.values())
        self.model_zero_grad()
        self.backward(loss, terms)
        self.model_update()
        self.model.invalidate_cache()  # the parameters changed
        summary: dict[str, float] = {"loss": loss.item()} if len(terms) > 1 else {}
        summary.update({k: v.item() for k, v in terms.items()})
        summary["acc"] = compute_accuracy(output.logits, labels)[0].item()
        summary.update(self.log_context_norms())
        for reg in self.regularisers:
            for k, v in reg.log_values().items():
                if k in summary:
                    raise KeyError(f"log key {k!r} of {type(reg).__name__} is already used")
                summary[k] = v
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
        return summary

    def visual_norm_vectors(self) -> torch.Tensor | None:
        """The input-level visual prompts ``[n, Dv]`` whose norms are logged (``visual_*``): for learners with
        visual prompts of their own (``log_visual_norms``: VPT, IVLP) or when a regulariser targets them (Nemesis
        ``TARGET vision``); None otherwise (existing runs log exactly what they logged before)."""
        learner = self.model.learner
        if not getattr(learner, "prompts_image_tower", False):
            return None
        if not (getattr(learner, "log_visual_norms", False)
                or any(getattr(reg, "target", None) == "vision" for reg in self.regularisers)):
            return None
        return learner.visual_prompts()[0]

    @torch.no_grad()
    def log_context_norms(self) -> dict[str, float]:
        """Frobenius norm of the context (mean over classes) and per-position L2 norms ``v{i}_norm``; the same of
        the visual prompts as ``visual_matrix_norm`` / ``visual_v{i}_norm`` (see :meth:`visual_norm_vectors`)."""
        ctx = self.model.learner.context_vectors()
        out: dict[str, float] = {}
        if ctx is not None:
            out["matrix_norm"] = float(matrix_norm(ctx, "two"))
            per_pos = position_norms(ctx, "two").reshape(-1, ctx.shape[-2]).mean(dim=0)
            out.update({f"v{i}_norm": float(v) for i, v in enumerate(per_pos)})
        vis = self.visual_norm_vectors()
        if vis is not None:
            out["visual_matrix_norm"] = float(matrix_norm(vis, "two"))
            out.update({f"visual_v{i}_norm": float(v) for i, v in enumerate(position_norms(vis, "two"))})
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
        norms = self.log_context_norms()
        if ctx is not None:
            record["matrix_norm"] = norms.pop("matrix_norm")
            record["v_norms"] = [norms[f"v{i}_norm"] for i in range(ctx.shape[-2])]
        if "visual_matrix_norm" in norms:
            record["visual_matrix_norm"] = norms["visual_matrix_norm"]
            record["visual_v_norms"] = [v for k, v in norms.items() if k.startswith("visual_v")]
        if ctx is not None or "visual_matrix_norm" in norms:
            for reg in self.regularisers:
                record.update(reg.epoch_record())
        if self.cfg.TEST.get("DO_TEST", False):
            acc = self.quick_test_accuracy()
            logger.info(f"epoch [{self.epoch + 1}/{self.max_epoch}] test accu ({acc:.4f})")
            self.write_scalar("train/test_accu", acc, self.epoch)
            record["test_acc"] = acc
        self._append_norm_record(record)
        super().after_epoch()

    def _append_norm_record(self, record: dict[str, Any]) -> None:
        from dassl.utils.tools import upsert_jsonl

        # idempotent per epoch: a resumed run replaces the records past its resume point
        upsert_jsonl(osp.join(self.output_dir, "norms.jsonl"), record)

    # -- evaluation ------------------------------------------------------------------------------
    def model_inference(self, images: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            return self.model(images).logits

    def test(self, split: str | None = None):
        if self.model.learner.text_depends_on_params:
            self.model.invalidate_cache()  # parameters may have been changed
        return super().test(split)

    # -- checkpoints -----------------------------------------------------------------------------
    def load_model(self, directory: str | None, epoch: int | None = None) -> None:
        """Load the trainable state of every registered model from ``directory/<name>/``.

        Accepts our checkpoints and every reference layout (``trainers.reference_checkpoints``: explicit key
        mappings; pickled schedulers are read safely by ``dassl.utils.load_checkpoint``). ``epoch``: N, a negative
        value (newest) or None (``model-best.pth.tar``, else the ``checkpoint`` pointer). The remaining keys load
        strictly (:func:`load_state_into`).
        """
        if not directory:
            logger.info("Note that load_model() is skipped as no pretrained model is given")
            return
        if not osp.isdir(directory):
            raise CheckpointNotFoundError(f'model directory not found: "{directory}"')
        for name, loaded in read_checkpoints(self, directory, None if epoch is None else int(epoch)).items():
            log_ignored(name, loaded)
            load_state_into(self._models[name], loaded.state, loaded.path, name, loaded.epoch)
            self._model_epoch = loaded.epoch
        self.model.invalidate_cache()

    def after_learner_built(self, learner: nn.Module, clip_model: nn.Module) -> None:
        """Hook of the factory between the learner and the head (e.g. a reference's random-number consumption)."""


def load_state_into(module: nn.Module, state: dict[str, Any], path: str, name: str, epoch: Any = None) -> None:
    """Load a (mapped) trainable ``state`` into ``module`` strictly; a component may reshape itself first
    (``adapt_to_state_dict``: DePT's classifier). A shape mismatch or a missing/unexpected key raises
    :class:`ConfigError` explaining the likely cause."""
    state = dict(state)
    if isinstance(module, (Head, PromptLearner)):  # e.g. DePT resizes its classifier to the training classes
        module.adapt_to_state_dict(state)
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
    logger.info(f'Loading weights to {name} from "{path}" (epoch = {epoch})')
    cast = {k: v.to(own[k].dtype) if torch.is_tensor(v) and torch.is_tensor(own[k]) else v for k, v in state.items()}
    module.load_state_dict(cast, strict=True)


def load_trainable_state(module: nn.Module, path: str, name: str) -> dict[str, Any]:
    """Read one per-model checkpoint file (ours, or a reference's per-model folder: the same key mapping as
    :meth:`PromptTrainer.load_model`, ``trainers.reference_checkpoints.map_learner_state``) and
    :func:`load_state_into` ``module`` strictly; returns the checkpoint. Used where no trainer exists
    (``tools/crt_sweep.py``)."""
    ckpt = load_checkpoint(path)
    state, ignored, layout = map_learner_state(dict(ckpt["state_dict"]), set(module.state_dict()))
    log_ignored(name, LoadedState(path, ckpt.get("epoch"), state, layout, ignored))
    load_state_into(module, state, path, name, ckpt.get("epoch"))
    return ckpt
