"""Shared machinery of the CoOp-style dataset readers.

Every reader follows the same pipeline, implemented once in :class:`SplitJsonDataset`:

1. resolve ``<DATASET.ROOT>/<folder>`` and its image folder (missing -> :class:`DataNotFoundError`);
2. read the fixed train/val/test split from ``split_zhou_<Name>.json`` (``[relative_path, label, classname]``
   triples), or build it from the raw annotation files with :meth:`SplitJsonDataset.build_split` and save it;
3. with ``DATASET.NUM_SHOTS >= 1``: load or create the few-shot cache
   ``<dataset_dir>/split_fewshot/shot_<K>-seed_<SEED>.pkl`` (K shots per class for train, ``min(K, 4)`` for val);
4. keep all / base / new classes (``DATASET.SUBSAMPLE_CLASSES``), relabelled from 0.

The module-level helpers (:func:`read_split`, :func:`save_split`, :func:`split_trainval`,
:func:`read_and_split_data`, :func:`subsample_classes`, :func:`load_or_create_fewshot`, ...) are usable on their
own by readers that do not fit the pattern (ImageNet and its variants).

Few-shot caches are pickles of ``dassl.data.datasets.base_dataset.Datum`` objects with absolute image paths, the
format written by upstream Dassl/CoOp. They are read with a restricted unpickler that only resolves that class
(never arbitrary globals). If the dataset folder has moved since the cache was written, the cached paths are
re-rooted under the current dataset folder (always: a path outside the current folder is never followed, even when
the old copy still exists); a cache whose images cannot be found there is rebuilt with a warning. Creating a cache
leaves Python's ``random`` state as it was, and evaluations never write one (:func:`set_fewshot_cache_writable`).
"""
from __future__ import annotations

import io
import json
import logging
import math
import os
import pickle
import random
import re
from collections import defaultdict
from contextlib import contextmanager
from typing import Any, ClassVar, Iterator, Mapping, Sequence

from dassl.data import cache_policy as _cache_policy
from dassl.data.datasets.base_dataset import DatasetBase, Datum
from dassl.utils.errors import ConfigError, DataNotFoundError, UsageError
from dassl.utils.tools import atomic_open, listdir_nohidden, read_json, write_json

logger = logging.getLogger(__name__)

__all__ = [
    "DOCS_FILE",
    "SUBSAMPLE_CHOICES",
    "DataFormatError",
    "SplitJsonDataset",
    "check_subsample",
    "docs_hint",
    "fewshot_cache_path",
    "listdir_nohidden",
    "load_datum_pickle",
    "load_or_create_fewshot",
    "make_datum",
    "read_and_split_data",
    "read_json",
    "read_split",
    "require_dir",
    "require_file",
    "resolve_root",
    "save_datum_pickle",
    "save_split",
    "split_per_class",
    "split_trainval",
    "subsample_classes",
    "write_json",
]

DOCS_FILE = "DATASETS.md"
SUBSAMPLE_CHOICES = ("all", "base", "new")
# Above this many items a cached list's image paths are checked on an evenly spaced sample (ImageNet's
# preprocessed.pkl holds 1.33M paths); below it every path is checked.
_FULL_CHECK_LIMIT = 20000
_SAMPLE_SIZE = 2000
_DATUM_KEYS = frozenset({"_impath", "_label", "_domain", "_classname"})


class DataFormatError(UsageError, ValueError):
    """A dataset file exists but its content is unusable (malformed split JSON, unknown class, unsafe pickle)."""


# ---------------------------------------------------------------------------------------------------------------------
# Small helpers (the file helpers read_json / write_json / listdir_nohidden are dassl.utils.tools', re-exported)
# ---------------------------------------------------------------------------------------------------------------------


def docs_hint(anchor: str) -> str:
    """The pointer to a DATASETS.md section, e.g. ``see DATASETS.md#oxfordpets``."""
    return f"see {DOCS_FILE}#{anchor}"


def resolve_root(cfg, anchor: str) -> str:
    """``abspath(expanduser(cfg.DATASET.ROOT))``; an empty value raises :class:`DataNotFoundError`."""
    root = cfg.DATASET.ROOT
    if not root:
        raise DataNotFoundError(
            "DATASET.ROOT is empty: pass --root <folder holding the datasets> (or the option DATASET.ROOT <folder>); "
            + docs_hint(anchor)
        )
    return os.path.abspath(os.path.expanduser(root))


