"""Procedural captioned images: the vocabulary and renderer shared by SynthShapes and TinySynth pretraining.

A scene is one shape with a colour, a texture, a size, a position and a background. Scenes are rendered
into small RGB images with numpy + PIL (anti-aliased by drawing the shape mask at 4x resolution) and
described by short English captions from several templates ("a photo of a small red circle.",
"a striped green square on a blue background.", "there is a large pink star in the middle.").

Everything is deterministic given a ``numpy.random.Generator``; nothing here touches a global RNG.
Every word is a plain English word that CLIP's BPE tokenizer encodes in one or two tokens.

Two things keep zero-shot classification of the SynthShapes benchmark meaningful but imperfect:

- some (colour, shape) pairs are held out of pretraining (:data:`HELDOUT_PAIRS`), so the benchmark classes built
  from them need compositional generalisation;
- the benchmark is rendered under another lighting (``"dusk"``: warm, dim, faded colours) than the pretraining
  images (``"studio"``), a systematic domain shift that few-shot prompt learning can adapt to (like the shift from
  web photos to satellite or texture datasets for the real CLIP).

Example:
    >>> rng = np.random.default_rng(0)
    >>> scene = sample_scene(rng)
    >>> image = render_scene(scene, rng, size=32)  # uint8 [32, 32, 3]
    >>> text = caption_scene(scene, rng)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    "BACKGROUND_NOISY",
    "COLOURS",
    "HELDOUT_PAIRS",
    "LIGHTINGS",
    "POSITIONS",
    "SHAPES",
    "SIZES",
    "SYNTH_SHAPES_CLASSES",
    "TEXTURES",
    "Scene",
    "apply_lighting",
    "caption_fits",
    "caption_scene",
    "caption_with_attributes",
    "render_scene",
    "sample_scene",
    "vocabulary",
]

# ---------------------------------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------------------------------

SHAPES: tuple[str, ...] = (
    "circle", "square", "triangle", "star", "cross", "ring", "hexagon", "diamond", "heart", "moon",
)

#: Named colours and their nominal RGB values (jittered when rendered).
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (245, 220, 40),
    "orange": (250, 140, 20),
    "purple": (135, 50, 175),
    "pink": (250, 140, 200),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
    "gray": (128, 128, 128),
    "brown": (125, 75, 35),
}

TEXTURES: tuple[str, ...] = ("plain", "striped", "dotted", "checkered")
SIZES: tuple[str, ...] = ("small", "large")
#: Positions of small shapes; large shapes are always centred.
POSITIONS: tuple[str, ...] = ("center", "top left", "top right", "bottom left", "bottom right")
#: Lighting domains: "studio" for pretraining, "dusk" (warm, dim, faded) for the SynthShapes benchmark.
LIGHTINGS: tuple[str, ...] = ("studio", "dusk")
#: Background name for per-pixel noise (every other background is a plain named colour).
BACKGROUND_NOISY = "noisy"

#: Colour pairs too close to put a shape of one on a background of the other.
_SIMILAR: frozenset[frozenset[str]] = frozenset(
    frozenset(p)
    for p in [
        ("red", "orange"), ("red", "pink"), ("red", "brown"), ("orange", "yellow"), ("orange", "brown"),
        ("blue", "purple"), ("gray", "white"), ("gray", "black"), ("purple", "brown"), ("green", "gray"),
        ("pink", "white"), ("yellow", "white"), ("blue", "black"), ("purple", "black"), ("brown", "black"),
        ("purple", "red"),
    ]
)

#: (colour, shape) pairs never rendered during TinySynth pretraining. SynthShapes uses several of them as
#: classes, so their zero-shot accuracy measures compositional generalisation.
HELDOUT_PAIRS: frozenset[tuple[str, str]] = frozenset(
    {
        ("red", "star"),
        ("blue", "triangle"),
        ("green", "circle"),
        ("yellow", "square"),
        ("orange", "heart"),
        ("purple", "hexagon"),
        ("pink", "cross"),
        ("white", "diamond"),
        ("gray", "moon"),
        ("black", "ring"),
        ("brown", "star"),
        ("blue", "moon"),
    }
)


#: The SynthShapes benchmark classes as (colour, shape), in label order. Labels 0-9 are the "base" half and
#: 10-19 the "new" half; four classes of each half are :data:`HELDOUT_PAIRS`.
SYNTH_SHAPES_CLASSES: tuple[tuple[str, str], ...] = (
    ("red", "circle"),
    ("blue", "square"),
    ("red", "star"),  # held out
    ("green", "triangle"),
    ("yellow", "star"),
    ("blue", "triangle"),  # held out
    ("purple", "heart"),
    ("green", "circle"),  # held out
    ("orange", "cross"),
    ("yellow", "square"),  # held out
    ("white", "ring"),
    ("pink", "hexagon"),
    ("orange", "heart"),  # held out
    ("black", "diamond"),
    ("purple", "hexagon"),  # held out
    ("gray", "moon"),  # held out
    ("brown", "ring"),
    ("pink", "cross"),  # held out
    ("black", "moon"),
    ("gray", "square"),
)


def vocabulary() -> list[str]:
    """All words that captions and SynthShapes class names can contain (sorted)."""
    words = {"a", "an", "shape"}
    for template in _TEMPLATES:
        words.update(template.format(desc="", bg="", pos="").rstrip(".").split())
    for group in (SHAPES, tuple(COLOURS), TEXTURES, SIZES, POSITIONS, (BACKGROUND_NOISY,)):
        for item in group:
            words.update(item.split())
    for synonyms in _SYNONYMS.values():
        words.update(synonyms)
    return sorted(words)


# ---------------------------------------------------------------------------------------------------------------------
# Scenes
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scene:
    """One shape on a background.

    Attributes:
        shape: one of :data:`SHAPES`.
        colour: one of :data:`COLOURS`.
        texture: one of :data:`TEXTURES`.
        size: ``"small"`` or ``"large"``.
        position: one of :data:`POSITIONS` (``"center"`` for large shapes).
        background: a colour name or :data:`BACKGROUND_NOISY`.
    """

    shape: str
    colour: str
    texture: str
    size: str
    position: str
    background: str


def background_choices(colour: str) -> list[str]:
    """Background names that contrast with a shape of ``colour`` (the noisy background included)."""
    return [c for c in COLOURS if c != colour and frozenset((c, colour)) not in _SIMILAR] + [BACKGROUND_NOISY]


def _choice(rng: np.random.Generator, items: Sequence[str]) -> str:
    return items[int(rng.integers(len(items)))]


def sample_scene(
    rng: np.random.Generator,
    *,
    shapes: Sequence[str] = SHAPES,
    colours: Sequence[str] | None = None,
    exclude_pairs: Iterable[tuple[str, str]] = (),
    shape: str | None = None,
    colour: str | None = None,
) -> Scene:
    """Draw a random scene.

    Args:
        rng: the random generator (the only source of randomness).
        shapes: shapes to draw from (ignored when ``shape`` is given).
        colours: colours to draw from (default: all of :data:`COLOURS`; ignored when ``colour`` is given).
        exclude_pairs: (colour, shape) pairs to reject, e.g. :data:`HELDOUT_PAIRS` for pretraining.
        shape: fix the shape.
        colour: fix the colour.

    Returns:
        A :class:`Scene` with uniformly drawn nuisance attributes (texture, size, position, background).
    """
    colours = tuple(COLOURS) if colours is None else tuple(colours)
    excluded = frozenset(exclude_pairs)
    while True:
        sh = shape if shape is not None else _choice(rng, shapes)
        co = colour if colour is not None else _choice(rng, colours)
        if (co, sh) not in excluded:
            break
        if shape is not None and colour is not None:
            raise ValueError(f"the pair ({co!r}, {sh!r}) is excluded")
    texture = _choice(rng, TEXTURES)
    size = _choice(rng, SIZES)
    position = "center" if size == "large" else _choice(rng, POSITIONS)
    if rng.random() < 0.2:
        background = BACKGROUND_NOISY
    else:
        background = _choice(rng, background_choices(co)[:-1])
    return Scene(sh, co, texture, size, position, background)


# ---------------------------------------------------------------------------------------------------------------------
# Captions
# ---------------------------------------------------------------------------------------------------------------------

_TEMPLATES: tuple[str, ...] = (
    "a photo of a {desc}.",
    "a {desc}.",
    "a picture of a {desc}.",
    "an image of a {desc}.",
    "a drawing of a {desc}.",
    "a photo of a {desc} on a {bg} background.",
    "a {desc} on a {bg} background.",
    "a photo of a {desc} in the {pos}.",
    "a {desc} in the {pos}.",
    "there is a {desc} in the {pos}.",
    "a {desc} in the {pos} on a {bg} background.",
)

#: Alternative words used now and then in captions (the canonical word is used otherwise).
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "large": ("big",),
    "small": ("tiny",),
    "center": ("middle",),
    "gray": ("grey",),
    "plain": ("solid",),
}


def _word(rng: np.random.Generator, word: str, p_synonym: float = 0.25) -> str:
    if word in _SYNONYMS and rng.random() < p_synonym:
        return _choice(rng, _SYNONYMS[word])
    return word


def caption_scene(scene: Scene, rng: np.random.Generator, *, p_attr: float = 0.45) -> str:
    """A random caption of ``scene``, e.g. ``"a small striped red circle on a blue background."``.

    See :func:`caption_with_attributes` for the arguments.
    """
    return caption_with_attributes(scene, rng, p_attr=p_attr)[0]


def caption_with_attributes(
    scene: Scene, rng: np.random.Generator, *, p_attr: float = 0.45
) -> tuple[str, dict[str, str]]:
    """A random caption of ``scene`` and the (canonical) attribute values it mentions.

    Colour and shape are named most of the time (at least one of them always); size, texture,
    background and position each appear with probability about ``p_attr``. Synonyms ("big", "tiny",
    "middle", "grey", "solid") replace the canonical word now and then.

    Args:
        scene: the scene to describe.
        rng: random generator.
        p_attr: probability of mentioning each nuisance attribute.

    Returns:
        ``(caption, mentioned)``: a lower-case caption and a dict from :class:`Scene` field names to the
        values the caption states. Another scene fits the caption iff it agrees on every mentioned field
        (:func:`caption_fits`).
    """
    use_colour = rng.random() < 0.9
    use_shape = rng.random() < 0.9
    if not use_colour and not use_shape:
        use_shape = True
    mentioned: dict[str, str] = {}
    words: list[str] = []
    if rng.random() < p_attr:
        words.append(_word(rng, scene.size))
        mentioned["size"] = scene.size
    if rng.random() < p_attr and (scene.texture != "plain" or rng.random() < 0.5):
        words.append(_word(rng, scene.texture))
        mentioned["texture"] = scene.texture
    if use_colour:
        words.append(_word(rng, scene.colour))
        mentioned["colour"] = scene.colour
    if use_shape:
        words.append(scene.shape)
        mentioned["shape"] = scene.shape
    else:
        words.append("shape")
    desc = " ".join(words)

    with_bg = rng.random() < p_attr
    with_pos = rng.random() < p_attr
    candidates = [t for t in _TEMPLATES if ("{bg}" in t) == with_bg and ("{pos}" in t) == with_pos]
    template = _choice(rng, candidates)
    if with_bg:
        mentioned["background"] = scene.background
    if with_pos:
        mentioned["position"] = scene.position
    bg = scene.background if scene.background == BACKGROUND_NOISY else _word(rng, scene.background)
    pos = _word(rng, scene.position) if scene.position == "center" else scene.position
    text = template.format(desc=desc, bg=bg, pos=pos)
    if rng.random() < 0.5:  # proper article half of the time; the other half matches "a photo of a {}."
        text = _fix_articles(text)
    return text, mentioned


def caption_fits(mentioned: dict[str, str], scene: Scene) -> bool:
    """Whether ``scene`` agrees with every attribute a caption mentions."""
    return all(getattr(scene, key) == value for key, value in mentioned.items())


def _fix_articles(text: str) -> str:
    words = text.split(" ")
    for i in range(len(words) - 1):
        if words[i] in ("a", "an"):
            words[i] = "an" if words[i + 1][:1] in "aeiou" else "a"
    return " ".join(words)


def describe(scene: Scene) -> str:
    """The canonical full description, e.g. ``"small striped red circle"`` (texture omitted when plain)."""
    parts = [scene.size] + ([scene.texture] if scene.texture != "plain" else []) + [scene.colour, scene.shape]
    return " ".join(parts)


# ---------------------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------------------

_SS = 4  # supersampling factor of the shape mask
#: Shapes whose identity survives any rotation; the others rotate by at most +-_MAX_ROT degrees.
_ANY_ROTATION = frozenset({"circle", "ring", "hexagon"})
_MAX_ROT = 15.0


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    return xs, ys


def _regular(n: int, radius: float, start: float) -> list[tuple[float, float]]:
    return [(radius * math.cos(start + 2 * math.pi * k / n), radius * math.sin(start + 2 * math.pi * k / n))
            for k in range(n)]


def _outline(shape: str, r: float) -> list[tuple[float, float]] | None:
    """Polygon vertices (relative to the centre, y down, before rotation) or None for round shapes."""
    if shape == "square":
        return _regular(4, r * 1.05, math.pi / 4)
    if shape == "diamond":
        return [(0.0, -r), (0.62 * r, 0.0), (0.0, r), (-0.62 * r, 0.0)]
    if shape == "triangle":
        return [(x, y + 0.15 * r) for x, y in _regular(3, r * 1.1, -math.pi / 2)]
    if shape == "hexagon":
        return _regular(6, r, 0.0)
    if shape == "star":
        pts = []
        for k in range(10):
            rad = r * (1.05 if k % 2 == 0 else 0.45)
            ang = -math.pi / 2 + math.pi * k / 5
            pts.append((rad * math.cos(ang), rad * math.sin(ang)))
        return pts
    if shape == "cross":
        a, w = r * 0.95, r * 0.32
        return [(-w, -a), (w, -a), (w, -w), (a, -w), (a, w), (w, w), (w, a), (-w, a), (-w, w), (-a, w), (-a, -w),
                (-w, -w)]
    if shape == "heart":
        pts = []
        for k in range(48):
            t = 2 * math.pi * k / 48
            x = 16 * math.sin(t) ** 3
            y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
            pts.append((x / 16.5 * r, -(y + 2.5) / 15.5 * r))
        return pts
    return None


def _shape_mask(shape: str, size: int, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    """Anti-aliased coverage mask ``[size, size]`` float32 in [0, 1]."""
    big = size * _SS
    img = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(img)
    bx, by, br = cx * _SS, cy * _SS, r * _SS
    if shape in ("circle", "ring"):
        draw.ellipse([bx - br, by - br, bx + br, by + br], fill=255)
        if shape == "ring":
            ir = br * 0.55
            draw.ellipse([bx - ir, by - ir, bx + ir, by + ir], fill=0)
    elif shape == "moon":
        draw.ellipse([bx - br, by - br, bx + br, by + br], fill=255)
        ox, oy = 0.55 * br * math.cos(angle - math.pi / 4), 0.55 * br * math.sin(angle - math.pi / 4)
        ir = br * 0.85
        draw.ellipse([bx + ox - ir, by + oy - ir, bx + ox + ir, by + oy + ir], fill=0)
    else:
        pts = _outline(shape, br)
        if pts is None:
            raise ValueError(f"unknown shape {shape!r}; choose from {SHAPES}")
        ca, sa = math.cos(angle), math.sin(angle)
        draw.polygon([(bx + x * ca - y * sa, by + x * sa + y * ca) for x, y in pts], fill=255)
    small = img.reduce(_SS)
    return np.asarray(small, dtype=np.float32) / 255.0


def _texture(texture: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """Pattern ``[size, size]`` in {0, 1}: 1 = main colour, 0 = secondary shade."""
    if texture == "plain":
        return np.ones((size, size), dtype=np.float32)
    xs, ys = _grid(size)
    period = float(rng.uniform(0.11, 0.16)) * size
    ox, oy = rng.uniform(0, period, size=2)
    if texture == "striped":
        orientation = int(rng.integers(4))
        coord = [xs, ys, xs + ys, xs - ys][orientation]
        if orientation >= 2:
            period *= 1.2
        return (((coord + ox) / period) % 1.0 < 0.5).astype(np.float32)
    if texture == "checkered":
        return (((np.floor((xs + ox) / period) + np.floor((ys + oy) / period)) % 2) == 0).astype(np.float32)
    if texture == "dotted":
        dx = ((xs + ox) % period) - period / 2
        dy = ((ys + oy) % period) - period / 2
        return (np.sqrt(dx * dx + dy * dy) < period * 0.3).astype(np.float32)
    raise ValueError(f"unknown texture {texture!r}; choose from {TEXTURES}")


def _jitter_colour(rgb: tuple[int, int, int], rng: np.random.Generator, amount: float = 18.0) -> np.ndarray:
    return np.clip(np.asarray(rgb, dtype=np.float32) + rng.uniform(-amount, amount, size=3), 0, 255)


def apply_lighting(image: np.ndarray, rng: np.random.Generator, lighting: str = "studio") -> np.ndarray:
    """Re-light a rendered image (uint8 ``[H, W, 3]`` -> uint8 ``[H, W, 3]``).

    ``"studio"`` (the pretraining domain) returns the image unchanged and draws no random numbers. ``"dusk"``
    (the SynthShapes domain) fades the colours towards grey, casts a warm tint and dims the image, with a
    per-image random strength: a systematic domain shift, as between web photos and a downstream dataset.
    """
    if lighting == "studio":
        return image
    if lighting != "dusk":
        raise ValueError(f"unknown lighting {lighting!r}; choose from {LIGHTINGS}")
    x = image.astype(np.float32)
    fade = float(rng.uniform(0.2, 0.4))
    x = (1 - fade) * x + fade * x.mean(-1, keepdims=True)
    tint = np.array([rng.uniform(1.05, 1.15), rng.uniform(0.9, 1.0), rng.uniform(0.65, 0.75)], dtype=np.float32)
    x = x * tint * float(rng.uniform(0.6, 0.8)) + 10.0
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def render_scene(scene: Scene, rng: np.random.Generator, size: int = 32, lighting: str = "studio") -> np.ndarray:
    """Render ``scene`` as an RGB image.

    Args:
        scene: what to draw.
        rng: random generator for the exact placement, rotation, colour jitter, pattern phase and noise.
        size: image side in pixels.
        lighting: ``"studio"`` (pretraining) or ``"dusk"`` (SynthShapes), see :func:`apply_lighting`.

    Returns:
        uint8 array ``[size, size, 3]``.
    """
    if scene.colour not in COLOURS:
        raise ValueError(f"unknown colour {scene.colour!r}; choose from {tuple(COLOURS)}")
    # geometry
    if scene.size == "large":
        r = float(rng.uniform(0.34, 0.43)) * size
        cx, cy = (size / 2 + rng.uniform(-0.05, 0.05, size=2) * size).tolist()
    elif scene.size == "small":
        r = float(rng.uniform(0.17, 0.22)) * size
        base = {
            "center": (0.5, 0.5), "top left": (0.27, 0.27), "top right": (0.73, 0.27),
            "bottom left": (0.27, 0.73), "bottom right": (0.73, 0.73),
        }[scene.position]
        cx, cy = ((np.asarray(base) + rng.uniform(-0.03, 0.03, size=2)) * size).tolist()
    else:
        raise ValueError(f"unknown size {scene.size!r}; choose from {SIZES}")
    if scene.shape in _ANY_ROTATION:
        angle = float(rng.uniform(0, 2 * math.pi))
    else:
        angle = math.radians(float(rng.uniform(-_MAX_ROT, _MAX_ROT)))
    mask = _shape_mask(scene.shape, size, cx, cy, r, angle)[..., None]  # [S, S, 1]

    # background
    if scene.background == BACKGROUND_NOISY:
        level = rng.uniform(60, 200)
        noise = rng.normal(0, 45, size=(size, size, 1)) + rng.normal(0, 15, size=(size, size, 3))
        bg = np.clip(level + noise, 0, 255).astype(np.float32)
    else:
        bg = np.broadcast_to(_jitter_colour(COLOURS[scene.background], rng), (size, size, 3))

    # object colour with texture: main colour where the pattern is on, a lighter/darker shade elsewhere
    main = _jitter_colour(COLOURS[scene.colour], rng)
    luma = float(main @ np.array([0.299, 0.587, 0.114], dtype=np.float32))
    target = 0.0 if luma > 150 else 255.0
    shade = main + (target - main) * 0.5
    pattern = _texture(scene.texture, size, rng)[..., None]  # [S, S, 1]
    obj = main * pattern + shade * (1.0 - pattern)

    img = bg * (1.0 - mask) + obj * mask + rng.normal(0, 3.0, size=(size, size, 3))
    return apply_lighting(np.clip(np.rint(img), 0, 255).astype(np.uint8), rng, lighting)


def render_batch(
    rng: np.random.Generator, n: int, size: int = 32, lighting: str = "studio", **scene_kwargs
) -> tuple[np.ndarray, list[Scene]]:
    """Sample (``sample_scene(rng, **scene_kwargs)``) and render ``n`` scenes: uint8 ``[n, size, size, 3]`` and
    the scenes."""
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    scenes = []
    for i in range(n):
        scene = sample_scene(rng, **scene_kwargs)
        out[i] = render_scene(scene, rng, size, lighting)
        scenes.append(scene)
    return out, scenes
