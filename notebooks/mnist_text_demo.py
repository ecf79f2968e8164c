# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The MNIST+text demo: what fusion buys
#
# Each MNIST digit comes with a question about it ("is it even?", "is it greater than
# five?", "what digit is this?"), and the label is the answer. Neither modality is
# enough alone: an image-only model cannot see the question, a text-only model cannot
# see the digit. This notebook builds a fusion model by name, looks at the data,
# trains and evaluates the model, shows the ablation table of the whole demo, its
# plots, and finally exports the model, reloads it with TensorFlow alone and asks it
# questions about a raw image.
#
# The source of this notebook is `notebooks/mnist_text_demo.py` (jupytext); the
# `.ipynb` is generated from it with outputs stripped. The tests run it in quick
# mode (`ZOO_DEMO_QUICK=1`: a few hundred examples, one epoch), where the numbers
# mean nothing; run it without that variable for the real figures (under three
# minutes on two CPU cores when `make demo` has written its results; otherwise
# the notebook runs the demo first, which adds about 19 minutes).

# %%
import json
import os

import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from IPython.display import Image, Markdown, display

import zoo
from zoo.demo import datacontext, experiment, metrics, plots, recipes, report, run_demo
from zoo.demo.grids import make_entry

QUICK = os.environ.get("ZOO_DEMO_QUICK") == "1"
# TFDS data directory of the prepared mnist_text configs (None: TFDS's default);
# the official MNIST files are found through ZOO_DATA_DIR.
DATA_DIR = os.environ.get("ZOO_DEMO_DATA_DIR") or None
OUT = os.environ.get("ZOO_DEMO_OUT", "../demo_out/notebook")
DEMO_RESULTS = os.environ.get("ZOO_DEMO_RESULTS", "../demo_out/results.json")
# Examples read per split (None: all of it).
SPLITS = datacontext.QUICK_SPLITS if QUICK else datacontext.FULL_SPLITS
print("quick mode" if QUICK else "full run", "| examples per split:", SPLITS)

# %% [markdown]
# ## The catalog: build a model by name
#
# Every fusion model shares the same image tower (the seed CNN) and text tower
# (embedding + LSTM), so the table below compares fusion methods alone.

# %%
print(zoo.list_models("cnn_lstm_*"))

data = datacontext.prepare_data("vqa", data_dir=DATA_DIR)
MODEL = "cnn_lstm_xattn"
overrides = dict(
    vocab_size=len(data.vocabulary),
    max_length=data.max_length,
    num_classes=len(data.class_names),
    **recipes.TEXT_TOWER,
)
card = zoo.describe(MODEL, **overrides)
print(card["description"])
print(f"{card['parameters']:,} parameters, {card['macs_per_example']:,} multiply-adds per example")
zoo.build(MODEL, **overrides).summary()

# %% [markdown]
# ## A look at the data
#
# `mode="raw"` gives what a served model receives: uint8 pixels and the question as a
# string. The vocabulary is fitted on the training split; the text length is the
# longest question in the data, so nothing is cut.

# %%
features, labels = next(iter(data.dataset("test", batch_size=8, mode="raw")))
print(f"vocabulary: {len(data.vocabulary)} tokens; longest question: {data.max_length} words")
figure, axes = plt.subplots(1, 8, figsize=(16, 2.6))
for axis, image, text, label in zip(axes, features["image"], features["text"], labels, strict=True):
    axis.imshow(image[..., 0], cmap="gray_r")
    axis.set_title(f"{text.numpy().decode()}\n→ {data.class_names[int(label)]}", fontsize=8)
    axis.axis("off")
plt.show()

# %% [markdown]
# ## Train
#
# `zoo.train` is the zoo's training loop (checkpoints, exact resume, any
# `tf.distribute` strategy). It reads `(features, label)` batches from
# `zoo.data.pipeline` and writes a run directory: `config.json`, `metrics.json`,
# `vocabulary.txt`, `model.keras`, checkpoints and TensorBoard logs.

# %%
from zoo.data import pipeline  # noqa: E402