def require_dir(path: str, anchor: str, what: str = "dataset folder") -> str:
    """Return ``path`` if it is a directory, else raise :class:`DataNotFoundError` naming it."""
    if not os.path.isdir(path):
        raise DataNotFoundError(f"{what} not found: {path} ({docs_hint(anchor)})")
    return path


def require_file(path: str, anchor: str, what: str = "file") -> str:
    """Return ``path`` if it is a file, else raise :class:`DataNotFoundError` naming it."""
    if not os.path.isfile(path):
        raise DataNotFoundError(f"{what} not found: {path} ({docs_hint(anchor)})")
    return path


@contextmanager
def _with_docs_hint(anchor: str) -> Iterator[None]:
    """Append the DATASETS.md pointer to any :class:`DataNotFoundError` raised without one (e.g. by ``Datum``)."""
    try:
        yield
    except DataNotFoundError as err:
        if DOCS_FILE in str(err):
            raise
        raise DataNotFoundError(f"{err} ({docs_hint(anchor)})") from err


def make_datum(impath: str, label: int, classname: str, domain: int = 0) -> Datum:
    """A checked :class:`Datum` (the image must exist)."""
    return Datum(impath=impath, label=int(label), domain=domain, classname=classname)


def _raw_datum(impath: str, label: int, domain: int, classname: str) -> Datum:
    """A :class:`Datum` built without the file check (for paths that were already verified)."""
    item = Datum.__new__(Datum)
    item.__dict__.update(_impath=impath, _label=label, _domain=domain, _classname=classname)
    return item


# ---------------------------------------------------------------------------------------------------------------------
# Split JSON files and random splitters
# ---------------------------------------------------------------------------------------------------------------------


def read_split(filepath: str, path_prefix: str) -> tuple[list[Datum], list[Datum], list[Datum]]:
    """Read a ``split_zhou_*.json`` file: ``{"train"|"val"|"test": [[relative_path, label, classname], ...]}``.

    Args:
        filepath: the JSON file.
        path_prefix: folder the relative paths are joined to (the image folder; StanfordCars: the dataset folder).

    Returns:
        (train, val, test) lists of :class:`Datum`.
    """
    logger.info(f"Reading split from {filepath}")
    try:
        split = read_json(filepath)
    except json.JSONDecodeError as err:
        raise DataFormatError(f"{filepath} is not valid JSON ({err}); delete it to rebuild the split") from err
    if not isinstance(split, dict) or any(key not in split for key in ("train", "val", "test")):
        raise DataFormatError(f"{filepath} must be a JSON object with the keys train, val and test")

    fix = "fix the file, or delete it to have the split rebuilt from the raw data where the reader can"

    def convert(key: str) -> list[Datum]:
        out = []
        if not isinstance(split[key], list):
            raise DataFormatError(f"{filepath}: {key} must be a list of [relative_path, label, classname]; {fix}")
        for i, entry in enumerate(split[key]):
            if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)):
                raise DataFormatError(
                    f"{filepath}: {key} entry {i} {entry!r} is not [relative_path, label, classname]; {fix}"
                )
            relpath, label, classname = entry
            if isinstance(label, bool) or not isinstance(label, int):
                raise DataFormatError(f"{filepath}: {key} entry {i} {entry!r} has label {label!r}, not an integer; {fix}")
            if not isinstance(classname, str) or not classname:
                raise DataFormatError(f"{filepath}: {key} entry {i} {entry!r} has no class name string; {fix}")
            out.append(make_datum(os.path.join(path_prefix, relpath), label, classname))
        return out

    train, val, test = convert("train"), convert("val"), convert("test")
    check_split_labels(filepath, train, val, test)
    return train, val, test


