"""What every part of the zoo may import: feature keys, atomic writes, JSON, the version.

This package sits below all others (`datasets → data → layers → towers →
models → training → export → demo, cli`) and imports nothing else of the zoo,
nor TensorFlow.
"""

from zoo.core import atomic, jsonio, keys
from zoo.core.version import __version__

__all__ = ["atomic", "jsonio", "keys", "__version__"]
