"""Generation rules of mnist_text: how each MNIST image gets its text and label.

Everything here is a pure function of (seed, config, example id): every random
choice comes from `Draws`, which derives its numbers from SHA-512 / SHA-256 of
those values (and, for pixel noise, the raw output of PCG64, which NumPy keeps
fixed across versions). So an example's text, label and image never depend on
the order of generation, on the machine, or on library versions.
The dataset card (README.md) describes the same rules in prose.
"""

from __future__ import annotations

import hashlib

import numpy as np

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
YES, NO = "yes", "no"
# Answer vocabulary of the vqa config, in label-id order.
VQA_ANSWERS = (NO, YES, *DIGIT_NAMES)

VQA_FAMILIES = ("what_digit", "parity", "compare", "is_this")
CAPTION_KINDS = ("name", "arithmetic", "hint", "none")
DEGRADATIONS = ("clean", "occluded", "noisy")

DESCRIBE_KINDS = ("word", "numeral")  # how a describe text names the digit
SLANTS = ("left", "upright", "right")
THICKNESSES = ("thin", "medium", "thick")

CONFIG_NAMES = ("vqa", "caption", "digits", "describe")
TEXT_CONFIGS = ("vqa", "caption", "describe")
SPLITS = ("train", "validation", "test")
# What a label id means, per config.
CLASS_NAMES = {"vqa": VQA_ANSWERS, "caption": DIGIT_NAMES, "digits": DIGIT_NAMES, "describe": DIGIT_NAMES}
KIND_NAMES = {"vqa": VQA_FAMILIES, "caption": CAPTION_KINDS, "describe": DESCRIBE_KINDS}

# Validation takes 1 in 12 official training images: 5,000 of 60,000.
VALIDATION_DIVISOR = 12

_WHAT_DIGIT = (
    "what digit is this?",
    "which digit is shown?",
    "what number is written here?",
    "what is the digit in the image?",
)
_PARITY = ("is it {p}?", "is this digit {p}?", "is the number {p}?")
_GREATER = ("is it greater than {k}?", "is the digit larger than {k}?")
_LESS = ("is it less than {k}?", "is the digit smaller than {k}?")
_IS_THIS = ("is this {a} {k}?", "is it the digit {k}?", "does the image show {a} {k}?")

# Compare questions put a boundary b (1..9) between digits b-1 and b and ask
# "greater than b-1?" or "less than b?" (even odds, opposite answers), so every
# digit hears "yes" half the time. The boundary is drawn from the row of its
# digit below (weights out of ~1000). The table was fitted by iterative
# proportional fitting from uniform weights so that, for uniformly drawn
# digits, every boundary sits above and below the digit equally often: each
# compare question text is answered "yes" half the time (within 0.05%).
BOUNDARY_WEIGHTS = (
    (450, 190, 112, 75, 54, 41, 32, 25, 20),
    (35, 334, 196, 132, 95, 72, 56, 44, 35),
    (49, 63, 276, 185, 134, 101, 79, 63, 49),
    (62, 78, 98, 231, 167, 126, 98, 78, 62),
    (69, 87, 110, 141, 187, 141, 110, 87, 69),
    (69, 87, 110, 141, 187, 141, 110, 87, 69),
    (62, 78, 98, 126, 167, 231, 98, 78, 62),
    (49, 63, 79, 101, 134, 185, 276, 63, 49),
    (35, 44, 56, 72, 95, 132, 196, 334, 35),
    (20, 25, 32, 41, 54, 75, 112, 190, 450),
)

_CAPTION_KIND_WEIGHTS = (30, 15, 30, 25)  # name, arithmetic, hint, none (percent)
_NAME = (
    "a handwritten {n}",
    "the digit {n}",
    "this is {a} {n}",
    "someone wrote {a} {n}",
    "{a} {n} written by hand",
)
_NO_INFO = (
    "a handwritten digit",
    "a digit written by hand",
    "a scanned digit",
    "a number from a form",
    "someone wrote a digit",
)
_PARITY_HINT = ("an {p} digit", "an {p} number")
_GREATER_HINT = ("a digit greater than {k}", "a number bigger than {k}")
_LESS_HINT = ("a digit less than {k}", "a number smaller than {k}")
# A range hint leaves at least this many candidate digits.
_MIN_RANGE = 2

