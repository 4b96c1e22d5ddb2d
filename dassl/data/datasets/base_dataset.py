"""``Datum`` and ``DatasetBase``: the dataset containers every reader builds (Dassl-compatible).

Few-shot caches written by upstream Dassl pickle ``dassl.data.datasets.base_dataset.Datum`` objects
with the attributes ``_impath``, ``_label``, ``_domain`` and ``_classname``; this module keeps that
class path and those attribute names so such caches unpickle unchanged.
"""
from __future__ import annotations

import logging
import os
import random
from collections import defaultdict
from typing import Sequence

from dassl.utils.errors import DataNotFoundError

logger = logging.getLogger(__name__)


class Datum:
    """One labelled image.

    Args:
        impath: image path (must exist).
        label: class label.
        domain: domain label.
        classname: class name.
    """

    def __init__(self, impath: str = "", label: int = 0, domain: int = 0, classname: str = "") -> None:
        if not isinstance(impath, str):
            raise TypeError(f"Datum.impath must be a str, got {type(impath).__name__}")
        if not os.path.isfile(impath):
            raise DataNotFoundError(f"image file not found: {impath}")
        self._impath = impath
        self._label = label
        self._domain = domain
        self._classname = classname

    @property
    def impath(self) -> str:
        return self._impath

    @property
    def label(self) -> int:
        return self._label

    @property
    def domain(self) -> int:
        return self._domain

    @property
    def classname(self) -> str:
        return self._classname

    def __repr__(self) -> str:
        return (
            f"Datum(impath={self._impath!r}, label={self._label}, domain={self._domain}, "
            f"classname={self._classname!r})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Datum) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash((self._impath, self._label, self._domain, self._classname))


class DatasetBase:
    """A dataset = lists of :class:`Datum` for train_x, train_u, val and test.

    Class information (``num_classes``, ``lab2cname``, ``classnames``) is derived from ``train_x``,
    as in Dassl.
    """

    dataset_dir = ""  # the directory where the dataset is stored
    domains: list[str] = []  # string names of all domains

    def __init__(self, train_x=None, train_u=None, val=None, test=None) -> None:
        self._train_x = train_x
        self._train_u = train_u
        self._val = val
        self._test = test
        self._num_classes = self.get_num_classes(train_x)
        self._lab2cname, self._classnames = self.get_lab2cname(train_x)

    @property
    def train_x(self):
        return self._train_x

    @property
    def train_u(self):
        return self._train_u

    @property
    def val(self):
        return self._val

    @property
    def test(self):
        return self._test

    @property
    def lab2cname(self) -> dict[int, str]:
        return self._lab2cname

    @property
    def classnames(self) -> list[str]:
        return self._classnames

    @property
    def num_classes(self) -> int:
        return self._num_classes

    @staticmethod
    def get_num_classes(data_source: Sequence[Datum] | None) -> int:
        """Number of classes = max label + 1 (Dassl's rule)."""
        if not data_source:
            return 0
        return max(item.label for item in data_source) + 1

    @staticmethod
    def get_lab2cname(data_source: Sequence[Datum] | None) -> tuple[dict[int, str], list[str]]:
        """Label -> class-name mapping and the class names ordered by label."""
        if not data_source:
            return {}, []
        mapping = {item.label: item.classname for item in data_source}
        labels = sorted(mapping)
        return mapping, [mapping[label] for label in labels]

    def check_input_domains(self, source_domains, target_domains) -> None:
        self.is_input_domain_valid(source_domains)
        self.is_input_domain_valid(target_domains)

    def is_input_domain_valid(self, input_domains) -> None:
        for domain in input_domains:
            if domain not in self.domains:
                raise ValueError(f"Input domain must belong to {self.domains}, but got [{domain}]")

    def generate_fewshot_dataset(self, *data_sources, num_shots: int = -1, repeat: bool = False):
        """Sample ``num_shots`` items per class from each source (Dassl semantics).

        Items are grouped by label in first-seen order; a class with at least K items gets
        ``random.sample(items, K)``; a smaller class keeps all items (or ``random.choices`` with
        ``repeat``). Randomness comes from Python's global ``random`` only.

        Returns:
            One list when one source was given, else a list of lists.
        """
        if num_shots < 1:
            if len(data_sources) == 1:
                return data_sources[0]
            return data_sources

        logger.info(f"Creating a {num_shots}-shot dataset")
        output = []
        for data_source in data_sources:
            tracker = self.split_dataset_by_label(data_source)
            dataset = []
            for _label, items in tracker.items():
                if len(items) >= num_shots:
                    sampled = random.sample(items, num_shots)
                elif repeat:
                    sampled = random.choices(items, k=num_shots)
                else:
                    sampled = items
                dataset.extend(sampled)
            output.append(dataset)

        if len(output) == 1:
            return output[0]
        return output

    @staticmethod
    def split_dataset_by_label(data_source: Sequence[Datum]) -> dict[int, list[Datum]]:
        """Group items by label (insertion order = first-seen order)."""
        output: dict[int, list[Datum]] = defaultdict(list)
        for item in data_source:
            output[item.label].append(item)
        return output

    @staticmethod
    def split_dataset_by_domain(data_source: Sequence[Datum]) -> dict[int, list[Datum]]:
        """Group items by domain (insertion order = first-seen order)."""
        output: dict[int, list[Datum]] = defaultdict(list)
        for item in data_source:
            output[item.domain].append(item)
        return output
