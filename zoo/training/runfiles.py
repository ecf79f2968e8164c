"""The files of a run folder, written in an order that never disagrees with itself.

A finished run folder holds, written in this order at the end of training:

1. `vocabulary.txt` (text models): one token per line; or, for a model on a
   KerasHub text backbone, `text_preset/`, its tokenizer as a small preset
   (`zoo.training.textpreset`);
2. `model.keras`: the trained model;
3. `config.json`: the resolved settings, with `vocabulary_size` and
   `vocabulary_sha256` binding the vocabulary to the model, and
   `text_preset` naming the tokenizer's folder;
4. `metrics.json`, the completion marker, last: the final metrics, the
   `step` and `epoch` they describe, and under `artifacts` the SHA-256 of
   `model.keras`, `vocabulary.txt`, `config.json` and each file of
   `text_preset/`.

Each file is replaced atomically (temporary file, then rename), and a run
that is going to train removes `metrics.json` before it changes anything
else, so every prefix of the sequence is either an unfinished run (no
`metrics.json`: it resumes from its checkpoints) or a complete one
(`verify_run` passes). Besides these the folder holds `checkpoints/`,
`logs/` (TensorBoard: TensorFlow opens one new event file per writer and
process, so each attempt of a resumed run adds one file per writer; the
viewer merges them) and `.lock` (see `zoo.training.runlock`).

Imports no TensorFlow.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from zoo.core.atomic import atomic_save_model
from zoo.core.jsonio import read_json, to_json, write_json

__all__ = [
    "CONFIG", "METRICS", "MODEL", "TEXT_PRESET", "VOCABULARY", "RunIncomplete",
    "check_out_folder", "file_sha256", "verify_run", "write_final",
]

CONFIG, METRICS, MODEL, VOCABULARY = "config.json", "metrics.json", "model.keras", "vocabulary.txt"
# A model on a KerasHub text backbone keeps its tokenizer here (zoo.training.textpreset).
TEXT_PRESET = "text_preset"
# Names a run of the zoo writes; a folder holding only these is one of ours.
_OWN_NAMES = {CONFIG, METRICS, MODEL, VOCABULARY, TEXT_PRESET, "checkpoints", "logs", ".lock"}


class RunIncomplete(ValueError):
    """A run folder is unfinished or its files disagree with its completion marker."""


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_out_folder(out: str) -> None:
    """Refuses a run folder that exists, is not empty and is not a run of the zoo.

    A zoo run is recognised by its `checkpoints/` folder or a `config.json`
    holding `zoo_version`; a folder holding only names a run writes (say,
    a run killed before its first checkpoint) counts as one too.

    Raises:
        ValueError: `out` is a file, or a non-empty folder of something else
            (the message names the folder and some of what is in it).
    """
    if not os.path.lexists(out):
        return
    if not os.path.isdir(out):
        raise ValueError(f"--out {out} exists and is not a folder; choose a new folder for the run.")
    names = sorted(os.listdir(out))
    if not names or os.path.isdir(os.path.join(out, "checkpoints")) or _is_zoo_config(os.path.join(out, CONFIG)):
        return
    if all(name in _OWN_NAMES or name.startswith(".") and ".tmp-" in name for name in names):
        return
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    raise ValueError(
        f"--out {out} is not empty and is not a run of the zoo (it holds {shown}); "
        "choose a new or empty folder, or a previous run's folder to resume it."
    )


def invalidate(out: str) -> None:
    """Removes the completion marker before a run changes the folder (see the module docstring)."""
    try:
        os.remove(os.path.join(out, METRICS))
    except FileNotFoundError:
        pass


def write_vocabulary(out: str, vocabulary: list[str]) -> str:
    """Writes `vocabulary.txt` atomically; returns its SHA-256. OSError names the file."""
    from zoo.data.text import save_vocabulary

    path = os.path.join(out, VOCABULARY)
    _write(path, lambda: save_vocabulary(vocabulary, path))
    return file_sha256(path)


def write_final(out: str, *, model, config: Mapping[str, Any], metrics: Mapping[str, Any],
                vocabulary: list[str] | None, text_preset: str | None = None) -> None:
    """Writes the final artifacts in the safe order, `metrics.json` (the marker) last.

    Args:
        out: the run folder.
        model: the trained model.
        config: the run's settings (`config.json`).
        metrics: the final metrics and bookkeeping (`metrics.json`).
        vocabulary: the token list, for models that read the zoo's token ids.
        text_preset: for a model on a KerasHub text backbone, the preset its
            text was tokenized with (`zoo.training.textpreset.text_preset_source`);
            its tokenizer is kept in `text_preset/`.

    Raises:
        OSError: a write failed (no space, read-only, permission); its
            `filename` names the file. The folder is left unfinished (no
            marker) or complete, never in between.
    """
    artifacts = {}
    if vocabulary is not None:
        artifacts[VOCABULARY] = write_vocabulary(out, vocabulary)
    if text_preset is not None:
        from zoo.training.textpreset import write_text_preset

        folder = os.path.join(out, TEXT_PRESET)
        _write(folder, lambda: write_text_preset(out, text_preset, model))
        artifacts.update(_tree_hashes(out, TEXT_PRESET))
        config = {**config, "text_preset": TEXT_PRESET}
    path = os.path.join(out, MODEL)
    _write(path, lambda: atomic_save_model(model, path, overwrite=True))
    artifacts[MODEL] = file_sha256(path)
    path = os.path.join(out, CONFIG)
    _write(path, lambda: write_json(path, to_json(dict(config))))
    artifacts[CONFIG] = file_sha256(path)
    path = os.path.join(out, METRICS)
    _write(path, lambda: write_json(path, to_json({**metrics, "artifacts": artifacts})))


def write_config(out: str, config: Mapping[str, Any]) -> None:
    """Writes `config.json` (at the start of a run); OSError names the file."""
    path = os.path.join(out, CONFIG)
    _write(path, lambda: write_json(path, to_json(dict(config))))


def verify_run(run_dir: str | os.PathLike, *, allow_unhashed: bool = False) -> dict[str, Any]:
    """Checks that a run folder is complete and that its files are the ones its marker describes.

    Args:
        run_dir: a run folder written by `zoo.train`.
        allow_unhashed: accept a finished run from an older zoo, whose
            `metrics.json` records no artifact hashes (nothing to check).

    Returns:
        The contents of `metrics.json` (final metrics, `step`, `epoch`,
        `artifacts`).

    Raises:
        RunIncomplete: (a ValueError) no `metrics.json` (the run did not
            finish), a marker from before this layout, or a file whose
            SHA-256 differs from the marker's, a file added to a folder the
            marker describes (`text_preset/`), or a vocabulary whose hash
            differs from `config.json`'s; the message names the file.
    """
    run_dir = os.fspath(run_dir)
    path = os.path.join(run_dir, METRICS)
    if not os.path.exists(path):
        raise RunIncomplete(f"{run_dir} is not a finished run (no {METRICS}); run the same training again to finish it.")
    marker = read_json(path)
    artifacts = marker.get("artifacts") if isinstance(marker, dict) else None
    if not isinstance(artifacts, dict) or MODEL not in artifacts:
        if allow_unhashed and isinstance(marker, dict):
            return marker
        raise RunIncomplete(f"{path} records no artifact hashes (a run from an older zoo); train it again to finish it.")
    for name, expected in artifacts.items():
        file = os.path.join(run_dir, name)
        if not os.path.exists(file):
            raise RunIncomplete(f"{file} is missing, but {METRICS} describes it.")
        if file_sha256(file) != expected:
            raise RunIncomplete(
                f"{file} is not the file {METRICS} describes (SHA-256 differs): it was changed after the run "
                "finished, or the run's final save was cut short; run the same training again."
            )
    for folder in sorted({name.split("/")[0] for name in artifacts if "/" in name}):
        # A file added to a recorded folder (a preset's preprocessor.json, say) changes what loads from it.
        extra = sorted(set(_tree_hashes(run_dir, folder, hashed=False)) - set(artifacts))
        if extra:
            raise RunIncomplete(
                f"{os.path.join(run_dir, extra[0])} is not among the files {METRICS} describes: it was added after "
                "the run finished; remove it or run the same training again."
            )
    config = read_json(os.path.join(run_dir, CONFIG))
    recorded = config.get("vocabulary_sha256")
    if recorded is not None and artifacts.get(VOCABULARY) != recorded:
        raise RunIncomplete(f"{os.path.join(run_dir, VOCABULARY)} does not match vocabulary_sha256 in {CONFIG}.")
    return marker


def read_config(out: str) -> dict[str, Any] | None:
    """The run's `config.json`, or None when there is none."""
    path = os.path.join(out, CONFIG)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _tree_hashes(out: str, folder: str, *, hashed: bool = True) -> dict[str, str | None]:
    """{path relative to `out`, with "/": SHA-256 (None unless `hashed`)} of every file under `out/folder`."""
    found = {}
    for root, _, files in os.walk(os.path.join(out, folder)):
        for name in files:
            path = os.path.join(root, name)
            found[os.path.relpath(path, out).replace(os.sep, "/")] = file_sha256(path) if hashed else None
    return dict(sorted(found.items()))


def _is_zoo_config(path: str) -> bool:
    try:
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "zoo_version" in config


def _write(path: str, write) -> None:
    # The atomic writers leave the old file in place on failure; make the error name the file.
    try:
        write()
    except OSError as error:
        if error.filename is None or str(error.filename).startswith(os.path.join(os.path.dirname(path), ".")):
            code = error.errno or errno.EIO
            raise OSError(code, f"{os.strerror(code)} while writing", path) from error
        raise