def check_split_labels(filepath: str, train: Sequence[Datum], val: Sequence[Datum], test: Sequence[Datum]) -> None:
    """Labels are 0..C-1 with one class name each, every class has training items, and val/test use only the
    training classes (each under its training name).

    Raises:
        DataFormatError: naming the file, the split, the label or class name, and the fix.
    """
    fix = "fix the split file (labels must be 0..C-1, one class name per label, every class in train)"
    names: dict[int, str] = {}
    for item in train:
        if names.setdefault(item.label, item.classname) != item.classname:
            raise DataFormatError(
                f"{filepath}: train label {item.label} is used for two class names, {names[item.label]!r} and "
                f"{item.classname!r}; {fix}"
            )
    if not train:
        return
    n = len(names)
    out_of_range = sorted(lab for lab in names if not 0 <= lab < n)
    if out_of_range:
        missing = sorted(set(range(n)) - set(names))
        raise DataFormatError(
            f"{filepath}: train labels must be 0..{n - 1} for its {n} classes, found label {out_of_range[0]}"
            + (f" while label {missing[0]} has no training items" if missing else "") + f"; {fix}"
        )
    by_name = {name: lab for lab, name in names.items()}
    for key, items in (("val", val), ("test", test)):
        for item in items:
            if item.label in names and names[item.label] == item.classname:
                continue
            if item.classname not in by_name:
                raise DataFormatError(
                    f"{filepath}: {key} item {item.impath} has class {item.classname!r} (label {item.label}), which "
                    f"has no training items (unknown class name); {fix}"
                )
            raise DataFormatError(
                f"{filepath}: {key} item {item.impath} has label {item.label} for class {item.classname!r}, whose "
                f"training label is {by_name[item.classname]}; {fix}"
            )


def save_split(
    train: Sequence[Datum], val: Sequence[Datum], test: Sequence[Datum], filepath: str, path_prefix: str
) -> None:
    """Write a split JSON in the reference format; image paths are stored relative to ``path_prefix``."""
    prefix = path_prefix.rstrip("/\\")

    def convert(items: Sequence[Datum]) -> list[list]:
        out = []
        for item in items:
            relpath = item.impath
            if relpath.startswith(prefix):
                relpath = relpath[len(prefix):].lstrip("/\\")
            out.append([relpath, int(item.label), item.classname])
        return out

    write_json({"train": convert(train), "val": convert(val), "test": convert(test)}, filepath)
    logger.info(f"Saved split to {filepath}")


def split_trainval(trainval: Sequence[Datum], p_val: float = 0.2) -> tuple[list[Datum], list[Datum]]:
    """Split per label: shuffle each label's items and move ``round(n * p_val)`` of them to val.

    Labels are visited in first-seen order and Python's global ``random`` is used, as in the reference, so the
    same seed and item order give the same split.
    """
    logger.info(f"Splitting trainval into {1 - p_val:.0%} train and {p_val:.0%} val")
    by_label: dict[int, list[int]] = defaultdict(list)
    for idx, item in enumerate(trainval):
        by_label[item.label].append(idx)
    train, val = [], []
    for label, idxs in by_label.items():
        n_val = round(len(idxs) * p_val)
        if n_val < 1:
            raise DataFormatError(
                f"class {trainval[idxs[0]].classname!r} (label {label}) has {len(idxs)} train+val images, "
                f"too few to hold out {p_val:.0%} for validation"
            )
        random.shuffle(idxs)
        for rank, idx in enumerate(idxs):
            item = trainval[idx]
            copy = _raw_datum(item.impath, item.label, 0, item.classname)
            (val if rank < n_val else train).append(copy)
    return train, val


def split_per_class(
    groups: Sequence[tuple[int, str, list[str]]], p_trn: float = 0.5, p_val: float = 0.2
) -> tuple[list[Datum], list[Datum], list[Datum]]:
    """Randomly split each class's images into ``round(p_trn*n)`` train, ``round(p_val*n)`` val and the rest test.

    Args:
        groups: ``(label, classname, image_paths)`` per class, in the order classes are processed (this order and
            the order of ``image_paths`` fix which random numbers each class consumes).
    """
    logger.info(f"Splitting into {p_trn:.0%} train, {p_val:.0%} val, and {1 - p_trn - p_val:.0%} test")
    train, val, test = [], [], []
    for label, classname, impaths in groups:
        impaths = list(impaths)
        random.shuffle(impaths)
        n_total = len(impaths)
        n_train = round(n_total * p_trn)
        n_val = round(n_total * p_val)
        if n_train < 1 or n_val < 1 or n_total - n_train - n_val < 1:
            raise DataFormatError(
                f"class {classname!r} has {n_total} images, too few for a "
                f"{p_trn:.0%}/{p_val:.0%}/{1 - p_trn - p_val:.0%} split"
            )
        train += [make_datum(p, label, classname) for p in impaths[:n_train]]
        val += [make_datum(p, label, classname) for p in impaths[n_train:n_train + n_val]]
        test += [make_datum(p, label, classname) for p in impaths[n_train + n_val:]]
    return train, val, test


