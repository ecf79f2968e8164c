"""`zoo predict EXPORT_DIR --image digit.png --text "is it even?"`.

Runs an export made by `zoo export` (any format) on one image file and/or one
text and prints the answer and the top probabilities. The image file is
decoded here (PNG, JPEG, GIF or BMP), not inside the model: the file's size
and, for PNG, its declared pixel dimensions are checked before decoding, so a
small file cannot expand into a huge allocation. A text longer than the
export accepts is refused before the model is loaded.
"""

from __future__ import annotations

import json
import os
import struct
import sys

import numpy as np

# A 28x28 PNG is under 1 KB; 16 MB leaves room for photos while keeping a
# hostile file from being read whole into memory.
MAX_IMAGE_FILE_BYTES = 16 * 1024 * 1024
MAX_IMAGE_PIXELS = 4096 * 4096
# The zoo's image models learn MNIST: a light digit (high values) on a dark
# ground. An image whose mean is above this (of 255) is most likely dark ink on
# white paper, which such a model reads badly unless inverted.
POLARITY_MEAN_LIMIT = 127.5


def add_parser(subparsers):
    from zoo.export import MAX_TEXT_BYTES

    parser = subparsers.add_parser(
        "predict",
        help="run an export on an image file and/or a text",
        description=(
            "Run an export made by `zoo export` on one example and print the answer and the top probabilities. "
            "Images are read like MNIST: greyscale, a light digit on a dark ground, at the model's size "
            "(28x28 for the zoo's models); a dark digit on white paper must be inverted first."
        ),
    )
    parser.add_argument("export_dir", metavar="EXPORT_DIR", help="a directory written by `zoo export`")
    parser.add_argument("--image", metavar="FILE",
                        help="image file (PNG, JPEG, GIF, BMP) of the model's size: light digit on a dark ground")
    parser.add_argument("--text", metavar="TEXT",
                        help=f"the question or caption, raw (at most the export's byte limit, {MAX_TEXT_BYTES} by default)")
    parser.add_argument("--top", type=int, default=3, metavar="K", help="how many probabilities to print (default 3)")
    parser.add_argument("--resize", action="store_true", help="resize the image to the model's size instead of refusing")
    parser.add_argument("--json", action="store_true",
                        help="print {answer, index, probabilities by class name} as JSON (one object per head "
                             "for multi-task models)")
    return parser


def run(args) -> int:
    from zoo.cli.main import UsageError
    from zoo.export import MAX_TEXT_BYTES
    from zoo.export.metadata import read_metadata

    if args.top < 1:
        raise UsageError(f"--top {args.top}: expected a positive number of classes to print.")
    metadata = read_metadata(args.export_dir)
    needs_image = metadata.get("image_shape") is not None
    needs_text = metadata.get("max_length") is not None
    if needs_image and args.image is None:
        raise UsageError("this model reads an image: pass --image FILE")
    if needs_text and args.text is None:
        raise UsageError("this model reads text: pass --text TEXT")
    if not needs_image and args.image is not None:
        raise UsageError("this model reads no image: drop --image")
    if not needs_text and args.text is not None:
        raise UsageError("this model reads no text: drop --text")
    if needs_text:
        limit = metadata.get("max_text_bytes") or MAX_TEXT_BYTES
        size = len(args.text.encode("utf-8"))
        if size > limit:
            raise UsageError(f"--text is {size} bytes (UTF-8); this export accepts at most {limit}: shorten it.")
    image = read_image(args.image, metadata["image_shape"], resize=args.resize) if needs_image else None
    if image is not None:
        warning = polarity_warning(args.image, image)
        if warning:
            print(f"zoo predict: warning: {warning}", file=sys.stderr)
    outputs = predict(args.export_dir, metadata, image=image, text=args.text)
    result = summarize(metadata, outputs, args.top)
    if args.json:
        flat = {head: {k: v for k, v in info.items() if k != "top"} for head, info in result.items()}
        print(json.dumps(next(iter(flat.values())) if len(flat) == 1 else flat, indent=2))
    else:
        for head, info in result.items():
            prefix = "" if len(result) == 1 else f"[{head}] "
            print(f"{prefix}answer: {info['answer']}")
            print(f"{prefix}top probabilities:")
            width = max(len(name) for name, _ in info["top"])
            for name, probability in info["top"]:
                print(f"  {name:>{width}s}  {probability:.4f}")
    return 0


def polarity_warning(path: str, image: np.ndarray) -> str | None:
    """A one-line warning when `image` (uint8) looks like a dark digit on a light ground, else None."""
    mean = float(np.mean(image))
    if mean <= POLARITY_MEAN_LIMIT:
        return None
    return (f"{path!r} is mostly light (mean brightness {mean:.0f} of 255); the model expects a light digit on a "
            "dark ground, as in MNIST: invert the image if the answer looks wrong")


