"""Running an export on one example (the library side of `zoo predict`).

`predict` takes an image (a file, decoded here, or a uint8 array) and/or a
text, checks them against the export's metadata before anything runs (so a
too-long text is one clear error, not an in-graph assertion), verifies the
export's vocabulary against the hash recorded at export time, runs the export
in its runtime (`zoo.export.runtimes`; the format's own unless `runtime=` names
it) and returns a flat answer:

>>> predict("exports/concat", image="digit.png", text="is it even?")
{'answer': 'yes', 'index': 1, 'probabilities': {'yes': 0.93, 'no': 0.06, ...}}

Image files are decoded here, not inside the model: the file's size and, for
PNG, its declared pixel dimensions are checked before decoding, so a small
file cannot expand into a huge allocation. Audio comes as a WAV file (mono
16-bit PCM at the export's rate, read by the FSDD reader, which checks the
header before reading the samples) or as an int16 or float array; int16 runs
through `serving_default`, float through `serving_float`.

`predict(..., timing_runs=N)` also measures the runtime: after the answer's
call and more warm-up calls it runs the same prepared example N times and
adds the median latency.
"""

from __future__ import annotations

import os
import statistics
import struct
import time

import numpy as np

from zoo.export import MAX_TEXT_BYTES

__all__ = [
    "MAX_IMAGE_FILE_BYTES",
    "MAX_IMAGE_PIXELS",
    "TextTooLongError",
    "image_polarity_warning",
    "png_dimensions",
    "predict",
    "read_audio",
    "read_image",
    "serving_inputs",
]

# A 28x28 PNG is under 1 KB; 16 MB leaves room for photos while keeping a
# hostile file from being read whole into memory.
MAX_IMAGE_FILE_BYTES = 16 * 1024 * 1024
MAX_IMAGE_PIXELS = 4096 * 4096
# Untimed calls before `timing_runs`, the answer's call first: XLA compiles and
# ONNX Runtime allocates its buffers on the first call, caches warm up after it.
WARMUP_RUNS = 3
# MNIST digits are light strokes on a black ground (mean brightness about 33
# of 255); a mean above the middle means mostly light ground.
POLARITY_THRESHOLD = 128


class TextTooLongError(ValueError):
    """A text exceeds the export's byte cap (`max_text_bytes`)."""


