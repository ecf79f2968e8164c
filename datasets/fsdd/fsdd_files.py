"""The Free Spoken Digit Dataset's WAV files: where they are, checking them, reading them.

FSDD (Zohar Jackson et al., CC BY-SA 4.0) holds 3,000 recordings
`{digit}_{speaker}_{take}.wav`: 6 speakers x 10 digits x 50 takes, mono 16-bit
PCM at 8 kHz. Every file is checked against its MD5 in `recordings.tsv` (copied
from the source's MD5SUMS, commit 26eb9aaf of Jakobovski/free-spoken-digit-dataset)
before a sample of it is used, so a truncated or corrupted copy fails naming the
file instead of turning into a silently wrong dataset.

Where the files are looked for, in order: a directory given by argument, then
the `ZOO_DATA_DIR` environment variable. Either may name the `recordings/`
folder itself, the folder holding it, or a parent with `fsdd/recordings/` (the
layout of the project's offline data folder).

>>> from zoo.datasets.fsdd import fsdd_files as fsdd
>>> recordings = fsdd.load_recordings()  # from ZOO_DATA_DIR
>>> len(recordings), recordings[0].name, recordings[0].samples.dtype
(3000, '0_george_0.wav', dtype('int16'))
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import wave
from collections.abc import Mapping
from pathlib import Path

import numpy as np

ENV_VAR = "ZOO_DATA_DIR"
SUBDIR = "fsdd"
RECORDINGS = "recordings"
SAMPLE_RATE = 8000
SAMPLE_WIDTH = 2  # bytes: 16-bit PCM
NUM_DIGITS = 10
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
NUM_TAKES = 50
SPLITS = ("train", "validation", "test")
SCHEMES = ("takes", "speakers")

# Official split (source README): takes 0-4 are the test set. The zoo carves
# its validation split from the official training takes: takes 5-9.
TEST_TAKES = range(0, 5)
VALIDATION_TAKES = range(5, 10)
# Speaker-disjoint option: one unseen speaker for test, another for validation.
TEST_SPEAKER = "theo"
VALIDATION_SPEAKER = "lucas"

CHECKSUMS_FILE = Path(__file__).parent / "recordings.tsv"
_NAME_RE = re.compile(r"^([0-9])_([a-z]+)_([0-9]+)\.wav$")
_CHUNK = 1 << 20


class SourceFileError(ValueError):
    """An FSDD file is corrupted, unknown, or not 8 kHz mono 16-bit PCM WAV."""


@dataclasses.dataclass(frozen=True)
class Recording:
    """One recording: its file name, digit, speaker, take and int16 samples."""

    name: str
    digit: int
    speaker: str
    take: int
    samples: np.ndarray

    @property
    def example_id(self) -> int:
        """A stable id in 0..2999: digit * 300 + speaker index * 50 + take."""
        return (self.digit * len(SPEAKERS) + SPEAKERS.index(self.speaker)) * NUM_TAKES + self.take


def parse_name(name: str) -> tuple[int, str, int]:
    """Splits `{digit}_{speaker}_{take}.wav` into (digit, speaker, take).

    Raises:
        SourceFileError: if the name does not follow that pattern, or names an
            unknown speaker or a take outside 0..49.
    """
    match = _NAME_RE.match(name)
    if not match or match[2] not in SPEAKERS or int(match[3]) >= NUM_TAKES:
        raise SourceFileError(
            f"{name!r} is not an FSDD recording name: expected '{{digit}}_{{speaker}}_{{take}}.wav' with a digit "
            f"0-9, a speaker in {list(SPEAKERS)} and a take 0-{NUM_TAKES - 1}."
        )
    return int(match[1]), match[2], int(match[3])


def split_of(speaker: str, take: int, scheme: str = "takes") -> str:
    """The split a recording belongs to under `scheme`.

    Args:
        speaker, take: from the file name.
        scheme: "takes" (official: takes 0-4 test, 5-9 validation, 10-49 train;
            every speaker in every split) or "speakers" (speaker-disjoint:
            `TEST_SPEAKER` is test, `VALIDATION_SPEAKER` validation, the other
            four train).

    Raises:
        ValueError: for an unknown scheme.
    """
    if scheme == "takes":
        return "test" if take in TEST_TAKES else "validation" if take in VALIDATION_TAKES else "train"
    if scheme == "speakers":
        return "test" if speaker == TEST_SPEAKER else "validation" if speaker == VALIDATION_SPEAKER else "train"
    raise ValueError(f"Unknown split scheme {scheme!r}; expected one of {list(SCHEMES)}.")


def load_checksums(path: str | os.PathLike = CHECKSUMS_FILE) -> dict[str, str]:
    """Reads a table of `name<TAB>md5` lines into {file name: md5 hex}.

    Raises:
        ValueError: for a malformed line (its number is given).
    """
    table = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split("\t")
        if len(fields) != 2 or not re.fullmatch(r"[0-9a-f]{32}", fields[1]):
            raise ValueError(f"{os.fspath(path)}:{number}: expected 'name<TAB>md5 (32 hex digits)'; got {line!r}.")
        table[fields[0]] = fields[1]
    return table


def resolve_source_dir(source_dir: str | os.PathLike | None = None) -> Path | None:
    """Finds the folder holding the WAV files.

    Args:
        source_dir: the `recordings/` folder, the folder holding it, or a parent
            with `fsdd/recordings/`. None = the `ZOO_DATA_DIR` environment variable.

    Returns:
        The folder of the WAV files, or None when neither is set.

    Raises:
        FileNotFoundError: if the given directory does not exist or holds no recordings folder.
    """
    origin = "source_dir"
    if source_dir is None or os.fspath(source_dir) == "":
        source_dir = os.environ.get(ENV_VAR) or None
        origin = ENV_VAR
        if source_dir is None:
            return None
    path = Path(source_dir).expanduser()
    for candidate in (path / SUBDIR / RECORDINGS, path / RECORDINGS, path):
        if candidate.is_dir() and any(candidate.glob("*.wav")):
            return candidate
    raise FileNotFoundError(
        f"{origin}={os.fspath(source_dir)!r} holds no FSDD recordings: expected a folder of "
        f"'{{digit}}_{{speaker}}_{{take}}.wav' files, the folder holding its {RECORDINGS}/ folder, "
        f"or a parent with {SUBDIR}/{RECORDINGS}/."
    )


def md5_of(path: str | os.PathLike) -> str:
    """The MD5 (hex) of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: str | os.PathLike, checksums: Mapping[str, str]) -> None:
    """Checks a file's MD5 against the table entry for its name.

    Raises:
        SourceFileError: if the name has no entry or the MD5 differs.
    """
    path = Path(path)
    expected = checksums.get(path.name)
    if expected is None:
        raise SourceFileError(f"FSDD file {os.fspath(path)!r} has no known checksum: it is not one of the recordings.")
    actual = md5_of(path)
    if actual != expected:
        raise SourceFileError(
            f"FSDD file {os.fspath(path)!r} is corrupted: MD5 {actual}, expected {expected}. "
            f"Replace it with an intact copy."
        )


