"""The generation rules of mnist_text: answers are right, texts are true, balance holds."""

import collections
import hashlib
import re

import numpy as np
from zoo.datasets.mnist_text import generation as g

WORD = {name: digit for digit, name in enumerate(g.DIGIT_NAMES)}
N_DRAWS = 600  # per digit


def test_draws_are_reproducible_and_keyed():
    a, b, c = g.Draws(0, "vqa", 7), g.Draws(0, "vqa", 7), g.Draws(0, "vqa", 8)
    seq_a = [a.below(1000) for _ in range(20)]
    assert seq_a == [b.below(1000) for _ in range(20)]
    assert seq_a != [c.below(1000) for _ in range(20)]
    np.testing.assert_array_equal(g.Draws(1, "x").raw(5), g.Draws(1, "x").raw(5))
    first = g.Draws(1, "x")
    assert not np.array_equal(first.raw(5), first.raw(5)), "each raw() call continues the stream"


def test_weighted_draws_follow_their_weights():
    draws = g.Draws("weights")
    counts = collections.Counter(draws.weighted((1, 0, 3)) for _ in range(4000))
    assert counts[1] == 0
    assert 0.70 < counts[2] / 4000 < 0.80


def _fit_boundary_table(iterations=3000):
    # Iterative proportional fitting from uniform: rows sum to 1 (one boundary
    # per digit), and every boundary has equal mass above and below it.
    above = (np.arange(10)[:, None] >= np.arange(1, 10)[None, :]).astype(float)
    table = np.ones((10, 9))
    for _ in range(iterations):
        up, down = (table * above).sum(0), (table * (1 - above)).sum(0)
        table *= above * ((up + down) / 2 / up) + (1 - above) * ((up + down) / 2 / down)
        table /= table.sum(1, keepdims=True)
    return table, above


def test_boundary_table_balances_every_compare_question():
    weights = np.array(g.BOUNDARY_WEIGHTS, dtype=float)
    assert weights.shape == (10, 9) and (weights > 0).all()
    fitted, above = _fit_boundary_table()
    np.testing.assert_allclose(weights / weights.sum(1, keepdims=True), fitted, atol=0.0015)
    probabilities = weights / weights.sum(1, keepdims=True)
    # With uniform digits, "greater than b-1?" is "yes" exactly when the digit is above the boundary.
    yes = (probabilities * above).sum(0) / probabilities.sum(0)
    np.testing.assert_allclose(yes, 0.5, atol=0.001)


def _true_answer(question: str, digit: int) -> str:
    """Answers a generated question from scratch, independently of the generator."""
    if question in (
        "what digit is this?",
        "which digit is shown?",
        "what number is written here?",
        "what is the digit in the image?",
    ):
        return g.DIGIT_NAMES[digit]
    if m := re.fullmatch(r"is (?:it|this digit|the number) (even|odd)\?", question):
        return g.YES if (digit % 2 == 0) == (m[1] == "even") else g.NO
    if m := re.fullmatch(r"is (?:it|the digit) (?:greater|larger) than (\w+)\?", question):
        return g.YES if digit > WORD[m[1]] else g.NO
    if m := re.fullmatch(r"is (?:it|the digit) (?:less|smaller) than (\w+)\?", question):
        return g.YES if digit < WORD[m[1]] else g.NO
    if m := re.fullmatch(r"(?:is this (?:a|an)|is it the digit|does the image show (?:a|an)) (\w+)\?", question):
        return g.YES if digit == WORD[m[1]] else g.NO
    raise AssertionError(f"unexpected question {question!r}")


def test_vqa_answers_are_right_and_yes_no_balanced_per_digit():
    for digit in range(10):
        _check_vqa_digit(digit)


def _check_vqa_digit(digit):
    answers, families = collections.Counter(), collections.Counter()
    for i in range(N_DRAWS):
        question, answer, family = g.vqa_example(digit, g.Draws("test", digit, i))
        assert g.VQA_ANSWERS[answer] == _true_answer(question, digit), question
        assert not re.search(r"\b(an one|a eight)\b", question), question
        answers[g.VQA_ANSWERS[answer]] += 1
        families[g.VQA_FAMILIES[family]] += 1
    assert all(0.2 < families[f] / N_DRAWS < 0.3 for f in g.VQA_FAMILIES), families
    # An image alone says nothing about yes or no: the digit name is the only other answer.
    assert abs(answers[g.YES] - answers[g.NO]) / N_DRAWS < 0.08, answers
    assert set(answers) == {g.YES, g.NO, g.DIGIT_NAMES[digit]}


