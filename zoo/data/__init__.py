"""Feature keys, text tokenization and the tf.data pipelines.

Importing this package registers the `mnist_text` TFDS builder, so
`tfds.load("mnist_text/vqa")` works after `import zoo.data`.
"""

from zoo.core import keys
from zoo.data import hub_text
from zoo.data.hub_text import BackboneTokenizer
from zoo.data.pipeline import class_names, fit_vocabulary, load_builder, make_dataset, num_examples
from zoo.data.text import Tokenizer, build_vocabulary, load_vocabulary, save_vocabulary

__all__ = [
    "keys",
    "BackboneTokenizer",
    "hub_text",
    "Tokenizer",
    "build_vocabulary",
    "class_names",
    "fit_vocabulary",
    "load_builder",
    "load_vocabulary",
    "make_dataset",
    "num_examples",
    "save_vocabulary",
]
