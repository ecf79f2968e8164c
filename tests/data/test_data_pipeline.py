"""zoo.data.pipeline on data prepared from the dummy MNIST files."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import zoo.data  # noqa: F401  (registers mnist_text with TFDS)
from zoo.core import keys
from zoo.data import pipeline
from zoo.data.text import Tokenizer, load_vocabulary, save_vocabulary


def _epoch(ds):
    return [(({k: v.numpy() for k, v in f.items()}), label.numpy()) for f, label in ds]


def _ids(batches):
    return np.concatenate([f["example_id"] for f, _ in batches]).tolist()


@pytest.mark.parametrize("config", ["vqa", "caption"])
def test_model_mode_shapes_and_dtypes(prepared_dir, config):
    ds = pipeline.make_dataset(config, "train", data_dir=prepared_dir, batch_size=8, max_length=12)
    features, label = next(iter(ds))
    assert set(features) == {keys.IMAGE, keys.TOKEN_IDS}
    assert features[keys.IMAGE].shape == (8, 28, 28, 1) and features[keys.IMAGE].dtype == tf.float32
    assert 0.0 <= float(tf.reduce_min(features[keys.IMAGE])) and float(tf.reduce_max(features[keys.IMAGE])) <= 1.0
    assert float(tf.reduce_max(features[keys.IMAGE])) > 0.5, "images are scaled, not zeroed"
    assert features[keys.TOKEN_IDS].shape == (8, 12) and features[keys.TOKEN_IDS].dtype == tf.int32
    assert label.shape == (8,) and label.dtype == tf.int32
    assert int(tf.reduce_max(label)) < len(pipeline.class_names(config))
    # Every text has at least one known word (vocabulary fitted on train).
    assert bool(tf.reduce_all(tf.reduce_max(features[keys.TOKEN_IDS], axis=1) > 1))


def test_raw_mode_and_digits_config(prepared_dir):
    features, label = next(iter(pipeline.make_dataset("caption", "test", data_dir=prepared_dir, batch_size=4, mode="raw")))
    assert set(features) == {keys.IMAGE, keys.TEXT}
    assert features[keys.IMAGE].dtype == tf.uint8 and features[keys.IMAGE].shape == (4, 28, 28, 1)
    assert features[keys.TEXT].dtype == tf.string and all(t for t in features[keys.TEXT].numpy())
    assert label.dtype == tf.int32
    for mode in ("model", "raw"):
        features, label = next(iter(pipeline.make_dataset("digits", "test", data_dir=prepared_dir, batch_size=4, mode=mode)))
        assert set(features) == {keys.IMAGE}, "digits is image-only"
    batches = _epoch(pipeline.make_dataset("digits", "test", data_dir=prepared_dir, batch_size=6, with_ids=True))
    assert [len(label) for _, label in batches] == [6, 6, 6, 2]
    assert sorted(_ids(batches)) == list(range(60, 80))


def test_shuffle_is_seeded_and_deterministic(prepared_dir):
    def run(seed, **kwargs):
        ds = pipeline.make_dataset(
            "vqa", "train", data_dir=prepared_dir, batch_size=10, seed=seed, with_ids=True, deterministic=True,
            mode="raw", **kwargs
        )
        return _epoch(ds)

    first, again, other = run(3), run(3), run(4)
    assert _ids(first) == _ids(again)
    for (f1, l1), (f2, l2) in zip(first, again, strict=True):
        for name in f1:
            np.testing.assert_array_equal(f1[name], f2[name])
        np.testing.assert_array_equal(l1, l2)
    assert _ids(first) != _ids(other)
    assert sorted(_ids(first)) == sorted(_ids(other))
    unshuffled = run(3, shuffle=False)
    assert _ids(unshuffled) == _ids(run(4, shuffle=False)), "without shuffling the order is the stored order"
    # Evaluation splits are not shuffled by default.
    def test_ids(seed):
        ds = pipeline.make_dataset(
            "vqa", "test", data_dir=prepared_dir, batch_size=7, with_ids=True, seed=seed, deterministic=True, mode="raw"
        )
        return _ids(_epoch(ds))

    assert test_ids(1) == test_ids(2)


def test_repeat_covers_each_epoch_exactly_once_in_a_new_order(prepared_dir, dummy_splits):
    n = dummy_splits["train"]
    ds = pipeline.make_dataset(
        "caption", "train", data_dir=prepared_dir, batch_size=n, repeat=True, with_ids=True, deterministic=True, mode="raw"
    )
    epochs = [features["example_id"].numpy().tolist() for features, _ in ds.take(3)]
    assert all(sorted(ids) == sorted(epochs[0]) and len(set(ids)) == n for ids in epochs)
    assert epochs[0] != epochs[1], "reshuffled each epoch"


def test_input_context_shards_and_batches_per_replica(prepared_dir, dummy_splits):
    shards = []
    for pipeline_id in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline_id, num_replicas_in_sync=2)
        ds = pipeline.make_dataset(
            "vqa", "train", data_dir=prepared_dir, batch_size=8, input_context=context, with_ids=True, mode="raw"
        )
        batches = _epoch(ds)
        assert len(batches[0][1]) == 4, "global batch 8 over 2 replicas"
        shards.append(set(_ids(batches)))
        assert ds.options().experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.OFF
    assert not shards[0] & shards[1]
    assert len(shards[0] | shards[1]) == dummy_splits["train"]
    plain = pipeline.make_dataset("vqa", "train", data_dir=prepared_dir)
    assert plain.options().experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.DATA


def test_distribute_datasets_from_function(prepared_dir, dummy_splits):
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    dist = strategy.distribute_datasets_from_function(
        lambda context: pipeline.make_dataset(
            "vqa", "validation", data_dir=prepared_dir, batch_size=4, input_context=context, with_ids=True
        )
    )
    ids = []
    for features, _ in dist:
        ids.extend(strategy.experimental_local_results(features["example_id"])[0].numpy().tolist())
    assert len(ids) == dummy_splits["validation"] == len(set(ids))


def test_vocabulary_from_train_only_round_trips_through_a_file(prepared_dir, tmp_path):
    vocabulary = pipeline.fit_vocabulary("vqa", data_dir=prepared_dir)
    builder = pipeline.load_builder("vqa", data_dir=prepared_dir)
    train_texts = [e["text"] for e in tfds.as_numpy(builder.as_dataset(split="train"))]
    assert vocabulary == zoo.data.build_vocabulary(train_texts)
    assert pipeline.fit_vocabulary("vqa", data_dir=prepared_dir, max_tokens=5) == vocabulary[:5]

    save_vocabulary(vocabulary, tmp_path / "vocabulary.txt")
    tokenizer = Tokenizer(load_vocabulary(tmp_path / "vocabulary.txt"), max_length=16)
    from_file = pipeline.make_dataset(
        "vqa", "test", data_dir=prepared_dir, tokenizer=tokenizer, max_length=16, deterministic=True
    )
    fitted = pipeline.make_dataset("vqa", "test", data_dir=prepared_dir, max_length=16, deterministic=True)
    for (a, _), (b, _) in zip(from_file, fitted, strict=True):
        np.testing.assert_array_equal(a[keys.TOKEN_IDS], b[keys.TOKEN_IDS])


def test_class_names_and_sizes(prepared_dir, dummy_splits):
    assert pipeline.class_names("vqa") == ["no", "yes", "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    assert pipeline.class_names("caption") == pipeline.class_names("digits") == [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"
    ]
    for config in pipeline.CONFIGS:
        for split, size in dummy_splits.items():
            assert pipeline.num_examples(config, split, prepared_dir) == size
    assert pipeline.num_examples("vqa", "train[:10]", prepared_dir) == 10


def test_tfds_load_by_name_after_importing_zoo_data(prepared_dir):
    ds = tfds.load("mnist_text/vqa", split="test", data_dir=prepared_dir, download=False)
    example = next(iter(ds))
    assert set(example) >= {"image", "text", "label", "digit", "kind", "degradation", "example_id"}
    image, label = next(iter(tfds.load("mnist_text/digits", split="test", data_dir=prepared_dir, as_supervised=True)))
    assert image.shape == (28, 28, 1) and label.dtype == tf.int64


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(config="mnist", split="train"), "Unknown config 'mnist'; expected one of \\['vqa', 'caption', 'digits', 'describe'\\]"),
        (dict(config="vqa", split="dev"), "Unknown split 'dev'"),
        (dict(config="vqa", split="train", mode="serving"), "Unknown mode 'serving'"),
        (dict(config="vqa", split="train", batch_size=0), "batch_size=0: expected a positive int"),
        (dict(config="vqa", split="train", max_length=2.5), "max_length=2.5: expected a positive int"),
        (dict(config="vqa", split="train", tokenizer=Tokenizer(["", "[UNK]", "a"], 8)), "tokenizer.max_length=8 differs"),
        (dict(config="digits", split="train", tokenizer=Tokenizer(["", "[UNK]", "a"], 32)), "'digits' has no text"),
        (dict(config="vqa", split="train", input_context=3), "input_context must be a tf.distribute.InputContext"),
    ],
)
def test_bad_arguments_are_named(prepared_dir, kwargs, message):
    with pytest.raises(ValueError, match=message):
        pipeline.make_dataset(data_dir=prepared_dir, **kwargs)


def test_other_bad_arguments(prepared_dir):
    with pytest.raises(ValueError, match="'digits' has no text to fit a vocabulary on"):
        pipeline.fit_vocabulary("digits", data_dir=prepared_dir)
    with pytest.raises(ValueError, match="Unknown config 'VQA'"):
        pipeline.class_names("VQA")
    with pytest.raises(ValueError, match="Unknown split 'train\\[:'"):
        pipeline.num_examples("vqa", "train[:", prepared_dir)


def test_zoo_data_exports_the_pipeline():
    for name in ("make_dataset", "fit_vocabulary", "num_examples", "class_names", "load_builder"):
        assert getattr(zoo.data, name, None) is getattr(pipeline, name), (
            f"zoo.data.{name} should re-export zoo.data.pipeline.{name} (see zoo/data/__init__.py)"
        )


def test_iterator_checkpoint_resumes_exactly(prepared_dir, tmp_path):
    # What a resumed training run relies on: the iterator state (position,
    # shuffle buffer) survives a checkpoint, so the next batches are the same.
    def make():
        return pipeline.make_dataset(
            "vqa", "train", data_dir=prepared_dir, batch_size=8, repeat=True, with_ids=True, deterministic=True
        )

    iterator = iter(make())
    for _ in range(9):  # past the first epoch of 55 examples
        next(iterator)
    path = tf.train.Checkpoint(iterator=iterator).write(str(tmp_path / "iterator"))
    expected = [next(iterator)[0]["example_id"].numpy().tolist() for _ in range(4)]
    restored = iter(make())
    tf.train.Checkpoint(iterator=restored).read(path).assert_consumed()
    assert [next(restored)[0]["example_id"].numpy().tolist() for _ in range(4)] == expected
