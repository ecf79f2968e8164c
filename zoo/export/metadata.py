"""The `zoo_export.json` file every export carries, and the vocabulary files beside it.

The metadata lets a client (and `zoo predict`) find the format, the model file,
input shapes and dtypes, the text length, the class names and the output names
without importing the zoo.
"""

from __future__ import annotations

import json
import os
from typing import Any

from zoo.core.atomic import atomic_write_text
from zoo.core.jsonio import write_json
from zoo.core.version import __version__
from zoo.data import text as text_lib
from zoo.export.spec import ModelSpec

__all__ = [
    "METADATA_FILE",
    "VOCABULARY_FILE",
    "TOKENIZE_FILE",
    "resolve_vocabulary",
    "build_metadata",
    "write_metadata",
    "read_metadata",
    "write_tokenizer_files",
    "check_export_vocabulary",
    "saved_model_vocabulary",
]

METADATA_FILE = "zoo_export.json"
VOCABULARY_FILE = "vocabulary.txt"
TOKENIZE_FILE = "TOKENIZE.md"
METADATA_VERSION = 1


def resolve_vocabulary(spec: ModelSpec, vocabulary, expected=None) -> list[str] | None:
    """Returns the token list for a text model (None for image-only models).

    Args:
        vocabulary: a token list, or the path of a vocabulary file.
        expected: what the model was trained with (`size`, `sha256`, `tokens`;
            see `zoo.data.text.load_vocabulary`), or None.

    Raises:
        ValueError: if a text model gets no vocabulary.
        VocabularyError: (a ValueError) for a malformed vocabulary (reserved
            entries, a token listed twice).
        VocabularyMismatchError: if it differs from `expected`.
        FileNotFoundError: if the vocabulary path does not exist.
    """
    if not spec.has_text:
        return None
    if vocabulary is None:
        raise ValueError(
            "This model reads text: pass vocabulary= (the token list or the run's vocabulary.txt), "
            "so the export tokenizes exactly as training did."
        )
    if isinstance(vocabulary, str | os.PathLike):
        return text_lib.load_vocabulary(vocabulary, expected)
    tokens = list(vocabulary)
    if tuple(tokens[:2]) != text_lib.RESERVED or not all(isinstance(t, str) for t in tokens):
        raise ValueError(
            f"vocabulary must be a list of strings starting with {list(text_lib.RESERVED)!r}; got {tokens[:3]!r}."
        )
    text_lib.check_vocabulary(tokens, expected, source="the vocabulary")
    return tokens


