"""Exporting a training run directory (what `zoo export RUN_DIR` does).

A run directory written by `zoo train` holds `model.keras`, `config.json` and,
for text models, `vocabulary.txt` or, for a model on a KerasHub text
backbone, `text_preset/` (its tokenizer as a small KerasHub preset).
`export_run` loads the model in safe mode, verifies the vocabulary against
what `config.json` recorded (its size and, for runs that record it, its
content hash) and every file against the run's completion marker, takes the
class names the run recorded and writes the export with the writer its kind
of model needs (`zoo.export.kinds`): a dual encoder gets the zero-shot prompts
of the data config it was trained on (`zoo.data.pipeline.class_prompts`).
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

from zoo.export import MAX_TEXT_BYTES

__all__ = ["ExportWarning", "RunContents", "export_run", "read_run"]

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
VOCABULARY_FILE = "vocabulary.txt"


class ExportWarning(UserWarning):
    """Something about a run the export worked around (for example class names that do not fit)."""


class RunContents:
    """A run directory's model, vocabulary, config and class names, as `read_run` found them.

    Attributes:
        model: the `keras.Model` (loaded in safe mode).
        vocabulary: the verified token list, or None for a run without text.
        config: the parsed `config.json` ({} when the run has none).
        class_names: the recorded class names, or None.
        expected_vocabulary: {"size", "sha256"} from `config.json` (None entries
            when not recorded).
        text_preset: for a model on a KerasHub text backbone, the run's
            tokenizer preset directory; None otherwise.
    """

    def __init__(self, model, vocabulary, config, class_names, expected_vocabulary, text_preset=None):
        self.model = model
        self.vocabulary = vocabulary
        self.config = config
        self.class_names = class_names
        self.expected_vocabulary = expected_vocabulary
        self.text_preset = text_preset

    @property
    def max_length(self) -> int | None:
        value = self.config.get("max_length")
        return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_is_run(run_dir: str) -> str:
    """The run's model path; FileNotFoundError when `run_dir` is no run folder."""
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"Run directory {run_dir!r} does not exist.")
    model_path = os.path.join(run_dir, MODEL_FILE)
    if not os.path.exists(model_path):
        raise FileNotFoundError(f"{run_dir!r} has no {MODEL_FILE}: is it a finished `zoo train` run directory?")
    return model_path


def read_run(run_dir: str | os.PathLike) -> RunContents:
    """Loads a run directory's model (safe mode), verified vocabulary, config and class names.

    Args:
        run_dir: a directory written by `zoo train`.

    Returns:
        A `RunContents`.

    Raises:
        FileNotFoundError: if the directory or its model.keras is missing, or
            its model reads text and it has no vocabulary.txt (or, for a
            KerasHub text backbone, records no text preset).
        ValueError: a malformed config.json, or a text preset it names
            outside the run; an unsafe model (`UnsafeModelError`);
            a truncated or corrupt model.keras (`CorruptModelError`).
        VocabularyError: a malformed vocabulary (a token listed twice, reserved
            entries out of place).
        VocabularyMismatchError: a vocabulary that differs from the size or
            hash in config.json, or (runs without a recorded hash) from the
            size of the model's embedding.
    """
    from zoo.data.text import load_vocabulary
    from zoo.export.kinds import model_kind
    from zoo.export.safe_load import load_model

    run_dir = os.fspath(run_dir)
    model_path = _check_is_run(run_dir)
    config = _read_config(os.path.join(run_dir, CONFIG_FILE))
    expected = {"size": _int_or_none(config.get("vocabulary_size")), "sha256": config.get("vocabulary_sha256")}
    vocabulary_path = os.path.join(run_dir, VOCABULARY_FILE)
    # Checked before the model loads: it is fast, and a tampered vocabulary is the likelier fault.
    vocabulary = load_vocabulary(vocabulary_path, expected) if os.path.exists(vocabulary_path) else None
    # The zoo's custom layers register themselves for deserialization on import.
    import zoo.layers  # noqa: F401

    model = load_model(model_path, safe_mode=True)
    inputs = {t.name for t in model.inputs}
    if "padding_mask" in inputs:
        # A KerasHub text backbone reads its preset tokenizer's ids, not the zoo's vocabulary.
        preset = _text_preset(run_dir, config)
        return RunContents(model, None, config, _class_names(config), expected, preset)
    if "token_ids" in inputs:
        if vocabulary is None:
            raise FileNotFoundError(
                f"{run_dir!r} has no {VOCABULARY_FILE}, but its model reads text: the export needs the vocabulary "
                "the model was trained with."
            )
        if expected["sha256"] is None and model_kind(model) != "captioner":
            # Runs from before the hash was recorded: at least the embedding must fit exactly
            # (a captioner's has one more row, its start id; its writer checks the output instead).
            _check_embedding_fits(model, vocabulary, vocabulary_path)
    return RunContents(model, vocabulary, config, _class_names(config), expected)


