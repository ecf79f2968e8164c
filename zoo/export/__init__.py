"""Export zoo models for serving: TensorFlow SavedModel, ONNX and LiteRT.

>>> import zoo
>>> model = zoo.build("cnn_lstm_concat")
>>> zoo.export_model(model, "exports/concat", vocabulary="runs/a/vocabulary.txt",
...                  class_names=["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"])

| format | inputs | runs with (`predict`'s `runtime`) |
|---|---|---|
| `tf_saved_model` | `image` uint8 pixels, `text` strings (tokenized in the graph), `audio` int16 samples (float32 in `serving_float`) | TensorFlow alone (TF Serving, `tf.saved_model.load`): `tensorflow` |
| `onnx` | `image` uint8 pixels, `token_ids` int32 (see TOKENIZE.md) | onnxruntime: `onnxruntime` |
| `litert` | `image` uint8 pixels, `token_ids` int32; recurrent layers unrolled (a copy) | `ai_edge_litert` interpreter: `litert` |

Models that read audio export as `tf_saved_model` only: ONNX and LiteRT are
refused (see `AUDIO_FORMATS`). So do dual encoders (zero-shot classification
and embedding signatures) and captioners (caption strings out), each through
its own writer (see `zoo.export.kinds`).

Every export is a directory written atomically (temporary directory beside
it, then renamed), holding `zoo_export.json` with its inputs, outputs, class
names and, for text models, the vocabulary's size and SHA-256. `overwrite`
replaces only a previous export, never another folder or a file.

From a training run and back: `export_run(run_dir, path, format)` verifies
the run's vocabulary against its `config.json` and exports;
`predict(export_dir, image=..., text=..., audio=...)` answers one example after checking
its inputs and the export's vocabulary (`check_export_vocabulary`).
"""

from __future__ import annotations

import importlib
import os
import sys
import types
import warnings

__all__ = [
    "export_model",
    "export_run",
    "read_run",
    "ExportWarning",
    "check_export_vocabulary",
    "predict",
    "image_polarity_warning",
    "read_image",
    "read_audio",
    "FORMATS",
    "RUNTIMES",
    "FORMAT_RUNTIMES",
    "MAX_TEXT_BYTES",
    "MAX_AUDIO_SECONDS",
    "AUDIO_FORMATS",
    "load_model",
    "read_metadata",
    "unrolled_copy",
    "CorruptModelError",
    "NotAnExportError",
    "TextTooLongError",
    "UnsafeModelError",
    "VocabularyError",
    "VocabularyMismatchError",
]

FORMATS = ("tf_saved_model", "onnx", "litert")
# What `predict(runtime=...)` / `zoo predict --runtime` accept, and the one runtime
# each format runs in (`zoo.export.runtimes`); `auto` is the format's own.
RUNTIMES = ("auto", "tensorflow", "onnxruntime", "litert")
FORMAT_RUNTIMES = {"tf_saved_model": "tensorflow", "onnx": "onnxruntime", "litert": "litert"}
# Longest text, in bytes, a SavedModel accepts by default (checked in the graph):
# a question is a sentence, and 4 KiB keeps a hostile request from making the
# tokenizer split megabytes.
MAX_TEXT_BYTES = 4096
# Longest recording a SavedModel accepts by default, in seconds at the model's
# sample rate (80,000 samples at 8 kHz): the zoo's audio models look at the
# first second only (longer input is cropped in the model) and FSDD's longest
# recording is 2.3 s, so 10 s leaves room while keeping a hostile request from
# sending minutes of samples through the graph.
MAX_AUDIO_SECONDS = 10
# The formats that carry a model reading audio: its log-mel front end (an STFT
# inside the model) has no conversion to ONNX or LiteRT that the zoo checks.
AUDIO_FORMATS = ("tf_saved_model",)

