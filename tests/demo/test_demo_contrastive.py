"""The demo's contrastive evaluation and the tower transfer, on tiny models and hand-made data."""

import numpy as np
import pytest
from zoo.datasets.mnist_text import describe

import zoo
from zoo.data import Tokenizer, build_vocabulary
from zoo.demo import contrastive, transfer

TINY = {"conv_filters": (4,), "image_units": 8, "embed_dim": 8, "rnn_units": (8,), "projection_dim": 6,
        "max_length": 12}


def _eval_data(tokenizer, count, seed):
    rng = np.random.default_rng(seed)
    digits = rng.integers(0, 10, count)
    texts = [describe.all_descriptions(int(d))[int(rng.integers(0, 100))] for d in digits]
    return contrastive.EvalData(rng.uniform(size=(count, 28, 28, 1)).astype("float32"),
                                tokenizer(np.array(texts)).numpy(), digits, rng.integers(0, 3, count),
                                rng.integers(0, 3, count), texts)


@pytest.mark.slow
def test_evaluate_reports_every_figure_as_a_fraction():
    vocabulary = build_vocabulary(t for d in range(10) for t in describe.all_descriptions(d))
    tokenizer = Tokenizer(vocabulary, 12)
    model = zoo.build("cnn_lstm_dual_encoder", vocab_size=len(vocabulary), **TINY)
    results = contrastive.evaluate(model, tokenizer, _eval_data(tokenizer, 40, 0), _eval_data(tokenizer, 30, 1),
                                   probe_epochs=1, seed=0)
    expected = {"zero_shot_accuracy", "zero_shot_nearest_prompt_accuracy", "linear_probe_accuracy"} | {
        f"{d}_{r}_{m}" for d in ("t2i", "i2t") for r in ("class", "attribute")
        for m in ("recall@1", "recall@5", "recall@10", "map@10")}
    assert set(results) == expected
    assert all(0.0 <= v <= 1.0 for v in results.values())
    # Attribute-matched relevance is stricter than class relevance.
    assert results["t2i_attribute_recall@10"] <= results["t2i_class_recall@10"]


def test_copy_towers_moves_layers_by_name_and_embeddings_by_word():
    source_vocab = ["", "[UNK]", "seven", "thick", "left"]
    target_vocab = ["", "[UNK]", "is", "it", "seven"]
    source = zoo.build("cnn_lstm_dual_encoder", vocab_size=5, **TINY)
    target = zoo.build("cnn_lstm_concat", vocab_size=5, conv_filters=(4,), image_units=8, embed_dim=8,
                       rnn_units=(8,), max_length=12)
    before = target.get_layer("text_embedding").get_weights()[0].copy()
    copied = transfer.copy_towers(source, target, source_vocab, target_vocab)
    assert {"image_conv1", "image_dense", "text_embedding", "text_lstm1"} <= set(copied)
    assert not any(name.startswith(("head", "fusion")) for name in copied)
    for name in ("image_conv1", "text_lstm1"):
        for a, b in zip(target.get_layer(name).get_weights(), source.get_layer(name).get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    rows, source_rows = target.get_layer("text_embedding").get_weights()[0], source.get_layer("text_embedding").get_weights()[0]
    np.testing.assert_array_equal(rows[4], source_rows[2])  # "seven"
    np.testing.assert_array_equal(rows[2:4], before[2:4])  # words the source never saw keep their rows


def _fake_contrastive(seed):
    figures = {"zero_shot_accuracy": 0.9 + seed / 100, "zero_shot_nearest_prompt_accuracy": 0.95,
               "linear_probe_accuracy": 0.98}
    figures.update({f"{d}_{r}_{m}": 0.5 for d in ("t2i", "i2t") for r in ("class", "attribute")
                    for m in ("recall@1", "recall@5", "recall@10", "map@10")})
    return {**figures, "model": "cnn_lstm_dual_encoder", "epochs": 3, "seed": seed}


def test_sections_render_mean_and_std_next_to_the_supervised_rows():
    from zoo.demo import sections

    runs = {"contrastive": [_fake_contrastive(0), _fake_contrastive(2)],
            "captioning": [{"epochs": 1, "greedy": {"exact_match": 0.01, "digit_correct": 0.9, "bleu4": 40.0,
                                                   "decode_seconds": 3.0},
                            "beam3": {"exact_match": 0.02, "digit_correct": 0.91, "bleu4": 42.0,
                                      "decode_seconds": 5.0}}],
            "transfer": [[{"fraction": f, "init": i, "test_accuracy": 0.5} for f in (1, 10, 100)
                          for i in ("random", "contrastive")]]}
    text = "\n".join(sections.render_sections(runs, [{"label": "cnn_image", "config": "caption",
                                                      "accuracy": {"mean": 0.89}}]))
    assert "| zero-shot digit accuracy (prompt ensemble) | 91.00 ± 1.41 |" in text
    assert "| supervised `cnn_image` on caption (for reference) | 89.00 |" in text
    assert "| beam3 | 2.00 | 91.00 | 42.00 | 5 |" in text and "| 10% | 50.00 | 50.00 |" in text
    summary = sections.summarize_sections(runs)
    assert summary["contrastive"]["zero_shot_accuracy"][2] == 2
    assert summary["transfer"]["100pct_contrastive"] == [0.5, 0.0, 1]


def test_a_section_with_the_same_settings_is_reused(tmp_path):
    from zoo.demo import sections

    calls = []
    assert sections._cached(str(tmp_path), "x", {"a": 1}, lambda: calls.append(1) or {"v": 1}) == {"v": 1}
    assert sections._cached(str(tmp_path), "x", {"a": 1}, lambda: calls.append(1) or {"v": 2}) == {"v": 1}
    assert sections._cached(str(tmp_path), "x", {"a": 2}, lambda: calls.append(1) or {"v": 3}) == {"v": 3}
    assert len(calls) == 2


def test_standalone_run_gives_each_dual_encoder_only_the_overrides_it_declares():
    from zoo.demo.contrastive import DEFAULT_OVERRIDES, default_overrides

    assert dict(default_overrides("cnn_lstm_dual_encoder")) == DEFAULT_OVERRIDES
    assert "rnn_units" not in dict(default_overrides("cnn_transformer_dual_encoder"))
    assert dict(default_overrides("clip_dual_encoder")) == {"projection_dim": 64}