def read_and_split_data(
    image_dir: str,
    p_trn: float = 0.5,
    p_val: float = 0.2,
    ignored: Sequence[str] = (),
    new_cnames: Mapping[str, str] | None = None,
) -> tuple[list[Datum], list[Datum], list[Datum]]:
    """Build a random split from a folder-per-class layout.

    Class folders (minus ``ignored``) are sorted and numbered 0..n-1; the label is assigned before the optional
    renaming through ``new_cnames``. Images inside a folder are listed in sorted order before shuffling (the
    reference used ``os.listdir`` order, which depends on the filesystem).
    """
    ignored = set(ignored)
    categories = sorted(
        name for name in listdir_nohidden(image_dir)
        if name not in ignored and os.path.isdir(os.path.join(image_dir, name))
    )
    groups = []
    for label, category in enumerate(categories):
        category_dir = os.path.join(image_dir, category)
        impaths = [
            os.path.join(category_dir, name) for name in listdir_nohidden(category_dir, sort=True)
            if os.path.isfile(os.path.join(category_dir, name))
        ]
        classname = new_cnames.get(category, category) if new_cnames else category
        groups.append((label, classname, impaths))
    return split_per_class(groups, p_trn=p_trn, p_val=p_val)


# ---------------------------------------------------------------------------------------------------------------------
# Base-to-new class split
# ---------------------------------------------------------------------------------------------------------------------


def check_subsample(value: Any) -> str:
    """Validate ``DATASET.SUBSAMPLE_CLASSES`` (raises :class:`ConfigError` naming the key)."""
    if value not in SUBSAMPLE_CHOICES:
        raise ConfigError(f"DATASET.SUBSAMPLE_CLASSES must be one of {', '.join(SUBSAMPLE_CHOICES)}, got {value!r}")
    return value


def subsample_classes(*splits: Sequence[Datum], subsample: str = "all") -> tuple[list[Datum], ...]:
    """Keep the base or new half of the classes (the reference's ``OxfordPets.subsample_classes``).

    The label set of the FIRST split is sorted; with ``m = ceil(n / 2)``, ``base`` keeps ``labels[:m]`` and ``new``
    keeps ``labels[m:]``. Every split is filtered to those labels, which are renumbered 0..len-1 in sorted order;
    items are rebuilt as fresh :class:`Datum` objects with domain 0 and the class name kept.

    Returns:
        One list per input split (the inputs themselves for ``all``).
    """
    check_subsample(subsample)
    if subsample == "all":
        return tuple(splits)
    labels = sorted({item.label for item in splits[0]})
    m = math.ceil(len(labels) / 2)
    if subsample == "base":
        logger.info("SUBSAMPLE BASE CLASSES!")
        selected = labels[:m]
    else:
        logger.info("SUBSAMPLE NEW CLASSES!")
        selected = labels[m:]
    relabel = {old: new for new, old in enumerate(selected)}
    return tuple(
        [_raw_datum(item.impath, relabel[item.label], 0, item.classname) for item in split if item.label in relabel]
        for split in splits
    )


# ---------------------------------------------------------------------------------------------------------------------
# Pickled Datum lists (few-shot caches, ImageNet's preprocessed.pkl)
# ---------------------------------------------------------------------------------------------------------------------


class _DatumUnpickler(pickle.Unpickler):
    """Unpickler that resolves only Dassl's ``Datum`` class; any other global is refused."""

    _allowed = {("dassl.data.datasets.base_dataset", "Datum"): Datum}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed (only Datum objects)") from None


class _CorruptCache(Exception):
    """Internal: the cache is unreadable or has an unexpected structure (it will be rebuilt)."""