def export_run(
    run_dir: str | os.PathLike,
    path: str | os.PathLike,
    format: str = "tf_saved_model",
    *,
    overwrite: bool = False,
    unroll: bool = False,
    max_text_bytes: int = MAX_TEXT_BYTES,
    class_prompts=None,
) -> str:
    """Exports a training run directory for serving (the library side of `zoo export`).

    Classifiers export to every format; dual encoders and captioners as
    "tf_saved_model" (`zoo.export.kinds`).

    Args:
        run_dir: a directory written by `zoo train`.
        path: the export directory to create.
        format: one of `zoo.export.FORMATS`.
        overwrite: replace a previous zoo export at `path` (nothing else).
        unroll: unroll recurrent layers first (the LiteRT export does it itself).
        max_text_bytes: longest text the SavedModel accepts, in bytes.
        class_prompts: for a dual encoder, {class name: [prompts]} to
            classify with instead of its data config's prompts (needed when
            the run was trained on another config or with dataset_fn).

    Returns:
        The absolute path of the export directory.

    Raises:
        Everything `read_run` and `zoo.export_model` raise, and
        ValueError: a dual encoder whose run records no data config with
            zero-shot prompts, and no class_prompts were given;
        zoo.training.RunLocked: a training is writing the run right now;
        zoo.training.RunIncomplete: the run did not finish, or a file was
            changed after it finished (checked against `metrics.json`).
        Class names in config.json that do not fit the model are left out
        with an `ExportWarning` instead, as is a run of an older zoo whose
        files cannot be checked.
    """
    from zoo.training.runfiles import verify_run
    from zoo.training.runlock import shared_lock

    # Checked before locking, which creates a lock file in a run folder that has none.
    _check_is_run(os.fspath(run_dir))
    # A training that holds the folder is still writing it: never export half a run.
    with shared_lock(run_dir):
        run = read_run(run_dir)
        marker = verify_run(run_dir, allow_unhashed=True)
        if "artifacts" not in marker:
            warnings.warn(
                f"{os.fspath(run_dir)} was trained by an older zoo: its metrics.json records no file hashes, so "
                "only the vocabulary size and the model's embedding could be checked.",
                ExportWarning,
                stacklevel=2,
            )
        return _export_contents(run, path, format, overwrite=overwrite, unroll=unroll, max_text_bytes=max_text_bytes,
                                class_prompts=class_prompts)


