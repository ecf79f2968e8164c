"""The tokenizer of a KerasHub text backbone, kept in the run folder so that the run can be exported.

A model on a KerasHub text backbone reads `token_ids` and `padding_mask` made
by its preset's tokenizer (`zoo.data.hub_text`), not by the zoo's vocabulary,
so its run folder has no `vocabulary.txt`. Instead the final save writes
`text_preset/`: a small KerasHub preset holding the backbone's `config.json`
(architecture only, no weights) and the tokenizer's `tokenizer.json` and
assets, which is what `TextClassifierPreprocessor.from_preset` needs. The
folder is replaced atomically, `config.json` of the run records its name
(`text_preset`), and `metrics.json` the SHA-256 of each of its files, so
`zoo export RUN_DIR` tokenizes exactly as training did, and a changed file is
refused (`zoo.training.runfiles.verify_run`).
"""

from __future__ import annotations

import os

from zoo.core.atomic import atomic_directory
from zoo.core.jsonio import write_json
from zoo.training.runfiles import TEXT_PRESET

__all__ = ["TEXT_PRESET", "text_preset_source", "write_text_preset"]


def text_preset_source(model_spec, overrides) -> str | None:
    """The KerasHub preset whose tokenizer a run's model reads text with, or None.

    Args:
        model_spec: what `zoo.train` was given as its model (a registered
            name, a function or a `keras.Model`).
        overrides: the model's hyperparameter overrides.

    Returns:
        A local preset directory or a published preset name, for a
        registered model on a KerasHub text backbone that has a tokenizer;
        None for every other model.
    """
    from zoo.training.inputs import backbone_text_preset

    try:
        return backbone_text_preset(model_spec, overrides)
    except ValueError:
        # A randomly initialised backbone has no tokenizer: with data=CONFIG the
        # run was refused before this; with dataset_fn the caller made the ids.
        return None


def write_text_preset(out: str, source: str, model) -> str:
    """Writes `OUT/text_preset/` atomically from the tokenizer of `source` and the model's text backbone.

    Args:
        out: the run folder.
        source: the preset the run's text was tokenized with (`text_preset_source`).
        model: the trained model; its `text_backbone` layer's config becomes
            the preset's `config.json`.

    Returns:
        The path of the folder written.

    Raises:
        ImportError: KerasHub is not installed.
        ValueError: the model has no `text_backbone` layer.
        OSError: the folder cannot be written; the previous one is left as it was.
    """
    import keras
    import keras_hub

    from zoo.towers.pretrained import TEXT_NAME

    tokenizer = keras_hub.models.Tokenizer.from_preset(source)
    config = keras.saving.serialize_keras_object(model.get_layer(TEXT_NAME))
    # As KerasHub's own preset writer: the build and compile state is no part of an architecture.
    for key in ("build_config", "compile_config"):
        config.pop(key, None)
    target = os.path.join(out, TEXT_PRESET)
    with atomic_directory(target, overwrite=True) as tmp:
        tokenizer.save_to_preset(tmp)
        write_json(os.path.join(tmp, "config.json"), config)
    return target