def _load_datum_lists(path: str, keys: Sequence[str]) -> dict[str, list[Datum]]:
    with open(path, "rb") as f:
        payload = f.read()
    try:
        obj = _DatumUnpickler(io.BytesIO(payload)).load()
    except pickle.UnpicklingError as err:
        if "is not allowed" in str(err):
            raise DataFormatError(
                f"refusing to load {path}: {err}. It is not a few-shot cache written by this code or by Dassl; "
                "inspect it and delete it to have it rebuilt"
            ) from err
        raise _CorruptCache(str(err)) from err
    except Exception as err:  # truncated or otherwise damaged file
        raise _CorruptCache(f"{type(err).__name__}: {err}") from err
    if not isinstance(obj, dict):
        raise _CorruptCache(f"expected a dict, got {type(obj).__name__}")
    out = {}
    for key in keys:
        items = obj.get(key)
        if not isinstance(items, list):
            raise _CorruptCache(f'missing list "{key}"')
        for item in items:
            state = getattr(item, "__dict__", None)
            if (
                not isinstance(item, Datum)
                or set(state) != _DATUM_KEYS
                or not isinstance(state["_impath"], str)
                or not isinstance(state["_classname"], str)
                or not isinstance(state["_label"], int)
                or not isinstance(state["_domain"], int)
            ):
                raise _CorruptCache(f'"{key}" holds an item that is not a valid Datum')
        out[key] = items
    return out


def _sample(items: Sequence[Datum]) -> Sequence[Datum]:
    if len(items) <= _FULL_CHECK_LIMIT:
        return items
    step = len(items) / _SAMPLE_SIZE
    return [items[int(i * step)] for i in range(_SAMPLE_SIZE)] + [items[-1]]


def _all_exist(items: Sequence[Datum]) -> bool:
    return all(os.path.isfile(item.impath) for item in _sample(items))


def _all_under(items: Sequence[Datum], dataset_dir: str) -> bool:
    """Every item's path lies inside ``dataset_dir`` (string prefix on normalised absolute paths)."""
    prefix = os.path.join(os.path.normpath(os.path.abspath(dataset_dir)), "")
    return all(os.path.normpath(item.impath).startswith(prefix) for item in items)


def _remap_items(items: Sequence[Datum], dataset_dir: str) -> list[Datum] | None:
    """Re-root cached paths under ``dataset_dir`` by locating its folder name inside each old path.

    Returns the remapped list, or None when some image cannot be found under ``dataset_dir``.
    """
    folder = os.path.basename(os.path.normpath(dataset_dir))
    known_prefixes: list[str] = []  # old "<...>/<folder>" prefixes that resolved for earlier items
    out = []
    for item in items:
        old = item.impath
        new = None
        for prefix in known_prefixes:
            if old.startswith(prefix) and old[len(prefix):len(prefix) + 1] in ("/", "\\"):
                new = os.path.join(dataset_dir, *re.split(r"[\\/]+", old[len(prefix) + 1:]))
                break
        if new is None:
            parts = re.split(r"([\\/]+)", old)  # keeps separators so prefixes can be rebuilt exactly
            names = parts[0::2]
            for i in range(len(names) - 2, -1, -1):  # the right-most occurrence that resolves wins
                if names[i] != folder:
                    continue
                candidate = os.path.join(dataset_dir, *[n for n in names[i + 1:] if n])
                if os.path.isfile(candidate):
                    new = candidate
                    known_prefixes.append("".join(parts[: 2 * i + 1]))
                    break
            if new is None:
                return None
        out.append(_raw_datum(new, item.label, item.domain, item.classname))
    return out if _all_exist(out) else None


def load_datum_pickle(path: str, dataset_dir: str, keys: Sequence[str]) -> dict[str, list[Datum]] | None:
    """Load a pickle of Datum lists (``{key: [Datum, ...]}``) safely, re-rooting moved image paths.

    Args:
        path: the pickle file.
        dataset_dir: the dataset's current folder (its base name is searched for in cached absolute paths).
        keys: the lists the file must hold.

    Returns:
        The lists, or None (after logging a warning) when the file is damaged or its images cannot be found; the
        caller then rebuilds it.

    Raises:
        DataFormatError: the pickle references anything other than Datum (it is never executed).
    """
    try:
        data = _load_datum_lists(path, keys)
    except _CorruptCache as err:
        logger.warning(f"WARNING: cannot use {path} ({err}); it will be rebuilt")
        return None
    for key, items in data.items():
        if _all_under(items, dataset_dir) and _all_exist(items):
            continue
        # paths outside the current dataset folder (a moved or copied root) are never followed, even when the
        # old copy still exists: they are re-rooted under dataset_dir, or the file is rebuilt
        remapped = _remap_items(items, dataset_dir)
        if remapped is None:
            missing = next((it.impath for it in items if not os.path.isfile(it.impath)), "?")
            logger.warning(
                f"WARNING: the images listed in {path} were not found (e.g. {missing}), not even after re-rooting "
                f"them under {dataset_dir}; the file will be rebuilt (for a few-shot cache: new images are sampled)"
            )
            return None
        logger.info(f"Remapped the {len(items)} cached {key} image paths of {path} to {dataset_dir}")
        data[key] = remapped
    return data