_DEGRADATION_WEIGHTS = (40, 30, 30)  # clean, occluded, noisy (percent)
_OCCLUSION_SIDE = (14, 20)  # inclusive range of the erased rectangle's sides
_OCCLUSION_CENTER = (10, 17)  # inclusive range of its centre row / column
_NOISE_PERCENT = 50  # share of pixels replaced by uniform noise


class Draws:
    """A reproducible stream of random choices keyed by any printable values.

    Small draws come from SHA-512 blocks of the key (8 words of 64 bits per
    block); `raw` arrays come from a PCG64 generator seeded by the key.

    Args:
        *key: values that identify the stream, e.g. (seed, "vqa", "text", 17).
    """

    def __init__(self, *key):
        self._key = "/".join(str(k) for k in key).encode("utf-8")
        self._block = 0
        self._words: list[int] = []
        self._raw_calls = 0

    def _word(self) -> int:
        if not self._words:
            digest = hashlib.sha512(self._key + b"#%d" % self._block).digest()
            self._block += 1
            self._words = [int.from_bytes(digest[i : i + 8], "little") for i in range(56, -1, -8)]
        return self._words.pop()

    def below(self, n: int) -> int:
        """A uniform integer in [0, n); the modulo bias of 64 bits is negligible."""
        return self._word() % n

    def choice(self, options):
        return options[self.below(len(options))]

    def weighted(self, weights) -> int:
        """An index drawn with probability proportional to integer weights."""
        r = self.below(sum(weights))
        for i, w in enumerate(weights):
            if r < w:
                return i
            r -= w
        raise AssertionError("unreachable: r < sum(weights)")

    def raw(self, n: int) -> np.ndarray:
        """n raw uint64 draws from PCG64, whose output NumPy keeps fixed across versions."""
        seed = int.from_bytes(hashlib.sha256(self._key + b"#raw%d" % self._raw_calls).digest()[:16], "little")
        self._raw_calls += 1
        return np.random.PCG64(seed).random_raw(n)


