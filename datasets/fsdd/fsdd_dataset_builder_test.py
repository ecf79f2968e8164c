"""fsdd on its dummy data: 18 synthetic WAVs (digits 0-1, speakers george, lucas, theo, takes 0, 5, 10)."""

import shutil

import pytest
import tensorflow_datasets as tfds
from zoo.datasets.fsdd import fsdd_dataset_builder as builder_module
from zoo.datasets.fsdd import fsdd_files as fsdd

DUMMY = builder_module.Builder.code_path.parent / "dummy_data"
CHECKSUMS = fsdd.load_checksums(DUMMY / "recordings.tsv")
SKIP_STATS = tfds.download.DownloadConfig(compute_stats=tfds.download.ComputeStatsMode.SKIP)


@pytest.mark.parametrize("config, test_speakers", [("takes", {"george", "lucas", "theo"}), ("speakers", {"theo"})])
def test_prepare_dummy_data(config, test_speakers, tmp_path):
    builder = builder_module.Builder(data_dir=tmp_path, config=config, source_dir=DUMMY, source_checksums=CHECKSUMS)
    builder.download_and_prepare(download_config=SKIP_STATS)
    examples = {s: list(tfds.as_numpy(builder.as_dataset(split=s, shuffle_files=False))) for s in fsdd.SPLITS}
    assert {s: len(e) for s, e in examples.items()} == {"train": 6, "validation": 6, "test": 6}
    ids = [{int(e["example_id"]) for e in examples[s]} for s in fsdd.SPLITS]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert {fsdd.SPEAKERS[e["speaker"]] for e in examples["test"]} == test_speakers
    for e in examples["train"]:
        assert e["audio"].dtype == "int16" and len(e["audio"]) == e["length"] > 0


def test_corrupted_wav_is_named(tmp_path):
    shutil.copytree(DUMMY / "recordings", tmp_path / "recordings")
    path = tmp_path / "recordings" / "1_theo_5.wav"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    builder = builder_module.Builder(data_dir=tmp_path / "tfds", config="takes", source_dir=tmp_path,
                                     source_checksums=CHECKSUMS)
    with pytest.raises(fsdd.SourceFileError, match="1_theo_5.wav.*corrupted"):
        builder.download_and_prepare(download_config=SKIP_STATS)
    assert not builder.is_prepared()


def test_official_table_lists_every_recording_once():
    table = fsdd.load_checksums()
    assert len(table) == 3000
    parsed = {fsdd.parse_name(name) for name in table}
    assert len(parsed) == 3000 and {d for d, _, _ in parsed} == set(range(10))