def save_datum_pickle(obj: dict[str, list[Datum]], path: str) -> bool:
    """Pickle ``obj`` with the highest protocol, atomically. Returns False (with a warning) if it cannot write."""
    try:
        payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        with atomic_open(path, "wb") as f:
            f.write(payload)
    except OSError as err:
        logger.warning(f"WARNING: could not write {path} ({err}); continuing without caching")
        return False
    return True


def fewshot_cache_path(dataset_dir: str, num_shots: int, seed: int) -> str:
    """``<dataset_dir>/split_fewshot/shot_<K>-seed_<SEED>.pkl``."""
    return os.path.join(dataset_dir, "split_fewshot", f"shot_{num_shots}-seed_{seed}.pkl")


def load_or_create_fewshot(
    dataset: DatasetBase,
    dataset_dir: str,
    num_shots: int,
    seed: int,
    train: Sequence[Datum],
    val: Sequence[Datum] | None = None,
) -> tuple[list[Datum], list[Datum] | None]:
    """Few-shot train (K per class) and val (``min(K, 4)`` per class), cached per (K, seed).

    The cache holds ``{"train": [...], "val": [...]}`` (no ``"val"`` when ``val`` is None, as for ImageNet).
    Sampling uses ``dataset.generate_fewshot_dataset`` and Python's global ``random``.
    """
    path = fewshot_cache_path(dataset_dir, num_shots, seed)
    keys = ("train",) if val is None else ("train", "val")
    if os.path.isfile(path):
        logger.info(f"Loading preprocessed few-shot data from {path}")
        data = load_datum_pickle(path, dataset_dir, keys)
        if data is not None:
            return data["train"], data.get("val")
    # Sampling draws from the global ``random`` (so the subset is the reference's for this seed), but the state is
    # restored afterwards: a run that creates the cache continues with exactly the random stream of a run that
    # finds it (PAN samples positions with ``random.sample``), so results never depend on the cache existing.
    with preserved_random_state():
        train = dataset.generate_fewshot_dataset(train, num_shots=num_shots)
        data = {"train": train}
        if val is not None:
            val = dataset.generate_fewshot_dataset(val, num_shots=min(num_shots, 4))
            data["val"] = val
    if not _cache_policy.fewshot_cache_writable():
        logger.info(f"Few-shot subset sampled in memory, not cached (evaluation never writes {path})")
        return train, val
    logger.info(f"Saving preprocessed few-shot data to {path}")
    save_datum_pickle(data, path)
    return train, val


@contextmanager
def preserved_random_state() -> Iterator[None]:
    """Run the body, then put Python's global ``random`` back into the state it had before."""
    state = random.getstate()
    try:
        yield
    finally:
        random.setstate(state)


#: re-exported: ``set_fewshot_cache_writable(False)`` while evaluating (see ``dassl.data.cache_policy``)
set_fewshot_cache_writable = _cache_policy.set_fewshot_cache_writable


# ---------------------------------------------------------------------------------------------------------------------
# The common reader
# ---------------------------------------------------------------------------------------------------------------------


