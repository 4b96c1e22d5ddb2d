"""Evaluators (Dassl ``dassl.evaluation``): ``Classification`` prints the ``=> result`` block.

Printed block (an interface: ``tools/parse_test_res.py`` and sweep scripts read it)::

    => result
    * total: 3,669
    * correct: 3,210
    * accuracy: 87.5%
    * error: 12.5%
    * macro_f1: 87.3%
"""
from __future__ import annotations

import logging
import os.path as osp
from collections import OrderedDict, defaultdict

import numpy as np
import torch

from dassl.utils.registry import Registry

logger = logging.getLogger(__name__)

__all__ = ["EVALUATOR_REGISTRY", "EvaluatorBase", "Classification", "build_evaluator"]

EVALUATOR_REGISTRY = Registry("EVALUATOR")


class EvaluatorBase:
    """Base evaluator: ``reset()``, ``process(output, gt)``, ``evaluate() -> OrderedDict``."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def reset(self) -> None:
        raise NotImplementedError

    def process(self, mo, gt) -> None:
        raise NotImplementedError

    def evaluate(self) -> OrderedDict:
        raise NotImplementedError


def macro_f1_score(y_true, y_pred) -> float:
    """Macro-averaged F1 over the classes present in ``y_true``, bit-identical to
    ``sklearn.metrics.f1_score(y_true, y_pred, average="macro", labels=np.unique(y_true))`` (the same float64
    operations: per class ``2 tp / (true + pred)``, 0 for an empty class, then the mean) without importing
    scikit-learn (about 1.5 s of start-up). ``tests/test_engine_eval_f1.py`` compares the two."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    labels = np.unique(y_true)
    if labels.size == 0:
        return float("nan")
    n_labels = labels.size
    true_idx = np.searchsorted(labels, y_true)
    true_sum = np.bincount(true_idx, minlength=n_labels)
    pred_idx = np.minimum(np.searchsorted(labels, y_pred), n_labels - 1)
    pred_sum = np.bincount(pred_idx[labels[pred_idx] == y_pred], minlength=n_labels)  # predictions of other labels
    tp_sum = np.bincount(true_idx[y_true == y_pred], minlength=n_labels)  # do not count
    numerator = 2 * tp_sum.astype(np.float64)
    denominator = true_sum.astype(np.float64) + pred_sum.astype(np.float64)
    mask = denominator == 0
    denominator[mask] = 1
    f1 = numerator / denominator
    f1[mask] = 0.0
    return float(np.mean(f1))


@EVALUATOR_REGISTRY.register()
class Classification(EvaluatorBase):
    """Top-1 accuracy, error rate and macro-F1 (over the classes present in the ground truth).

    After :meth:`evaluate`, ``self.total`` and ``self.correct`` hold the counts.
    """

    def __init__(self, cfg, lab2cname: dict[int, str] | None = None, **kwargs) -> None:
        super().__init__(cfg)
        self._lab2cname = lab2cname
        self._per_class_res: dict[int, list[bool]] | None = None
        self.reset()

    def reset(self) -> None:
        self._correct = 0
        self._total = 0
        self._y_true: list[int] = []
        self._y_pred: list[int] = []
        if self.cfg.TEST.PER_CLASS_RESULT:
            self._per_class_res = defaultdict(list)

    @property
    def total(self) -> int:
        return self._total

    @property
    def correct(self) -> int:
        return self._correct

    def process(self, mo: torch.Tensor, gt: torch.Tensor) -> None:
        """Accumulate a batch: ``mo`` logits ``[B, C]``, ``gt`` labels ``[B]``."""
        pred = mo.max(1)[1]
        matches = pred.eq(gt).float()
        self._correct += int(matches.sum().item())
        self._total += gt.shape[0]
        self._y_true.extend(gt.data.cpu().numpy().tolist())
        self._y_pred.extend(pred.data.cpu().numpy().tolist())
        if self._per_class_res is not None:
            for i, label in enumerate(gt):
                self._per_class_res[int(label.item())].append(bool(matches[i].item()))

    def evaluate(self) -> OrderedDict:
        results: OrderedDict = OrderedDict()
        acc = 100.0 * self._correct / self._total if self._total else 0.0
        err = 100.0 - acc
        if self._total:
            macro_f1 = 100.0 * macro_f1_score(self._y_true, self._y_pred)
        else:
            macro_f1 = 0.0
        results["accuracy"] = acc
        results["error_rate"] = err
        results["macro_f1"] = float(macro_f1)

        logger.info(
            "=> result\n"
            f"* total: {self._total:,}\n"
            f"* correct: {self._correct:,}\n"
            f"* accuracy: {acc:.1f}%\n"
            f"* error: {err:.1f}%\n"
            f"* macro_f1: {macro_f1:.1f}%"
        )

        if self._per_class_res is not None:
            labels = sorted(self._per_class_res.keys())
            lines = ["=> per-class result"]
            accs = []
            for label in labels:
                classname = self._lab2cname[label] if self._lab2cname and label in self._lab2cname else str(label)
                res = self._per_class_res[label]
                correct = sum(res)
                total = len(res)
                acc_c = 100.0 * correct / total
                accs.append(acc_c)
                lines.append(
                    f"* class: {label} ({classname})\ttotal: {total:,}\tcorrect: {correct:,}\tacc: {acc_c:.1f}%"
                )
            mean_acc = float(np.mean(accs)) if accs else 0.0
            lines.append(f"* average: {mean_acc:.1f}%")
            logger.info("\n".join(lines))
            results["perclass_accuracy"] = mean_acc

        if self.cfg.TEST.COMPUTE_CMAT:
            from sklearn.metrics import confusion_matrix

            cmat = confusion_matrix(self._y_true, self._y_pred, normalize="true")
            save_path = osp.join(self.cfg.OUTPUT_DIR, "cmat.pt")
            torch.save(torch.from_numpy(np.asarray(cmat, dtype=np.float64)), save_path)  # weights_only-loadable
            logger.info(f"Confusion matrix is saved to {save_path}")

        return results


def build_evaluator(cfg, **kwargs) -> EvaluatorBase:
    """Instantiate ``EVALUATOR_REGISTRY[cfg.TEST.EVALUATOR](cfg, **kwargs)`` (``lab2cname`` passes through)."""
    from dassl.utils.errors import ConfigError

    name = cfg.TEST.EVALUATOR
    if name not in EVALUATOR_REGISTRY:
        raise ConfigError(f"TEST.EVALUATOR: {EVALUATOR_REGISTRY.unknown_message(name)}")
    if cfg.VERBOSE:
        logger.info(f"Loading evaluator: {name}")
    return EVALUATOR_REGISTRY.get(name)(cfg, **kwargs)
