"""Shared test helpers: layer and model round-trips that every test reuses.

A layer's or model's whole test is then a few arguments and an expected shape:

>>> from zoo.testing import run_layer_test
>>> run_layer_test(GatedFusion, {"units": 4}, [a, b], expected_output_shape=(2, 4))
"""

from zoo.testing.test_case import (
    random_inputs,
    run_layer_test,
    run_model_test,
    sample_targets,
    small_overrides,
)

__all__ = ["random_inputs", "run_layer_test", "run_model_test", "sample_targets", "small_overrides"]
