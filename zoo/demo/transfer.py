"""Transfer: the dual encoder's contrastive-pretrained towers fine-tuned on vqa with few labels.

The pretrain → fine-tune flow of the seed systems with the project's own
weights: `cnn_lstm_concat` (same tower sizes as the dual encoder) starts
either from random initialisation or from the towers of a dual encoder
trained on `describe` (`zoo.demo.contrastive`), and is trained on 1%, 10% or
100% of the vqa training labels, all layers trainable. The towers are copied
layer by layer by name (`image_conv1`, `image_dense`, `text_lstm1`, ...); the
text embedding row by row by word, since the two configs have their own
vocabularies (words only vqa knows keep their random rows).

Measure from the shell (one pretrained run, one seed, about 6 minutes):
`python -m zoo.demo.transfer --pretrained runs/contrastive/run --out runs/transfer --seed 0`.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import keras

from zoo.core.atomic import atomic_write_text
from zoo.data import Tokenizer, load_vocabulary, pipeline

__all__ = ["FRACTIONS", "copy_towers", "fine_tune", "run_transfer"]

# Share of vqa training labels -> epochs: fewer labels get more passes, so each run sees
# at least 27,500 examples and the smallest does not stop before it has learned anything.
FRACTIONS = {1: 50, 10: 5, 100: 2}
CONFIG = "vqa"


def copy_towers(source: keras.Model, target: keras.Model, source_vocabulary: list[str],
                target_vocabulary: list[str]) -> list[str]:
    """Copies the weights of `source`'s towers into `target`'s layers of the same name.

    Args:
        source, target: models whose tower layers share names (`image_*`, `text_*`).
        source_vocabulary, target_vocabulary: the token lists of the two models'
            embeddings; rows move by word.

    Returns:
        The names of the layers copied.

    Raises:
        ValueError: for a layer present in both with weights of other shapes.
    """
    index = {word: i for i, word in enumerate(source_vocabulary)}
    copied = []
    for layer in target.layers:
        if not layer.weights or not layer.name.startswith(("image_", "text_")):
            continue
        try:
            origin = source.get_layer(layer.name)
        except ValueError:
            continue
        if isinstance(layer, keras.layers.Embedding):
            rows, source_rows = layer.get_weights()[0], origin.get_weights()[0]
            for i, word in enumerate(target_vocabulary):
                if word in index:
                    rows[i] = source_rows[index[word]]
            layer.set_weights([rows])
        else:
            shapes = [w.shape for w in layer.get_weights()], [w.shape for w in origin.get_weights()]
            if shapes[0] != shapes[1]:
                raise ValueError(f"Layer {layer.name!r}: target weights {shapes[0]} differ from source {shapes[1]}.")
            layer.set_weights(origin.get_weights())
        copied.append(layer.name)
    return copied


def fine_tune(out: str, fraction: int, seed: int, *, pretrained: str | None, data_dir=None, source_dir=None,
              batch_size: int = 64) -> dict:
    """Trains cnn_lstm_concat on `fraction`% of vqa (from `pretrained`'s towers, or random); returns test metrics."""
    import zoo
    import zoo.training

    vocabulary = pipeline.fit_vocabulary(CONFIG, data_dir=data_dir, source_dir=source_dir)
    tower = {"embed_dim": 32, "rnn_units": (64,), "vocab_size": len(vocabulary), "max_length": 32,
             "num_classes": len(pipeline.class_names(CONFIG))}
    source = None
    if pretrained is not None:
        from zoo.export import load_model

        source = (load_model(os.path.join(pretrained, "model.keras")), load_vocabulary(os.path.join(pretrained, "vocabulary.txt")))

    def model_fn():
        model = zoo.build("cnn_lstm_concat", **tower)
        if source is not None:
            copy_towers(source[0], model, source[1], vocabulary)
        return model

    start = time.perf_counter()
    trained = zoo.training.train(
        model_fn, out=out, data=CONFIG, data_dir=data_dir, source_dir=source_dir, train_split=f"train[:{fraction}%]",
        vocabulary=vocabulary, epochs=FRACTIONS[fraction], batch_size=batch_size, learning_rate=3e-3,
        lr_schedule="cosine", seed=seed, verbose=0,
    )
    seconds = time.perf_counter() - start
    test = pipeline.make_dataset(CONFIG, "test", data_dir=data_dir, source_dir=source_dir, batch_size=512,
                                 tokenizer=Tokenizer(vocabulary, 32))
    metrics = trained.model.evaluate(test, verbose=0, return_dict=True)
    return {"fraction": fraction, "seed": seed, "init": "contrastive" if pretrained else "random",
            "test_accuracy": float(metrics["accuracy"]), "train_seconds": seconds}


def run_transfer(out: str, seed: int, *, pretrained: str, data_dir=None, source_dir=None) -> list[dict]:
    """Every fraction from both initialisations for one seed; writes OUT/transfer.json."""
    rows = []
    for fraction in FRACTIONS:
        for init in (pretrained, None):
            name = f"{fraction}pct_{'contrastive' if init else 'random'}"
            rows.append(fine_tune(os.path.join(out, name), fraction, seed, pretrained=init, data_dir=data_dir,
                                  source_dir=source_dir))
    atomic_write_text(os.path.join(out, "transfer.json"), json.dumps(rows, indent=1))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrained", required=True, help="run folder of a trained dual encoder")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir")
    args = parser.parse_args(argv)
    rows = run_transfer(args.out, args.seed, pretrained=args.pretrained, data_dir=args.data_dir)
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

