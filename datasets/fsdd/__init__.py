"""fsdd: the Free Spoken Digit Dataset read from local WAV files (TFDS builder).

The builder lives in `fsdd_dataset_builder`; importing it registers the dataset
with TFDS, which `import zoo.datasets` does.
"""