def build_metadata(
    spec: ModelSpec,
    *,
    export_format: str,
    model_file: str | None,
    inputs: dict[str, dict[str, Any]],
    outputs: dict[str, dict[str, str]],
    class_names: dict[str, list[str]],
    signatures: list[str] | None = None,
    vocabulary: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assembles the JSON-able metadata dict.

    A text model's metadata records its vocabulary's size and content hash
    (`vocabulary_sha256`, as `zoo.data.text.vocabulary_sha256`), which
    `check_export_vocabulary` verifies against what the export ships.
    """
    heads = {}
    for head, width in zip(spec.heads, spec.num_classes, strict=True):
        heads[head] = {"num_classes": width, "outputs": outputs[head], "class_names": class_names.get(head)}
    metadata = {
        "metadata_version": METADATA_VERSION,
        "zoo_version": __version__,
        "format": export_format,
        "model_file": model_file,
        "signatures": signatures,
        "inputs": inputs,
        "image_shape": list(spec.image_shape) if spec.has_image else None,
        "max_length": spec.max_length,
        "heads": heads,
    }
    if spec.has_text and vocabulary is not None:
        metadata["vocabulary_size"] = len(vocabulary)
        metadata["vocabulary_sha256"] = text_lib.vocabulary_sha256(vocabulary)
    if spec.has_text and export_format != "tf_saved_model":
        metadata["vocabulary_file"] = VOCABULARY_FILE
        metadata["tokenize_doc"] = TOKENIZE_FILE
    metadata.update(extra or {})
    return metadata


def write_metadata(directory: str, metadata: dict[str, Any]) -> None:
    """Writes `zoo_export.json` into `directory`."""
    write_json(os.path.join(directory, METADATA_FILE), metadata, sort_keys=False)


def read_metadata(directory: str | os.PathLike) -> dict[str, Any]:
    """Reads an export's `zoo_export.json`.

    Raises:
        FileNotFoundError: if `directory` is not a zoo export.
        ValueError: if the file is not valid metadata.
    """
    path = os.path.join(os.fspath(directory), METADATA_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{os.fspath(directory)!r} is not a zoo export: it has no {METADATA_FILE} "
            "(create one with `zoo export RUN_DIR --out PATH`)."
        )
    with open(path, encoding="utf-8") as f:
        try:
            metadata = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path!r} is not valid JSON: {error}") from None
    if not isinstance(metadata, dict) or "format" not in metadata or "heads" not in metadata:
        raise ValueError(f"{path!r} is not zoo export metadata (no 'format'/'heads' keys).")
    return metadata


def check_export_vocabulary(export_dir: str | os.PathLike, *, loaded=None) -> list[str] | None:
    """Verifies the vocabulary an export tokenizes with against the hash recorded at export time.

    ONNX and LiteRT exports ship `vocabulary.txt`, which clients read: it is
    checked for layout, size and content hash. A SavedModel carries its
    vocabulary as the tokenizer's lookup table inside the graph: the table is
    read back (ids 2.. in order) and hashed the same way. Exports made before
    the hash was recorded are checked for layout only.

    Args:
        export_dir: a directory written by `zoo.export_model`.
        loaded: the SavedModel already loaded with `tf.saved_model.load`, to
            avoid loading it twice (SavedModel exports only).

    Returns:
        The export's token list, or None when the model reads no text or
        reads it through a KerasHub preset's tokenizer (`text_preset`).

    Raises:
        FileNotFoundError: if `export_dir` is not a zoo export or its
            vocabulary file is missing.
        VocabularyError: (a ValueError) for a malformed vocabulary.
        VocabularyMismatchError: (a VocabularyError) if the shipped vocabulary
            differs from the recorded size or hash.
    """
    metadata = read_metadata(export_dir)
    if metadata.get("max_length") is None or metadata.get("text_preset"):
        # A KerasHub backbone's tokenizer (its own WordPiece assets) carries no zoo vocabulary to check.
        return None
    expected = {"size": metadata.get("vocabulary_size"), "sha256": metadata.get("vocabulary_sha256")}
    if metadata["format"] == "tf_saved_model":
        if loaded is None:
            import tensorflow as tf

            loaded = tf.saved_model.load(os.fspath(export_dir))
        tokens = saved_model_vocabulary(loaded, export_dir)
        text_lib.check_vocabulary(tokens, expected, source=f"the tokenizer table of {os.fspath(export_dir)!r}")
        return tokens
    path = os.path.join(os.fspath(export_dir), metadata.get("vocabulary_file") or VOCABULARY_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{os.fspath(export_dir)!r} reads text but has no {os.path.basename(path)}.")
    return text_lib.load_vocabulary(path, expected)


def saved_model_vocabulary(loaded, export_dir: str | os.PathLike = "the SavedModel") -> list[str]:
    """Reads the token list back from a loaded SavedModel's tokenizer lookup table.

    Raises:
        VocabularyError: if the SavedModel holds no string-to-id table, more
            than one, or ids that are not 2, 3, ... without gaps.
    """
    import tensorflow as tf

    tables = []
    for trackable in tf.train.TrackableView(loaded).descendants():
        if "HashTable" in type(trackable).__name__ and hasattr(trackable, "resource_handle"):
            tables.append(trackable)
    where = os.fspath(export_dir)
    if len(tables) != 1:
        raise text_lib.VocabularyError(
            f"{where!r} holds {len(tables)} lookup tables; expected exactly one (the tokenizer's vocabulary)."
        )
    # Restored tables have no Python export method; the raw op reads them.
    keys, values = tf.raw_ops.LookupTableExportV2(
        table_handle=tables[0].resource_handle, Tkeys=tf.string, Tvalues=tf.int64
    )
    by_id = dict(zip(values.numpy().tolist(), (k.decode("utf-8") for k in keys.numpy()), strict=True))
    ids = sorted(by_id)
    first = len(text_lib.RESERVED)
    if ids != list(range(first, first + len(ids))):
        raise text_lib.VocabularyError(
            f"The tokenizer table of {where!r} has ids {ids[:3]}...{ids[-3:]}; expected {first}, {first + 1}, ... without gaps."
        )
    return list(text_lib.RESERVED) + [by_id[i] for i in ids]


_TOKENIZE_DOC = """\
# How to tokenize text for this model

This {format_name} model takes token ids, not strings: string processing cannot
run inside {format_name}. Turn each text into `token_ids`, an int32 array of
shape [batch, {max_length}], exactly like this (it is what the model saw in
training and what the zoo's TensorFlow SavedModel export does in its graph):

1. **Decode** the text as UTF-8; replace invalid bytes with U+FFFD.
2. **Lowercase** it (Unicode lowercase).
3. **Punctuation to spaces**: replace each of these characters with a space:
   `` !"#$%&()*+,-./:;<=>?@[\\]^_`{{|}}~' ``
4. **Split** on ASCII whitespace (space, tab, newline, carriage return,
   vertical tab, form feed) only; drop empty pieces. Other Unicode spaces
   (such as U+00A0) stay inside a word.
5. **Look up** each word in `{vocabulary}` (UTF-8, one token per line): a
   word's id is its line number counting from 0. Line 0 is empty (padding,
   id 0) and line 1 is `[UNK]` (id 1): any word not in the file gets id 1.
6. **Truncate** to the first {max_length} words, then **pad** with 0 at the end
   to exactly {max_length} ids.

An empty text is all zeros. Reject texts over {max_bytes} bytes before
tokenizing, as the SavedModel export does.

Python reference (NumPy only):

```python
import re
import numpy as np

PUNCTUATION = re.compile(r"[!\\"#$%&()*+,\\-./:;<=>?@\\[\\\\\\]^_`{{|}}~']")
WHITESPACE = re.compile(r"[ \\t\\n\\r\\v\\f]+")

def load_vocabulary(path="{vocabulary}"):
    with open(path, encoding="utf-8", newline="\\n") as f:
        tokens = f.read().split("\\n")
    return {{token: i for i, token in enumerate(tokens[:-1] if tokens[-1] == "" else tokens) if i >= 2}}

def tokenize(texts, vocabulary, max_length={max_length}):
    ids = np.zeros((len(texts), max_length), dtype=np.int32)
    for row, text in enumerate(texts):
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        words = [w for w in WHITESPACE.split(PUNCTUATION.sub(" ", text.lower())) if w]
        for col, word in enumerate(words[:max_length]):
            ids[row, col] = vocabulary.get(word, 1)
    return ids
```

Inputs: {inputs}. Outputs: {outputs}.
"""


def write_tokenizer_files(
    directory: str,
    vocabulary: list[str],
    *,
    format_name: str,
    max_length: int,
    max_bytes: int,
    inputs: str,
    outputs: str,
) -> None:
    """Writes `vocabulary.txt` and `TOKENIZE.md` into an ONNX or LiteRT export."""
    text_lib.save_vocabulary(vocabulary, os.path.join(directory, VOCABULARY_FILE))
    doc = _TOKENIZE_DOC.format(
        format_name=format_name,
        max_length=max_length,
        vocabulary=VOCABULARY_FILE,
        max_bytes=max_bytes,
        inputs=inputs,
        outputs=outputs,
    )
    atomic_write_text(os.path.join(directory, TOKENIZE_FILE), doc)
