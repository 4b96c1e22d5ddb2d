"""Trainer base classes (Dassl ``dassl.engine.trainer``): ``TrainerBase`` -> ``SimpleTrainer`` -> ``TrainerX``.

Lifecycle::

    SimpleTrainer.__init__(cfg): check_cfg(cfg) -> device/epochs/output_dir -> self.cfg
        -> build_data_loader() -> build_model() -> evaluator
    train(): before_train() -> [before_epoch() -> run_epoch() -> after_epoch()] * epochs -> after_train()

Output lines (interfaces read by tools and scripts):

* training: ``epoch [E/MAX] batch [B/NB] time T (T) data D (D) <meters> lr 2.0000e-03 eta 0:01:02``
  every ``TRAIN.PRINT_FREQ`` batches (every batch when an epoch has fewer batches than that);
* ``Finish training``, ``Deploy the last-epoch model`` / ``Deploy the model with the best val performance``,
  ``Evaluate on the *test* set``, the ``=> result`` block, and finally ``Elapsed: H:MM:SS`` (last line).

``test()`` also writes ``OUTPUT_DIR/results.json`` (``results_val.json`` for the val split) with
``split, accuracy, error_rate, macro_f1, total, correct, epoch``.

Rolling resume checkpoint (``OUTPUT_DIR/resume.pth.tar``, :data:`RESUME_FILE`): ONE file, replaced atomically at
the end of every epoch, every ``TRAIN.RESUME_EVERY_ITERS`` iterations and every ``TRAIN.RESUME_EVERY_MINUTES``
minutes (0 = off), and when SIGINT/SIGTERM stops the run. It is separate from the Dassl ``model.pth.tar-N`` files
(``TRAIN.CHECKPOINT_FREQ``) and holds every registered model's weights, optimiser and scheduler, the GradScaler,
every RNG state, the best val result and, mid-epoch, the epoch's RNG state at its start, the batch index and the
loss meters, so a resumed run is bit-identical to an uninterrupted one (same weights, same logged losses). Writing
it consumes no random numbers. Resume prefers it over the ``checkpoint`` pointer of ``model.pth.tar-N``.
"""
from __future__ import annotations

import datetime
import json
import logging
import os
import os.path as osp
import re
import sys
import time
from collections import OrderedDict
from typing import Any

import numpy as np  # noqa: F401  (kept at module level like upstream)
import torch
import torch.nn as nn
from tqdm import tqdm

from dassl.data import DataManager
from dassl.evaluation import build_evaluator
from dassl.utils import (  # noqa: F401  (re-exported names used by downstream trainers)
    AverageMeter,
    MetricMeter,
    load_checkpoint,
    load_pretrained_weights,
    mkdir_if_missing,
    resume_from_checkpoint,
    save_checkpoint,
    tolist_if_not,
)
from dassl.utils.errors import CheckpointNotFoundError, Interrupted, UsageError
from dassl.utils.tools import atomic_open, atomic_write_text
from dassl.utils.logger import log_position, supersede_log_after
from dassl.utils.torchtools import get_rng_state, read_pointer, set_rng_state

class _NoOpSummaryWriter:
    """No-op stand-in used when the ``tensorboard`` package is missing."""

    def __init__(self, log_dir: str | None = None, **kwargs: Any) -> None:
        if log_dir:
            os.makedirs(log_dir, exist_ok=True)

    def add_scalar(self, *args: Any, **kwargs: Any) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def _summary_writer_class():
    """``torch.utils.tensorboard.SummaryWriter``, imported when a training run opens its writer (about 0.5 s,
    which evaluation-only processes never pay); the no-op stand-in when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # pragma: no cover - tensorboard is in requirements; keep the engine usable without it
        return _NoOpSummaryWriter
    return SummaryWriter


def __getattr__(name: str):
    if name == "SummaryWriter":  # the upstream module-level name, resolved on first access
        return _summary_writer_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


logger = logging.getLogger(__name__)

__all__ = ["TrainerBase", "SimpleTrainer", "TrainerX", "MetricMeter", "AverageMeter", "SummaryWriter"]

BEST_MODEL_NAME = "model-best.pth.tar"
RESUME_FILE = "resume.pth.tar"
RESUME_FORMAT = 1
_EPOCH_FILE_RE = re.compile(r"^model\.pth\.tar-(\d+)$")


def _progress(iterable, desc: str, **kwargs: Any):
    """A tqdm bar on stderr (shown on terminals only, so logs of batch jobs stay clean)."""
    return tqdm(iterable, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True, disable=None, **kwargs)


class StopRequest:
    """SIGINT/SIGTERM bookkeeping shared by the signal handler (``train.py``) and the training loop.

    While ``deferring`` (inside the epoch loop) a signal only sets ``signum``: the loop stops at the end of the
    current iteration, writes the resume checkpoint and raises :class:`~dassl.utils.errors.Interrupted`. Outside
    it, :func:`handle_stop_signal` raises ``Interrupted`` at once.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.deferring = False

    def reset(self) -> None:
        self.signum = None
        self.deferring = False


