"""Feature keys, text tokenization and the tf.data pipelines."""

from zoo.data import keys
from zoo.data.text import Tokenizer, build_vocabulary, load_vocabulary, save_vocabulary

__all__ = ["keys", "Tokenizer", "build_vocabulary", "load_vocabulary", "save_vocabulary"]
