"""Unreadable images: a cheap header check of every split image at start-up, and a clear error (or a counted
skip with ``DATASET.SKIP_BAD_IMAGES``) when an image fails to decode while a loader reads it.

The start-up check opens each file with PIL, which parses the header only (format, size, mode; no pixel decode),
so zero-byte, random-bytes and most damaged files are caught before any training; a file whose header is intact
but whose pixel data is truncated is caught when it is read (:class:`~dassl.utils.errors.BadImageError` naming the
file and its split, exit code 2; checkpoints already written are kept, so the run resumes once the file is fixed).
``bench/image_check.py`` measures the cost (see bench/RESULTS.md).
"""
from __future__ import annotations

import logging
import sys
from typing import Sequence

from dassl.utils.errors import BadImageError

logger = logging.getLogger(__name__)

__all__ = ["header_error", "check_split_images", "bad_image_message"]

#: How many bad paths are listed in a log message / error.
_LIST = 10


def header_error(path: str) -> str | None:
    """None if PIL can parse the header of ``path``; else a short reason."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open(path, "rb") as f:
            with Image.open(f) as img:
                if img.size[0] < 1 or img.size[1] < 1:
                    return f"image size {img.size}"
    except FileNotFoundError:
        return "file not found"
    except UnidentifiedImageError:
        return "not an image file PIL can identify (empty, random bytes or unknown format)"
    except (OSError, ValueError, SyntaxError) as e:  # PIL raises SyntaxError for some broken headers
        return f"{type(e).__name__}: {e}"
    return None


def bad_image_message(path: str, split: str, reason: str, count: int = 1) -> str:
    more = f" (and {count - 1} more)" if count > 1 else ""
    return (
        f"unreadable image in the {split} split: {path}{more} ({reason}); replace or remove the file (then delete "
        "the few-shot caches in split_fewshot/ that list it), or set DATASET.SKIP_BAD_IMAGES True to skip and "
        "count such files"
    )


def check_split_images(items: Sequence, split: str, skip: bool) -> list:
    """Header-check every item of a split (``Datum``-like, ``.impath``).

    Returns:
        ``items`` unchanged when all are readable; with ``skip`` the readable items (the rest logged with paths).

    Raises:
        BadImageError: an unreadable image and ``skip`` is False (names the first file and the count).
    """
    from tqdm import tqdm

    bad: list[tuple[int, str]] = []
    cache: dict[str, str | None] = {}
    bar = tqdm(items, desc=f"check {split} images", file=sys.stderr, leave=False, disable=None,
               dynamic_ncols=True, mininterval=0.5)
    for i, item in enumerate(bar):
        path = item.impath
        if path not in cache:
            cache[path] = header_error(path)
        if cache[path] is not None:
            bad.append((i, path))
    if not bad:
        return items
    first = bad[0][1]
    if not skip:
        raise BadImageError(bad_image_message(first, split, cache[first], len(bad)))
    paths = sorted({p for _, p in bad})
    shown = "; ".join(f"{p} ({cache[p]})" for p in paths[:_LIST]) + (" ..." if len(paths) > _LIST else "")
    logger.warning(f"WARNING: skipped {len(bad)} unreadable image(s) of the {split} split "
                   f"(DATASET.SKIP_BAD_IMAGES): {shown}")
    for p in paths[_LIST:]:
        logger.info(f"skipped unreadable image ({split}): {p} ({cache[p]})")
    drop = {i for i, _ in bad}
    return [item for i, item in enumerate(items) if i not in drop]