def predict(
    export_dir: str | os.PathLike,
    *,
    image=None,
    text: str | bytes | None = None,
    audio=None,
    resize: bool = False,
    runtime: str = "auto",
    timing_runs: int = 0,
) -> dict:
    """Runs one example through an export of any format and names the answer.

    Args:
        export_dir: a directory written by `zoo.export_model` / `zoo export`.
        image: an image file path (PNG, JPEG, GIF, BMP), or a uint8 array
            [H, W, C] or [1, H, W, C] of pixels 0-255; for models reading images.
        text: the raw text (str or UTF-8 bytes); for models reading text.
        audio: a WAV file path (mono, 16-bit PCM, at the export's sample
            rate), or samples [N] or [1, N]: int16, or float in [-1, 1]; for
            models reading audio (SavedModel exports).
        resize: scale an image file of another size to the model's size
            instead of refusing it.
        runtime: `auto` (the export's format's own), `tensorflow`,
            `onnxruntime` or `litert` (`zoo.export.RUNTIMES`).
        timing_runs: when positive, run the prepared example this many more
            times after `WARMUP_RUNS` untimed calls (the answer's the first)
            and report the median latency of the runtime's call (for ONNX and
            LiteRT the text is tokenized once, beforehand, as their clients do;
            the SavedModel tokenizes in its graph, inside the timed call).

    Returns:
        `{"answer": class name (the index as a string when the export has no
        class names), "index": int, "probabilities": {class name: float}}`,
        probabilities most probable first. A multi-head export adds
        `"heads": {head: {...the same three keys...}}` for every head. With
        `timing_runs`, `"latency_ms": {"median": float, "runs": int, "runtime": str}`.

    Raises:
        FileNotFoundError: `export_dir` is not a zoo export, or the image file
            is missing.
        ValueError: an input the model does not read or a missing one; an
            image that is not decodable, too large or of another size;
            audio samples of another dtype or shape, too many, or floats
            outside [-1, 1].
        SourceFileError: (a ValueError) a WAV file that is not mono 16-bit
            PCM at the export's rate, is empty or too long (named).
        TextTooLongError: (a ValueError) a text over the export's byte cap,
            checked before the export runs.
        VocabularyError, VocabularyMismatchError: (ValueErrors) the export's
            vocabulary is malformed or differs from the recorded hash.
        ValueError: a runtime that cannot run the export's format (both
            named), or a negative `timing_runs`.
        ImportError: the runtime's package is not installed (named).
    """
    from zoo.export.metadata import read_metadata
    from zoo.export.runtimes import resolve_runtime

    export_dir = os.fspath(export_dir)
    metadata = read_metadata(export_dir)
    if metadata.get("kind") == "captioner":
        raise ValueError(
            f"{export_dir!r} holds a captioner, which writes text rather than choosing a class: caption an image "
            "with zoo.export.captioner.caption(export_dir, image) or `zoo predict EXPORT_DIR --image FILE`."
        )
    # Before any input is read: a wrong runtime or count is the one error.
    resolve_runtime(metadata["format"], runtime, export_dir)
    if isinstance(timing_runs, bool) or not isinstance(timing_runs, int) or timing_runs < 0:
        raise ValueError(f"timing_runs={timing_runs!r}: expected a number of runs >= 0.")
    shape = metadata.get("image_shape")
    needs_image, needs_text, needs_audio = serving_inputs(metadata)
    for needed, given, what in (
        (needs_image, image is not None, "an image"),
        (needs_text, text is not None, "text"),
        (needs_audio, audio is not None, "audio"),
    ):
        if needed and not given:
            raise ValueError(f"The model in {export_dir!r} reads {what}; none was given.")
        if given and not needed:
            raise ValueError(f"The model in {export_dir!r} reads no {what.removeprefix('an ')}; drop it.")
    pixels = None
    if needs_image:
        pixels = read_image(image, shape, resize=resize) if isinstance(image, str | os.PathLike) else _image_array(image, shape)
    encoded = None
    if needs_text:
        encoded = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        limit = metadata.get("max_text_bytes") or MAX_TEXT_BYTES
        if len(encoded) > limit:
            raise TextTooLongError(f"The text is {len(encoded)} bytes; this export accepts at most {limit} bytes.")
    samples = None
    if needs_audio:
        rate, cap = metadata["audio_sample_rate"], metadata["max_audio_samples"]
        samples = read_audio(audio, rate, cap) if isinstance(audio, str | os.PathLike) else _audio_array(audio, cap)
    from zoo.export.runtimes import ExportRunner

    runner = ExportRunner(export_dir, metadata, runtime)
    feeds = runner.feeds(image=pixels, text=encoded, audio=samples)
    answer = _answer(metadata, runner.run(feeds))
    if timing_runs:
        answer["latency_ms"] = _latency(runner, feeds, timing_runs)
    return answer


def _latency(runner, feeds: dict, runs: int) -> dict:
    """The median milliseconds of the runtime's call on prepared feeds, after the warm-up calls."""
    for _ in range(WARMUP_RUNS - 1):  # the answer's call was the first
        runner.run(feeds)
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        runner.run(feeds)
        seconds.append(time.perf_counter() - start)
    return {"median": 1000.0 * statistics.median(seconds), "runs": runs, "runtime": runner.runtime}


def serving_inputs(metadata: dict) -> tuple[bool, bool, bool]:
    """Whether an export's `serving_default` reads (an image, a text, audio), from its `zoo_export.json`.

    A dual encoder's reads the image alone: it classifies it against the
    class prompts embedded at export time (its `embed_text` reads texts).
    """
    reads_text = metadata.get("max_length") is not None and metadata.get("kind") != "dual_encoder"
    return metadata.get("image_shape") is not None, reads_text, metadata.get("audio_sample_rate") is not None


def image_polarity_warning(image) -> str | None:
    """Says when an image looks like a dark digit on a light ground (MNIST is light on dark).

    Args:
        image: pixels as a uint8 array (any shape), or floats in [0, 1].

    Returns:
        A one-line warning, or None when the mean brightness fits MNIST-like input.
    """
    pixels = np.asarray(image, dtype=np.float64)
    if pixels.size == 0:
        return None
    if not np.issubdtype(np.asarray(image).dtype, np.integer) and pixels.max() <= 1.0:
        pixels = pixels * 255.0
    mean = float(pixels.mean())
    if mean < POLARITY_THRESHOLD:
        return None
    return (
        f"the image's mean brightness is {mean:.0f} of 255, which suggests a dark digit on a light background; "
        "the model expects MNIST-like images (a light digit on a dark background): invert the image."
    )