def read_image(path: str, shape, *, resize: bool = False) -> np.ndarray:
    """Reads an image file into a uint8 [1, H, W, C] array for the export.

    Args:
        path: image file.
        shape: the export's (H, W, C); None entries accept any size.
        resize: scale the image to (H, W) instead of refusing another size.

    Raises:
        FileNotFoundError: if the file is missing.
        ValueError: if it is too large, not a decodable image, or of another
            size than the model takes (without `resize`).
    """
    import tensorflow as tf

    if not os.path.isfile(path):
        raise FileNotFoundError(f"Image file {path!r} does not exist.")
    size = os.path.getsize(path)
    if size > MAX_IMAGE_FILE_BYTES:
        raise ValueError(f"Image file {path!r} is {size} bytes; the limit is {MAX_IMAGE_FILE_BYTES} bytes.")
    with open(path, "rb") as f:
        data = f.read()
    dims = png_dimensions(data)
    if dims is not None and dims[0] * dims[1] > MAX_IMAGE_PIXELS:
        raise ValueError(f"{path!r} declares {dims[1]}x{dims[0]} pixels; the limit is {MAX_IMAGE_PIXELS} pixels.")
    height, width, channels = shape
    try:
        image = tf.io.decode_image(data, channels=channels or 0, expand_animations=False, dtype=tf.uint8)
    except tf.errors.InvalidArgumentError as error:
        from zoo.cli.main import clean_message

        # TensorFlow's text names the graph node ("{{function_node __wrapped__DecodeImage...}}"); keep the cause only.
        cause = clean_message(str(error)).splitlines()[0] if str(error).strip() else "undecodable data"
        raise ValueError(f"{path!r} is not a PNG, JPEG, GIF or BMP image ({cause}).") from None
    actual = tuple(int(d) for d in image.shape)
    wanted_hw = (height or actual[0], width or actual[1])
    if actual[:2] != wanted_hw:
        if not resize:
            raise ValueError(
                f"{path!r} is {actual[1]}x{actual[0]} pixels; the model takes {wanted_hw[1]}x{wanted_hw[0]} "
                "(pass --resize to scale it)."
            )
        image = tf.cast(tf.round(tf.clip_by_value(tf.image.resize(image, wanted_hw, antialias=True), 0, 255)), tf.uint8)
    return image.numpy()[None]


def png_dimensions(data: bytes) -> tuple[int, int] | None:
    """(height, width) from a PNG header, or None if `data` is not a PNG."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return height, width


def predict(export_dir: str, metadata: dict, *, image: np.ndarray | None, text: str | None) -> dict[str, np.ndarray]:
    """Runs one example through an export of any format.

    Returns:
        The export's outputs by name, as NumPy arrays with a batch of 1.

    Raises:
        ImportError: if the runtime for the export's format is missing.
    """
    export_format = metadata["format"]
    if export_format == "tf_saved_model":
        import tensorflow as tf

        signature = tf.saved_model.load(export_dir).signatures["serving_default"]
        feeds = {}
        if image is not None:
            feeds["image"] = tf.constant(image, tf.uint8)
        if text is not None:
            feeds["text"] = tf.constant([text.encode("utf-8")])
        return {k: v.numpy() for k, v in signature(**feeds).items()}
    feeds = {}
    if image is not None:
        feeds["image"] = image.astype(np.uint8)
    if text is not None:
        feeds["token_ids"] = _token_ids(export_dir, metadata, text)
    model_path = os.path.join(export_dir, metadata["model_file"])
    if export_format == "onnx":
        try:
            import onnxruntime
        except ImportError as error:
            raise ImportError("running an ONNX export needs onnxruntime: pip install onnxruntime") from error
        session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(names, feeds), strict=True))
    if export_format == "litert":
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as error:
            raise ImportError("running a LiteRT export needs ai-edge-litert: pip install ai-edge-litert") from error
        runner = Interpreter(model_path=model_path).get_signature_runner("serving_default")
        return {k: np.asarray(v) for k, v in runner(**feeds).items()}
    raise ValueError(f"Unknown export format {export_format!r} in {export_dir!r}.")


def _token_ids(export_dir: str, metadata: dict, text: str) -> np.ndarray:
    import tensorflow as tf

    from zoo.data.text import Tokenizer, load_vocabulary

    limit = metadata.get("max_text_bytes")
    encoded = text.encode("utf-8")
    if limit is not None and len(encoded) > limit:
        raise ValueError(f"--text is {len(encoded)} bytes; this export accepts at most {limit}.")
    vocabulary = load_vocabulary(os.path.join(export_dir, metadata["vocabulary_file"]))
    return Tokenizer(vocabulary, metadata["max_length"])(tf.constant([encoded])).numpy()


def summarize(metadata: dict, outputs: dict[str, np.ndarray], top: int) -> dict:
    """Per head: the answer (class name, or the index without names), its index, every class's
    probability by name, and the `top` most probable (name, probability) pairs."""
    result = {}
    for head, info in metadata["heads"].items():
        names = info["outputs"]
        probabilities = np.asarray(outputs[names["probabilities"]])[0]
        index = int(np.asarray(outputs[names["label"]])[0])
        class_names = info.get("class_names") or [str(i) for i in range(len(probabilities))]
        order = np.argsort(-probabilities, kind="stable")[:top]
        result[head] = {
            "answer": class_names[index],
            "index": index,
            "probabilities": {class_names[i]: float(p) for i, p in enumerate(probabilities)},
            "top": [(class_names[i], float(probabilities[i])) for i in order],
        }
    return result
