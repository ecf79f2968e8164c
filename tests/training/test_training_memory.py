"""A finished run leaves no traced step behind in TensorFlow's process-wide state."""

from __future__ import annotations

import gc
import weakref

import pytest
from tensorflow.python.framework import func_graph, ops

import zoo
from tests.training import synthetic
from zoo.testing import small_overrides

# Walks every object of the process, which after the rest of the suite takes tens of seconds.
pytestmark = pytest.mark.slow

IMAGE_ONLY = "cnn_image"


def _step_graphs() -> list:
    gc.collect()
    return [g for g in gc.get_objects() if isinstance(g, func_graph.FuncGraph)
            and g.name.startswith(("one_step", "several_steps"))]


@pytest.mark.parametrize("steps_per_execution", [1, 2])
def test_an_image_only_run_frees_its_traced_steps(tmp_path, steps_per_execution):
    # Keras all-reduces dense gradients through tf.custom_gradient, whose graph-mode
    # registration would keep each traced step (and the weights it captured) for good.
    registry = ops._gradient_registry._registry
    before = len(registry)
    graphs_before = weakref.WeakSet(_step_graphs())
    for run in range(2):
        result = zoo.train(IMAGE_ONLY, model_overrides=small_overrides(IMAGE_ONLY), out=tmp_path / str(run),
                           dataset_fn=synthetic.dataset_fn(16, 8), batch_size=8, epochs=1, strategy="default",
                           steps_per_execution=steps_per_execution, verbose=0)
        assert result.model is not None
        del result
    assert [g for g in _step_graphs() if g not in graphs_before] == []
    assert len(registry) == before