def _export_contents(run, path, format, *, overwrite, unroll, max_text_bytes, class_prompts) -> str:
    from zoo.export import export_model
    from zoo.export.kinds import check_kind_format, model_kind
    from zoo.export.litert import unrolled_copy

    kind = model_kind(run.model)
    # Before the prompts: a format the kind cannot take is the first thing to say.
    check_kind_format(kind, format)
    class_names = None
    if kind == "dual_encoder" and class_prompts is None:
        class_prompts = _run_class_prompts(run)
    elif kind == "classifier":
        class_names = _fitting_class_names(run.model, run.class_names, run.max_length)
    model = unrolled_copy(run.model) if unroll else run.model
    return export_model(
        model,
        path,
        format,
        vocabulary=run.vocabulary,
        expected_vocabulary=run.expected_vocabulary,
        max_length=run.max_length,
        class_names=class_names,
        class_prompts=class_prompts,
        overwrite=overwrite,
        max_text_bytes=max_text_bytes,
        text_preset=run.text_preset,
    )


def _run_class_prompts(run) -> dict[str, list[str]]:
    """The zero-shot prompts of the data config a dual encoder's run was trained on."""
    data = run.config.get("data")
    if not isinstance(data, str):
        raise ValueError(
            "This run trained a dual encoder on its own dataset_fn (config.json records no data config), so the "
            "zoo knows no zero-shot prompts for it: export it with export_run(..., class_prompts={class name: "
            "[prompts]}) or zoo.export_model."
        )
    from zoo.data import pipeline

    try:
        return pipeline.class_prompts(data)
    except ValueError as error:
        raise ValueError(
            f"{error} This run's dual encoder was trained on {data!r}: export it with export_run(..., "
            "class_prompts={class name: [prompts]}) or zoo.export_model."
        ) from None


def _text_preset(run_dir: str, config: dict) -> str:
    """The run's tokenizer preset for a KerasHub text backbone, as config.json names it."""
    name = config.get("text_preset")
    if name is None:
        raise FileNotFoundError(
            f"{run_dir!r} records no tokenizer for its model's KerasHub text backbone (config.json has no "
            "text_preset: a run of an older zoo, or one trained with dataset_fn on a backbone without a "
            "tokenizer): export the model with zoo.export_model(model, path, text_preset=DIR), DIR the preset "
            "it was trained with."
        )
    if not isinstance(name, str) or os.path.isabs(name) or os.path.normpath(name).split(os.sep)[0] in ("..", "."):
        raise ValueError(f"config.json of {run_dir!r} has text_preset={name!r}; expected a folder inside the run.")
    path = os.path.join(run_dir, name)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path!r} is missing, but config.json names it as the run's tokenizer preset.")
    return path


def _read_config(path: str) -> dict[str, Any]:
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        try:
            config = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path!r} is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path!r} must hold a JSON object, got {type(config).__name__}.")
    return config


def _int_or_none(value):
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_embedding_fits(model, vocabulary: list[str], source: str) -> None:
    """Refuses a vocabulary whose size differs from the model's token embedding (zoo runs make them equal)."""
    import keras

    from zoo.data.text import VocabularyMismatchError
    from zoo.export.spec import all_layers

    sizes = {layer.input_dim for layer in all_layers(model) if isinstance(layer, keras.layers.Embedding)}
    if len(sizes) == 1 and len(vocabulary) not in sizes:
        (size,) = sizes
        raise VocabularyMismatchError(
            f"{source!r} is not the vocabulary the model was trained with: {len(vocabulary)} tokens where the "
            f"model's embedding has {size}. Use the vocabulary.txt written with the model."
        )


def _class_names(config: dict):
    names = config.get("class_names")
    if names is not None:
        return names
    data = config.get("data")
    if isinstance(data, str):
        try:
            from zoo.data import pipeline
        except ImportError:
            return None
        try:
            return pipeline.class_names(data)
        except ValueError:
            return None
    return None


def _fitting_class_names(model, class_names, max_length):
    """Class names as recorded for the run, or None (with an ExportWarning) when they do not fit the model."""
    if class_names is None:
        return None
    from zoo.export.spec import inspect_model, resolve_class_names

    try:
        resolve_class_names(inspect_model(model, max_length), class_names)
    except ValueError as error:
        warnings.warn(f"not adding class names from config.json ({error})", ExportWarning, stacklevel=3)
        return None
    return class_names
