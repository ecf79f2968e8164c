"""Frees the traced training steps that TensorFlow's gradient registry would keep for good.

In graph mode `tf.custom_gradient` registers its gradient function in
TensorFlow's process-wide gradient registry and never removes it; the function
holds tensors of the graph it was traced in, so that graph, and through its
captured handles the model's weights and optimizer slots, stay alive for the
life of the process (tensorflow/tensorflow#27492, #97697). Keras' optimizer
all-reduces dense gradients through such a function, so each traced step of a
model without an embedding was kept: six `zoo.train` runs of `resnet_image`
in one process grew it from 780 to 846 MB (784-794 MB with this release).

A run notes the graphs of its own step functions while they are traced and,
when it ends, removes the registry entries whose tensors live in those graphs
(directly or inside their `tf.cond` / `tf.while_loop` branches). Entries of
any other traced function, such as `PackedLSTM`'s shared kernel, are kept: a
later trace may still need them.
"""

from __future__ import annotations

import weakref

import tensorflow as tf

_PREFIX = "CustomGradient-"


def _registry() -> dict | None:
    try:
        from tensorflow.python.framework import ops

        return ops._gradient_registry._registry
    except (ImportError, AttributeError):
        return None


def _control_flow_graph_types() -> tuple[type, ...]:
    try:
        from tensorflow.python.ops import control_flow_v2_func_graphs as graphs
    except ImportError:
        return ()
    return (graphs.CondBranchFuncGraph, graphs.WhileBodyFuncGraph, graphs.WhileCondFuncGraph)


class StepGraphs:
    """The graphs a run's step functions were traced in, and the registry entries they left.

    Call `note_current_graph()` while tracing a step function, `release()` when
    the run no longer calls its step functions.
    """

    def __init__(self):
        self._graphs: weakref.WeakSet = weakref.WeakSet()

    def note_current_graph(self) -> None:
        """Records the graph being traced as one of the run's step functions."""
        self._graphs.add(tf.compat.v1.get_default_graph())

    def release(self) -> int:
        """Removes the custom-gradient entries whose tensors belong to the run's graphs.

        Returns:
            How many entries were removed.
        """
        registry = _registry()
        if registry is None or not self._graphs:
            return 0
        control_flow = _control_flow_graph_types()
        removed = 0
        for key in [k for k in registry if str(k).startswith(_PREFIX)]:
            owner = _owning_graph(registry[key], control_flow)
            if owner is not None and owner in self._graphs:
                del registry[key]
                removed += 1
        return removed


def _owning_graph(entry, control_flow: tuple[type, ...]):
    """The function graph whose tensors the entry's gradient closure holds, through any control-flow branches."""
    graph = _closure_graph(entry.get("type") if isinstance(entry, dict) else None, depth=0)
    while graph is not None and control_flow and isinstance(graph, control_flow):
        graph = getattr(graph, "outer_graph", None)
    return graph


def _closure_graph(function, depth: int):
    for cell in getattr(function, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        for item in value if isinstance(value, list | tuple) else (value,):
            if isinstance(item, tf.Tensor) and tf.is_symbolic_tensor(item):
                graph = item.graph
                if isinstance(graph, tf.Graph):
                    return graph
        if callable(value) and depth < 2:
            graph = _closure_graph(value, depth + 1)
            if graph is not None:
                return graph
    return None
