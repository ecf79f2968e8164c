"""fsdd: spoken digits (Free Spoken Digit Dataset) from local, checksum-verified WAV files.

Configs: `takes` (the official split by take: 0-4 test, 5-9 validation carved
from the official train takes, 10-49 train) and `speakers` (speaker-disjoint:
one speaker for test, another for validation). The files are read from the
builder's `source_dir` argument or `ZOO_DATA_DIR` (see `fsdd_files`); nothing
is downloaded.

>>> import zoo.datasets  # registers the builder
>>> ds = tfds.load("fsdd/takes", split="train", data_dir="/tmp/tfds")
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from zoo.datasets.fsdd import fsdd_files as fsdd

from zoo.core import keys

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_HERE = epath.Path(__file__).parent


@dataclasses.dataclass
class FsddConfig(tfds.core.BuilderConfig):
    """A config of fsdd.

    Attributes:
        scheme: how recordings are split, "takes" or "speakers" (see `fsdd_files.split_of`).
    """

    scheme: str = "takes"


def features() -> dict:
    """The TFDS features of one recording (shared with mnist_audio)."""
    return {
        keys.AUDIO: tfds.features.Audio(
            shape=(None,), dtype=np.int16, sample_rate=fsdd.SAMPLE_RATE, doc="8 kHz mono 16-bit samples"
        ),
        "length": tfds.features.Scalar(dtype=np.int32, doc="Number of samples"),
        "speaker": tfds.features.ClassLabel(names=fsdd.SPEAKERS),
    }


class Builder(tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for fsdd.

    Args:
        source_dir: folder of the WAV files (see `fsdd_files.resolve_source_dir`);
            None = `ZOO_DATA_DIR`.
        source_checksums: {file name: md5} of the recordings to read; the
            official table (`recordings.tsv`) by default.
        **kwargs: `data_dir`, `config`, `version` as for any TFDS builder.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: configs takes and speakers."}
    BUILDER_CONFIGS = [
        FsddConfig(
            name="takes",
            scheme="takes",
            description="Official split by take: 0-4 test, 5-9 validation (from the official train takes), 10-49 train.",
        ),
        FsddConfig(
            name="speakers",
            scheme="speakers",
            description=f"Speaker-disjoint: {fsdd.TEST_SPEAKER} is test, {fsdd.VALIDATION_SPEAKER} validation, "
            "the other four speakers train.",
        ),
    ]
    # Installed as zoo.datasets from a folder named datasets/ (see mnist_text).
    pkg_dir_path = _HERE

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        return _HERE / "fsdd_dataset_builder.py"

    def __init__(self, *, source_dir=None, source_checksums=None, **kwargs):
        self._source_dir = source_dir
        self._source_checksums = dict(source_checksums) if source_checksums else None
        super().__init__(**kwargs)
        self._original_state.update(source_dir=source_dir, source_checksums=source_checksums)

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                **features(),
                keys.LABEL: tfds.features.ClassLabel(names=DIGIT_NAMES),
                "take": tfds.features.Scalar(dtype=np.int32, doc="Take index 0..49"),
                keys.EXAMPLE_ID: tfds.features.Scalar(
                    dtype=np.int64, doc="digit * 300 + speaker index * 50 + take"
                ),
            }),
            supervised_keys=(keys.AUDIO, keys.LABEL),
            homepage="https://github.com/Jakobovski/free-spoken-digit-dataset",
            license="CC BY-SA 4.0",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # Local files only: FSDD has no stable archive to download.
        recordings = fsdd.load_recordings(self._source_dir, checksums=self._source_checksums)
        scheme = self.builder_config.scheme
        return {
            split: self._generate_examples([r for r in recordings if fsdd.split_of(r.speaker, r.take, scheme) == split])
            for split in fsdd.SPLITS
        }

    def _generate_examples(self, recordings):
        """Yields (example id, example); the id is the stable key."""
        for r in recordings:
            yield r.example_id, {
                keys.AUDIO: r.samples,
                "length": len(r.samples),
                "speaker": r.speaker,
                keys.LABEL: r.digit,
                "take": r.take,
                keys.EXAMPLE_ID: r.example_id,
            }
