"""Vocabulary files bound to their model: content hash, size, duplicates, reserved entries."""

import hashlib

import pytest

from zoo.data.text import (
    VocabularyError,
    VocabularyMismatchError,
    check_vocabulary,
    load_vocabulary,
    save_vocabulary,
    vocabulary_sha256,
)

TOKENS = ["", "[UNK]", "is", "it", "even", "seven", "odd"]


@pytest.fixture
def vocab_file(tmp_path):
    path = tmp_path / "vocabulary.txt"
    save_vocabulary(TOKENS, path)
    return path


def _one_line(error) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_hash_is_the_file_content_hash(vocab_file):
    assert vocabulary_sha256(TOKENS) == hashlib.sha256(vocab_file.read_bytes()).hexdigest()
    assert vocabulary_sha256(TOKENS) != vocabulary_sha256(TOKENS[:-1])


def test_untouched_file_passes_its_record(vocab_file):
    expected = {"size": len(TOKENS), "sha256": vocabulary_sha256(TOKENS), "tokens": TOKENS}
    assert load_vocabulary(vocab_file, expected=expected) == TOKENS
    # Entries left as None (older runs without a hash) are not checked.
    assert load_vocabulary(vocab_file, expected={"size": len(TOKENS), "sha256": None}) == TOKENS


def test_deleted_line_is_refused_naming_both_sizes(vocab_file):
    vocab_file.write_text("\n".join(TOKENS[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(VocabularyMismatchError) as caught:
        load_vocabulary(vocab_file, expected={"size": 7, "sha256": vocabulary_sha256(TOKENS)})
    message = _one_line(caught)
    assert str(vocab_file) in message and "6 tokens where the model was trained with 7" in message


def test_renamed_token_is_refused_by_hash_and_named_by_line_when_tokens_are_known(vocab_file):
    edited = TOKENS[:5] + ["eight"] + TOKENS[6:]
    save_vocabulary(edited, vocab_file)
    with pytest.raises(VocabularyMismatchError, match=r"content hash sha256 [0-9a-f]{12}\.\.\. where") as caught:
        load_vocabulary(vocab_file, expected={"size": 7, "sha256": vocabulary_sha256(TOKENS)})
    _one_line(caught)
    with pytest.raises(VocabularyMismatchError, match="first difference on line 6: 'eight' where the model has 'seven'"):
        load_vocabulary(vocab_file, expected={"tokens": TOKENS})


def test_duplicate_token_is_refused_at_load_with_both_lines(vocab_file):
    vocab_file.write_text("\n".join(TOKENS + ["even"]) + "\n", encoding="utf-8")
    with pytest.raises(VocabularyError) as caught:
        load_vocabulary(vocab_file)
    assert "lists 'even' twice, on lines 5 and 8" in _one_line(caught)


@pytest.mark.parametrize(
    "lines, message",
    [
        (TOKENS[:3] + [""] + TOKENS[3:], "an empty line on line 4"),
        (TOKENS + ["", ""], "an empty line on line 8"),  # a blank line at the end of the file
        (TOKENS[:4] + ["[UNK]"] + TOKENS[4:], "'[UNK]' on line 5"),
    ],
    ids=["blank-line-inside", "blank-line-at-end", "unk-repeated"],
)
def test_reserved_entries_out_of_place_are_refused(vocab_file, lines, message):
    vocab_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(VocabularyError, match="reserved entries") as caught:
        load_vocabulary(vocab_file)
    assert message in _one_line(caught)


def test_not_utf8_names_the_line(vocab_file):
    vocab_file.write_bytes(b"\n[UNK]\nis\n\xffbad\n")
    with pytest.raises(VocabularyError, match="is not UTF-8 text: invalid byte on line 4"):
        load_vocabulary(vocab_file)


def test_token_lists_are_checked_like_files():
    with pytest.raises(VocabularyError, match="lists 'it' twice, on lines 4 and 8"):
        check_vocabulary(TOKENS + ["it"])
    with pytest.raises(VocabularyError, match="lists 'it' twice"):
        save_vocabulary(TOKENS + ["it"], "/nonexistent/never-written.txt")
    with pytest.raises(VocabularyMismatchError, match="7 tokens where the model was trained with 8"):
        check_vocabulary(TOKENS, {"size": 8})
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['hash'\]"):
        check_vocabulary(TOKENS, {"hash": "x"})
