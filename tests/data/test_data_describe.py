"""The describe config's rules: measured attributes, texts true of their image, pinned output."""

import collections
import hashlib
import re

import numpy as np
import pytest
from zoo.datasets.mnist_text import describe as d
from zoo.datasets.mnist_text import generation as g

WORD = {name: digit for digit, name in enumerate(g.DIGIT_NAMES)}


def _bar(shear: float, width: int = 2) -> np.ndarray:
    """A vertical bar whose column moves right by `shear` pixels per row upwards."""
    image = np.zeros((28, 28, 1), np.uint8)
    for row in range(4, 24):
        col = int(round(13 + shear * (14 - row)))
        image[row, col : col + width] = 255
    return image


def test_slant_is_read_from_the_moments():
    assert abs(d.slant_value(_bar(0.0))) < 1e-9
    assert d.slant_value(_bar(0.5)) > 0.4, "top to the right reads as a positive (rightward) slant"
    assert d.slant_value(_bar(-0.5)) < -0.4
    assert d.slant_value(np.zeros((28, 28), np.uint8)) == 0.0
    assert [d.attributes(_bar(s), 1)[0] for s in (-0.5, 0.1, 0.5)] == [0, 1, 2]


def test_thickness_compares_ink_with_the_same_digit():
    thin, thick = _bar(0.0, width=2), _bar(0.0, width=5)  # 40 and 100 ink pixels
    assert d.attributes(thin, 1)[1] == g.THICKNESSES.index("thin")
    assert d.attributes(thick, 1)[1] == g.THICKNESSES.index("thick")
    # 100 pixels is thick for a one but thin for an eight.
    assert d.attributes(thick, 8)[1] == g.THICKNESSES.index("thin")


def _parse(text: str) -> tuple[int, str, str]:
    """(digit, thickness, slant) read back from a description, independently of the generator."""
    thickness = {w: t for t, ws in {"thin": "thin light fine", "medium": "medium regular normal",
                                    "thick": "thick bold heavy"}.items() for w in ws.split()}
    slant = {"leaning left": "left", "slanted to the left": "left", "tilted left": "left",
             "standing upright": "upright", "written upright": "upright", "standing straight": "upright",
             "leaning right": "right", "slanted to the right": "right", "tilted right": "right"}
    d_ = r"(?P<d>\d|" + "|".join(g.DIGIT_NAMES) + ")"
    patterns = [rf"a (?P<t>\w+) {d_} (?P<s>.+)", rf"a (?P<t>\w+) handwritten {d_} (?P<s>.+)",
                rf"the digit {d_}, (?P<t>\w+) and (?P<s>.+)", rf"{d_} in (?P<t>\w+) strokes, (?P<s>.+)",
                rf"someone wrote a (?P<t>\w+) {d_} (?P<s>.+)"]
    for pattern in patterns:
        if m := re.fullmatch(pattern, text):
            value = int(m["d"]) if m["d"].isdigit() else WORD[m["d"]]
            return value, thickness[m["t"]], slant[m["s"]]
    raise AssertionError(f"unexpected description {text!r}")


def test_descriptions_are_true_of_their_image():
    kinds, seen = collections.Counter(), set()
    for i in range(600):
        digit, shear, width = i % 10, (-0.5, 0.1, 0.5)[i % 3], (2, 3, 5)[i % 7 % 3]
        image = _bar(shear, width)
        text, kind, slant, thickness = d.describe_example(image, digit, g.Draws("test", i))
        assert _parse(text) == (digit, g.THICKNESSES[thickness], g.SLANTS[slant]), text
        assert (slant, thickness) == d.attributes(image, digit)
        assert (str(digit) in re.split(r"[ ,]", text)) == (g.DESCRIBE_KINDS[kind] == "numeral"), text
        kinds[kind] += 1
        seen.add(text)
    assert 0.4 < kinds[0] / 600 < 0.6 and len(seen) > 300, "word and numeral equally likely; phrasings vary"
    assert set(d.all_descriptions(3)) >= {t for t in seen if _parse(t)[0] == 3}


def _describe_fingerprint() -> str:
    digest = hashlib.sha256()
    for example_id in range(300):
        digit = example_id % 10
        image = _bar((example_id % 7 - 3) / 6, 2 + example_id % 4)
        text, kind, slant, thickness = d.describe_example(image, digit, g.Draws(0, "describe", "text", example_id))
        digest.update(f"{text}|{kind}|{slant}|{thickness}\n".encode())
    return digest.hexdigest()


# The describe config's own pin (see test_data_generation: a rule change needs a new Builder.VERSION).
DESCRIBE_FINGERPRINTS = {
    "1.0.0": "6f7da84f3213995fbb595c9caf40f8e314b65f9c167979984dc6b1accb6ef4c0",
}


def test_describe_rules_are_pinned_to_the_dataset_version():
    from zoo.datasets.mnist_text.mnist_text_dataset_builder import Builder

    version = str(Builder.VERSION)
    assert version in DESCRIBE_FINGERPRINTS, f"record the describe fingerprint of version {version}"
    assert _describe_fingerprint() == DESCRIBE_FINGERPRINTS[version], (
        f"The describe rules changed but Builder.VERSION is still {version}; bump it and record the fingerprint."
    )


def test_zero_shot_prompts_of_a_class_are_every_text_the_rules_write_for_it():
    from zoo.data import pipeline

    prompts = pipeline.class_prompts("describe")
    assert list(prompts) == pipeline.class_names("describe")
    assert prompts["seven"] == d.all_descriptions(7) and len(set(prompts["seven"])) == len(prompts["seven"])
    with pytest.raises(ValueError, match=r"'vqa' has no zero-shot prompts.*with prompts: \['describe'\]"):
        pipeline.class_prompts("vqa")
