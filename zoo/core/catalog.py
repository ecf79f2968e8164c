"""When the catalog (the zoo's layers and named models) is loaded, without importing it from below.

`zoo/__init__.py` registers the loader and runs it when Keras is imported;
`zoo.registry` runs it before it answers. Both sit below the models in the
layering, so the loader is handed down instead of imported up.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

__all__ = ["set_loader", "ensure_loaded", "loading"]

_loader: Callable[[], None] | None = None
_CATALOG_PACKAGES = ("zoo.layers", "zoo.towers", "zoo.models")


def set_loader(loader: Callable[[], None]) -> None:
    """Sets the function that imports the catalog (called once, by `zoo/__init__.py`)."""
    global _loader
    _loader = loader


def loading() -> bool:
    """Whether a catalog package is being imported right now (in this thread's import chain)."""
    for name in _CATALOG_PACKAGES:
        spec = getattr(sys.modules.get(name), "__spec__", None)
        # Python marks a module's spec while its code runs: importing the
        # catalog again from inside would meet half-initialised packages.
        if spec is not None and getattr(spec, "_initializing", False):
            return True
    return False


def ensure_loaded() -> None:
    """Imports the catalog unless it is being imported already (then its import completes it)."""
    if _loader is not None and not loading():
        _loader()
