"""mnist_text: MNIST images paired with English questions or captions.

Configs: `vqa` (a question about the digit, its answer as the label), `caption`
(a text that names, hints at or says nothing about the digit; some images
degraded; the digit as the label), `digits` (plain MNIST) and `describe` (a
text that describes its own image: the digit and its slant and stroke
thickness measured from the pixels; for contrastive training and retrieval).
Generation rules are in `generation.py`, `describe.py` and the dataset card
(README.md).

The official MNIST files are read from, in order:

1. the builder's `source_dir` argument (a folder holding the files or its parent
   with an `mnist/` folder), verified by size and SHA-256;
2. the `ZOO_DATA_DIR` environment variable (same layout, same checks);
3. TFDS's download manager: copies in `DownloadConfig(manual_dir=...)`, the
   download cache, or a download from the official mirror, each checked
   against `checksums.tsv`.

>>> import zoo.data  # registers the builder
>>> ds = tfds.load("mnist_text/vqa", split="train", data_dir="/tmp/tfds")
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
import tqdm
from etils import epath
from tensorflow_datasets.core.utils import tqdm_utils
from zoo.datasets.mnist_text import describe, generation
from zoo.datasets.mnist_text import mnist_files as mnist

from zoo.core import keys

CONFIG_NAMES = generation.CONFIG_NAMES
TEXT_CONFIGS = generation.TEXT_CONFIGS
SPLITS = generation.SPLITS
CLASS_NAMES = generation.CLASS_NAMES
KIND_NAMES = generation.KIND_NAMES
IMAGE_SHAPE = (mnist.IMAGE_SIZE, mnist.IMAGE_SIZE, 1)

_HERE = epath.Path(__file__).parent


@dataclasses.dataclass
class MnistTextConfig(tfds.core.BuilderConfig):
    """A config of mnist_text.

    Attributes:
        seed: seeds every random choice (validation carve-out, texts, image
            degradation). Changing it gives a different dataset.
    """

    seed: int = 0


class Builder(tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for mnist_text.

    Args:
        source_dir: folder of the official MNIST files (or its parent with an
            `mnist/` folder); None = `ZOO_DATA_DIR`, then TFDS's download manager.
        source_checksums: expected size and SHA-256 per file name for files read
            from a folder; the official MNIST values by default.
        **kwargs: `data_dir`, `config`, `version` as for any TFDS builder.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release: configs vqa, caption and digits; config describe added later without changing "
        "the data of the others (so without a new version).",
    }
    BUILDER_CONFIGS = [
        MnistTextConfig(
            name="vqa",
            description=(
                "A question about the image (what digit / parity / greater or less than K / is this K) "
                "answered from the true digit; label = answer in [no, yes, zero..nine]."
            ),
        ),
        MnistTextConfig(
            name="caption",
            description=(
                "A text that names the digit, hints at it (parity, range, arithmetic) or says nothing; "
                "60% of the images occluded or noisy; label = digit."
            ),
        ),
        MnistTextConfig(name="digits", description="Plain MNIST (image and digit), same splits as the other configs."),
        MnistTextConfig(
            name="describe",
            description=(
                "A text describing its image: the digit (word or numeral), its slant and its stroke "
                "thickness measured from the pixels (three bins each), in varied words; label = digit."
            ),
        ),
    ]
    # The package is installed as zoo.datasets from a folder named datasets/, so
    # TFDS cannot derive this folder (README, checksums) from the module name.
    pkg_dir_path = _HERE

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        return _HERE / "mnist_text_dataset_builder.py"

    def __init__(self, *, source_dir=None, source_checksums=None, **kwargs):
        self._source_dir = source_dir
        self._source_checksums = dict(source_checksums) if source_checksums else dict(mnist.OFFICIAL_CHECKSUMS)
        super().__init__(**kwargs)
        # Keeps the source when a builder is pickled (TFDS rebuilds it from this).
        self._original_state.update(source_dir=source_dir, source_checksums=source_checksums)

    def _info(self) -> tfds.core.DatasetInfo:
        name = self.builder_config.name
        features = {
            keys.IMAGE: tfds.features.Image(shape=IMAGE_SHAPE, encoding_format="png", doc="28x28 greyscale digit"),
            keys.LABEL: tfds.features.ClassLabel(names=CLASS_NAMES[name]),
            keys.EXAMPLE_ID: tfds.features.Scalar(
                dtype=np.int64, doc="Index in the official files: train 0..59999, test 60000..69999"
            ),
        }
        if name in TEXT_CONFIGS:
            features[keys.TEXT] = tfds.features.Text(doc="English question or caption, lowercase")
            features.update(
                digit=tfds.features.ClassLabel(names=generation.DIGIT_NAMES),
                kind=tfds.features.ClassLabel(names=KIND_NAMES[name]),
                degradation=tfds.features.ClassLabel(names=generation.DEGRADATIONS),
            )
            if name == "describe":
                features.update(
                    slant=tfds.features.ClassLabel(names=generation.SLANTS, doc="slant bin measured from moments"),
                    thickness=tfds.features.ClassLabel(names=generation.THICKNESSES, doc="ink area bin per digit"),
                )
            supervised_keys = ({keys.IMAGE: keys.IMAGE, keys.TEXT: keys.TEXT}, keys.LABEL)
        else:
            supervised_keys = (keys.IMAGE, keys.LABEL)
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(features),
            supervised_keys=supervised_keys,
            homepage="http://yann.lecun.com/exdb/mnist/",
            license="CC BY-SA 3.0 (MNIST images)",
        )

    def download_and_prepare(self, *args, **kwargs):
        """Prepares the dataset as TFDS does, with one progress bar per split instead of TFDS's.

        TFDS's bars name temporary shard files (lines of ~200 characters) and
        count splits, not examples; `_generate_examples` shows its own.
        """
        enabled = getattr(tqdm_utils, "_active", True)
        tfds.disable_progress_bar()
        try:
            return super().download_and_prepare(*args, **kwargs)
        finally:
            tfds.display_progress_bar(enabled)

    def _log_download_bytes(self) -> None:
        # TFDS's message ("Downloading and preparing dataset Unknown size ...")
        # is wrong here: nothing is downloaded when the files are local.
        name = f"{self.name}/{self.builder_config.name}"
        try:
            directory = mnist.resolve_source_dir(self._source_dir)
        except FileNotFoundError:
            directory = None  # _split_generators reports it
        source = (f"from local MNIST files in {directory}" if directory is not None
                  else "from the official MNIST files (TFDS download manager)")
        print(f"preparing {name} {source} into {self.data_dir} (once per data directory)", flush=True)

    def _log_download_done(self) -> None:
        print(f"prepared {self.name}/{self.builder_config.name} in {self.data_dir}", flush=True)

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        paths = self._source_paths(dl_manager)
        train_images, train_labels = mnist.read_pair(paths["train_images"], paths["train_labels"])
        test_images, test_labels = mnist.read_pair(paths["test_images"], paths["test_labels"])
        validation = generation.validation_mask(len(train_labels), self.builder_config.seed)
        train_ids = np.arange(len(train_labels), dtype=np.int64)
        test_ids = len(train_labels) + np.arange(len(test_labels), dtype=np.int64)
        return {
            "train": self._generate_examples(
                train_images[~validation], train_labels[~validation], train_ids[~validation], split="train"
            ),
            "validation": self._generate_examples(
                train_images[validation], train_labels[validation], train_ids[validation], split="validation"
            ),
            "test": self._generate_examples(test_images, test_labels, test_ids, split="test"),
        }

    def _source_paths(self, dl_manager) -> dict:
        directory = mnist.resolve_source_dir(self._source_dir)
        if directory is not None:
            return mnist.find_files(directory, checksums=self._source_checksums)
        # TFDS checks these against checksums.tsv and uses manual_dir copies first.
        try:
            return dict(dl_manager.download(mnist.URLS))
        except OSError as e:  # includes requests' connection errors; checksum mismatches pass through
            raise OSError(
                f"No MNIST folder was given (source_dir or {mnist.ENV_VAR}) and fetching the official files "
                f"failed ({type(e).__name__}: {e}). Offline? Set {mnist.ENV_VAR} to the folder holding "
                f"{', '.join(mnist.BASENAMES[r] + '.gz' for r in mnist.ROLES)} (or its parent), or pass "
                f"DownloadConfig(manual_dir=that folder)."
            ) from e

    def _generate_examples(self, images: np.ndarray, labels: np.ndarray, ids: np.ndarray, split: str = ""):
        """Yields (example id, example) for one split; the id is the stable key."""
        config = self.builder_config
        records = []
        pixels = np.empty((len(labels), *IMAGE_SHAPE), dtype=np.uint8)
        for i, (image, digit, example_id) in enumerate(zip(images, labels, ids, strict=True)):
            digit, example_id = int(digit), int(example_id)
            record = {keys.LABEL: digit, keys.EXAMPLE_ID: example_id}
            pixels[i, ..., 0] = image
            if config.name == "vqa":
                draws = generation.Draws(config.seed, config.name, "text", example_id)
                text, answer, family = generation.vqa_example(digit, draws)
                record.update({keys.TEXT: text, keys.LABEL: answer}, digit=digit, kind=family, degradation=0)
            elif config.name == "caption":
                draws = generation.Draws(config.seed, config.name, "text", example_id)
                text, kind = generation.caption_example(digit, draws)
                image_draws = generation.Draws(config.seed, config.name, "image", example_id)
                pixels[i], degradation = generation.degrade(pixels[i], image_draws)
                record.update({keys.TEXT: text}, digit=digit, kind=kind, degradation=degradation)
            elif config.name == "describe":
                draws = generation.Draws(config.seed, config.name, "text", example_id)
                text, kind, slant, thickness = describe.describe_example(image, digit, draws)
                record.update({keys.TEXT: text}, digit=digit, kind=kind, degradation=0, slant=slant,
                              thickness=thickness)
            records.append(record)
        # disable=None: a bar on a terminal, nothing in logs (the start and end lines say enough there).
        progress = tqdm.tqdm(total=len(records), desc=f"  {config.name} {split}".rstrip(), unit=" examples",
                             disable=None, mininterval=0.5, leave=False)
        with progress:
            for record, png in zip(records, _encode_png(pixels), strict=True):
                record[keys.IMAGE] = png
                progress.update()
                yield record[keys.EXAMPLE_ID], record


def _encode_png(images: np.ndarray):
    """PNG-encodes uint8 [N, 28, 28, 1] images in parallel (TFDS's per-image path is ~100x slower)."""
    if len(images) == 0:
        return
    ds = tf.data.Dataset.from_tensor_slices(images)
    ds = ds.map(tf.io.encode_png, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(1024)
    for batch in ds.as_numpy_iterator():
        yield from batch