# The rest loads TensorFlow, so it loads on first use: the command line reads
# FORMATS and MAX_TEXT_BYTES without it.
_LAZY = {
    "load_model": "zoo.export.safe_load",
    "CorruptModelError": "zoo.export.safe_load",
    "UnsafeModelError": "zoo.export.safe_load",
    "read_metadata": "zoo.export.metadata",
    "check_export_vocabulary": "zoo.export.metadata",
    "NotAnExportError": "zoo.export.target",
    "export_run": "zoo.export.from_run",
    "read_run": "zoo.export.from_run",
    "ExportWarning": "zoo.export.from_run",
    "predict": "zoo.export.inference",
    "image_polarity_warning": "zoo.export.inference",
    "read_image": "zoo.export.inference",
    "read_audio": "zoo.export.inference",
    "TextTooLongError": "zoo.export.inference",
    "VocabularyError": "zoo.data.text",
    "VocabularyMismatchError": "zoo.data.text",
    "unrolled_copy": "zoo.export.litert",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zoo.export' has no attribute {name!r}")


def export_model(
    model,
    path: str | os.PathLike,
    format: str = "tf_saved_model",
    *,
    vocabulary=None,
    expected_vocabulary=None,
    max_length: int | None = None,
    class_names=None,
    overwrite: bool = False,
    max_text_bytes: int = MAX_TEXT_BYTES,
    max_audio_samples: int | None = None,
    text_preset=None,
    class_prompts=None,
    xla: bool = True,
) -> str:
    """Exports a zoo model for serving.

    Classifiers export to every format. Dual encoders and captioners export
    as "tf_saved_model" only, through `zoo.export.dual_encoder` and
    `zoo.export.captioner` (see `zoo.export.kinds`).

    Args:
        model: a functional `keras.Model` with inputs named `image`,
            `token_ids` and/or `audio` and softmax outputs (as `zoo.build`
            returns), or a `*_dual_encoder` or `cnn_lstm_captioner`.
        path: the export directory; created atomically.
        format: "tf_saved_model" (raw image + raw text in), "onnx" or "litert"
            (token ids in; the vocabulary and TOKENIZE.md are shipped beside).
        vocabulary: for text models, the token list or the path of the run's
            `vocabulary.txt`.
        expected_vocabulary: what the model was trained with, to refuse an
            edited vocabulary: a mapping with `size` and/or `sha256` (a run's
            `config.json` `vocabulary_size` / `vocabulary_sha256`) and/or
            `tokens`; see `zoo.data.text.load_vocabulary`.
        max_length: text length, only needed when the model's `token_ids`
            input has no fixed length; must match it otherwise.
        class_names: a list of names for the (first) output, or a dict from
            output name to list; adds a `class_name` output to the SavedModel.
        overwrite: replace a previous zoo export at `path` (a folder holding
            `zoo_export.json`); anything else there is refused.
        max_text_bytes: longest text the SavedModel accepts, in bytes.
        xla: compile the SavedModel's model call with XLA (on a 2-core CPU it
            halves the batch-1 latency of the seed model, and a captioner's
            decoding is 2-8 times faster); False for a serving runtime
            built without XLA's CPU JIT.
        max_audio_samples: longest recording the SavedModel accepts, in
            samples; None = `MAX_AUDIO_SECONDS` at the model's sample rate.
        text_preset: for a model on a KerasHub text backbone (inputs
            `token_ids` and `padding_mask`), the KerasHub preset whose
            tokenizer the SavedModel runs on raw text, instead of a
            vocabulary; SavedModel format only.
        class_prompts: for a dual encoder, the zero-shot prompts
            {class name: [prompts]} (or one prompt list per class, named by
            `class_names`) whose embeddings `serving_default` compares
            images with; see `zoo.data.pipeline.class_prompts`.

    Returns:
        The absolute path of the export directory.

    Raises:
        ValueError: unknown format, unsupported model/format combination,
            missing vocabulary, class names that do not fit the outputs, or a
            vocabulary larger than the model's embedding; for a dual
            encoder, missing or malformed class prompts; class prompts for
            a model that is no dual encoder.
        VocabularyError: (a ValueError) a malformed vocabulary (a token
            listed twice, reserved entries out of place).
        VocabularyMismatchError: (a VocabularyError) a vocabulary that differs
            from `expected_vocabulary`.
        FileExistsError: if `path` exists and overwrite is False.
        NotAnExportError: (a FileExistsError) if `path` is a file, a link or
            a non-empty folder that is not a zoo export; it is left untouched.
        ImportError: if the converter for the format is not installed.
    """
    from zoo.export.kinds import export_kind, model_kind
    from zoo.export.metadata import resolve_vocabulary
    from zoo.export.spec import inspect_model, resolve_class_names
    from zoo.export.target import check_export_target

    if format not in FORMATS:
        raise ValueError(f"Unknown export format {format!r}; expected one of {', '.join(FORMATS)}.")
    if not isinstance(max_text_bytes, int) or max_text_bytes < 1:
        raise ValueError(f"max_text_bytes={max_text_bytes!r}: expected a positive int.")
    if max_audio_samples is not None and (
        isinstance(max_audio_samples, bool) or not isinstance(max_audio_samples, int) or max_audio_samples < 1
    ):
        raise ValueError(f"max_audio_samples={max_audio_samples!r}: expected a positive int or None.")
    # Checked again at the rename; failing here saves a conversion.
    target = check_export_target(path, overwrite)
    kind = model_kind(model)
    if kind != "classifier":
        return export_kind(kind, model, target, format, vocabulary=vocabulary, expected_vocabulary=expected_vocabulary,
                           class_names=class_names, class_prompts=class_prompts, overwrite=overwrite,
                           max_text_bytes=max_text_bytes, xla=xla)
    if class_prompts is not None:
        raise ValueError("class_prompts is for dual encoders (zero-shot classification); this model is a classifier.")
    spec = inspect_model(model, max_length)
    if spec.has_audio and format not in AUDIO_FORMATS:
        raise ValueError(
            f"Cannot export a model that reads audio as {format!r}: its log-mel front end (an STFT inside the "
            f"model) has no {format} conversion the zoo supports; use format='tf_saved_model' "
            "(raw int16 or float32 audio in)."
        )
    names = resolve_class_names(spec, class_names)
    if "padding_mask" in {t.name for t in model.inputs}:
        return _export_backbone_text_model(model, target, spec, format, text_preset, names, overwrite, max_text_bytes)
    tokens = resolve_vocabulary(spec, vocabulary, expected_vocabulary)
    _probe(model, spec, tokens)
    kwargs = dict(vocabulary=tokens, class_names=names, overwrite=overwrite, max_text_bytes=max_text_bytes)
    if format == "tf_saved_model":
        from zoo.export.saved_model import export_saved_model

        if spec.has_audio:
            kwargs["max_audio_samples"] = max_audio_samples or MAX_AUDIO_SECONDS * spec.sample_rate
        return export_saved_model(model, target, spec, xla=xla, **kwargs)
    if format == "onnx":
        from zoo.export.onnx import export_onnx

        return export_onnx(model, target, spec, **kwargs)
    from zoo.export.litert import export_litert

    return export_litert(model, target, spec, **kwargs)


def _export_backbone_text_model(model, target, spec, format, text_preset, names, overwrite, max_text_bytes) -> str:
    """A model on a KerasHub text backbone: its preset's tokenizer runs inside the SavedModel."""
    if format != "tf_saved_model":
        raise ValueError(
            f"format={format!r}: a model on a KerasHub text backbone exports as 'tf_saved_model' only (its "
            "tokenizer's ops exist in TensorFlow, not in the ONNX or LiteRT runtimes)."
        )
    if text_preset is None:
        raise ValueError(
            "This model reads text through a KerasHub backbone's tokenizer: pass text_preset=DIR, the preset "
            "saved with that tokenizer (see zoo.models.pretrained.save_tower_presets)."
        )
    from zoo.data.hub_text import BackboneTokenizer
    from zoo.export.saved_model import export_saved_model

    tokenizer = BackboneTokenizer(text_preset, spec.max_length)
    _probe(model, spec, [None] * tokenizer.vocab_size)
    return export_saved_model(model, target, spec, vocabulary=None, class_names=names, overwrite=overwrite,
                              max_text_bytes=max_text_bytes, tokenizer=tokenizer)


def _probe(model, spec, tokens) -> None:
    """Runs the model once on the largest token id, so a vocabulary that does not fit fails now."""
    import numpy as np
    import tensorflow as tf

    feeds = {}
    if spec.has_image:
        shape = [1, *(d if d is not None else 8 for d in spec.image_shape)]
        feeds["image"] = np.zeros(shape, np.float32)
    if spec.has_text:
        feeds["token_ids"] = np.full([1, spec.max_length], len(tokens) - 1, np.int32)
        feeds["padding_mask"] = np.ones([1, spec.max_length], np.int32)
        feeds["segment_ids"] = np.zeros([1, spec.max_length], np.int32)
    if spec.has_audio:
        feeds["audio"] = np.zeros([1, spec.sample_rate], np.float32)
    try:
        outputs = model({t.name: feeds[t.name] for t in model.inputs}, training=False)
    except (tf.errors.InvalidArgumentError, ValueError) as error:
        if spec.has_text:
            raise ValueError(
                f"The model rejects token id {len(tokens) - 1} (the vocabulary has {len(tokens)} tokens): "
                "its embedding is smaller. Export with the vocabulary the model was trained with. "
                f"({type(error).__name__}: {str(error).splitlines()[0][:200]})"
            ) from error
        raise
    flat = list(outputs.values()) if isinstance(outputs, dict) else list(outputs) if isinstance(outputs, list | tuple) else [outputs]
    if not all(bool(np.all(np.isfinite(np.asarray(o)))) for o in flat):
        raise ValueError("The model gives non-finite outputs on a blank input; refusing to export it.")


class _CallableModule(types.ModuleType):
    """Keeps the old spelling `zoo.export(model, ...)` working, with a warning.

    `zoo.export` is this package whatever was imported before; calling it is
    deprecated in favour of `zoo.export_model` and will be removed in 0.3.
    """

    def __call__(self, *args, **kwargs):
        warnings.warn(
            "zoo.export(model, ...) is deprecated; call zoo.export_model(model, ...) instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        return export_model(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
