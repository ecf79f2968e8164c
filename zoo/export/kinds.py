"""The kinds of model the zoo exports, and the writer each kind goes to.

| kind | recognised by | formats | writer |
|---|---|---|---|
| `classifier` | everything else: [batch, classes] heads | `tf_saved_model`, `onnx`, `litert` | `zoo.export.saved_model`, `onnx`, `litert` |
| `dual_encoder` | a `ContrastiveHead` (`*_dual_encoder`) | `tf_saved_model` | `zoo.export.dual_encoder` |
| `captioner` | `image` + `token_ids` in, one [batch, length, vocabulary] output (`cnn_lstm_captioner`) | `tf_saved_model` | `zoo.export.captioner` |

`zoo.export_model` and `zoo.export.export_run` call `model_kind` first and
hand dual encoders and captioners to `export_kind`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from zoo.core import keys
from zoo.export import FORMATS

__all__ = ["KIND_FORMATS", "check_kind_format", "export_kind", "model_kind", "resolve_class_prompts"]

KIND_FORMATS = {
    "classifier": FORMATS,
    "dual_encoder": ("tf_saved_model",),
    "captioner": ("tf_saved_model",),
}
# What each non-classifier SavedModel serves, for the refusal of other formats.
_SERVES = {
    "dual_encoder": "serving_default (zero-shot classification of a raw image), embed_image and embed_text",
    "captioner": "serving_default (greedy caption of a raw image) and generate (beam search)",
}


def model_kind(model) -> str:
    """Which kind of export a model needs: "classifier", "dual_encoder" or "captioner".

    Args:
        model: a functional `keras.Model`.

    Returns:
        One of the keys of `KIND_FORMATS`.
    """
    from zoo.layers import ContrastiveHead

    if any(isinstance(layer, ContrastiveHead) for layer in getattr(model, "layers", ())):
        return "dual_encoder"
    inputs = {t.name for t in getattr(model, "inputs", None) or ()}
    outputs = getattr(model, "outputs", None) or ()
    # A next-word decoder: one probability row per text position, over the vocabulary.
    if inputs == {keys.IMAGE, keys.TOKEN_IDS} and len(outputs) == 1 and len(outputs[0].shape) == 3:
        return "captioner"
    return "classifier"


def check_kind_format(kind: str, format: str) -> None:
    """Refuses a format the kind of model does not export to.

    Raises:
        ValueError: naming the format, the kind, and what it exports as.
    """
    if format not in KIND_FORMATS[kind]:
        raise ValueError(
            f"format={format!r}: a {kind.replace('_', ' ')} exports as 'tf_saved_model' only, with the signatures "
            f"{_SERVES[kind]}; the zoo's ONNX and LiteRT exports serve classifiers. Use format='tf_saved_model'."
        )


def resolve_class_prompts(class_prompts, class_names=None) -> dict[str, list[str]]:
    """{class name: prompts} in label order, from a mapping or from per-class lists with `class_names`.

    Args:
        class_prompts: {class name: [prompt, ...]}, or one list of prompts
            per class in label order (then `class_names` names them).
        class_names: the class names in label order, or None; with a
            mapping, it must list the mapping's keys in the same order.

    Raises:
        ValueError: no prompts, a class without prompts, a prompt that is not
            a string, or class names that disagree with the prompts.
    """
    if class_prompts is None:
        raise ValueError(
            "A dual encoder classifies zero-shot against prompts: pass class_prompts={class name: [prompts]} "
            "(for a model trained on a data config, zoo.data.pipeline.class_prompts(config))."
        )
    if isinstance(class_names, Mapping):
        if set(class_names) != {"probabilities"}:
            raise ValueError(
                f"class_names={class_names!r}: a dual encoder's zero-shot output is 'probabilities' alone; "
                "pass a list of class names."
            )
        class_names = class_names["probabilities"]
    if isinstance(class_prompts, Mapping):
        prompts = {str(name): _prompt_list(name, texts) for name, texts in class_prompts.items()}
        if class_names is not None and list(class_names) != list(prompts):
            raise ValueError(
                f"class_names={list(class_names)!r} disagrees with the classes of class_prompts {list(prompts)!r}; "
                "pass the same names in the same (label) order, or leave class_names out."
            )
    else:
        lists = list(class_prompts)
        if class_names is None or len(list(class_names)) != len(lists):
            raise ValueError(
                f"class_prompts is a list of {len(lists)} prompt lists: pass class_names with one name per list "
                f"(got {class_names!r}), or a mapping {{class name: [prompts]}}."
            )
        prompts = {str(name): _prompt_list(name, texts) for name, texts in zip(class_names, lists, strict=True)}
    if not prompts:
        raise ValueError("class_prompts is empty; expected at least one class with prompts.")
    return prompts


def _prompt_list(name, texts) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence) or not all(isinstance(t, str) for t in texts):
        raise ValueError(f"class_prompts[{name!r}] = {texts!r}: expected a list of prompt strings.")
    if not texts:
        raise ValueError(f"class_prompts[{name!r}] is empty; expected at least one prompt per class.")
    return list(texts)


def export_kind(kind: str, model, path, format: str, *, vocabulary, expected_vocabulary=None, class_names=None,
                class_prompts=None, overwrite: bool = False, max_text_bytes: int, xla: bool = True) -> str:
    """Exports a dual encoder or a captioner (what `zoo.export_model` does for these kinds).

    Args:
        kind: "dual_encoder" or "captioner" (from `model_kind`).
        model, path, format, overwrite, max_text_bytes, xla: as `zoo.export_model`.
        vocabulary: the token list or the path of the run's vocabulary.txt.
        expected_vocabulary: as `zoo.export_model`: what the model was trained with.
        class_names, class_prompts: dual encoders: see `resolve_class_prompts`.

    Returns:
        The absolute path of the export directory.

    Raises:
        ValueError: a format other than tf_saved_model, missing or malformed
            vocabulary or prompts, or a vocabulary larger than the model's
            embedding (dual encoder) or output (captioner).
        VocabularyError, VocabularyMismatchError: as `zoo.export_model`.
        FileExistsError: if `path` exists and overwrite is False.
    """
    check_kind_format(kind, format)
    tokens = _vocabulary(model, vocabulary, expected_vocabulary)
    if kind == "captioner":
        if class_prompts is not None:
            raise ValueError("class_prompts is for dual encoders; this model is a captioner (it writes text).")
        from zoo.export.captioner import export_captioner

        return export_captioner(model, path, vocabulary=tokens, overwrite=overwrite, xla=xla)
    from zoo.export.dual_encoder import export_dual_encoder

    prompts = resolve_class_prompts(class_prompts, class_names)
    _check_embedding_fits(model, tokens)
    return export_dual_encoder(model, path, vocabulary=tokens, class_prompts=prompts, overwrite=overwrite,
                               max_text_bytes=max_text_bytes, xla=xla)


def _vocabulary(model, vocabulary, expected) -> list[str]:
    from zoo.export.metadata import resolve_vocabulary
    from zoo.export.spec import ModelSpec

    # Both kinds read text; the spec only tells resolve_vocabulary so.
    text = ModelSpec(None, int(model.input[keys.TOKEN_IDS].shape[1]), (), (), False)
    return resolve_vocabulary(text, vocabulary, expected)


def _check_embedding_fits(model, tokens: list[str]) -> None:
    """Refuses a vocabulary with ids the text tower's embedding (`text_embedding`) has no row for."""
    try:
        rows = model.get_layer("text_embedding").input_dim
    except ValueError:  # a text tower the zoo did not build: embedding the prompts fails instead
        return
    if len(tokens) > rows:
        raise ValueError(
            f"The vocabulary has {len(tokens)} tokens but the model's token embedding has {rows} rows: "
            "export with the vocabulary the model was trained with."
        )
