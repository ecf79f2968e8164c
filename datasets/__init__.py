"""TFDS dataset builders of the zoo, installed as the `zoo.datasets` package.

One folder per dataset in the `tfds new` layout. Importing this package
registers them with TFDS, so `tfds.load("mnist_text/vqa")` works after
`import zoo.datasets` (`zoo.data` imports it too).
"""

from zoo.datasets.fsdd import fsdd_dataset_builder  # noqa: F401  (registers fsdd)
from zoo.datasets.mnist_audio import mnist_audio_dataset_builder  # noqa: F401  (registers mnist_audio)
from zoo.datasets.mnist_text import mnist_text_dataset_builder  # noqa: F401  (registers mnist_text)
