"""`zoo export RUN_DIR --format F --out PATH [--overwrite] [--unroll]`.

A thin wrapper over `zoo.export.export_run`, which reads a training run
directory (`model.keras` in safe mode, `vocabulary.txt` checked against
`config.json`, under the run's shared lock) and writes a serving export.
"""

from __future__ import annotations

import os
import re
import sys

from zoo.export import FORMATS, MAX_TEXT_BYTES


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "export",
        help="export a trained run for serving (SavedModel, ONNX, LiteRT)",
        description=(
            "Export RUN_DIR/model.keras for serving. tf_saved_model takes raw uint8 images and raw text "
            "(tokenized in the graph); onnx and litert take token ids and ship vocabulary.txt and TOKENIZE.md. "
            "Dual encoders (zero-shot over the prompts of their data config) and captioners export as "
            "tf_saved_model only."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `zoo train`")
    parser.add_argument("--format", default="tf_saved_model", choices=FORMATS, help="export format (default: %(default)s)")
    parser.add_argument("--out", required=True, metavar="PATH", help="export directory to create")
    parser.add_argument("--overwrite", action="store_true", help="replace PATH if it exists (atomically)")
    parser.add_argument(
        "--unroll",
        action="store_true",
        help="unroll recurrent layers first (same weights); the LiteRT export does it itself",
    )
    parser.add_argument("--max-text-bytes", type=int, default=MAX_TEXT_BYTES, metavar="N",
                        help="longest text the SavedModel accepts, in bytes (default %(default)s)")
    parser.add_argument("--prompts", metavar="FILE.json",
                        help="dual encoders: the zero-shot prompts, a JSON object {class name: [prompt, ...]} in "
                             "label order (default: the prompts of the data config the run was trained on)")
    return parser


def run(args) -> int:
    import warnings

    from zoo.cli.main import UsageError

    if args.max_text_bytes < 1:
        raise UsageError(f"--max-text-bytes {args.max_text_bytes}: expected a positive number of bytes.")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UsageError(f"--out {args.out!r} is a file; an export is a directory: choose another path.")
    if not os.path.isdir(args.run_dir):
        raise UsageError(f"Run directory {args.run_dir!r} does not exist.")
    # Checked here because the library's run lock writes a lock file into the folder first.
    if not os.path.exists(os.path.join(args.run_dir, "model.keras")):
        raise UsageError(f"{args.run_dir!r} has no model.keras: is it a finished `zoo train` run directory?")

    class_prompts = _read_prompts(args.prompts) if args.prompts is not None else None
    from zoo.export import ExportWarning, export_run
    from zoo.export.metadata import read_metadata

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ExportWarning)
        try:
            path = export_run(args.run_dir, args.out, args.format, overwrite=args.overwrite, unroll=args.unroll,
                              max_text_bytes=args.max_text_bytes, class_prompts=class_prompts)
        except (ValueError, FileExistsError) as error:
            # The library speaks Python (`overwrite=True`); say the flag.
            raise type(error)(as_flags(str(error))) from error
        finally:
            for warning in caught:
                if issubclass(warning.category, ExportWarning):
                    print(f"zoo export: warning: {warning.message}", file=sys.stderr)
    metadata = read_metadata(path)
    print(f"exported {args.format} to {path}")
    if metadata.get("kind") in _KIND_LINES:
        for line in _KIND_LINES[metadata["kind"]](metadata):
            print(f"  {line}")
        return 0
    inputs = ", ".join(_input(name, info) for name, info in metadata["inputs"].items())
    outputs = ", ".join(o for head in metadata["heads"].values() for k, o in head["outputs"].items()
                        if k != "class_name" or head.get("class_names"))
    print(f"  inputs:  {inputs}")
    print(f"  outputs: {outputs}")
    audio = metadata["inputs"].get("audio")
    if audio:
        rate, cap = audio["sample_rate"], audio["max_samples"]
        print(f"  audio: mono at {rate} Hz, int16 in serving_default or float32 in [-1, 1] in serving_float, "
              f"at most {cap} samples ({cap / rate:g} s)")
    if metadata.get("tokenize_doc"):
        print(f"  text: tokenize as described in {os.path.join(path, metadata['tokenize_doc'])}")
    return 0


def _read_prompts(path: str) -> dict:
    """The --prompts file: a JSON object from class name to its prompts (checked again by the export)."""
    from zoo.cli.main import UsageError
    from zoo.core.jsonio import read_json

    if not os.path.isfile(path):
        raise UsageError(f"--prompts {path!r} does not exist.")
    try:
        prompts = read_json(path)
    except ValueError as error:
        raise UsageError(f"--prompts: {error}") from None
    if not isinstance(prompts, dict) or not prompts:
        raise UsageError(f"--prompts {path!r}: expected a JSON object {{class name: [prompt, ...]}}, got "
                         f"{type(prompts).__name__ if prompts else 'an empty one'}.")
    return prompts


def as_flags(message: str) -> str:
    """Rewrites the library's keywords in an error message as this command's flags."""
    # "pass overwrite=True (--overwrite)": the flag alone.
    message = re.sub(r"\b\w+=\w+ \((--[\w-]+)\)", r"\1", message)
    message = message.replace("export_run(..., class_prompts={class name: [prompts]}) or zoo.export_model",
                              "--prompts FILE.json, a JSON object {class name: [prompts]}")
    message = message.replace("class_prompts is for dual encoders", "--prompts is for dual encoders")
    return message.replace("overwrite=True", "--overwrite")


def _input(name: str, info: dict) -> str:
    return f"{name} {info.get('dtype')}{_shape(info.get('shape') or [])}"


def _dual_encoder_lines(metadata) -> list[str]:
    """serving_default (what `zoo predict` runs) first, then the embedding signatures."""
    inputs, dim = metadata["inputs"], metadata.get("embedding_dim", "?")
    prompts = metadata.get("class_prompts") or {}
    count = sum(len(p) for p in prompts.values())
    return [
        f"inputs:  {_input('image', inputs['image'])}",
        f"outputs: probabilities, label, class_name (zero-shot over {len(prompts)} classes, {count} prompts)",
        f"also:    embed_image (image -> embedding float32[batch, {dim}]), "
        f"embed_text ({_input('text', inputs['text'])} -> embedding float32[batch, {dim}])",
    ]


def _captioner_lines(metadata) -> list[str]:
    inputs = metadata["inputs"]
    low, high = inputs.get("beam_width", {}).get("range", ["?", "?"])
    return [
        f"inputs:  {_input('image', inputs['image'])}",
        "outputs: caption, token_ids (greedy)",
        f"also:    generate (image, beam_width int32 in [{low}, {high}] -> caption, token_ids; beam search)",
    ]


# Exports of other kinds than classifiers (zoo.export.kinds) say what their signatures take and give.
_KIND_LINES = {"dual_encoder": _dual_encoder_lines, "captioner": _captioner_lines}


def _shape(shape) -> str:
    # Only the first dimension is the batch; a later unknown one (audio samples) is any length.
    return "[" + ", ".join(("batch" if i == 0 else "?") if d is None else str(d) for i, d in enumerate(shape)) + "]"
