"""Generation rules of the `describe` config: a text that describes its own image.

The text names the digit (as a word or a numeral) and two attributes measured
from the pixels, each in three coarse bins:

* slant, from second-order image moments: the shear -mu11 / mu02 of the ink
  (positive when the top of the digit lies to the right of its bottom);
* stroke thickness, from the ink area (pixels >= 128) compared with other
  images of the same digit (a "one" has far less ink than a thin "eight").

The bin edges are tertiles of the official training images (measured once,
fixed here), so each bin holds about a third of them. Everything is a pure
function of the image, the digit and `Draws`, like the other configs' rules.
"""

from __future__ import annotations

import numpy as np
from zoo.datasets.mnist_text.generation import (
    DESCRIBE_KINDS,
    DIGIT_NAMES,
    SLANTS,
    THICKNESSES,
    Draws,
)

# Shear -mu11/mu02 below the first edge is "left", from the second on "right".
SLANT_EDGES = (0.0, 0.22)
# Per digit: ink pixels below the first edge is "thin", from the second on "thick".
THICKNESS_EDGES = (
    (122, 150), (51, 66), (104, 130), (98, 124), (83, 105),
    (87, 113), (94, 120), (78, 99), (104, 130), (84, 105),
)
INK_LEVEL = 128

_SLANT_PHRASES = {
    "left": ("leaning left", "slanted to the left", "tilted left"),
    "upright": ("standing upright", "written upright", "standing straight"),
    "right": ("leaning right", "slanted to the right", "tilted right"),
}
_THICKNESS_WORDS = {
    "thin": ("thin", "light", "fine"),
    "medium": ("medium", "regular", "normal"),
    "thick": ("thick", "bold", "heavy"),
}
# Every template holds the digit {d}, a thickness word {t} and a slant phrase {s}.
# Thickness words all begin with a consonant, so "a {t}" always reads right.
TEMPLATES = (
    "a {t} {d} {s}",
    "a {t} handwritten {d} {s}",
    "the digit {d}, {t} and {s}",
    "{d} in {t} strokes, {s}",
    "someone wrote a {t} {d} {s}",
)


def slant_value(image: np.ndarray) -> float:
    """The shear -mu11 / mu02 of an image's ink (rows grow downwards).

    Args:
        image: [28, 28] or [28, 28, 1] greyscale, any numeric dtype.

    Returns:
        The slant; 0.0 for an image without ink.
    """
    plane = np.asarray(image, dtype=np.float64).reshape(image.shape[0], image.shape[1])
    mass = plane.sum()
    if mass == 0:
        return 0.0
    rows, cols = np.mgrid[0 : plane.shape[0], 0 : plane.shape[1]]
    dy = rows - (plane * rows).sum() / mass
    dx = cols - (plane * cols).sum() / mass
    mu02 = (plane * dy * dy).sum()
    return 0.0 if mu02 == 0 else float(-(plane * dx * dy).sum() / mu02)


def attributes(image: np.ndarray, digit: int) -> tuple[int, int]:
    """(slant id in `SLANTS`, thickness id in `THICKNESSES`) measured from the pixels."""
    slant = int(np.searchsorted(SLANT_EDGES, slant_value(image), side="right"))
    ink = int((np.asarray(image) >= INK_LEVEL).sum())
    thickness = int(np.searchsorted(THICKNESS_EDGES[digit], ink, side="right"))
    return slant, thickness


def describe_text(digit: int, slant: int, thickness: int, draws: Draws) -> tuple[str, int]:
    """A description of a digit with the given attributes, in words drawn from `draws`.

    Returns:
        (text, kind id in `DESCRIBE_KINDS`: the digit as a word or a numeral).
    """
    kind = draws.below(len(DESCRIBE_KINDS))
    name = DIGIT_NAMES[digit] if DESCRIBE_KINDS[kind] == "word" else str(digit)
    template = draws.choice(TEMPLATES)
    words = draws.choice(_THICKNESS_WORDS[THICKNESSES[thickness]])
    phrase = draws.choice(_SLANT_PHRASES[SLANTS[slant]])
    return template.format(d=name, t=words, s=phrase), kind


def describe_example(image: np.ndarray, digit: int, draws: Draws) -> tuple[str, int, int, int]:
    """Text and attributes of one image of `digit`.

    Returns:
        (text, kind id, slant id, thickness id).
    """
    slant, thickness = attributes(image, digit)
    text, kind = describe_text(digit, slant, thickness, draws)
    return text, kind, slant, thickness


def all_descriptions(digit: int) -> list[str]:
    """Every text the rules can write for `digit` (zero-shot prompts for its class)."""
    texts = []
    for name in (DIGIT_NAMES[digit], str(digit)):
        for template in TEMPLATES:
            for slant in SLANTS:
                for words in _THICKNESS_WORDS.values():
                    for word in words:
                        for phrase in _SLANT_PHRASES[slant]:
                            texts.append(template.format(d=name, t=word, s=phrase))
    return texts
