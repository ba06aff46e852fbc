"""Image-generation prompts and the small PNGs "generated" for them, drawn with Pillow.

Each prompt describes coloured shapes on a background ("two red circles on a blue
background"); the picture shows them, so an image-text alignment score (CLIP) has
something to measure. A mismatched picture (wrong colour or shape) stands for a bad
generation.
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass, replace

from PIL import Image, ImageDraw

IMAGE_SIZE = 96
_SUPERSAMPLE = 4

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (214, 39, 40), "blue": (31, 90, 200), "green": (44, 160, 44),
    "yellow": (245, 205, 30), "orange": (255, 127, 14), "purple": (128, 60, 170),
    "pink": (240, 120, 180), "white": (245, 245, 245), "black": (20, 20, 20),
    "gray": (128, 128, 128), "cyan": (23, 190, 207), "brown": (140, 86, 55),
}
SHAPES = ("circle", "square", "triangle", "star", "diamond", "ring", "cross", "hexagon")
PLURALS = {s: s + "s" for s in SHAPES} | {"cross": "crosses"}
COUNT_WORDS = {1: "a", 2: "two", 3: "three"}
POSITIONS = {
    "centered": (0.5, 0.5), "in the top left corner": (0.3, 0.3),
    "in the bottom right corner": (0.7, 0.7), "on the left": (0.3, 0.5),
    "on the right": (0.7, 0.5),
}
STYLES = (
    "", "", "", "a flat vector icon of ", "minimalist poster: ", "a simple illustration of ",
    "logo concept, ", "a children's book drawing of ", "clean geometric art, ",
)


@dataclass(frozen=True)
class ShapeScene:
    count: int
    colour: str
    shape: str
    background: str
    size: str          # "small" | "large" | ""
    position: str      # a key of POSITIONS (only used for a single shape)


def random_scene(rng: random.Random) -> ShapeScene:
    colour = rng.choice(sorted(COLOURS))
    background = rng.choice([c for c in sorted(COLOURS) if c != colour])
    count = rng.choices((1, 2, 3), weights=(0.6, 0.25, 0.15))[0]
    return ShapeScene(
        count=count, colour=colour, shape=rng.choice(SHAPES), background=background,
        size=rng.choice(("", "", "small", "large")),
        position=rng.choice(sorted(POSITIONS)) if count == 1 else "centered",
    )


def describe(rng: random.Random, scene: ShapeScene) -> str:
    """A prompt for the scene, in one of several phrasings."""
    noun = scene.shape if scene.count == 1 else PLURALS[scene.shape]
    size = f"{scene.size} " if scene.size else ""
    counted = f"{COUNT_WORDS[scene.count]} {size}{scene.colour} {noun}"
    where = f" {scene.position}" if scene.count == 1 and scene.position != "centered" else ""
    template = rng.choice((
        "{counted}{where} on a {bg} background",
        "{counted}{where} on {bg}",
        "{counted} against a plain {bg} backdrop{where_comma}",
        "a {bg} background with {counted}{where}",
    ))
    text = template.format(counted=counted, where=where, bg=scene.background,
                           where_comma=("," + where) if where else "")
    return rng.choice(STYLES) + text


def mismatch(rng: random.Random, scene: ShapeScene) -> ShapeScene:
    """The same scene with the wrong colour or the wrong shape."""
    if rng.random() < 0.5:
        colour = rng.choice([c for c in sorted(COLOURS) if c not in (scene.colour, scene.background)])
        return replace(scene, colour=colour)
    return replace(scene, shape=rng.choice([s for s in SHAPES if s != scene.shape]))


def _polygon(cx: float, cy: float, r: float, n: int, phase: float) -> list[tuple[float, float]]:
    return [(cx + r * math.cos(phase + 2 * math.pi * k / n),
             cy + r * math.sin(phase + 2 * math.pi * k / n)) for k in range(n)]


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float,
                fill: tuple[int, int, int]) -> None:
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif shape == "ring":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=fill, width=max(2, int(r * 0.3)))
    elif shape == "square":
        h = r * 0.85
        draw.rectangle((cx - h, cy - h, cx + h, cy + h), fill=fill)
    elif shape == "triangle":
        draw.polygon(_polygon(cx, cy + r * 0.15, r, 3, -math.pi / 2), fill=fill)
    elif shape == "diamond":
        draw.polygon(_polygon(cx, cy, r, 4, -math.pi / 2), fill=fill)
    elif shape == "hexagon":
        draw.polygon(_polygon(cx, cy, r, 6, 0.0), fill=fill)
    elif shape == "star":
        points = []
        for k in range(10):
            radius = r if k % 2 == 0 else r * 0.42
            angle = -math.pi / 2 + math.pi * k / 5
            points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
        draw.polygon(points, fill=fill)
    elif shape == "cross":
        w = r * 0.32
        draw.rectangle((cx - w, cy - r, cx + w, cy + r), fill=fill)
        draw.rectangle((cx - r, cy - w, cx + r, cy + w), fill=fill)
    else:  # pragma: no cover - SHAPES is closed
        raise ValueError(f"unknown shape {shape!r}")


def render_png(scene: ShapeScene) -> bytes:
    """The scene as PNG bytes (IMAGE_SIZE x IMAGE_SIZE RGB), deterministic."""
    big = IMAGE_SIZE * _SUPERSAMPLE
    bg = COLOURS[scene.background]
    image = Image.new("RGB", (big, big), bg)
    draw = ImageDraw.Draw(image)
    for y in range(0, big, _SUPERSAMPLE):  # a gentle vertical gradient, like a studio backdrop
        shade = int(14 * (y / big - 0.5))
        row = tuple(max(0, min(255, c - shade)) for c in bg)
        draw.rectangle((0, y, big, y + _SUPERSAMPLE), fill=row)
    scale = {"small": 0.6, "large": 1.35}.get(scene.size, 1.0)
    fill = COLOURS[scene.colour]
    if scene.count == 1:
        fx, fy = POSITIONS[scene.position]
        radius = big * 0.22 * scale * (0.8 if scene.position != "centered" else 1.0)
        _draw_shape(draw, scene.shape, fx * big, fy * big, radius, fill)
    else:
        radius = big * (0.16 if scene.count == 2 else 0.12) * min(scale, 1.1)
        for k in range(scene.count):
            fx = (k + 1) / (scene.count + 1)
            _draw_shape(draw, scene.shape, fx * big, big * 0.5, radius, fill)
    small = image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    small.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
