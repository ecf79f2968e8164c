"""Caption decoding (beam search, greedy as width 1) and caption metrics."""

import keras
import numpy as np
import pytest

import zoo
from zoo.models import caption_metrics


@pytest.fixture(scope="module")
def captioner():
    keras.utils.set_random_seed(3)
    return zoo.build("cnn_lstm_captioner", vocab_size=7, max_length=5, embed_dim=8, rnn_units=(8,),
                     attention_dim=8, num_heads=2, conv_filters=(4, 8), image_units=8)


def _greedy(model, images):
    """Greedy decoding written out step by step, independently of zoo.models.decoding."""
    vocab, length = model.output.shape[-1], model.input["token_ids"].shape[1]
    out = []
    for image in images:
        inputs, caption = np.zeros((1, length), "int32"), []
        inputs[0, 0] = vocab
        for position in range(length):
            word = int(np.argmax(np.asarray(model({"image": image[None], "token_ids": inputs}))[0, position]))
            if word == 0:
                break
            caption.append(word)
            if position + 1 < length:
                inputs[0, position + 1] = word
        out.append(caption)
    return out


def test_beam_width_one_is_greedy(captioner):
    images = np.random.default_rng(0).uniform(size=(6, 28, 28, 1)).astype("float32")
    assert zoo.models.generate_captions(captioner, images, beam_width=1) == _greedy(captioner, images)


def test_decoding_by_parts_gives_the_whole_models_captions(captioner, monkeypatch):
    from zoo.models import decoding

    # The parts: the image encoded once, the head run at the decoded position only.
    assert decoding.step_models(captioner) is not None
    images = np.random.default_rng(2).uniform(size=(7, 28, 28, 1)).astype("float32")
    by_parts = [decoding.decode(captioner, images, beam_width=width) for width in (1, 3)]
    monkeypatch.setattr(decoding, "step_models", lambda model: None)
    assert by_parts == [decoding.decode(captioner, images, beam_width=width) for width in (1, 3)]


def test_the_step_model_carries_the_lstm_state_to_the_models_probabilities(captioner):
    from zoo.models import decoding

    parts = decoding.step_models(captioner)
    assert len(parts.state) == 2  # (h, c) of the one LSTM: the step advances it by one token
    length, vocab = captioner.input["token_ids"].shape[1], captioner.output.shape[-1]
    rng = np.random.default_rng(5)
    images = rng.uniform(size=(4, 28, 28, 1)).astype("float32")
    ids = rng.integers(1, vocab, size=(4, length)).astype("int32")
    ids[:, 0] = vocab  # the start id, then words
    features = np.asarray(parts.encode.predict_on_batch(images))
    state = [np.zeros((4, units), dtype) for units, dtype in parts.state]
    order = np.array([3, 1, 0, 2])  # the rows reordered after position 1, as beams are
    for position in range(length):
        if position == 2:
            images, ids, features, state = images[order], ids[order], features[order], [s[order] for s in state]
        probabilities, *state = parts.step.predict_on_batch([features, ids[:, position], *state])
        whole = np.asarray(captioner({"image": images, "token_ids": ids}))[:, position]
        np.testing.assert_allclose(probabilities, whole, atol=1e-6)


def test_a_model_not_built_as_the_captioner_decodes_whole(captioner):
    from zoo.models import decoding

    image = keras.Input((28, 28, 1), name="image")
    ids = keras.Input((5,), dtype="int32", name="token_ids")
    other = keras.Model({"image": image, "token_ids": ids}, captioner({"image": image, "token_ids": ids}))
    assert decoding.step_models(other) is None
    images = np.random.default_rng(4).uniform(size=(3, 28, 28, 1)).astype("float32")
    assert decoding.decode(other, images) == decoding.decode(captioner, images)


def test_beam_search_finds_a_caption_at_least_as_likely(captioner):
    images = np.random.default_rng(1).uniform(size=(6, 28, 28, 1)).astype("float32")

    def log_likelihood(image, caption):
        length, vocab = captioner.input["token_ids"].shape[1], captioner.output.shape[-1]
        ids = (caption + [0] * length)[:length]
        inputs = np.array([[vocab, *ids[:-1]]], "int32")
        p = np.asarray(captioner({"image": image[None], "token_ids": inputs}))[0]
        steps = min(len(caption) + 1, length)  # the words, then the end id if it fits
        return float(sum(np.log(p[t, ids[t]]) for t in range(steps)))

    greedy = zoo.models.generate_captions(captioner, images, beam_width=1)
    beam = zoo.models.generate_captions(captioner, images, beam_width=4)
    for image, g, b in zip(images, greedy, beam, strict=True):
        assert log_likelihood(image, b) >= log_likelihood(image, g) - 1e-6
    with pytest.raises(ValueError, match="beam_width=0"):
        zoo.models.generate_captions(captioner, images, beam_width=0)


def test_caption_metrics_on_hand_made_captions():
    hypotheses = ["a thick 7 leaning right", "the digit four, light and standing straight", "a bold two and 3"]
    references = ["a thick 7 leaning right", "the digit nine, light and standing straight", "a bold 2 tilted left"]
    assert caption_metrics.exact_match(hypotheses, references) == pytest.approx(1 / 3)
    # The captioner writes no punctuation: a comma in the reference does not count against it.
    assert caption_metrics.exact_match(["the digit 9 light"], ["The digit 9, light"]) == 1.0
    assert caption_metrics.corpus_bleu(["the digit 9 light and standing straight"],
                                       ["the digit 9, light and standing straight"]) == pytest.approx(100.0)
    assert caption_metrics.digit_correct_rate(hypotheses, [7, 9, 2]) == pytest.approx(1 / 3)
    assert caption_metrics.digits_named("a bold two and 3") == {2, 3}
    assert caption_metrics.corpus_bleu(references, references) == pytest.approx(100.0)
    assert 0 < caption_metrics.corpus_bleu(hypotheses, references) < 100
    with pytest.raises(ValueError, match="2 generated captions for 3 references"):
        caption_metrics.exact_match(hypotheses[:2], references)


def test_caption_standardization_is_the_tokenizers():
    import tensorflow as tf

    from zoo.data.text import standardize as graph_standardize

    texts = ["The digit 9, light!", "a 'bold' 7 (tilted) right...", "ÉCRIT à la main", "x-y_z  w"]
    expected = [" ".join(t.decode().split()) for t in graph_standardize(tf.constant(texts)).numpy()]
    assert caption_metrics.standardize(texts) == expected