recipe = recipes.RECIPES["zoo"]  # the demo's recipe for the text configs
print(recipe.description)
batch_size, epochs = recipe.batch_size, 1 if QUICK else 3
train_split, validation_split = data.split("train", SPLITS.train), data.split("validation", SPLITS.validation)
steps_per_epoch = -(-pipeline.num_examples("vqa", train_split, data_dir=DATA_DIR) // batch_size)
result = zoo.train(
    MODEL,
    out=f"{OUT}/{MODEL}",
    dataset_fn=lambda context: data.dataset(train_split, batch_size=batch_size, shuffle=True, input_context=context),
    validation_fn=lambda context: data.dataset(validation_split, batch_size=512, input_context=context),
    model_overrides=overrides,
    vocabulary=data.vocabulary,
    epochs=epochs,
    batch_size=batch_size,
    steps_per_epoch=steps_per_epoch,
    learning_rate=recipe.learning_rate,
    lr_schedule=recipe.lr_schedule,
    warmup_steps=recipe.warmup_steps(steps_per_epoch, epochs),
    seed=0,
    checkpoint_every=0,
    verbose=1,
)
model = result.model
print(sorted(os.listdir(result.out)))

# %% [markdown]
# ## Evaluate on the test split
#
# Accuracy, and precision, recall and F1 averaged over the 12 answers (macro), from
# the predictions; the confusion matrix shows which answers get mixed up.

# %%
y_true, probabilities = experiment.predict(model, data, data.split("test", SPLITS.test))
scores = metrics.classification_report(y_true, probabilities.argmax(-1), len(data.class_names))
print({k: round(v, 4) for k, v in scores.items() if k.startswith(("accuracy", "macro"))})
plots.plot_confusion_matrix(scores["confusion_matrix"], data.class_names, f"{OUT}/confusion_matrix.png",
                            title=f"{MODEL} on vqa test ({scores['accuracy']:.2%} accurate)")
display(Image(f"{OUT}/confusion_matrix.png"))

# %% [markdown]
# ## Where the words look
#
# In the cross-attention model each word's LSTM state attends over the 5×5 cells of
# the CNN's last feature map. Each panel shows one word's attention (mean over the
# 8 heads) drawn over the image at the cells' receptive-field centres.

# %%
from zoo.data.text import split_words  # noqa: E402
from zoo.models import attention_scores  # noqa: E402

raw, answers = next(iter(data.dataset("test", batch_size=4, mode="raw")))
inputs = {"image": tf.cast(raw["image"], tf.float32) / 255.0, "token_ids": data.tokenizer(raw["text"])}
weights = attention_scores(model, inputs)
words = [[w.decode() for w in row] for row in split_words(raw["text"]).to_list()]
predicted = np.asarray(model(inputs, training=False)).argmax(-1)
plots.plot_attention_maps(
    raw["image"].numpy(), [t.decode() for t in raw["text"].numpy()], words, weights, f"{OUT}/attention_map.png",
    title=f"{MODEL}: attention of each word over the image",
    answers=[f"true: {data.class_names[t]}, predicted: {data.class_names[p]}"
             for t, p in zip(answers.numpy(), predicted, strict=True)],
)
display(Image(f"{OUT}/attention_map.png"))

# %% [markdown]
# ## The ablation table
#
# `make demo` (`zoo demo`) trains the image-only and text-only baselines and the
# fusion models and writes `demo_out/results.json`. Here: its results when they
# exist; in quick mode, a three-row ablation run on the spot.

# %%
if QUICK:
    tower = recipes.TEXT_TOWER
    rows = [
        make_entry("vqa", "cnn_image", "image", "zoo", 1),
        make_entry("vqa", "rnn_text", "text", "zoo", 1, **tower),
        make_entry("vqa", "cnn_lstm_concat", "fusion", "zoo", 1, **tower),
    ]
    results = run_demo(f"{OUT}/ablation", grid=rows, data_dir=DATA_DIR, export=False, log=None)
    results_dir = f"{OUT}/ablation"
elif os.path.exists(DEMO_RESULTS):
    with open(DEMO_RESULTS, encoding="utf-8") as handle:
        results = json.load(handle)
    results_dir = os.path.dirname(DEMO_RESULTS)
else:
    results_dir = os.path.dirname(DEMO_RESULTS)
    results = run_demo(results_dir, data_dir=DATA_DIR, log=None)

for config in dict.fromkeys(row["config"] for row in results["rows"]):
    display(Markdown(f"**{config}**\n\n" + report.format_table([r for r in results["rows"] if r["config"] == config])))
for target in results["targets"]:
    print(target["description"], "->", {True: "met", False: "NOT met", None: "not measured"}[target["met"]])

# %%
display(Image(os.path.join(results_dir, results["artifacts"]["training_curves"])))

# %% [markdown]
# ## Export, reload, ask
#
# `zoo.export` writes a SavedModel whose serving signature takes raw uint8 pixels
# and the question as a string (tokenized inside the graph) and checks its inputs.
# Loading it needs TensorFlow only: no Keras, no zoo. The model trained above is
# the cross-attention model after a few epochs, so expect some wrong answers; the
# demo's best model, exported by `make demo`, is asked the same questions after it.

# %%
path = zoo.export_model(model, f"{OUT}/export", vocabulary=data.vocabulary, class_names=data.class_names, overwrite=True)
exports = {f"{MODEL} (trained above)": path}
if results["artifacts"].get("saved_model"):
    exports[f"{results['best']['label']} (the demo's best)"] = os.path.join(results_dir, results["artifacts"]["saved_model"])

image = raw["image"][:1].numpy()  # uint8 [1, 28, 28, 1], as a client would send it
questions = ["what digit is this?", "is it even?", "is the digit larger than four?", "is this a seven?"]
for name, export_path in exports.items():
    served = tf.saved_model.load(export_path).signatures["serving_default"]
    print(name)
    for question in questions:
        answer = served(image=tf.constant(image), text=tf.constant([question]))
        print(f"  {question:32s} -> {answer['class_name'][0].numpy().decode()}")
plt.figure(figsize=(2, 2))
plt.imshow(image[0, ..., 0], cmap="gray_r")
plt.axis("off")
plt.show()
