"""Embeddings, zero-shot classification, retrieval metrics and the linear probe on hand-made cases."""

import numpy as np
import pytest

import zoo
from zoo.models import retrieval


def _unit(rows):
    rows = np.asarray(rows, "float32")
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_recall_and_map_on_a_hand_made_ranking():
    # Gallery along the x axis at decreasing similarity to the query [1, 0].
    gallery = _unit([[1, 0.1], [1, 0.5], [1, 1.0], [1, 2.0], [1, 4.0]])
    query = _unit([[1, 0]])
    keys = np.array([7, 3, 3, 7, 7])  # ranked order is the gallery order
    metrics = zoo.models.retrieval_metrics(query, gallery, np.array([3]), keys, ks=(1, 2, 3), map_k=4)
    assert metrics["recall@1"] == 0.0 and metrics["recall@2"] == 1.0 and metrics["recall@3"] == 1.0
    # Relevant at ranks 2 and 3 of 2 relevant items: AP = (1/2 + 2/3) / 2.
    assert metrics["map@4"] == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_attribute_relevance_is_stricter_than_class_relevance():
    gallery = _unit([[1, 0.1], [1, 0.5], [1, 1.0]])
    query = _unit([[1, 0]])
    digits = np.array([4, 4, 4])
    attributes = np.array([[4, 0, 1], [4, 2, 2], [4, 1, 1]])
    by_class = zoo.models.retrieval_metrics(query, gallery, np.array([4]), digits, ks=(1,), map_k=3)
    by_attribute = zoo.models.retrieval_metrics(query, gallery, np.array([[4, 1, 1]]), attributes, ks=(1,), map_k=3)
    assert by_class == {"recall@1": 1.0, "map@3": 1.0}
    assert by_attribute == {"recall@1": 0.0, "map@3": pytest.approx(1 / 3)}


def test_queries_are_scored_in_chunks_with_the_same_result():
    rng = np.random.default_rng(0)
    queries, gallery = _unit(rng.normal(size=(50, 4))), _unit(rng.normal(size=(40, 4)))
    q_keys, g_keys = rng.integers(0, 5, 50), rng.integers(0, 5, 40)
    whole = zoo.models.retrieval_metrics(queries, gallery, q_keys, g_keys, chunk=1000)
    assert zoo.models.retrieval_metrics(queries, gallery, q_keys, g_keys, chunk=7) == pytest.approx(whole)
    with pytest.raises(ValueError, match="query_keys has shape"):
        zoo.models.retrieval_metrics(queries, gallery, q_keys[:3], g_keys)


def test_top_k_breaks_ties_by_gallery_order():
    assert retrieval.top_k(np.ones((1, 2)), np.ones((4, 2)), 3).tolist() == [[0, 1, 2]]


def test_embeddings_zero_shot_and_probe_on_a_tiny_dual_encoder():
    model = zoo.build("cnn_lstm_dual_encoder", conv_filters=(4,), image_units=8, vocab_size=20, max_length=5,
                      embed_dim=8, rnn_units=(8,), projection_dim=6)
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(7, 28, 28, 1)).astype("float32")
    image_embeddings = zoo.models.embed_images(model, images)
    assert image_embeddings.shape == (7, 6)
    np.testing.assert_allclose(np.linalg.norm(image_embeddings, axis=1), 1.0, rtol=1e-5)
    ids = np.array([[2, 3, 0, 0, 0], [4, 0, 0, 0, 0], [5, 6, 7, 0, 0]])
    # The same embeddings as the model's own head output.
    packed = np.asarray(model({"image": images[:3], "token_ids": ids}))
    np.testing.assert_allclose(zoo.models.embed_texts(model, ids), packed[:, 6:12], atol=1e-5)
    np.testing.assert_allclose(image_embeddings[:3], packed[:, :6], atol=1e-5)
    classes = zoo.models.class_embeddings(model, [ids[:2], ids[2:]])
    assert classes.shape == (2, 6)
    expected = np.argmax(image_embeddings @ classes.T, axis=1)
    np.testing.assert_array_equal(zoo.models.zero_shot_classify(image_embeddings, classes), expected)
    with pytest.raises(ValueError, match="no layer 'image_projection'"):
        zoo.models.embed_images(zoo.build("cnn_seed"), images)


def test_linear_probe_separates_separable_features():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    features = rng.normal(size=(300, 5)) + 4 * np.eye(3, 5)[labels]
    predicted = zoo.models.linear_probe(features[:200], labels[:200], features[200:], num_classes=3, epochs=20, batch_size=16)
    assert (predicted == labels[200:]).mean() > 0.95
