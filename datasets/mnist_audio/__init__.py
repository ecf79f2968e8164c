"""mnist_audio: MNIST images paired with spoken digits (FSDD) and texts (TFDS builder).

The builder lives in `mnist_audio_dataset_builder`; importing it registers the
dataset with TFDS, which `import zoo.datasets` does.
"""
