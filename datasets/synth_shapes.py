"""SynthShapes: an embedded benchmark of coloured shapes, generated on first use (no download needed).

20 classes named "<colour> <shape>" (``synthgen.SYNTH_SHAPES_CLASSES``; labels 0-9 are the base half, 10-19 the
new half). Each image shows one shape of its class with random nuisance attributes: texture (plain, striped,
dotted, checkered), size (small/large), position and background (a contrasting colour or noise). The images are
rendered under "dusk" lighting (warm, dim, faded colours), a domain shift from the "studio" images the TinySynth
backbone was pretrained on, and eight classes are (colour, shape) pairs that TinySynth never saw during
pretraining (``synthgen.HELDOUT_PAIRS``); zero-shot accuracy is therefore well above chance but far from the
few-shot prompt-learning accuracy.

On disk it has the layout of the real datasets::

    <DATASET.ROOT>/synth_shapes/
        images/<colour>_<shape>/<n>.png        32x32 RGB
        split_zhou_SynthShapes.json            {"train"|"val"|"test": [[relative_path, label, classname], ...]}
        generation.json                        the generator's parameters (the "complete" marker)
        split_fewshot/shot_<K>-seed_<S>.pkl    few-shot caches (datasets.utils)

The folder is generated deterministically (fixed generator seed) into a temporary sibling folder that is then
renamed into place, so a reader never sees a partial dataset; an existing complete folder is reused. An empty
``DATASET.ROOT`` means ``$PROMPTCLIP_DATA``, else ``~/.cache/promptclip/data``.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time

import numpy as np
from PIL import Image

from dassl.data.datasets import DATASET_REGISTRY, Datum

from . import synthgen
from .utils import SplitJsonDataset, read_split, write_json

logger = logging.getLogger(__name__)

__all__ = ["SynthShapes", "default_root", "generate_synth_shapes", "synth_shapes_classnames"]

FOLDER = "synth_shapes"
IMAGE_FOLDER = "images"
SPLIT_FILE = "split_zhou_SynthShapes.json"
MARKER_FILE = "generation.json"
#: Bumped whenever the generator's output changes, so stale folders are regenerated.
GENERATOR_VERSION = 1
DEFAULT_SEED = 2024
DEFAULT_SIZES = {"train": 60, "val": 20, "test": 40}
DEFAULT_IMAGE_SIZE = 32
LIGHTING = "dusk"
ENV_DATA = "PROMPTCLIP_DATA"


def default_root() -> str:
    """``$PROMPTCLIP_DATA`` if set, else ``~/.cache/promptclip/data`` (absolute)."""
    root = os.environ.get(ENV_DATA) or os.path.join("~", ".cache", "promptclip", "data")
    return os.path.abspath(os.path.expanduser(root))


def synth_shapes_classnames() -> list[str]:
    """The class names in label order, e.g. ``["red circle", "blue square", ...]``."""
    return [f"{colour} {shape}" for colour, shape in synthgen.SYNTH_SHAPES_CLASSES]


def _generation_params(seed: int, sizes: dict[str, int], image_size: int) -> dict:
    return {
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "sizes": {k: int(sizes[k]) for k in ("train", "val", "test")},
        "image_size": int(image_size),
        "lighting": LIGHTING,
        "classes": synth_shapes_classnames(),
    }


def _is_complete(dataset_dir: str, params: dict) -> bool:
    marker = os.path.join(dataset_dir, MARKER_FILE)
    if not (os.path.isfile(marker) and os.path.isfile(os.path.join(dataset_dir, SPLIT_FILE))):
        return False
    try:
        with open(marker, encoding="utf-8") as f:
            return json.load(f) == params
    except (OSError, ValueError):
        return False


def _render_into(tmp_dir: str, params: dict) -> None:
    """Write every image and the split JSON of ``params`` under ``tmp_dir``."""
    seed, sizes, image_size = params["seed"], params["sizes"], params["image_size"]
    split: dict[str, list[list]] = {"train": [], "val": [], "test": []}
    for label, (colour, shape) in enumerate(synthgen.SYNTH_SHAPES_CLASSES):
        classname = f"{colour} {shape}"
        class_folder = f"{colour}_{shape}"
        os.makedirs(os.path.join(tmp_dir, IMAGE_FOLDER, class_folder))
        n = 0
        for split_name in ("train", "val", "test"):
            for _ in range(sizes[split_name]):
                rng = np.random.default_rng([seed, label, n])  # per-image stream: order-independent, reproducible
                scene = synthgen.sample_scene(rng, colour=colour, shape=shape)
                pixels = synthgen.render_scene(scene, rng, image_size, lighting=params["lighting"])
                relpath = f"{class_folder}/{n}.png"
                Image.fromarray(pixels).save(os.path.join(tmp_dir, IMAGE_FOLDER, relpath), format="PNG")
                split[split_name].append([relpath, label, classname])
                n += 1
    write_json(split, os.path.join(tmp_dir, SPLIT_FILE))
    with open(os.path.join(tmp_dir, MARKER_FILE), "w", encoding="utf-8") as f:
        json.dump(params, f, indent=4)
        f.flush()
        os.fsync(f.fileno())


def generate_synth_shapes(
    root: str,
    *,
    seed: int = DEFAULT_SEED,
    sizes: dict[str, int] | None = None,
    image_size: int = DEFAULT_IMAGE_SIZE,
) -> str:
    """Make sure ``<root>/synth_shapes`` holds the complete dataset for these parameters; generate it if not.

    Generation writes into a temporary folder next to the target and renames it into place. A folder with
    other parameters (or an incomplete one) is replaced. Concurrent callers are safe: the first rename wins and
    the others discard their copy.

    Args:
        root: the datasets root (``DATASET.ROOT``).
        seed: generator seed (the dataset is a pure function of the seed, sizes and image size).
        sizes: images per class for train/val/test (default 60/20/40).
        image_size: image side in pixels.

    Returns:
        The dataset folder ``<root>/synth_shapes``.
    """
    sizes = dict(DEFAULT_SIZES if sizes is None else sizes)
    params = _generation_params(seed, sizes, image_size)
    root = os.path.abspath(os.path.expanduser(root))
    dataset_dir = os.path.join(root, FOLDER)
    if _is_complete(dataset_dir, params):
        return dataset_dir

    os.makedirs(root, exist_ok=True)
    n_images = len(synthgen.SYNTH_SHAPES_CLASSES) * sum(sizes.values())
    logger.info(f"Generating SynthShapes ({n_images} images, seed {seed}) into {dataset_dir}")
    start = time.time()
    tmp_dir = tempfile.mkdtemp(prefix=f".{FOLDER}.tmp-", dir=root)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_dir, 0o777 & ~umask)  # mkdtemp makes it private; the dataset folder should not be
        _render_into(tmp_dir, params)
        if os.path.isdir(dataset_dir) and not _is_complete(dataset_dir, params):
            stale = tempfile.mkdtemp(prefix=f".{FOLDER}.old-", dir=root)
            try:
                os.replace(dataset_dir, os.path.join(stale, FOLDER))
            except FileNotFoundError:
                pass  # someone else moved it meanwhile
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.rename(tmp_dir, dataset_dir)
        except OSError:
            if not _is_complete(dataset_dir, params):  # not a concurrent winner: a real failure
                raise
    finally:
        if os.path.isdir(tmp_dir):
            shutil.rmtree(tmp_dir, ignore_errors=True)
    logger.info(f"Generated SynthShapes in {time.time() - start:.1f}s")
    return dataset_dir


def _with_root(cfg, root: str):
    """A copy of ``cfg`` whose ``DATASET.ROOT`` is ``root`` (the input is left untouched)."""
    cfg = cfg.clone()
    frozen = cfg.is_frozen()
    cfg.defrost()
    cfg.DATASET.ROOT = root
    if frozen:
        cfg.freeze()
    return cfg


@DATASET_REGISTRY.register()
class SynthShapes(SplitJsonDataset):
    """``synth_shapes/images/<colour>_<shape>/<n>.png``: 20 classes x 60/20/40 train/val/test, generated on first use.

    Reads ``DATASET.ROOT`` (empty: :func:`default_root`), ``NUM_SHOTS``, ``SUBSAMPLE_CLASSES`` and ``SEED`` like the
    real readers, through the same split-JSON, few-shot cache and base/new machinery (``datasets.utils``).
    """

    folder = FOLDER
    image_folder = IMAGE_FOLDER
    split_file = SPLIT_FILE
    docs_anchor = "synthshapes"

    @classmethod
    def check_paths(cls, cfg) -> None:
        """Nothing to check before the run: the folder is generated on first use."""

    def __init__(self, cfg) -> None:
        root = cfg.DATASET.ROOT or default_root()
        generate_synth_shapes(root)
        if cfg.DATASET.ROOT != root:
            cfg = _with_root(cfg, root)
        super().__init__(cfg)

    def load_data(self) -> tuple[list[Datum], list[Datum], list[Datum]]:
        return read_split(self.split_path, self.image_dir)
