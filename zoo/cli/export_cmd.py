"""`zoo export RUN_DIR --format F --out PATH [--overwrite] [--unroll]`.

Reads a training run directory (`model.keras`, loaded in safe mode;
`vocabulary.txt`; `config.json`) and writes a serving export.
"""

from __future__ import annotations

import json
import os
import re
import zipfile

from zoo.export import FORMATS, MAX_TEXT_BYTES


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "export",
        help="export a trained run for serving (SavedModel, ONNX, LiteRT)",
        description=(
            "Export RUN_DIR/model.keras for serving. tf_saved_model takes raw uint8 images and raw text "
            "(tokenized in the graph); onnx and litert take token ids and ship vocabulary.txt and TOKENIZE.md."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `zoo train`")
    parser.add_argument("--format", default="tf_saved_model", choices=FORMATS, help="export format (default: %(default)s)")
    parser.add_argument("--out", required=True, metavar="PATH", help="export directory to create")
    parser.add_argument("--overwrite", action="store_true", help="replace PATH if it exists (atomically)")
    parser.add_argument(
        "--unroll",
        action="store_true",
        help="unroll recurrent layers first (same weights); needed for --format litert with LSTM/GRU models",
    )
    parser.add_argument("--max-text-bytes", type=int, default=MAX_TEXT_BYTES, metavar="N",
                        help="longest text the SavedModel accepts, in bytes (default %(default)s)")
    return parser


def read_run(run_dir: str):
    """Loads a run directory's model (safe mode), vocabulary, config and class names.

    Returns:
        (model, vocabulary or None, config dict, class names or None).

    Raises:
        FileNotFoundError: if the directory or its model.keras is missing.
        ValueError: for a malformed config.json or vocabulary, or an unsafe model.
    """
    from zoo.data.text import load_vocabulary
    from zoo.export import load_model

    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"Run directory {run_dir!r} does not exist.")
    model_path = os.path.join(run_dir, "model.keras")
    if not os.path.exists(model_path):
        raise FileNotFoundError(f"{run_dir!r} has no model.keras: is it a finished `zoo train` run directory?")
    config = {}
    config_path = os.path.join(run_dir, "config.json")
    if os.path.exists(config_path):
        with open(config_path, encoding="utf-8") as f:
            try:
                config = json.load(f)
            except json.JSONDecodeError as error:
                raise ValueError(f"{config_path!r} is not valid JSON: {error}") from None
        if not isinstance(config, dict):
            raise ValueError(f"{config_path!r} must hold a JSON object, got {type(config).__name__}.")
    vocabulary_path = os.path.join(run_dir, "vocabulary.txt")
    vocabulary = load_vocabulary(vocabulary_path) if os.path.exists(vocabulary_path) else None
    # The zoo's custom layers register themselves for deserialization on import.
    import zoo.layers  # noqa: F401

    try:
        model = load_model(model_path, safe_mode=True)
    except zipfile.BadZipFile as error:
        # zipfile names the member, not the archive: say which file is damaged.
        raise zipfile.BadZipFile(f"{model_path!r} is corrupt or truncated ({error})") from error
    return model, vocabulary, config, _class_names(config)


def _class_names(config: dict):
    names = config.get("class_names")
    if names is not None:
        return names
    data = config.get("data")
    if isinstance(data, str):
        try:
            from zoo.data import pipeline
        except ImportError:
            return None
        try:
            return pipeline.class_names(data)
        except ValueError:
            return None
    return None


def run(args) -> int:
    from zoo.cli.main import UsageError

    if args.max_text_bytes < 1:
        raise UsageError(f"--max-text-bytes {args.max_text_bytes}: expected a positive number of bytes.")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UsageError(f"--out {args.out!r} is a file; an export is a directory: choose another path.")

    from zoo.export import export_model, unrolled_copy
    from zoo.export.metadata import read_metadata

    model, vocabulary, config, class_names = read_run(args.run_dir)
    if args.unroll:
        model = unrolled_copy(model)
    if class_names is not None:
        class_names = _fitting_class_names(model, class_names, config)
    max_length = config.get("max_length") if isinstance(config.get("max_length"), int) else None
    try:
        path = export_model(
            model,
            args.out,
            args.format,
            vocabulary=vocabulary,
            max_length=max_length,
            class_names=class_names,
            overwrite=args.overwrite,
            max_text_bytes=args.max_text_bytes,
        )
    except (ValueError, FileExistsError) as error:
        # The library speaks Python (`overwrite=True`, `unroll=True`); say the flags.
        raise type(error)(as_flags(str(error))) from error
    metadata = read_metadata(path)
    inputs = ", ".join(f"{n} {i['dtype']}{_shape(i['shape'])}" for n, i in metadata["inputs"].items())
    outputs = ", ".join(o for head in metadata["heads"].values() for k, o in head["outputs"].items()
                        if k != "class_name" or head.get("class_names"))
    print(f"exported {args.format} to {path}")
    print(f"  inputs:  {inputs}")
    print(f"  outputs: {outputs}")
    if metadata.get("tokenize_doc"):
        print(f"  text: tokenize as described in {os.path.join(path, metadata['tokenize_doc'])}")
    return 0


def as_flags(message: str) -> str:
    """Rewrites the library's `overwrite=True` in an error message as this command's `--overwrite`."""
    # "pass overwrite=True (--overwrite)": the flag alone.
    message = re.sub(r"\b\w+=\w+ \((--[\w-]+)\)", r"\1", message)
    return message.replace("overwrite=True", "--overwrite")


def _fitting_class_names(model, class_names, config):
    """Class names as recorded for the run, or None (with a note) when they do not fit the model."""
    import sys

    from zoo.export.spec import inspect_model, resolve_class_names

    max_length = config.get("max_length") if isinstance(config.get("max_length"), int) else None
    spec = inspect_model(model, max_length)
    try:
        resolve_class_names(spec, class_names)
    except ValueError as error:
        print(f"zoo export: note: not adding class names from config.json ({error})", file=sys.stderr)
        return None
    return class_names


def _shape(shape) -> str:
    return "[" + ", ".join("batch" if d is None else str(d) for d in shape) + "]"
