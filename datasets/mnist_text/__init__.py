"""mnist_text: MNIST images paired with English questions or captions (TFDS builder).

The builder lives in `mnist_text_dataset_builder`; importing it registers the
dataset with TFDS, which `import zoo.datasets` does.
"""