def read_wav(path: str | os.PathLike, *, sample_rate: int | None = SAMPLE_RATE, max_samples: int | None = None) -> np.ndarray:
    """Reads a mono 16-bit PCM WAV file.

    Args:
        path: the file.
        sample_rate: the rate the file must have; None accepts any.
        max_samples: the most samples accepted; None = no limit.

    Returns:
        The samples, int16 [samples].

    Raises:
        SourceFileError: naming the file, if it is not a readable WAV file, is
            not mono, not 16-bit, has another rate, is empty or too long.
    """
    where = os.fspath(path)
    try:
        with wave.open(where, "rb") as handle:
            channels, width, rate, frames = (
                handle.getnchannels(), handle.getsampwidth(), handle.getframerate(), handle.getnframes()
            )
            if channels != 1:
                raise SourceFileError(f"{where!r} has {channels} channels; expected 1 (mono).")
            if width != SAMPLE_WIDTH:
                raise SourceFileError(f"{where!r} has {8 * width}-bit samples; expected 16-bit PCM.")
            if sample_rate is not None and rate != sample_rate:
                raise SourceFileError(f"{where!r} is sampled at {rate} Hz; expected {sample_rate} Hz.")
            if frames == 0:
                raise SourceFileError(f"{where!r} holds no samples; expected a non-empty recording.")
            if max_samples is not None and frames > max_samples:
                raise SourceFileError(
                    f"{where!r} holds {frames} samples ({frames / rate:.1f} s); expected at most {max_samples} "
                    f"({max_samples / rate:.1f} s)."
                )
            data = handle.readframes(frames)
    except (wave.Error, EOFError) as e:
        raise SourceFileError(f"{where!r} is not a readable WAV file: {e}.") from e
    if len(data) != frames * SAMPLE_WIDTH:
        raise SourceFileError(f"{where!r} is truncated: header says {frames} samples, file holds {len(data) // 2}.")
    return np.frombuffer(data, dtype="<i2").astype(np.int16)


def load_recordings(
    source_dir: str | os.PathLike | None = None, *, checksums: Mapping[str, str] | None = None
) -> list[Recording]:
    """Verifies and reads every recording of the checksum table, sorted by name.

    Args:
        source_dir: see `resolve_source_dir`; None = `ZOO_DATA_DIR`.
        checksums: {file name: md5}; None = the official table (`recordings.tsv`).

    Returns:
        One `Recording` per table entry.

    Raises:
        ValueError: if no directory is given and `ZOO_DATA_DIR` is unset.
        FileNotFoundError: if the directory or a listed file is missing.
        SourceFileError: for a corrupted, unknown or malformed file (named).
    """
    directory = resolve_source_dir(source_dir)
    if directory is None:
        raise ValueError(f"No FSDD directory given and {ENV_VAR} is not set: pass source_dir or set {ENV_VAR}.")
    checksums = load_checksums() if checksums is None else dict(checksums)
    missing = sorted(name for name in checksums if not (directory / name).is_file())
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} FSDD recording(s) missing from {os.fspath(directory)!r}, e.g. {missing[:3]}; "
            f"expected all {len(checksums)} files of the checksum table."
        )
    recordings = []
    for name in sorted(checksums):
        path = directory / name
        verify_file(path, checksums)
        digit, speaker, take = parse_name(name)
        recordings.append(Recording(name, digit, speaker, take, read_wav(path)))
    return recordings
