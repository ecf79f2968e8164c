"""mnist_audio: MNIST images paired with spoken digits of the same class and a text.

Config `av`: one MNIST image in five, each paired with an FSDD recording of the
same digit drawn from the matching split, and an mnist_text caption or a
filler; images, recordings and texts degraded so that no modality suffices
alone (rules in `generation.py` and the dataset card). The MNIST files and the
WAV files are read from local folders (`ZOO_DATA_DIR` by default), each
checksum-verified by its own reader.

>>> import zoo.datasets  # registers the builder
>>> ds = tfds.load("mnist_audio/av", split="train", data_dir="/tmp/tfds")
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from zoo.datasets.fsdd import fsdd_dataset_builder as fsdd_builder
from zoo.datasets.fsdd import fsdd_files as fsdd
from zoo.datasets.mnist_audio import generation
from zoo.datasets.mnist_text import mnist_files as mnist
from zoo.datasets.mnist_text import mnist_text_dataset_builder as mnist_builder

from zoo.core import keys

CONFIG_NAMES = generation.CONFIG_NAMES
SPLITS = generation.SPLITS
CLASS_NAMES = {"av": generation.DIGIT_NAMES}
IMAGE_SHAPE = mnist_builder.IMAGE_SHAPE
_HERE = epath.Path(__file__).parent


class Builder(tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for mnist_audio.

    Args:
        mnist_dir: folder of the official MNIST files (or its parent with `mnist/`);
            None = `ZOO_DATA_DIR`.
        fsdd_dir: folder of the FSDD WAV files (see `fsdd_files.resolve_source_dir`);
            None = `ZOO_DATA_DIR`.
        mnist_checksums: size and SHA-256 per MNIST file name; the official ones by default.
        fsdd_checksums: {WAV name: md5}; the official table by default.
        **kwargs: `data_dir`, `config`, `version` as for any TFDS builder.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: config av (image + audio + text)."}
    BUILDER_CONFIGS = [
        mnist_builder.MnistTextConfig(
            name="av",
            description=(
                "1 in 5 MNIST images, each with a recording of the same digit (same split) and a text; "
                "65% of images occluded or noise, 70% of recordings mixed with noise at 5, -5 or -30 dB, "
                "62.5% of texts say nothing; label = digit."
            ),
        ),
    ]
    pkg_dir_path = _HERE

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        return _HERE / "mnist_audio_dataset_builder.py"

    def __init__(self, *, mnist_dir=None, fsdd_dir=None, mnist_checksums=None, fsdd_checksums=None, **kwargs):
        self._mnist_dir, self._fsdd_dir = mnist_dir, fsdd_dir
        self._mnist_checksums = dict(mnist_checksums) if mnist_checksums else dict(mnist.OFFICIAL_CHECKSUMS)
        self._fsdd_checksums = dict(fsdd_checksums) if fsdd_checksums else None
        super().__init__(**kwargs)
        self._original_state.update(mnist_dir=mnist_dir, fsdd_dir=fsdd_dir, mnist_checksums=mnist_checksums,
                                    fsdd_checksums=fsdd_checksums)

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                keys.IMAGE: tfds.features.Image(shape=IMAGE_SHAPE, encoding_format="png", doc="28x28 digit, maybe degraded"),
                **fsdd_builder.features(),
                keys.TEXT: tfds.features.Text(doc="English caption or filler, lowercase"),
                keys.LABEL: tfds.features.ClassLabel(names=generation.DIGIT_NAMES),
                "recording_id": tfds.features.Scalar(dtype=np.int64, doc="fsdd example_id of the paired recording"),
                "image_kind": tfds.features.ClassLabel(names=generation.IMAGE_KINDS),
                "audio_kind": tfds.features.ClassLabel(names=generation.AUDIO_KINDS),
                "text_kind": tfds.features.ClassLabel(names=generation.TEXT_KINDS),
                keys.EXAMPLE_ID: tfds.features.Scalar(
                    dtype=np.int64, doc="Index in the official MNIST files: train 0..59999, test 60000..69999"
                ),
            }),
            supervised_keys=({keys.IMAGE: keys.IMAGE, keys.AUDIO: keys.AUDIO, keys.TEXT: keys.TEXT}, keys.LABEL),
            homepage="https://github.com/Jakobovski/free-spoken-digit-dataset",
            license="CC BY-SA 4.0 (FSDD recordings), CC BY-SA 3.0 (MNIST images)",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # Local files only.
        directory = mnist.resolve_source_dir(self._mnist_dir)
        if directory is None:
            raise ValueError(f"No MNIST folder given (mnist_dir) and {mnist.ENV_VAR} is not set.")
        paths = mnist.find_files(directory, checksums=self._mnist_checksums)
        train_images, train_labels = mnist.read_pair(paths["train_images"], paths["train_labels"])
        test_images, test_labels = mnist.read_pair(paths["test_images"], paths["test_labels"])
        pools = generation.recording_pools(fsdd.load_recordings(self._fsdd_dir, checksums=self._fsdd_checksums))
        # The same validation images as mnist_text's configs.
        validation = generation.text_rules.validation_mask(len(train_labels), self.builder_config.seed)
        ids = np.arange(len(train_labels), dtype=np.int64)
        test_ids = len(train_labels) + np.arange(len(test_labels), dtype=np.int64)
        parts = {
            "train": (train_images[~validation], train_labels[~validation], ids[~validation]),
            "validation": (train_images[validation], train_labels[validation], ids[validation]),
            "test": (test_images, test_labels, test_ids),
        }
        return {split: self._generate_examples(split, *part, pools) for split, part in parts.items()}

    def _generate_examples(self, split, images, labels, ids, pools):
        """Yields (example id, example) for the kept examples of one split."""
        config = self.builder_config
        keep = np.array([generation.kept(int(i)) for i in ids], dtype=bool)
        images, labels, ids = images[keep], labels[keep], ids[keep]
        pixels = np.empty((len(labels), *IMAGE_SHAPE), dtype=np.uint8)
        records = []
        for i, (image, digit, example_id) in enumerate(zip(images, labels, ids, strict=True)):
            digit, example_id = int(digit), int(example_id)

            def draws(part, example_id=example_id):
                return generation.Draws(config.seed, config.name, part, example_id)

            recording = generation.pair(digit, split, pools, draws("pair"))
            pixels[i, ..., 0] = image
            pixels[i], image_kind = generation.degrade_image(pixels[i], draws("image"))
            audio, audio_kind = generation.degrade_audio(recording.samples, draws("audio"))
            text, text_kind = generation.text_for(digit, draws("text"))
            records.append({
                keys.AUDIO: audio, "length": len(audio), "speaker": recording.speaker, keys.TEXT: text,
                keys.LABEL: digit, "recording_id": recording.example_id, "image_kind": image_kind,
                "audio_kind": audio_kind, "text_kind": text_kind, keys.EXAMPLE_ID: example_id,
            })
        # PNG encoding in one parallel tf.data pass (mnist_text's helper).
        for record, png in zip(records, mnist_builder._encode_png(pixels), strict=True):
            record[keys.IMAGE] = png
            yield record[keys.EXAMPLE_ID], record