STOP = StopRequest()


def handle_stop_signal(signum: int, frame=None) -> None:
    """Signal handler for SIGINT/SIGTERM (installed by ``train.py``)."""
    if STOP.deferring:
        if STOP.signum is None:
            STOP.signum = signum
        return
    raise Interrupted(signum)


def _meter_state(meter: "MetricMeter") -> dict[str, dict[str, float]]:
    return {k: {"val": float(m.val), "avg": float(m.avg), "sum": float(m.sum), "count": int(m.count)}
            for k, m in meter.meters.items()}


def _load_meter_state(meter: "MetricMeter", state: dict) -> None:
    for k, v in state.items():
        m = meter.meters[k]
        m.val, m.avg, m.sum, m.count = v["val"], v["avg"], v["sum"], int(v["count"])


def describe_device(device: torch.device) -> str:
    """``cpu (N threads)`` or ``cuda:I (<GPU name>, <memory> GiB)`` for the run header."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return f"cuda:{index} ({props.name}, {props.total_memory / 2**30:.0f} GiB)"
    return f"cpu ({torch.get_num_threads()} threads)"


class TrainerBase:
    """Registered models, optimisers and schedulers plus the generic train loop."""

    def __init__(self) -> None:
        self._models: OrderedDict[str, nn.Module] = OrderedDict()
        self._optims: OrderedDict[str, torch.optim.Optimizer | None] = OrderedDict()
        self._scheds: OrderedDict[str, Any] = OrderedDict()
        self._writer = None

    # ------------------------------------------------------------------ registration
    def register_model(self, name: str = "model", model: nn.Module | None = None, optim=None, sched=None) -> None:
        """Register a module (checkpointed and toggled by :meth:`set_model_mode`) with its optimiser/scheduler.

        ``optim`` and ``sched`` may be None (e.g. frozen modules).
        """
        if self.__dict__.get("_models") is None:
            raise AttributeError("Cannot assign model before super().__init__() call")
        if self.__dict__.get("_optims") is None:
            raise AttributeError("Cannot assign optim before super().__init__() call")
        if self.__dict__.get("_scheds") is None:
            raise AttributeError("Cannot assign sched before super().__init__() call")
        if name in self._models:
            raise KeyError(f"Found duplicate model names: {name!r}")
        self._models[name] = model
        self._optims[name] = optim
        self._scheds[name] = sched

    def get_model_names(self, names: str | list[str] | None = None) -> list[str]:
        """All registered names, or the given ones after checking they exist."""
        names_real = list(self._models.keys())
        if names is not None:
            names = tolist_if_not(names)
            for name in names:
                if name not in names_real:
                    raise KeyError(f"Model {name!r} is not registered (registered: {names_real})")
            return names
        return names_real

    # ------------------------------------------------------------------ checkpoints
    def save_model(self, epoch: int, directory: str, is_best: bool = False, val_result: float | None = None,
                   model_name: str = "") -> None:
        """Save every registered model to ``directory/<name>/`` (``model.pth.tar-<epoch+1>`` by default).

        Each file holds ``state_dict``, ``epoch`` (= ``epoch + 1``), ``optimizer``, ``scheduler``,
        ``val_result`` and ``rng_state``. A ``model-best.pth.tar`` save does not move the ``checkpoint``
        pointer, which always names the newest regular checkpoint (the one to resume from).
        """
        names = self.get_model_names()
        rng_state = get_rng_state()
        for name in names:
            model_dict = self._models[name].state_dict()
            optim_dict = self._optims[name].state_dict() if self._optims[name] is not None else None
            sched_dict = self._scheds[name].state_dict() if self._scheds[name] is not None else None
            save_checkpoint(
                {
                    "state_dict": model_dict,
                    "epoch": epoch + 1,
                    "optimizer": optim_dict,
                    "scheduler": sched_dict,
                    "val_result": val_result,
                    "rng_state": rng_state,
                },
                osp.join(directory, name),
                is_best=is_best,
                model_name=model_name,
                update_pointer=model_name != BEST_MODEL_NAME,
            )

    def resume_model_if_exist(self, directory: str) -> int:
        """Resume every registered model from ``directory/<name>/checkpoint``; returns the start epoch.

        Restores weights, optimiser, scheduler and the RNG states, so the continued run equals an
        uninterrupted one.
        """
        names = self.get_model_names()
        if not names or any(read_pointer(osp.join(directory, name)) is None for name in names):
            logger.info("No checkpoint found, train from scratch")
            return 0
        logger.info(f"Found checkpoint at {directory} (will resume training)")
        start_epoch = 0
        for i, name in enumerate(names):
            path = osp.join(directory, name)
            start_epoch = resume_from_checkpoint(
                path, self._models[name], self._optims[name], self._scheds[name], restore_rng=i == len(names) - 1
            )
        best = osp.join(directory, names[0], BEST_MODEL_NAME)
        if osp.isfile(best):
            val_result = load_checkpoint(best).get("val_result")
            if val_result is not None:
                self.best_result = float(val_result)
        self._model_epoch = start_epoch
        if start_epoch >= self.max_epoch:
            logger.info(
                f"The checkpoint is at epoch {start_epoch} >= OPTIM.MAX_EPOCH={self.max_epoch}: training is already "
                "finished, no epoch will run (use a new OUTPUT_DIR to train again)"
            )
        return start_epoch

    # ------------------------------------------------------------------ rolling resume checkpoint
    def resume_checkpoint_state(self, epoch: int, batch: int) -> dict[str, Any]:
        """What :meth:`save_resume_checkpoint` writes: tensors and plain values only (``weights_only`` loads it).

        ``epoch``/``batch``: where the resumed run continues (0-based epoch index, index of the next batch).
        """
        models = {}
        for name in self.get_model_names():
            optim, sched = self._optims[name], self._scheds[name]
            models[name] = {
                "state_dict": self._models[name].state_dict(),
                "optimizer": optim.state_dict() if optim is not None else None,
                "scheduler": sched.state_dict() if sched is not None else None,
            }
        best = getattr(self, "best_result", None)
        scaler = getattr(self, "scaler", None)
        state: dict[str, Any] = {
            "format": RESUME_FORMAT,
            "epoch": int(epoch),
            "batch": int(batch),
            "max_epoch": int(self.max_epoch),
            "models": models,
            "rng_state": get_rng_state(),
            "best_result": float(best) if best is not None and np.isfinite(best) else None,
            "scaler": scaler.state_dict() if scaler is not None and hasattr(scaler, "state_dict") else None,
        }
        if batch > 0:
            state["epoch_rng_state"] = self._epoch_rng_state
            state["meters"] = _meter_state(self._epoch_losses) if self._epoch_losses is not None else {}
        return state

    def save_resume_checkpoint(self, epoch: int, batch: int) -> None:
        """Replace ``OUTPUT_DIR/resume.pth.tar`` atomically (nothing when no model is registered)."""
        if not self.get_model_names():
            return
        if self._writer is not None:  # events up to here are on disk before the resume point moves past them
            self._writer.flush()
        state = self.resume_checkpoint_state(epoch, batch)
        offset = log_position()  # the log lines up to here belong to the state saved now
        if offset is not None:
            state["log_offset"] = offset
        with atomic_open(osp.join(self.output_dir, RESUME_FILE), "wb") as f:
            torch.save(state, f)
        self._last_resume_save = time.time()

    def load_resume_checkpoint(self, path: str) -> int:
        """Restore what :meth:`save_resume_checkpoint` wrote; returns the epoch to start from.

        The RNG states are applied when the run continues (at once for an epoch boundary; for a mid-epoch
        checkpoint after the epoch's sampler order has been re-drawn, see ``TrainerX.run_epoch``).
        """
        ckpt = load_checkpoint(path)
        names = self.get_model_names()
        if not isinstance(ckpt, dict) or ckpt.get("format") != RESUME_FORMAT or not isinstance(ckpt.get("models"), dict):
            raise UsageError(f"{path} is not a resume checkpoint of this code (move it away to resume from the "
                             "model.pth.tar-N checkpoints, or pass --force to start over)")
        if sorted(ckpt["models"]) != sorted(names):
            raise UsageError(f"{path} holds the models {sorted(ckpt['models'])}, this trainer registers {sorted(names)}"
                             " (another trainer wrote this folder: use a new --output-dir or --force)")
        for name in names:
            entry = ckpt["models"][name]
            try:
                self._models[name].load_state_dict(entry["state_dict"])
            except RuntimeError as e:
                raise UsageError(f"{path} does not fit the model {name!r}: {' '.join(str(e).split())[:300]}") from None
            if self._optims[name] is not None and entry.get("optimizer") is not None:
                self._optims[name].load_state_dict(entry["optimizer"])
            if self._scheds[name] is not None and entry.get("scheduler") is not None:
                self._scheds[name].load_state_dict(entry["scheduler"])
        scaler = getattr(self, "scaler", None)
        if scaler is not None and ckpt.get("scaler") is not None:
            scaler.load_state_dict(ckpt["scaler"])
        if ckpt.get("best_result") is not None:
            self.best_result = float(ckpt["best_result"])
        epoch, batch = int(ckpt["epoch"]), int(ckpt["batch"])
        offset = ckpt.get("log_offset")
        if isinstance(offset, int) and not isinstance(offset, bool):
            supersede_log_after(offset)  # the lines after the resume point are logged again: no duplicates
        self._resume_point = (epoch, batch)
        self._resume_rng = ckpt["rng_state"]
        self._resume_epoch_rng = ckpt.get("epoch_rng_state")
        self._resume_meters = ckpt.get("meters") or {}
        if batch == 0:
            set_rng_state(self._resume_rng)
            self._resume_rng = None
        self._model_epoch = epoch
        where = f"epoch {epoch + 1}, iteration {batch + 1}" if batch > 0 else f"the start of epoch {epoch + 1}"
        logger.info(f"Resuming from {path}: {epoch} epoch(s) done, continuing at {where}")
        if epoch >= self.max_epoch:
            logger.info(f"The run is at epoch {epoch} >= OPTIM.MAX_EPOCH={self.max_epoch}: training is already "
                        "finished, no epoch will run")
        return epoch

    @staticmethod
    def _resolve_model_file(fdir: str, epoch: int | None) -> str:
        if not osp.isdir(fdir):
            raise CheckpointNotFoundError(f'model folder not found: "{fdir}"')
        if epoch is None:
            if osp.isfile(osp.join(fdir, BEST_MODEL_NAME)):
                return BEST_MODEL_NAME
            latest = read_pointer(fdir)
            if latest is None:
                raise CheckpointNotFoundError(f'no "{BEST_MODEL_NAME}" and no "checkpoint" pointer in "{fdir}"')
            logger.info(f"Note: no {BEST_MODEL_NAME} in {fdir}; loading the latest checkpoint {latest}")
            return latest
        if epoch < 0:
            epochs = [int(m.group(1)) for f in os.listdir(fdir) if (m := _EPOCH_FILE_RE.match(f))]
            if not epochs:
                raise CheckpointNotFoundError(f'no "model.pth.tar-N" file in "{fdir}"')
            return f"model.pth.tar-{max(epochs)}"
        model_file = f"model.pth.tar-{epoch}"
        if not osp.isfile(osp.join(fdir, model_file)):
            raise CheckpointNotFoundError(f'Model not found at "{osp.join(fdir, model_file)}"')
        return model_file

    def load_model(self, directory: str | None, epoch: int | None = None) -> None:
        """Load every registered model from ``directory/<name>/`` (strict).

        Args:
            directory: the output folder of a training run; empty/None skips loading (zero-shot).
            epoch: ``N`` loads ``model.pth.tar-N``; a negative value the newest such file; None loads
                ``model-best.pth.tar`` (or, when absent, the newest checkpoint named by the pointer file).

        Raises:
            CheckpointNotFoundError: a folder or file is missing.
        """
        if not directory:
            logger.info("Note that load_model() is skipped as no pretrained model is given")
            return
        for name in self.get_model_names():
            fdir = osp.join(directory, name)
            model_path = osp.join(fdir, self._resolve_model_file(fdir, epoch))
            checkpoint = load_checkpoint(model_path)
            state_dict = checkpoint["state_dict"]
            ckpt_epoch = checkpoint.get("epoch")
            val_result = checkpoint.get("val_result")
            msg = f'Load {model_path} to {name} (epoch={ckpt_epoch}'
            if isinstance(val_result, (int, float)):
                msg += f", val_result={val_result:.1f}"
            logger.info(msg + ")")
            self._models[name].load_state_dict(state_dict)
            self._model_epoch = ckpt_epoch

    # ------------------------------------------------------------------ modes and updates
    def set_model_mode(self, mode: str = "train", names: str | list[str] | None = None) -> None:
        """``.train()`` or ``.eval()`` on the *registered* modules only (frozen encoders keep eval mode)."""
        for name in self.get_model_names(names):
            if mode == "train":
                self._models[name].train()
            elif mode in ("test", "eval"):
                self._models[name].eval()
            else:
                raise KeyError(f"Unknown model mode {mode!r} (train | eval | test)")

    def update_lr(self, names: str | list[str] | None = None) -> None:
        """Step every registered scheduler that is not None (once per epoch)."""
        for name in self.get_model_names(names):
            if self._scheds[name] is not None:
                self._scheds[name].step()

    def detect_anomaly(self, loss: torch.Tensor) -> None:
        """Stop on a NaN/Inf loss with a user error naming epoch and iteration (exit 2); nothing is saved, so the
        last good checkpoint stays the one to resume from."""
        if not torch.isfinite(loss).all():
            from dassl.utils.errors import NonFiniteLossError

            epoch, it = getattr(self, "epoch", 0) + 1, getattr(self, "batch_idx", 0) + 1
            where = f"epoch {epoch}/{getattr(self, 'max_epoch', '?')}, iteration {it}/{getattr(self, 'num_batches', '?')}"
            raise NonFiniteLossError(
                f"Loss is infinite or NaN! ({float(loss.detach().float().sum())} at {where}): lower OPTIM.LR, use "
                "PREC fp32, or check the data; no checkpoint was written for this epoch (the last good one is kept)"
            )

    def model_zero_grad(self, names: str | list[str] | None = None) -> None:
        for name in self.get_model_names(names):
            if self._optims[name] is not None:
                self._optims[name].zero_grad()

    #: ``torch.amp.GradScaler`` of amp training (None: plain backward and optimiser steps)
    scaler = None

    def model_backward(self, loss: torch.Tensor) -> None:
        self.detect_anomaly(loss)
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def model_update(self, names: str | list[str] | None = None) -> None:
        for name in self.get_model_names(names):
            if self._optims[name] is not None:
                if self.scaler is None:
                    self._optims[name].step()
                else:
                    self.scaler.step(self._optims[name])
        if self.scaler is not None:
            self.scaler.update()

    def model_backward_and_update(self, loss: torch.Tensor, names: str | list[str] | None = None) -> None:
        """zero_grad -> non-finite check (``FloatingPointError``) -> backward -> optimiser steps."""
        self.model_zero_grad(names)
        self.model_backward(loss)
        self.model_update(names)

    # ------------------------------------------------------------------ tensorboard
    def init_writer(self, log_dir: str, purge_step: int | None = None) -> None:
        if self.__dict__.get("_writer") is None:
            logger.info(f"Initialize tensorboard (log_dir={log_dir})")
            writer_cls = _summary_writer_class()
            if purge_step is None:
                self._writer = writer_cls(log_dir=log_dir)
            else:
                self._writer = writer_cls(log_dir=log_dir, purge_step=purge_step)

    def close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def write_scalar(self, tag: str, scalar_value: float, global_step: int | None = None) -> None:
        """Add a tensorboard scalar (no-op when no writer exists, e.g. in eval-only runs)."""
        if self._writer is None:
            return
        self._writer.add_scalar(tag, scalar_value, global_step)

    # ------------------------------------------------------------------ loop
    def train(self, start_epoch: int, max_epoch: int) -> None:
        """Generic training loop."""
        self.start_epoch = start_epoch
        self.max_epoch = max_epoch
        self.before_train()
        STOP.deferring = True  # SIGINT/SIGTERM now stop at the end of the current iteration
        try:
            for self.epoch in range(self.start_epoch, self.max_epoch):
                self.before_epoch()
                self.run_epoch()
                self._model_epoch = self.epoch + 1
                self.after_epoch()
                self.save_resume_checkpoint(self.epoch + 1, 0)
                self.check_stop(self.epoch, self.num_batches, saved=True)
        finally:
            STOP.deferring = False
        self.after_train()

    def check_stop(self, epoch: int, batch: int, saved: bool = False) -> None:
        """At a safe point: when SIGINT/SIGTERM arrived, write the resume checkpoint (unless ``saved``), log one
        line and raise :class:`Interrupted` (``train.py`` exits 128 + the signal number)."""
        signum = STOP.signum
        if signum is None:
            return
        if not saved:
            self.save_resume_checkpoint(epoch, batch)
        msg = (f"interrupted at epoch {epoch + 1} iteration {batch}; rerun the same command to continue")
        logger.info(msg)
        raise Interrupted(signum, msg)

    def before_train(self) -> None:
        pass

    def after_train(self) -> None:
        pass

    def before_epoch(self) -> None:
        pass

    def after_epoch(self) -> None:
        pass

    def run_epoch(self) -> None:
        raise NotImplementedError

    def test(self, split: str | None = None) -> float:
        raise NotImplementedError

    def parse_batch_train(self, batch):
        raise NotImplementedError

    def parse_batch_test(self, batch):
        raise NotImplementedError

    def forward_backward(self, batch) -> dict:
        raise NotImplementedError

    def model_inference(self, input):
        raise NotImplementedError


class SimpleTrainer(TrainerBase):
    """A trainer with one data manager, an evaluator, best-val selection, checkpoints and resume."""

    def __init__(self, cfg) -> None:
        super().__init__()
        self.check_cfg(cfg)

        if torch.cuda.is_available() and cfg.USE_CUDA:
            self.device = torch.device("cuda")
        else:
            self.device = torch.device("cpu")
        logger.info(f"Device: {describe_device(self.device)}")

        # Save as attributes some frequently used variables
        self.start_epoch = self.epoch = 0
        self.max_epoch = cfg.OPTIM.MAX_EPOCH
        self.output_dir = cfg.OUTPUT_DIR
        self.batch_idx = 0
        self.num_batches = 0
        self.last_results: OrderedDict | None = None
        self._model_epoch: int | None = None
        self._resumed = False  # resume_if_needed() ran
        self._resume_point: tuple[int, int] | None = None  # (epoch, batch) of a loaded resume checkpoint
        self._resume_rng = self._resume_epoch_rng = None
        self._resume_meters: dict = {}
        self._epoch_rng_state = None
        self._epoch_losses: MetricMeter | None = None
        self._last_resume_save = time.time()

        self.cfg = cfg
        self.build_data_loader()
        self.build_model()
        self.evaluator = build_evaluator(cfg, lab2cname=self.lab2cname)
        self.best_result = -np.inf

    def check_cfg(self, cfg) -> None:
        """Check whether some variables are set correctly for the trainer (optional hook; ``self.cfg`` is unset)."""

    def build_data_loader(self) -> None:
        """Create ``self.dm`` and copy its loaders, ``num_classes``, ``num_source_domains`` and ``lab2cname``."""
        dm = DataManager(self.cfg)
        self.train_loader_x = dm.train_loader_x
        self.train_loader_u = dm.train_loader_u  # optional, can be None
        self.val_loader = dm.val_loader  # optional, can be None
        self.test_loader = dm.test_loader
        self.num_classes = dm.num_classes
        self.num_source_domains = dm.num_source_domains
        self.lab2cname = dm.lab2cname  # dict {label: classname}
        self.dm = dm

    def build_model(self) -> None:
        """Build and register the model(s); every concrete trainer overrides this."""
        raise NotImplementedError(f"{type(self).__name__} must implement build_model() and register its model(s)")

    def train(self) -> None:  # type: ignore[override]
        super().train(self.start_epoch, self.max_epoch)

    def resume_if_needed(self) -> int:
        """Load the state to continue from (once): ``resume.pth.tar`` of ``RESUME`` or ``OUTPUT_DIR`` when present,
        else the ``model.pth.tar-N`` named by the ``checkpoint`` pointers; returns the start epoch.

        ``train.py`` calls it before writing anything into the folder (a bad checkpoint leaves it untouched);
        :meth:`before_train` calls it otherwise."""
        if self._resumed:
            return self.start_epoch
        directory = self.cfg.OUTPUT_DIR
        if self.cfg.RESUME:
            directory = self.cfg.RESUME
            if not osp.isdir(directory):
                raise CheckpointNotFoundError(f'RESUME folder not found: "{directory}"')
        resume_file = osp.join(directory, RESUME_FILE)
        if self.get_model_names() and osp.isfile(resume_file) and not self._pointer_is_newer(directory, resume_file):
            self.start_epoch = self.load_resume_checkpoint(resume_file)
        else:
            self.start_epoch = self.resume_model_if_exist(directory)
        self._resumed = True
        return self.start_epoch

    def _pointer_is_newer(self, directory: str, resume_file: str) -> bool:
        """True when the ``model.pth.tar-N`` named by the pointer holds more finished epochs than the resume
        checkpoint (a run stopped between the two end-of-epoch saves): resume from the further one."""
        names = self.get_model_names()
        if any(read_pointer(osp.join(directory, n)) is None for n in names):
            return False
        try:
            name = names[0]
            pointer_epoch = load_checkpoint(osp.join(directory, name, read_pointer(osp.join(directory, name)))).get("epoch")
            resume_epoch = load_checkpoint(resume_file).get("epoch")
        except Exception:
            return False
        return isinstance(pointer_epoch, int) and isinstance(resume_epoch, int) and pointer_epoch > resume_epoch

    def before_train(self) -> None:
        self.resume_if_needed()

        # Initialize summary writer; a resumed run drops the events past its resume point (no duplicates)
        writer_dir = osp.join(self.output_dir, "tensorboard")
        mkdir_if_missing(writer_dir)
        purge_step = None
        if self.start_epoch > 0 or self._resume_point is not None:
            epoch, batch = self._resume_point or (self.start_epoch, 0)
            purge_step = epoch * len(self.train_loader_x) + batch
        self.init_writer(writer_dir, purge_step=purge_step)

        # Remember the starting time (for computing the elapsed time)
        self.time_start = time.time()

    def after_train(self) -> None:
        logger.info("Finish training")

        do_test = not self.cfg.TEST.NO_TEST
        if do_test:
            if self.cfg.TEST.FINAL_MODEL == "best_val":
                logger.info("Deploy the model with the best val performance")
                self.load_model(self.output_dir)
            else:
                logger.info("Deploy the last-epoch model")
            self.test()

        # Show elapsed time
        elapsed = round(time.time() - self.time_start)
        logger.info(f"Elapsed: {datetime.timedelta(seconds=elapsed)}")

        # Close writer
        self.close_writer()

    def after_epoch(self) -> None:
        last_epoch = (self.epoch + 1) == self.max_epoch
        do_test = not self.cfg.TEST.NO_TEST
        freq = self.cfg.TRAIN.CHECKPOINT_FREQ
        meet_checkpoint_freq = (self.epoch + 1) % freq == 0 if freq > 0 else False

        if do_test and self.cfg.TEST.FINAL_MODEL == "best_val":
            curr_result = self.test(split="val")
            is_best = curr_result > self.best_result
            if is_best:
                self.best_result = curr_result
                self.save_model(self.epoch, self.output_dir, val_result=curr_result, model_name=BEST_MODEL_NAME)

        if meet_checkpoint_freq or last_epoch:
            self.save_model(self.epoch, self.output_dir)

    @torch.no_grad()
    def test(self, split: str | None = None) -> float:
        """Evaluate on ``split`` (default ``TEST.SPLIT``; "val" falls back to test when there is no val set).

        Returns:
            The first result value (accuracy in percent). The evaluator's full dict is stored in
            ``self.last_results`` and written, with ``total``, ``correct``, ``split`` and ``epoch``, to
            ``OUTPUT_DIR/results.json`` (``results_val.json`` for the val split).
        """
        self.set_model_mode("eval")
        self.evaluator.reset()

        if split is None:
            split = self.cfg.TEST.SPLIT

        if split == "val" and self.val_loader is not None:
            data_loader = self.val_loader
        else:
            split = "test"  # in case val_loader is None
            data_loader = self.test_loader

        logger.info(f"Evaluate on the *{split}* set")

        for batch_idx, batch in enumerate(_progress(data_loader, f"eval {split}")):
            input, label = self.parse_batch_test(batch)
            output = self.model_inference(input)
            self.evaluator.process(output, label)

        results = self.evaluator.evaluate()

        for k, v in results.items():
            tag = f"{split}/{k}"
            self.write_scalar(tag, v, self.epoch)

        self.last_results = results
        self._write_results_file(split, results)
        return list(results.values())[0]

    def _write_results_file(self, split: str, results: dict) -> None:
        record = {"split": split}
        record.update({k: float(v) for k, v in results.items()})
        record["total"] = int(getattr(self.evaluator, "total", 0))
        record["correct"] = int(getattr(self.evaluator, "correct", 0))
        record["epoch"] = self._model_epoch
        fname = "results_val.json" if split == "val" else "results.json"
        try:
            atomic_write_text(json.dumps(record, indent=4) + "\n", osp.join(self.output_dir, fname))
        except OSError as e:  # never lose a finished evaluation because of the side file
            if isinstance(e, UsageError):  # disk full: one clear error, exit 2
                raise
            logger.warning(f"Could not write {fname}: {e}")

    def model_inference(self, input):
        return self.model(input)

    def parse_batch_test(self, batch):
        input = batch["img"]
        label = batch["label"]
        input = input.to(self.device)
        label = label.to(self.device)
        return input, label

    def get_current_lr(self, names: str | list[str] | None = None) -> float:
        """LR of param group 0 of the first registered optimiser (0.0 when nothing is optimised)."""
        for name in self.get_model_names(names):
            optim = self._optims[name]
            if optim is not None:
                return optim.param_groups[0]["lr"]
        return 0.0


class TrainerX(SimpleTrainer):
    """A base trainer using labeled data only."""

    def _epoch_batches(self, loader) -> tuple[Any, int]:
        """The epoch's batch iterator and the index of its first batch.

        The global RNG state at the epoch's start is kept (``_epoch_rng_state``, for a mid-epoch resume
        checkpoint). A run resumed mid-epoch re-creates the iterator from the stored start-of-epoch RNG state (same
        sampler order, same worker seeds), skips the batches already done (indices only without loader workers;
        with workers they are loaded and dropped so every worker's RNG advances as before), then restores the RNG
        state of the interruption point."""
        start = 0
        if self._resume_point is not None and self._resume_point[1] > 0 and self._resume_point[0] == self.epoch:
            start = self._resume_point[1]
            set_rng_state(self._resume_epoch_rng)
            self._epoch_rng_state = self._resume_epoch_rng
            it = iter(loader)
            for _ in range(min(start, len(loader))):
                if getattr(loader, "num_workers", 0) == 0 and hasattr(it, "_sampler_iter"):
                    next(it._sampler_iter)  # noqa: SLF001  (skip the indices without loading images)
                else:
                    next(it)
            set_rng_state(self._resume_rng)
            self._resume_rng = None
        else:
            self._epoch_rng_state = get_rng_state()
            it = iter(loader)
        self._resume_point = None
        return it, start

    def _maybe_save_resume(self) -> None:
        """Mid-epoch resume checkpoint every ``TRAIN.RESUME_EVERY_ITERS`` iterations / ``_MINUTES`` minutes."""
        done = self.batch_idx + 1
        if done >= self.num_batches:  # the end-of-epoch checkpoint follows
            return
        every = int(self.cfg.TRAIN.get("RESUME_EVERY_ITERS", 0) or 0)
        minutes = float(self.cfg.TRAIN.get("RESUME_EVERY_MINUTES", 0) or 0)
        due = every > 0 and done % every == 0
        due = due or (minutes > 0 and time.time() - self._last_resume_save >= minutes * 60)
        if due:
            self.save_resume_checkpoint(self.epoch, done)

    def run_epoch(self) -> None:
        self.set_model_mode("train")
        losses = MetricMeter()
        batch_time = AverageMeter()
        data_time = AverageMeter()
        self.num_batches = len(self.train_loader_x)

        it, start = self._epoch_batches(self.train_loader_x)
        if start > 0:
            _load_meter_state(losses, self._resume_meters)
            self._resume_meters = {}
        self._epoch_losses = losses
        end = time.time()
        bar = _progress(it, f"epoch {self.epoch + 1}/{self.max_epoch}", total=self.num_batches, initial=start)
        for self.batch_idx, batch in enumerate(bar, start):
            data_time.update(time.time() - end)
            loss_summary = self.forward_backward(batch)
            batch_time.update(time.time() - end)
            losses.update(loss_summary)

            meet_freq = (self.batch_idx + 1) % self.cfg.TRAIN.PRINT_FREQ == 0
            only_few_batches = self.num_batches < self.cfg.TRAIN.PRINT_FREQ
            if meet_freq or only_few_batches:
                nb_remain = 0
                nb_remain += self.num_batches - self.batch_idx - 1
                nb_remain += (self.max_epoch - self.epoch - 1) * self.num_batches
                eta_seconds = batch_time.avg * nb_remain
                eta = str(datetime.timedelta(seconds=int(eta_seconds)))

                info = []
                info += [f"epoch [{self.epoch + 1}/{self.max_epoch}]"]
                info += [f"batch [{self.batch_idx + 1}/{self.num_batches}]"]
                info += [f"time {batch_time.val:.3f} ({batch_time.avg:.3f})"]
                info += [f"data {data_time.val:.3f} ({data_time.avg:.3f})"]
                meters = str(losses)
                if meters:
                    info += [meters]
                info += [f"lr {self.get_current_lr():.4e}"]
                info += [f"eta {eta}"]
                logger.info(" ".join(info))

            n_iter = self.epoch * self.num_batches + self.batch_idx
            for name, meter in losses.meters.items():
                self.write_scalar("train/" + name, meter.avg, n_iter)
            self.write_scalar("train/lr", self.get_current_lr(), n_iter)

            if self.batch_idx + 1 < self.num_batches:
                self.check_stop(self.epoch, self.batch_idx + 1)
                self._maybe_save_resume()
            end = time.time()
        self._epoch_losses = None

    def parse_batch_train(self, batch):
        input = batch["img"]
        label = batch["label"]
        domain = batch["domain"]
        input = input.to(self.device)
        label = label.to(self.device)
        domain = domain.to(self.device)
        return input, label, domain