def read_image(path: str | os.PathLike, shape, *, resize: bool = False) -> np.ndarray:
    """Reads an image file into a uint8 [1, H, W, C] array for an export.

    Args:
        path: image file (PNG, JPEG, GIF or BMP).
        shape: the export's (H, W, C); None entries accept any size.
        resize: scale the image to (H, W) instead of refusing another size.

    Raises:
        FileNotFoundError: if the file is missing.
        ValueError: if it is too large, not a decodable image, or of another
            size than the model takes (without `resize`).
    """
    import tensorflow as tf

    path = os.fspath(path)
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
    except tf.errors.InvalidArgumentError:
        # TensorFlow's message names an internal graph node; the user needs the file and the formats.
        raise ValueError(f"{path!r} is not a PNG, JPEG, GIF or BMP image.") from None
    actual = tuple(int(d) for d in image.shape)
    wanted = (height or actual[0], width or actual[1])
    if actual[:2] != wanted:
        if not resize:
            raise ValueError(
                f"{path!r} is {actual[1]}x{actual[0]} pixels; the model takes {wanted[1]}x{wanted[0]} "
                "(pass --resize to scale it)."
            )
        image = tf.cast(tf.round(tf.clip_by_value(tf.image.resize(image, wanted, antialias=True), 0, 255)), tf.uint8)
    return image.numpy()[None]


def read_audio(path: str | os.PathLike, sample_rate: int, max_samples: int) -> np.ndarray:
    """Reads a WAV file into an int16 [1, samples] array for an export.

    Args:
        path: a mono 16-bit PCM WAV file.
        sample_rate: the export's rate (`audio_sample_rate` in its metadata).
        max_samples: the most samples accepted (`max_audio_samples`).

    Raises:
        FileNotFoundError: if the file is missing.
        SourceFileError: (a ValueError) naming the file, if it is not a
            readable WAV file, not mono, not 16-bit, of another rate, empty or
            longer than `max_samples` (checked from the header, before reading).
    """
    # The one WAV reader of the zoo: the FSDD builder's.
    from zoo.datasets.fsdd.fsdd_files import read_wav

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Audio file {path!r} does not exist.")
    return read_wav(path, sample_rate=sample_rate, max_samples=max_samples)[None]


def png_dimensions(data: bytes) -> tuple[int, int] | None:
    """(height, width) from a PNG header, or None if `data` is not a PNG."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return height, width


def _image_array(image, shape) -> np.ndarray:
    pixels = np.asarray(image)
    if pixels.ndim == 3:
        pixels = pixels[None]
    expected = [1, *shape]
    if pixels.dtype != np.uint8 or pixels.ndim != 4 or any(
        want is not None and got != want for got, want in zip(pixels.shape, expected, strict=True)
    ):
        wanted = "x".join("?" if d is None else str(d) for d in shape)
        raise ValueError(
            f"image: expected uint8 pixels of shape {wanted} (or 1x{wanted}); got {pixels.dtype} {list(pixels.shape)}."
        )
    return pixels


def _audio_array(audio, max_samples: int) -> np.ndarray:
    samples = np.asarray(audio)
    if samples.ndim == 1:
        samples = samples[None]
    floating = np.issubdtype(samples.dtype, np.floating)
    if samples.ndim != 2 or samples.shape[0] != 1 or not (floating or samples.dtype == np.int16):
        raise ValueError(
            f"audio: expected int16 samples or floats in [-1, 1] of shape [samples] or [1, samples]; "
            f"got {samples.dtype} {list(np.asarray(audio).shape)}."
        )
    if not 1 <= samples.shape[1] <= max_samples:
        raise ValueError(f"audio: expected 1 to {max_samples} samples; got {samples.shape[1]}.")
    if floating:
        samples = samples.astype(np.float32)
        if not np.all(np.isfinite(samples)) or np.abs(samples).max() > 1.0:
            raise ValueError(
                "audio: expected finite float samples in [-1, 1] (int16 / 32768); "
                f"got values from {np.nanmin(samples)} to {np.nanmax(samples)}."
            )
    return samples


def _answer(metadata: dict, outputs: dict[str, np.ndarray]) -> dict:
    answers = {}
    for head, info in metadata["heads"].items():
        probabilities = np.asarray(outputs[info["outputs"]["probabilities"]])[0]
        index = int(np.asarray(outputs[info["outputs"]["label"]])[0])
        names = info.get("class_names") or [str(i) for i in range(len(probabilities))]
        order = np.argsort(-probabilities, kind="stable")
        answers[head] = {
            "answer": names[index],
            "index": index,
            "probabilities": {names[i]: float(probabilities[i]) for i in order},
        }
    first = dict(next(iter(answers.values())))
    if len(answers) > 1:
        first["heads"] = answers
    return first