class SplitJsonDataset(DatasetBase):
    """Base of the CoOp-style readers: folder checks, split JSON, few-shot cache, base/new subsampling.

    A subclass sets the class attributes and, when the reference can build the split from raw annotations,
    overrides :meth:`build_split`. Readers without a JSON (``split_file = None``) return their split from
    :meth:`build_split` every time. Readers with another source override :meth:`load_data`.

    Instance attributes: ``dataset_dir``, ``image_dir``, ``split_path`` (or None) and ``split_fewshot_dir``.
    """

    folder: ClassVar[str] = ""  # dataset folder under DATASET.ROOT
    image_folder: ClassVar[str] = ""  # image folder under dataset_dir ("" = dataset_dir); split paths are relative
    split_file: ClassVar[str | None] = None  # e.g. "split_zhou_OxfordPets.json"; None = no JSON
    required_dirs: ClassVar[tuple[str, ...]] = ()  # further folders under dataset_dir that must exist
    docs_anchor: ClassVar[str] = ""  # DATASETS.md section; "" = lower-cased class name
    supports_fewshot: ClassVar[bool] = True  # False: NUM_SHOTS is ignored (test-only sets)
    val_is_test: ClassVar[bool] = False  # True: a reader without val uses test as val (ImageNet)
    test_only: ClassVar[bool] = False  # True: train_x = test = the data, no val (ImageNet variants)

    def __init__(self, cfg) -> None:
        anchor = self.anchor()
        subsample = check_subsample(cfg.DATASET.get("SUBSAMPLE_CLASSES", "all"))
        root = resolve_root(cfg, anchor)
        self.dataset_dir = require_dir(os.path.join(root, self.folder), anchor)
        self.image_dir = os.path.join(self.dataset_dir, self.image_folder) if self.image_folder else self.dataset_dir
        require_dir(self.image_dir, anchor, "image folder")
        for name in self.required_dirs:
            require_dir(os.path.join(self.dataset_dir, name), anchor, "image folder")
        self.split_path = os.path.join(self.dataset_dir, self.split_file) if self.split_file else None
        self.split_fewshot_dir = os.path.join(self.dataset_dir, "split_fewshot")

        with _with_docs_hint(anchor):
            train, val, test = self.load_data()
            num_shots = cfg.DATASET.NUM_SHOTS
            if self.supports_fewshot and num_shots >= 1:
                train, val = load_or_create_fewshot(self, self.dataset_dir, num_shots, cfg.SEED, train, val)
            if self.test_only:
                (train,) = subsample_classes(train, subsample=subsample)
                test = train
            elif val is None:
                train, test = subsample_classes(train, test, subsample=subsample)
            else:
                train, val, test = subsample_classes(train, val, test, subsample=subsample)
            if val is None and self.val_is_test:
                val = test
        super().__init__(train_x=train, val=val, test=test)

    @classmethod
    def check_paths(cls, cfg) -> None:
        """The folders :meth:`__init__` needs exist (run by the pre-flight checks before anything is written)."""
        anchor = cls.anchor()
        root = resolve_root(cfg, anchor)
        dataset_dir = require_dir(os.path.join(root, cls.folder), anchor)
        image_dir = os.path.join(dataset_dir, cls.image_folder) if cls.image_folder else dataset_dir
        require_dir(image_dir, anchor, "image folder")
        for name in cls.required_dirs:
            require_dir(os.path.join(dataset_dir, name), anchor, "image folder")

    @classmethod
    def anchor(cls) -> str:
        """The DATASETS.md anchor of this dataset."""
        return cls.docs_anchor or cls.__name__.lower()

    def path(self, *parts: str) -> str:
        """A path under ``dataset_dir``."""
        return os.path.join(self.dataset_dir, *parts)

    def require_file(self, path: str, what: str = "annotation file") -> str:
        """:func:`require_file` with this dataset's DATASETS.md anchor."""
        return require_file(path, self.anchor(), what)

    def require_dir(self, path: str, what: str = "image folder") -> str:
        """:func:`require_dir` with this dataset's DATASETS.md anchor."""
        return require_dir(path, self.anchor(), what)

    def load_data(self) -> tuple[list[Datum], list[Datum] | None, list[Datum]]:
        """(train, val, test): from the split JSON, else from :meth:`build_split` (then saved as the JSON)."""
        if self.split_path is None:
            return self.build_split()
        if os.path.isfile(self.split_path):
            return read_split(self.split_path, self.image_dir)
        try:
            with preserved_random_state():  # like the few-shot cache: creating the split file consumes no randomness
                train, val, test = self.build_split()
        except DataNotFoundError as err:
            if str(err).startswith("split file"):
                raise
            raise DataNotFoundError(
                f"split file {self.split_path} not found, and building it from the raw files failed: {err}"
            ) from err
        save_split(train, val, test, self.split_path, self.image_dir)
        return train, val, test

    def build_split(self) -> tuple[list[Datum], list[Datum] | None, list[Datum]]:
        """Build the split from raw annotations. Default: none possible, so the split file is required."""
        raise DataNotFoundError(f"split file not found: {self.split_path} ({docs_hint(self.anchor())})")
