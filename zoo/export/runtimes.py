"""The runtime that runs each export format, loaded once and called on prepared inputs.

| runtime | runs | package |
|---|---|---|
| `tensorflow` | `tf_saved_model` | tensorflow |
| `onnxruntime` | `onnx` | onnxruntime (its CPU execution provider) |
| `litert` | `litert` | ai-edge-litert |

`auto` picks the export's own format's runtime. Each format has one runtime
the zoo runs it in: neither TensorFlow nor ONNX Runtime reads the other's
format, and TensorFlow's own `tf.lite.Interpreter` is deprecated in favour of
LiteRT's. A runtime that cannot run an export is refused naming both.

`ExportRunner` loads an export, turns checked inputs (see
`zoo.export.inference.predict`) into the feeds its runtime takes (for ONNX
and LiteRT that includes tokenizing the text, as their clients do), and runs
them, so a caller can time the runtime's call alone.
"""

from __future__ import annotations

import os

import numpy as np

from zoo.export import FORMAT_RUNTIMES, RUNTIMES

__all__ = ["ExportRunner", "RUNTIME_PACKAGES", "resolve_runtime"]

# The pip package each runtime comes from, for the message when it is missing.
RUNTIME_PACKAGES = {"tensorflow": "tensorflow", "onnxruntime": "onnxruntime", "litert": "ai-edge-litert"}


def resolve_runtime(export_format: str, runtime: str = "auto", export_dir: str | None = None, *,
                    label: str = "runtime=") -> str:
    """The runtime to run an export of `export_format` in.

    Args:
        export_format: the export's `format` (from its metadata).
        runtime: one of `RUNTIMES`; `auto` = the format's own.
        export_dir: named in the messages.
        label: how the messages name the choice (the command line passes `--runtime `).

    Returns:
        A runtime name other than `auto`.

    Raises:
        ValueError: an unknown runtime or format, or a runtime that cannot
            run this format (naming both and the runtime that can).
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"{label}{runtime!r}: expected one of {', '.join(RUNTIMES)}.")
    if export_format not in FORMAT_RUNTIMES:
        place = f" in {export_dir!r}" if export_dir is not None else ""
        raise ValueError(f"Unknown export format {export_format!r}{place}; expected one of {', '.join(FORMAT_RUNTIMES)}.")
    own = FORMAT_RUNTIMES[export_format]
    if runtime in ("auto", own):
        return own
    export = f"an export of format {export_format!r}"
    export = f"{export_dir!r}, {export}" if export_dir is not None else export
    runs = ", ".join(f for f, r in FORMAT_RUNTIMES.items() if r == runtime)
    raise ValueError(
        f"{label}{runtime!r} cannot run {export} ({runtime} runs {runs} exports); "
        f"use {label}{own!r} or {label}'auto'."
    )


class ExportRunner:
    """An export loaded in its runtime, called on one prepared example at a time.

    Args:
        export_dir: a directory written by `zoo export`.
        metadata: its `zoo_export.json` (`zoo.export.read_metadata`).
        runtime: one of `RUNTIMES` (see `resolve_runtime`).

    Attributes:
        runtime: the runtime in use (never `auto`).

    Raises:
        ValueError: a runtime that cannot run the export.
        ImportError: the runtime's package is missing (the message names it).
        VocabularyError, VocabularyMismatchError: the export's vocabulary is
            malformed or differs from its recorded hash.
    """

    def __init__(self, export_dir: str, metadata: dict, runtime: str = "auto"):
        from zoo.export.metadata import check_export_vocabulary

        self.export_dir = os.fspath(export_dir)
        self.metadata = metadata
        self.format = metadata["format"]
        self.runtime = resolve_runtime(self.format, runtime, self.export_dir)
        self._tokenizer = None
        if self.runtime == "tensorflow":
            import tensorflow as tf

            if metadata.get("text_preset"):
                # A KerasHub tokenizer's WordPiece ops live in tensorflow_text; loading needs them registered.
                import tensorflow_text  # noqa: F401

            self._loaded = tf.saved_model.load(self.export_dir)
            check_export_vocabulary(self.export_dir, loaded=self._loaded)
            return
        if metadata.get("max_length") is not None:
            from zoo.data.text import Tokenizer

            self._tokenizer = Tokenizer(check_export_vocabulary(self.export_dir), metadata["max_length"])
        model_path = os.path.join(self.export_dir, metadata["model_file"])
        if self.runtime == "onnxruntime":
            onnxruntime = _import_runtime("onnxruntime", "onnxruntime", "an ONNX export")
            self._session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
            self._names = [o.name for o in self._session.get_outputs()]
        else:
            interpreter = _import_runtime("ai_edge_litert.interpreter", "litert", "a LiteRT export")
            self._runner = interpreter.Interpreter(model_path=model_path).get_signature_runner("serving_default")

    def feeds(self, *, image: np.ndarray | None, text: bytes | None, audio: np.ndarray | None = None) -> dict:
        """Checked inputs (batch of 1) as the runtime takes them.

        int16 audio goes to the SavedModel's `serving_default`, float32 audio to
        `serving_float` with the image as float32 in [0, 1] (the values the
        uint8 signature computes in its graph). ONNX and LiteRT get token ids.

        Raises:
            ValueError: audio for an ONNX or LiteRT export.
        """
        if self.runtime == "tensorflow":
            import tensorflow as tf

            floating = audio is not None and audio.dtype == np.float32
            feeds = {}
            if image is not None:
                feeds["image"] = (tf.constant(image.astype(np.float32) / np.float32(255.0)) if floating
                                  else tf.constant(image, tf.uint8))
            if text is not None:
                feeds["text"] = tf.constant([text])
            if audio is not None:
                feeds["audio"] = tf.constant(audio)
            return feeds
        if audio is not None:
            raise ValueError(
                f"{self.export_dir!r} is a {self.format} export; audio is served by tf_saved_model exports only."
            )
        feeds = {}
        if image is not None:
            feeds["image"] = image.astype(np.uint8)
        if text is not None:
            import tensorflow as tf

            feeds["token_ids"] = self._tokenizer(tf.constant([text])).numpy()
        return feeds

    def run(self, feeds: dict) -> dict[str, np.ndarray]:
        """Runs prepared feeds (from `feeds`) and returns the raw outputs by name."""
        if self.runtime == "tensorflow":
            floating = "audio" in feeds and feeds["audio"].dtype.is_floating
            signature = self._loaded.signatures["serving_float" if floating else "serving_default"]
            return {k: v.numpy() for k, v in signature(**feeds).items()}
        if self.runtime == "onnxruntime":
            return dict(zip(self._names, self._session.run(self._names, feeds), strict=True))
        return {k: np.asarray(v) for k, v in self._runner(**feeds).items()}


def _import_runtime(module: str, runtime: str, what: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        package = RUNTIME_PACKAGES[runtime]
        raise ImportError(f"running {what} in {runtime} needs {package}: pip install {package}") from error
