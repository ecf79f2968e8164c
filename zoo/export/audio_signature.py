"""Serving functions of models that read raw audio (alone, or with an image and/or a text).

The signatures take `audio` as samples at the model's rate (8 kHz for the
zoo's models), [batch, samples]; recordings of different lengths are padded
with zeros at the end by the client (the model pads or crops every waveform to
its fixed window anyway, and trailing zeros change nothing):

- `serving_default`: `audio` int16, as a 16-bit PCM WAV file holds it; scaled
  to float32 in the graph by 1/32768, as the training pipeline does
  (`zoo.data.audio`). Any `image` is uint8 here.
- `serving_float`: `audio` float32 in [-1, 1] (int16 / 32768); any `image` is
  float32 in [0, 1].

Documented outcomes, in addition to those of `zoo.export.signatures`:

| input | outcome |
|---|---|
| `audio` of another dtype | rejected by TensorFlow before the graph runs |
| `audio` not rank 2 | InvalidArgumentError "audio: expected a tensor of shape [batch, samples] ..." |
| more than `max_audio_samples` samples (10 s at the rate by default) | InvalidArgumentError "audio: expected at most N samples ..." |
| 0 samples in a non-empty batch | InvalidArgumentError "audio: expected at least 1 sample ..." |
| NaN or Inf in `serving_float` | InvalidArgumentError "audio: expected finite values ..." |
| a float sample outside [-1, 1] | InvalidArgumentError "audio: expected float samples in [-1, 1] ..." (unscaled int16 values sent as floats) |
| batch sizes of the inputs differ | InvalidArgumentError "image/audio: batch sizes differ ..." (or audio/text) |
| batch 0 | empty outputs |

The sample rate cannot be checked in the graph (a tensor carries none): the
export's `zoo_export.json` names it, and `zoo.export.predict` refuses WAV files
of another rate.

The model call, STFT front end included, is compiled with XLA as in
`zoo.export.signatures` (checks, the int16 scaling and text tokenizing stay
outside). XLA compiles once per input shape and recordings come in every
length, so the signature first pads or crops each waveform to the model's
window (`audio_window`) with the model's own ops, which makes the model's
`FixedLengthWaveform` the identity: one compilation per batch size, the same
values.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from zoo.core import keys
from zoo.data.audio import INT16_SCALE
from zoo.export.signatures import (
    MAX_TEXT_BYTES,
    Check,
    check_image,
    check_text,
    empty_outputs,
    guarded,
    named_outputs,
    on_failure,
    padded_shape,
    scale_image,
    static_image,
)
from zoo.export.spec import ModelSpec
from zoo.layers import FixedLengthWaveform

__all__ = ["audio_window", "check_audio", "check_batches", "make_audio_serving_function"]


def check_audio(audio: tf.Tensor, max_samples: int, sample_rate: int, *, floating: bool) -> list[Check]:
    """Checks an audio batch: rank 2, 1 to `max_samples` samples, and for floats finite values in [-1, 1].

    Args:
        audio: the signature's `audio` tensor, of any rank.
        max_samples: the most samples per example.
        sample_rate: the model's rate, for the message only.
        floating: float32 samples (check values); else int16 (any value is valid).

    Returns:
        The checks; none of their `ok` computations can fail. A tensor of the
        wrong rank fails the rank check only.
    """
    shape = padded_shape(audio, 2)
    rank_ok = tf.equal(tf.rank(audio), 2)
    seconds = f"{max_samples / sample_rate:g} s at {sample_rate} Hz"
    checks = [
        Check(rank_ok, lambda: ["audio: expected a tensor of shape [batch, samples]; got shape", tf.shape(audio)]),
        Check(
            tf.logical_or(tf.logical_not(rank_ok), shape[1] <= max_samples),
            lambda: [f"audio: expected at most {max_samples} samples ({seconds}) per example; got", shape[1]],
        ),
        Check(
            tf.logical_or(tf.logical_not(rank_ok), tf.logical_or(shape[0] == 0, shape[1] > 0)),
            lambda: ["audio: expected at least 1 sample per example; got shape", tf.shape(audio)],
        ),
    ]
    if floating:
        finite = tf.math.is_finite(audio)
        all_finite = tf.reduce_all(finite)
        checks.append(
            Check(
                all_finite,
                lambda: [
                    "audio: expected finite values (no NaN or Inf); non-finite values at indices",
                    on_failure(all_finite, lambda: tf.where(tf.logical_not(finite)), tf.int64),
                ],
            )
        )
        # Judged on finite values only, so NaN fails the finiteness check alone.
        in_range = tf.reduce_all(tf.logical_or(tf.abs(audio) <= 1.0, tf.logical_not(finite)))
        checks.append(
            Check(
                in_range,
                lambda: [
                    "audio: expected float samples in [-1, 1] (int16 / 32768); largest magnitude",
                    on_failure(
                        in_range,
                        lambda: tf.reduce_max(tf.abs(tf.where(finite, audio, tf.zeros_like(audio)))),
                        audio.dtype,
                    ),
                ],
            )
        )
    return checks


def check_batches(inputs: dict[str, tf.Tensor]) -> list[Check]:
    """Checks that every input has the batch size of the first one."""
    names = list(inputs)
    first = names[0]
    first_batch = padded_shape(inputs[first], 1)[0]
    checks = []
    for name in names[1:]:
        batch = padded_shape(inputs[name], 1)[0]
        checks.append(
            Check(
                tf.equal(first_batch, batch),
                lambda name=name, batch=batch: [
                    f"{first}/{name}: batch sizes differ: {first} has", first_batch, f"examples, {name} has", batch
                ],
            )
        )
    return checks


def audio_window(model) -> int | None:
    """The samples a model pads or crops its `audio` input to before any other layer reads it.

    Args:
        model: a functional `keras.Model` with an `audio` input.

    Returns:
        The `num_samples` of the `FixedLengthWaveform` layers that are the
        only readers of `audio` (the zoo's audio towers start with one), or
        None when another layer reads the raw waveform or the lengths differ.
    """
    audio = next(t for t in model.inputs if t.name == keys.AUDIO)
    windows = set()
    for layer in model.layers:
        # Keras keeps a functional layer's calls as inbound nodes; not public API, so a model without them is "unknown".
        for node in getattr(layer, "_inbound_nodes", None) or []:
            if any(t is audio for t in node.input_tensors):
                if not isinstance(layer, FixedLengthWaveform):
                    return None
                windows.add(layer.num_samples)
    return windows.pop() if len(windows) == 1 else None


def fixed_length(waveforms: tf.Tensor, window: int) -> tf.Tensor:
    """Pads with zeros at the end or crops the end to `window` samples, as `FixedLengthWaveform` does."""
    return tf.pad(waveforms, [[0, 0], [0, window]])[:, :window]


def make_audio_serving_function(
    model,
    spec: ModelSpec,
    tokenizer,
    class_names: dict,
    *,
    floating: bool,
    max_audio_samples: int,
    max_text_bytes: int = MAX_TEXT_BYTES,
    model_outputs: Callable | None = None,
) -> tuple[Callable, list[tf.TensorSpec]]:
    """Builds the raw-input serving function of a model that reads audio.

    Args:
        model: the Keras model (its `audio` input takes float32 in [-1, 1]).
        spec: from `inspect_model`; `spec.has_audio` must be true.
        tokenizer: a `zoo.data.text.Tokenizer` for text models, else None.
        class_names: {head: names} from `resolve_class_names`.
        floating: False for `serving_default` (int16 audio, uint8 image),
            True for `serving_float` (float32 audio in [-1, 1], float32 image
            in [0, 1]).
        max_audio_samples: the most samples per example.
        max_text_bytes: longest text accepted, in bytes.
        model_outputs: the model call compiled with XLA
            (`zoo.export.signatures.compiled_model_outputs`, once per batch
            size), one for both signatures; only for a model whose window
            `audio_window` tells, since otherwise it would compile for every
            recording length. None calls the model uncompiled.

    Returns:
        (fn, input_signature) for `ExportArchive.add_endpoint`; the inputs are
        ordered image, audio, text (those the model reads).
    """
    if not spec.has_audio:
        raise ValueError("make_audio_serving_function needs a model that reads audio (spec.has_audio).")
    window = None if model_outputs is None else audio_window(model)
    if model_outputs is not None and window is None:
        raise ValueError("model_outputs is for a model with a fixed audio window (audio_window); this one has none.")

    def run(image=None, audio=None, text=None):
        given = {k: v for k, v in ((keys.IMAGE, image), (keys.AUDIO, audio), (keys.TEXT, text)) if v is not None}
        checks = check_audio(audio, max_audio_samples, spec.sample_rate, floating=floating)
        if image is not None:
            checks += check_image(image, spec.image_shape, finite=floating)
        if text is not None:
            checks += check_text(text, max_text_bytes)
        checks += check_batches(given)

        def prepared(image, audio, text):
            shape = padded_shape(audio, 2)
            # A reshape, not tf.ensure_shape, for the reason `static_image` gives.
            waveforms = tf.reshape(tf.cast(audio, tf.float32), tf.stack([shape[0], shape[1]]))
            waveforms = waveforms if floating else waveforms / INT16_SCALE
            feeds = {keys.AUDIO: waveforms if window is None else fixed_length(waveforms, window)}
            if image is not None:
                feeds[keys.IMAGE] = scale_image(static_image(image, spec.image_shape))
            if text is not None:
                feeds[keys.TOKEN_IDS] = tokenizer(tf.reshape(text, [-1]))
            return feeds

        # As in `make_serving_function`: the model reads only the guarded preprocessing's feeds.
        feeds = guarded(checks, lambda: prepared(image, audio, text))
        if model_outputs is not None:
            # The compiled call takes an empty batch itself.
            return named_outputs(model, spec, feeds, class_names, model_outputs)
        # oneDNN's convolution rejects an empty batch on some CPUs (see signatures).
        return tf.cond(
            tf.shape(feeds[keys.AUDIO])[0] > 0,
            lambda: named_outputs(model, spec, feeds, class_names, model_outputs),
            lambda: empty_outputs(spec, class_names),
        )

    image_spec = tf.TensorSpec(None, tf.float32 if floating else tf.uint8, name=keys.IMAGE)
    audio_spec = tf.TensorSpec(None, tf.float32 if floating else tf.int16, name=keys.AUDIO)
    text_spec = tf.TensorSpec(None, tf.string, name=keys.TEXT)
    # One function per input set: the signature's input names are the parameters' names.
    if spec.has_image and spec.has_text:

        def serve(image, audio, text):
            return run(image=image, audio=audio, text=text)

        return serve, [image_spec, audio_spec, text_spec]
    if spec.has_image:

        def serve(image, audio):
            return run(image=image, audio=audio)

        return serve, [image_spec, audio_spec]
    if spec.has_text:

        def serve(audio, text):
            return run(audio=audio, text=text)

        return serve, [audio_spec, text_spec]

    def serve(audio):
        return run(audio=audio)

    return serve, [audio_spec]