def _caption_candidates(text: str) -> set:
    """The digits a caption is true of, worked out independently of the generator."""
    digits = set(range(10))
    if m := re.fullmatch(r"(?:a handwritten|the digit|this is an?|someone wrote an?|an?) (\w+)(?: written by hand)?", text):
        if m[1] in WORD:
            return {WORD[m[1]]}
    ops = {
        r"one more than (\w+)": lambda a: a + 1,
        r"one less than (\w+)": lambda a: a - 1,
        r"two more than (\w+)": lambda a: a + 2,
        r"two less than (\w+)": lambda a: a - 2,
        r"half of (\w+)": lambda a: a / 2,
        r"twice (\w+)": lambda a: 2 * a,
    }
    for pattern, op in ops.items():
        if m := re.fullmatch(pattern, text):
            return {op(WORD[m[1]])}
    if m := re.fullmatch(r"(\w+) (plus|minus) (\w+)", text):
        a, b = WORD[m[1]], WORD[m[3]]
        return {a + b if m[2] == "plus" else a - b}
    if m := re.fullmatch(r"an (even|odd) (?:digit|number)", text):
        return {d for d in digits if (d % 2 == 0) == (m[1] == "even")}
    if m := re.fullmatch(r"a (?:digit greater|number bigger) than (\w+)", text):
        return {d for d in digits if d > WORD[m[1]]}
    if m := re.fullmatch(r"a (?:digit less|number smaller) than (\w+)", text):
        return {d for d in digits if d < WORD[m[1]]}
    if text in ("a handwritten digit", "a digit written by hand", "a scanned digit", "a number from a form", "someone wrote a digit"):
        return digits
    raise AssertionError(f"unexpected caption {text!r}")


def test_captions_are_true_of_their_digit():
    for digit in range(10):
        _check_caption_digit(digit)


def _check_caption_digit(digit):
    kinds = collections.Counter()
    for i in range(N_DRAWS):
        text, kind = g.caption_example(digit, g.Draws("test", digit, i))
        candidates = _caption_candidates(text)
        assert digit in candidates, text
        name = g.CAPTION_KINDS[kind]
        kinds[name] += 1
        expected_size = {"name": (1, 1), "arithmetic": (1, 1), "hint": (2, 9), "none": (10, 10)}[name]
        assert expected_size[0] <= len(candidates) <= expected_size[1], (name, text)
        if name == "none":
            assert not set(text.split()) & set(g.DIGIT_NAMES), text
    assert all(kinds[k] > 0 for k in g.CAPTION_KINDS), kinds


def test_degrade_is_seeded_and_documented():
    image = np.full((28, 28, 1), 200, np.uint8)
    seen = collections.Counter()
    for i in range(300):
        out, kind = g.degrade(image, g.Draws("img", i))
        again, kind_again = g.degrade(image, g.Draws("img", i))
        np.testing.assert_array_equal(out, again)
        assert kind == kind_again and out.shape == image.shape and out.dtype == np.uint8
        name = g.DEGRADATIONS[kind]
        seen[name] += 1
        changed = out[..., 0] != 200
        if name == "clean":
            assert not changed.any()
        elif name == "occluded":
            rows, cols = np.nonzero(changed)
            assert (out[..., 0][changed] == 0).all()
            height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
            assert changed.sum() == height * width, "the erased area is one rectangle"
            assert 14 <= height <= 20 and 14 <= width <= 20
        else:
            assert 0.42 < changed.mean() < 0.58
    assert (image == 200).all(), "the input is not modified"
    assert 0.3 < seen["clean"] / 300 < 0.5 and seen["occluded"] and seen["noisy"]


def test_validation_mask_is_a_fixed_twelfth():
    mask = g.validation_mask(600, seed=0)
    assert mask.sum() == 50
    np.testing.assert_array_equal(mask, g.validation_mask(600, seed=0))
    assert not np.array_equal(mask, g.validation_mask(600, seed=1))
    # Spread over the file, not a block at one end.
    assert mask[:300].sum() > 10 and mask[300:].sum() > 10


def _generation_fingerprint() -> str:
    """SHA-256 over what the generation rules produce for fixed inputs."""
    digest = hashlib.sha256()
    digest.update(g.validation_mask(6000, seed=0).tobytes())
    image = (np.arange(28 * 28, dtype=np.int64) % 251).astype(np.uint8).reshape(28, 28, 1)
    for example_id in range(300):
        digit = example_id % 10
        text, answer, family = g.vqa_example(digit, g.Draws(0, "vqa", "text", example_id))
        caption, kind = g.caption_example(digit, g.Draws(0, "caption", "text", example_id))
        degraded, degradation = g.degrade(image, g.Draws(0, "caption", "image", example_id))
        digest.update(f"{text}|{answer}|{family}|{caption}|{kind}|{degradation}\n".encode())
        digest.update(degraded.tobytes())
    return digest.hexdigest()


# TFDS reuses a prepared dataset whose version matches, so a change of the
# generation rules under an unchanged version leaves users training on the old
# data without a word. A rule change must come with a new Builder.VERSION.
GENERATION_FINGERPRINTS = {
    "1.0.0": "eb57a4c3719b266c4fe7d5b30eb5d66d85967b9d0754894e6b0d4d634d54a89a",
}


def test_generation_rules_are_pinned_to_the_dataset_version():
    from zoo.datasets.mnist_text.mnist_text_dataset_builder import Builder

    version = str(Builder.VERSION)
    assert version in GENERATION_FINGERPRINTS, f"record the generation fingerprint of version {version}"
    assert _generation_fingerprint() == GENERATION_FINGERPRINTS[version], (
        f"The generation rules changed but Builder.VERSION is still {version}: prepared copies of the old "
        "data would be reused. Bump the version (with a RELEASE_NOTES entry) and record the new fingerprint."
    )
