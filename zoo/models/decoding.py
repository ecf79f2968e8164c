"""Caption decoding: beam search over a `cnn_lstm_captioner`, greedy as its width-1 case.

One interface for both: `decode(model, images, beam_width=1)` is greedy
decoding (the most likely next word at each step), a larger width keeps the
`beam_width` most likely partial captions (sum of log-probabilities) and
returns the best finished one. The end of a caption is id 0 (padding), which
the captioner learns to emit after the last word; a finished beam only
continues with 0 at no cost, so finished and unfinished captions compete on
their total log-probability (no length normalisation, as in the plain beam
search of Sutskever et al., 2014). Ties go to the lower beam, then the lower
word id, so width 1 picks exactly the greedy word.
"""

from __future__ import annotations

import keras
import numpy as np

from zoo.core import keys

__all__ = ["decode"]


def decode(model: keras.Model, images: np.ndarray, *, beam_width: int = 1, vocabulary: list[str] | None = None,
           batch_size: int = 256):
    """Captions for images by beam search (greedy for `beam_width=1`).

    Args:
        model: a `cnn_lstm_captioner` model (start id = its vocabulary size).
        images: float32 [N, H, W, C] in [0, 1].
        beam_width: captions kept per image at each step; 1 = greedy.
        vocabulary: if given, ids become words joined by spaces.
        batch_size: images decoded together.

    Returns:
        A list of N id lists (or strings when `vocabulary` is given), without the end id.

    Raises:
        ValueError: for beam_width < 1.
    """
    if isinstance(beam_width, bool) or not isinstance(beam_width, int) or beam_width < 1:
        raise ValueError(f"beam_width={beam_width!r}: expected an integer >= 1.")
    captions = []
    for start in range(0, len(images), batch_size):
        captions.extend(_decode_batch(model, np.asarray(images[start : start + batch_size], "float32"), beam_width))
    if vocabulary is None:
        return captions
    return [" ".join(vocabulary[i] for i in ids) for ids in captions]


def _decode_batch(model, images, width: int) -> list[list[int]]:
    max_length = model.input[keys.TOKEN_IDS].shape[1]
    vocab_size = model.output.shape[-1]
    batch = len(images)
    repeated = np.repeat(images, width, axis=0)
    rows = np.arange(batch)[:, None]
    tokens = np.zeros((batch, width, max_length), "int32")
    inputs = np.zeros((batch, width, max_length), "int32")
    inputs[..., 0] = vocab_size  # the start id
    scores = np.full((batch, width), -np.inf)
    scores[:, 0] = 0.0  # one live beam at the start, so the first step does not pick the same word W times
    finished = np.zeros((batch, width), bool)
    for position in range(max_length):
        feed = {keys.IMAGE: repeated, keys.TOKEN_IDS: inputs.reshape(batch * width, max_length)}
        probabilities = keras.ops.convert_to_numpy(model(feed, training=False))[:, position]
        with np.errstate(divide="ignore"):
            log_p = np.log(probabilities.astype(np.float64)).reshape(batch, width, vocab_size)
        log_p[finished] = -np.inf
        log_p[finished, 0] = 0.0
        candidates = (scores[:, :, None] + log_p).reshape(batch, width * vocab_size)
        best = np.argsort(-candidates, axis=1, kind="stable")[:, :width]
        beam, word = best // vocab_size, best % vocab_size
        scores = np.take_along_axis(candidates, best, axis=1)
        tokens, inputs, finished = tokens[rows, beam], inputs[rows, beam], finished[rows, beam]
        tokens[..., position] = word
        finished = finished | (word == 0)
        if finished.all():
            break
        if position + 1 < max_length:
            inputs[..., position + 1] = word
    return [[int(i) for i in row if i != 0] for row in tokens[:, 0]]
