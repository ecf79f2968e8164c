"""The official MNIST files: where they are, checking them, reading them, fetching them.

MNIST comes as four IDX files (Yann LeCun, Corinna Cortes, Chris Burges;
CC BY-SA 3.0), gzip-compressed or raw. Every file is checked against its known
size and SHA-256 before a byte of it is used, so a truncated or corrupted copy
fails loudly, naming the file, instead of turning into a silently wrong dataset.

Where the files are looked for, in order:

1. a directory given by argument;
2. the `ZOO_DATA_DIR` environment variable.

Either may name the directory holding the files or its parent with an `mnist/`
folder (the layout of the project's offline data folder). On a connected
machine `download()` fetches the official files into such a directory.

>>> from zoo.datasets.mnist_text import mnist_files as mnist
>>> images, labels = mnist.load_split("test")  # from ZOO_DATA_DIR
>>> images.shape, labels.shape
((10000, 28, 28), (10000,))
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import hashlib
import http.client
import os
import sys
import urllib.request
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from zoo.core.atomic import atomic_path

ENV_VAR = "ZOO_DATA_DIR"
SUBDIR = "mnist"
SPLITS = ("train", "test")
ROLES = ("train_images", "train_labels", "test_images", "test_labels")

# File stems of the official distribution; ".gz" is the compressed form.
BASENAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

NUM_EXAMPLES = {"train": 60_000, "test": 10_000}
IMAGE_SIZE = 28
NUM_CLASSES = 10


@dataclasses.dataclass(frozen=True)
class FileInfo:
    """Expected size in bytes and SHA-256 (hex) of one file."""

    size: int
    sha256: str


# The official values (they match the published MD5s, see the data README).
# Raw entries are the decompressed files, for copies that were gunzipped.
OFFICIAL_CHECKSUMS: Mapping[str, FileInfo] = {
    "train-images-idx3-ubyte.gz": FileInfo(9_912_422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    "train-labels-idx1-ubyte.gz": FileInfo(28_881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    "t10k-images-idx3-ubyte.gz": FileInfo(1_648_877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    "t10k-labels-idx1-ubyte.gz": FileInfo(4_542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    "train-images-idx3-ubyte": FileInfo(47_040_016, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train-labels-idx1-ubyte": FileInfo(60_008, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "t10k-images-idx3-ubyte": FileInfo(7_840_016, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "t10k-labels-idx1-ubyte": FileInfo(10_008, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}

# The first is the copy TFDS and most libraries fetch (the original site now
# often refuses scripted downloads); the others are tried when it fails.
MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
URLS = {role: MIRRORS[0] + BASENAMES[role] + ".gz" for role in ROLES}

# IDX type code 0x08 = unsigned byte, the only one MNIST uses.
_IDX_UBYTE = 0x08
_IDX_NDIM = {"images": 3, "labels": 1}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


class SourceFileError(ValueError):
    """An MNIST source file is truncated, corrupted or not in IDX format."""


def resolve_source_dir(source_dir: str | os.PathLike | None = None) -> Path | None:
    """Finds the directory holding the MNIST files.

    Args:
        source_dir: a directory holding the files, or a parent with an `mnist/`
            folder. None = use the `ZOO_DATA_DIR` environment variable.

    Returns:
        The directory, or None when neither the argument nor the variable is set.

    Raises:
        FileNotFoundError: if the given directory (or the variable's) does not exist.
    """
    origin = "source_dir"
    if source_dir is None or os.fspath(source_dir) == "":
        source_dir = os.environ.get(ENV_VAR) or None
        origin = ENV_VAR
        if source_dir is None:
            return None
    path = Path(source_dir).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"{origin}={os.fspath(source_dir)!r} is not a directory: expected a folder holding the "
            f"MNIST IDX files ({', '.join(BASENAMES[r] + '.gz' for r in ROLES)}) or its parent with "
            f"an {SUBDIR}/ folder."
        )
    nested = path / SUBDIR
    if not _has_any_file(path) and nested.is_dir():
        return nested
    return path


def _has_any_file(directory: Path) -> bool:
    return any((directory / stem).is_file() or (directory / (stem + ".gz")).is_file() for stem in BASENAMES.values())


def find_files(
    source_dir: str | os.PathLike,
    *,
    roles: Sequence[str] = ROLES,
    checksums: Mapping[str, FileInfo] = OFFICIAL_CHECKSUMS,
) -> dict[str, Path]:
    """Locates and verifies MNIST files (gzip preferred, raw accepted).

    Args:
        source_dir: the directory holding the files (see `resolve_source_dir`).
        roles: which files, out of `ROLES`.
        checksums: expected size and SHA-256 per file name; the official ones
            by default (another table serves MNIST-format data such as test
            fixtures).

    Returns:
        {role: path} for each requested role.

    Raises:
        FileNotFoundError: if a file is missing.
        SourceFileError: if a file's size or SHA-256 is not the expected one.
    """
    directory = Path(source_dir)
    found = {}
    for role in roles:
        if role not in BASENAMES:
            raise ValueError(f"Unknown MNIST file role {role!r}; expected one of {list(ROLES)}.")
        stem = BASENAMES[role]
        candidates = [directory / (stem + ".gz"), directory / stem]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise FileNotFoundError(
                f"MNIST file {stem}.gz (or {stem}) not found in {os.fspath(directory)!r}. Put the official "
                f"files there, point {ENV_VAR} at their folder, or fetch them with "
                f"`python -m zoo.datasets.mnist_text.mnist_files download DIR` on a connected machine."
            )
        verify_file(path, checksums=checksums)
        found[role] = path
    return found


def file_info(path: str | os.PathLike) -> FileInfo:
    """Returns the size and SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return FileInfo(size, digest.hexdigest())


def verify_file(path: str | os.PathLike, *, checksums: Mapping[str, FileInfo] = OFFICIAL_CHECKSUMS) -> None:
    """Checks a file's size, then its SHA-256, against the table entry for its name.

    Raises:
        SourceFileError: if the name has no entry, or size or SHA-256 differ.
    """
    path = Path(path)
    expected = checksums.get(path.name)
    if expected is None:
        raise SourceFileError(
            f"{os.fspath(path)!r}: no known checksum for a file named {path.name!r}; expected one of "
            f"{sorted(checksums)}."
        )
    size = path.stat().st_size
    if size != expected.size:
        kind = "truncated" if size < expected.size else "too long"
        raise SourceFileError(
            f"MNIST file {os.fspath(path)!r} is {kind}: {size} bytes, expected {expected.size}. "
            f"Replace it with an intact copy."
        )
    actual = file_info(path)
    if actual.sha256 != expected.sha256:
        raise SourceFileError(
            f"MNIST file {os.fspath(path)!r} is corrupted: SHA-256 {actual.sha256}, expected "
            f"{expected.sha256}. Replace it with an intact copy."
        )


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX file of unsigned bytes, gzip-compressed or raw.

    Compression is detected from the content, not the name.

    Returns:
        A uint8 array with the dimensions given in the file's header.

    Raises:
        SourceFileError: if the file is not a complete IDX file of unsigned bytes.
    """
    path = Path(path)
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise SourceFileError(f"MNIST file {os.fspath(path)!r} is not a valid gzip stream: {e}.") from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise SourceFileError(
            f"{os.fspath(path)!r} is not an IDX file: it must start with two zero bytes, a type code "
            f"and a dimension count; got {data[:4]!r}."
        )
    if data[2] != _IDX_UBYTE:
        raise SourceFileError(
            f"{os.fspath(path)!r} holds IDX type code {data[2]:#04x}; expected {_IDX_UBYTE:#04x} (unsigned bytes)."
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise SourceFileError(f"{os.fspath(path)!r} has an incomplete IDX header ({len(data)} bytes, {ndim} dims).")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims, dtype=np.int64))
    if len(data) - header != expected:
        raise SourceFileError(
            f"{os.fspath(path)!r}: header says {dims} = {expected} values but the file holds "
            f"{len(data) - header}; the file is truncated or corrupted."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def load_split(
    split: str,
    source_dir: str | os.PathLike | None = None,
    *,
    checksums: Mapping[str, FileInfo] = OFFICIAL_CHECKSUMS,
) -> tuple[np.ndarray, np.ndarray]:
    """Loads one official split after verifying both of its files.

    Args:
        split: "train" or "test".
        source_dir: see `resolve_source_dir`; None = `ZOO_DATA_DIR`.
        checksums: see `find_files`.

    Returns:
        (images uint8 [N, 28, 28], labels uint8 [N]).

    Raises:
        ValueError: for an unknown split, or no directory given and `ZOO_DATA_DIR` unset.
        FileNotFoundError: if the directory or a file is missing.
        SourceFileError: if a file fails verification or is malformed.
    """
    if split not in SPLITS:
        raise ValueError(f"Unknown MNIST split {split!r}; expected one of {list(SPLITS)}.")
    directory = resolve_source_dir(source_dir)
    if directory is None:
        raise ValueError(f"No MNIST directory given and {ENV_VAR} is not set: pass source_dir or set {ENV_VAR}.")
    files = find_files(directory, roles=(f"{split}_images", f"{split}_labels"), checksums=checksums)
    return read_pair(files[f"{split}_images"], files[f"{split}_labels"])


def read_pair(images_path: str | os.PathLike, labels_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Reads an images file and its labels file and checks that they agree.

    Raises:
        SourceFileError: if the shapes, the counts or the label values are wrong.
    """
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise SourceFileError(
            f"{os.fspath(images_path)!r} holds arrays of shape {images.shape}; expected [N, {IMAGE_SIZE}, {IMAGE_SIZE}]."
        )
    if labels.ndim != 1:
        raise SourceFileError(f"{os.fspath(labels_path)!r} holds arrays of shape {labels.shape}; expected [N].")
    if len(images) != len(labels):
        raise SourceFileError(
            f"{os.fspath(images_path)!r} has {len(images)} images but {os.fspath(labels_path)!r} has "
            f"{len(labels)} labels."
        )
    if labels.size and labels.max() >= NUM_CLASSES:
        raise SourceFileError(
            f"{os.fspath(labels_path)!r} holds label {int(labels.max())}; expected 0..{NUM_CLASSES - 1}."
        )
    return images, labels


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Writes a uint8 array as an IDX file, gzip-compressed when the name ends in `.gz`.

    The write is atomic and reproducible (no timestamp in the gzip header).

    Raises:
        ValueError: if the array is not uint8 or has no dimensions.
    """
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim == 0:
        raise ValueError(f"write_idx needs a uint8 array with at least one dimension; got {array.dtype} {array.shape}.")
    header = bytes([0, 0, _IDX_UBYTE, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + np.ascontiguousarray(array).tobytes()
    path = Path(path)
    if path.suffix == ".gz":
        data = gzip.compress(data, compresslevel=9, mtime=0)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)


def download(
    directory: str | os.PathLike | None = None,
    *,
    mirrors: Sequence[str] = MIRRORS,
    checksums: Mapping[str, FileInfo] = OFFICIAL_CHECKSUMS,
    timeout: float = 60.0,
) -> dict[str, Path]:
    """Fetches the four official gzip files, verifying each before it is kept.

    Files already present and intact are not fetched again. Each file goes to a
    temporary name beside its target and is renamed only after its size and
    SHA-256 match, so an interrupted or corrupted transfer leaves nothing
    behind that reads as valid.

    Args:
        directory: where to put the files; None = `$ZOO_DATA_DIR/mnist`.
        mirrors: base URLs tried in order until one gives an intact file.
        checksums: expected size and SHA-256 per file name.
        timeout: seconds to wait on a connection.

    Returns:
        {role: path}.

    Raises:
        ValueError: if no directory is given and `ZOO_DATA_DIR` is unset, or no mirror is given.
        OSError: if no mirror gives an intact copy of a file (every attempt is listed).
    """
    if directory is None:
        root = os.environ.get(ENV_VAR)
        if not root:
            raise ValueError(f"No directory given and {ENV_VAR} is not set: pass the directory to download into.")
        directory = Path(root) / SUBDIR
    if not mirrors:
        raise ValueError("mirrors is empty: expected at least one base URL.")
    directory = Path(directory).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for role in ROLES:
        name = BASENAMES[role] + ".gz"
        target = directory / name
        if target.is_file():
            try:
                verify_file(target, checksums=checksums)
                paths[role] = target
                continue
            except SourceFileError:
                pass  # A bad copy is replaced below.
        failures = []
        for base in mirrors:
            url = base.rstrip("/") + "/" + name
            try:
                _fetch(url, target, checksums=checksums, timeout=timeout)
            except (OSError, SourceFileError, http.client.HTTPException) as e:
                failures.append(f"{url}: {e}")
                continue
            paths[role] = target
            break
        else:
            raise OSError(f"Could not fetch an intact {name}:\n  " + "\n  ".join(failures))
    return paths


def _fetch(url: str, target: Path, *, checksums: Mapping[str, FileInfo], timeout: float) -> None:
    # Verified under the final name's table entry, before it gets that name.
    expected = checksums.get(target.name)
    if expected is None:
        raise SourceFileError(f"no known checksum for {target.name!r}; expected one of {sorted(checksums)}.")
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
        actual = file_info(tmp)
        if actual != expected:
            raise SourceFileError(
                f"downloaded {target.name} has {actual.size} bytes, SHA-256 {actual.sha256}; expected "
                f"{expected.size} bytes, SHA-256 {expected.sha256}."
            )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m zoo.datasets.mnist_text.mnist_files {download,verify} [DIR]`: fetch or check the official files."""
    parser = argparse.ArgumentParser(prog="python -m zoo.datasets.mnist_text.mnist_files", description=main.__doc__)
    parser.add_argument("action", choices=("download", "verify"))
    parser.add_argument("directory", nargs="?", help=f"folder of the files (default: ${ENV_VAR}/{SUBDIR})")
    args = parser.parse_args(argv)
    try:
        if args.action == "download":
            paths = download(args.directory)
        else:
            directory = resolve_source_dir(args.directory)
            if directory is None:
                raise ValueError(f"No directory given and {ENV_VAR} is not set.")
            paths = find_files(directory)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for role in ROLES:
        print(f"ok  {paths[role]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
