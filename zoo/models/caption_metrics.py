"""Caption quality: exact match, digit-correct rate and corpus BLEU-4.

Captions are compared in the tokenizer's standard form (lowercase,
punctuation as spaces, single spaces: `standardize`), since a captioner can
only write the words of its vocabulary: "the digit 0, thin" and "the digit 0
thin" are the same caption to it.

BLEU comes from sacrebleu, the reference implementation (Post, 2018): its
corpus BLEU-4 with its default 13a tokenisation and exponential smoothing is
the figure other papers report, which a re-implementation would not
guarantee. It loads on first use, so `import zoo` does not need it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from zoo.core.punctuation import PUNCTUATION

__all__ = ["caption_scores", "digits_named", "exact_match", "digit_correct_rate", "corpus_bleu", "standardize"]

_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def digits_named(text: str) -> set[int]:
    """The digits a caption names, as words ("seven") or numerals ("7")."""
    found = set()
    for word in re.findall(r"[a-z]+|\d", text.lower()):
        if word.isdigit():
            found.add(int(word))
        elif word in _DIGIT_WORDS:
            found.add(_DIGIT_WORDS.index(word))
    return found


def standardize(texts: Sequence[str]) -> list[str]:
    """Each text as the tokenizer reads it (lowercase, punctuation as spaces, as
    `zoo.data.text.standardize`), with single spaces."""
    return [" ".join(re.sub(PUNCTUATION, " ", text.lower()).split()) for text in texts]


def _check_lengths(hypotheses, references):
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} generated captions for {len(references)} references; expected one each.")


def exact_match(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Share of captions equal to their reference, both in `standardize`d form."""
    _check_lengths(hypotheses, references)
    same = sum(h == r for h, r in zip(standardize(hypotheses), standardize(references), strict=True))
    return same / max(len(references), 1)


def digit_correct_rate(hypotheses: Sequence[str], digits: Sequence[int]) -> float:
    """Share of captions that name exactly one digit, the right one."""
    _check_lengths(hypotheses, digits)
    return sum(digits_named(h) == {int(d)} for h, d in zip(hypotheses, digits, strict=True)) / max(len(digits), 1)


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """sacrebleu's corpus BLEU-4 (0-100) against one reference per caption, both `standardize`d."""
    import sacrebleu

    _check_lengths(hypotheses, references)
    return float(sacrebleu.corpus_bleu(standardize(hypotheses), [standardize(references)]).score)


def caption_scores(hypotheses: Sequence[str], references: Sequence[str], digits: Sequence[int]) -> dict[str, float]:
    """{"exact_match", "digit_correct", "bleu4"}: the first two as fractions, BLEU-4 in 0-100."""
    return {"exact_match": exact_match(hypotheses, references),
            "digit_correct": digit_correct_rate(hypotheses, digits),
            "bleu4": corpus_bleu(hypotheses, references)}