def validation_mask(num_train: int, seed: int) -> np.ndarray:
    """Marks the official training images that form the validation split.

    The `num_train // 12` images with the smallest SHA-256 of (seed, index) are
    chosen: a fixed, uniformly spread subset that does not depend on the config,
    so every config shares the same validation images.

    Returns:
        A bool array [num_train], True for validation.
    """
    order = sorted(range(num_train), key=lambda i: hashlib.sha256(f"{seed}/validation/{i}".encode()).digest())
    mask = np.zeros(num_train, dtype=bool)
    mask[order[: num_train // VALIDATION_DIVISOR]] = True
    return mask


def _article(word: str) -> str:
    # By sound: "an eight" but "a one".
    return "an" if word == "eight" else "a"


def vqa_example(digit: int, draws: Draws) -> tuple[str, int, int]:
    """A question about an image of `digit` and its answer.

    The family is uniform over `VQA_FAMILIES`; inside each yes/no family the
    answer is "yes" for exactly half the draws, whatever the digit.

    Returns:
        (question, answer id in `VQA_ANSWERS`, family id in `VQA_FAMILIES`).
    """
    family = draws.below(len(VQA_FAMILIES))
    name = VQA_FAMILIES[family]
    if name == "what_digit":
        return draws.choice(_WHAT_DIGIT), VQA_ANSWERS.index(DIGIT_NAMES[digit]), family
    if name == "parity":
        asked = draws.choice(("even", "odd"))
        answer = (digit % 2 == 0) == (asked == "even")
        return draws.choice(_PARITY).format(p=asked), _yes_no(answer), family
    if name == "compare":
        boundary = 1 + draws.weighted(BOUNDARY_WEIGHTS[digit])
        if draws.below(2) == 0:
            text = draws.choice(_GREATER).format(k=DIGIT_NAMES[boundary - 1])
            answer = digit > boundary - 1
        else:
            text = draws.choice(_LESS).format(k=DIGIT_NAMES[boundary])
            answer = digit < boundary
        return text, _yes_no(answer), family
    # is_this: the true digit half the time, otherwise one of the nine others.
    if draws.below(2) == 0:
        asked = digit
    else:
        others = [d for d in range(10) if d != digit]
        asked = others[draws.below(len(others))]
    word = DIGIT_NAMES[asked]
    text = draws.choice(_IS_THIS).format(a=_article(word), k=word)
    return text, _yes_no(asked == digit), family


def _yes_no(answer: bool) -> int:
    return VQA_ANSWERS.index(YES if answer else NO)


def caption_example(digit: int, draws: Draws) -> tuple[str, int]:
    """An English text about `digit` that names it, hints at it, or says nothing.

    Kinds (percent): name 30 (names the digit), arithmetic 15 (names it through
    a sum or difference of other digits), hint 30 (parity or a range of at
    least two digits), none 25 (no information).

    Returns:
        (text, kind id in `CAPTION_KINDS`).
    """
    kind = draws.weighted(_CAPTION_KIND_WEIGHTS)
    name = CAPTION_KINDS[kind]
    word = DIGIT_NAMES[digit]
    if name == "name":
        return draws.choice(_NAME).format(a=_article(word), n=word), kind
    if name == "arithmetic":
        return _arithmetic(digit, draws), kind
    if name == "hint":
        return _hint(digit, draws), kind
    return draws.choice(_NO_INFO), kind


def _arithmetic(digit: int, draws: Draws) -> str:
    # Each operation valid for the digit is equally likely, then its operands.
    n = DIGIT_NAMES
    options = []
    if digit >= 1:
        options.append(lambda: f"one more than {n[digit - 1]}")
    if digit <= 8:
        options.append(lambda: f"one less than {n[digit + 1]}")
    if digit >= 2:
        options.append(lambda: f"two more than {n[digit - 2]}")
    if digit <= 7:
        options.append(lambda: f"two less than {n[digit + 2]}")
    if digit >= 2:

        def plus():
            left = 1 + draws.below(digit - 1)  # 1..digit-1, so both terms are >= 1
            return f"{n[left]} plus {n[digit - left]}"

        options.append(plus)
    if digit <= 8:

        def minus():
            left = digit + 1 + draws.below(9 - digit)  # digit+1..9
            return f"{n[left]} minus {n[left - digit]}"

        options.append(minus)
    if 1 <= digit <= 4:
        options.append(lambda: f"half of {n[2 * digit]}")
    if digit >= 2 and digit % 2 == 0:
        options.append(lambda: f"twice {n[digit // 2]}")
    return draws.choice(options)()


def _hint(digit: int, draws: Draws) -> str:
    if draws.below(2) == 0:
        parity = "even" if digit % 2 == 0 else "odd"
        return draws.choice(_PARITY_HINT).format(p=parity)
    # "greater than k" is true for k < digit and leaves 9 - k candidates;
    # "less than k" is true for k > digit and leaves k candidates.
    greater = [k for k in range(0, digit) if 9 - k >= _MIN_RANGE]
    less = [k for k in range(digit + 1, 10) if k >= _MIN_RANGE]
    directions = [d for d, ks in (("greater", greater), ("less", less)) if ks]
    direction = draws.choice(directions)
    if direction == "greater":
        return draws.choice(_GREATER_HINT).format(k=DIGIT_NAMES[draws.choice(greater)])
    return draws.choice(_LESS_HINT).format(k=DIGIT_NAMES[draws.choice(less)])


def degrade(image: np.ndarray, draws: Draws) -> tuple[np.ndarray, int]:
    """Leaves an image clean or degrades it (caption config only).

    Percent: clean 40; occluded 30 (a rectangle with sides of 14-20 pixels,
    centred in rows and columns 10-17, is erased to black: most of the
    digit's strokes); noisy 30 (half of the pixels replaced by uniform values
    0-255).

    Args:
        image: uint8 [28, 28] or [28, 28, 1]; not modified.

    Returns:
        (new uint8 image of the same shape, degradation id in `DEGRADATIONS`).
    """
    kind = draws.weighted(_DEGRADATION_WEIGHTS)
    out = np.array(image, dtype=np.uint8, copy=True)
    plane = out.reshape(out.shape[0], out.shape[1])
    name = DEGRADATIONS[kind]
    if name == "occluded":
        lo, hi = _OCCLUSION_SIDE
        height, width = lo + draws.below(hi - lo + 1), lo + draws.below(hi - lo + 1)
        lo, hi = _OCCLUSION_CENTER
        row, col = lo + draws.below(hi - lo + 1), lo + draws.below(hi - lo + 1)
        top, left = max(0, row - height // 2), max(0, col - width // 2)
        plane[top : row - height // 2 + height, left : col - width // 2 + width] = 0
    elif name == "noisy":
        bits = draws.raw(plane.size)
        replace = (bits % np.uint64(100)) < np.uint64(_NOISE_PERCENT)
        values = ((bits >> np.uint64(8)) & np.uint64(0xFF)).astype(np.uint8)
        flat = plane.reshape(-1)
        flat[replace] = values[replace]
    return out, kind
