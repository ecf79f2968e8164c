"""The punctuation the tokenizer turns into spaces: one pattern for the graph and for Python.

`zoo.data.text.standardize` applies it with `tf.strings.regex_replace` (RE2);
`zoo.models.caption_metrics` with `re`, so captions are compared in the form
the tokenizer reads without the models package importing TensorFlow. The
pattern uses only syntax both engines read the same way.
"""

PUNCTUATION = r"[!\"#$%&()*+,\-./:;<=>?@\[\\\]^_`{|}~']"
