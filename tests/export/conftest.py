"""Fixtures of the export tests: one tiny model and its SavedModel per module."""

import pytest
import tensorflow as tf
from export_helpers import CLASS_NAMES, VOCABULARY, build_tiny

import zoo


@pytest.fixture(scope="module")
def tiny_model():
    import keras

    keras.utils.set_random_seed(1)
    return build_tiny()


@pytest.fixture(scope="module")
def saved_model_dir(tiny_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "sm"
    zoo.export(tiny_model, path, vocabulary=VOCABULARY, class_names=CLASS_NAMES)
    return path


@pytest.fixture(scope="module")
def serving(saved_model_dir):
    return tf.saved_model.load(str(saved_model_dir))
