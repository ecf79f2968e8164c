"""A model's few-channel convolutions and the max pooling after each, computed as one kernel while traced.

`zoo.layers.conv_pool_tf.conv_pool` computes a `Conv2D` over few input
channels (the seed CNN's first layer reads one) and the 2x2 max pooling that
follows it at the pooled size, under XLA. TensorFlow's own convolution of one
channel is slow on a CPU, and the full-size map it writes costs as much again:
the seed model's first convolution, ReLU and pooling at batch 128 took 45-55 ms
with their gradients on one core and 14-17 ms as the fused kernel (its forward
pass alone 14-16 ms against 1.7-2.7 ms; AMD EPYC without AVX-512, where
TensorFlow leaves its oneDNN kernels off).

`fused_convolution_pools(model)` is a scope for tracing a training or serving
step: while open, in the thread that opened it, each eligible pair of the
model computes the fused kernel; calls from other threads, and every call
after it closes, run the layers as they are. The layers, their weights and the
saved model do not change. TensorFlow backend on a CPU only: elsewhere the
scope changes nothing.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading

import keras

__all__ = ["MAX_TAPS", "fusable_pairs", "fused_convolution_pools", "with_fused_convolution_pools"]

# Products per output (kernel height x width x input channels) up to which a
# convolution is fused: a 3x3 kernel over one channel has 9. Over RGB (27) the
# fused forward pass was still faster (batch 128 of 32x32, one core: 8.1 against
# 27.7 ms) but with gradients it was not (102 against 95 ms).
MAX_TAPS = 9

# The pairs fused in this thread's context: the convolution's id -> whether with gradients.
_ACTIVE: contextvars.ContextVar[dict | None] = contextvars.ContextVar("zoo_fused_convolution_pools", default=None)
_LOCK = threading.Lock()
_INSTALLED: dict[int, int] = {}  # convolution id -> open scopes that installed its calls


def _fusable_convolution(layer) -> bool:
    return (
        type(layer).call is keras.layers.Conv2D.call
        and type(layer).convolution_op is keras.layers.Conv2D.convolution_op
        and layer.built
        and getattr(layer, "quantization_mode", None) is None
        and tuple(layer.strides) == (1, 1)
        and tuple(layer.dilation_rate) == (1, 1)
        and layer.groups == 1
        and layer.data_format == "channels_last"
        and layer.padding in ("valid", "same")
        and layer.activation in (keras.activations.relu, keras.activations.linear)
        and layer.kernel.shape[0] * layer.kernel.shape[1] * layer.kernel.shape[2] <= MAX_TAPS
        and len(layer._inbound_nodes) == 1
    )


def _halving_pool(layer) -> bool:
    return (
        type(layer).call is keras.layers.MaxPooling2D.call
        and tuple(layer.pool_size) == (2, 2)
        and tuple(layer.strides) == (2, 2)
        and layer.padding == "valid"
        and layer.data_format == "channels_last"
        and len(layer._inbound_nodes) == 1
    )


def fusable_pairs(model) -> list[tuple]:
    """The (Conv2D, MaxPooling2D) pairs of a model that `fused_convolution_pools` fuses.

    A pair is a plain `Conv2D` (stride 1, no dilation, one group, channels
    last, `valid` or `same` padding, ReLU or no activation, at most `MAX_TAPS`
    products per output) whose one output only a 2x2, stride-2, `valid`
    `MaxPooling2D` reads, each layer called once. Nested models are searched.

    Args:
        model: a Keras model (or any layer: one without sublayers has no pairs).

    Returns:
        The pairs, in layer order.
    """
    pairs = []
    for layer in getattr(model, "layers", ()):
        if _fusable_convolution(layer):
            readers = layer._outbound_nodes
            if len(readers) == 1 and _halving_pool(readers[0].operation):
                pairs.append((layer, readers[0].operation))
        elif getattr(layer, "layers", None):
            pairs.extend(fusable_pairs(layer))
    return pairs


def _available() -> bool:
    if keras.backend.backend() != "tensorflow":
        return False
    from zoo.layers import packed_lstm_tf

    return not packed_lstm_tf.accelerator_present()


def _active() -> dict:
    return _ACTIVE.get() or {}


def _install(convolution, pool) -> None:
    original_convolution, original_pool = convolution.call, pool.call

    def convolution_call(inputs):
        # The pooling computes both: hand it the convolution's input.
        return inputs if id(convolution) in _active() else original_convolution(inputs)

    def pool_call(inputs):
        if id(convolution) not in _active():
            return original_pool(inputs)
        if None in tuple(inputs.shape)[1:]:
            # The kernel is unrolled over the image size and channels: with those unknown
            # when traced (an augmentation that loses them), the layers run as they are.
            return original_pool(original_convolution(inputs))
        from zoo.layers import conv_pool_tf

        dtype = inputs.dtype
        kernel = keras.ops.cast(convolution.kernel, dtype)
        bias = keras.ops.cast(convolution.bias, dtype) if convolution.use_bias else keras.ops.zeros(kernel.shape[-1:], dtype)
        return conv_pool_tf.conv_pool(
            inputs,
            kernel,
            bias,
            padding=convolution.padding,
            relu=convolution.activation is keras.activations.relu,
            gradients=_active()[id(convolution)],
        )

    # Past Keras' attribute tracking: these are method overrides, not state.
    object.__setattr__(convolution, "call", convolution_call)
    object.__setattr__(pool, "call", pool_call)


@contextlib.contextmanager
def fused_convolution_pools(model, *, gradients: bool = True):
    """While open, this thread's calls of `model` compute its `fusable_pairs` as one kernel each.

    Meant around the tracing of a `tf.function`: what traced meanwhile keeps
    the fused kernel. Nothing changes on a backend other than TensorFlow or
    where TensorFlow sees a GPU or TPU.

    Args:
        model: a Keras model.
        gradients: whether what is traced may be differentiated; False for
            a serving function, which then holds no backward kernel.
    """
    pairs = fusable_pairs(model) if _available() else []
    with _LOCK:
        for convolution, pool in pairs:
            if not _INSTALLED.get(id(convolution)):
                _install(convolution, pool)
            _INSTALLED[id(convolution)] = _INSTALLED.get(id(convolution), 0) + 1
    token = _ACTIVE.set({**_active(), **{id(convolution): gradients for convolution, _ in pairs}})
    try:
        yield
    finally:
        _ACTIVE.reset(token)
        with _LOCK:
            for convolution, pool in pairs:
                _INSTALLED[id(convolution)] -= 1
                if not _INSTALLED[id(convolution)]:
                    del _INSTALLED[id(convolution)]
                    object.__delattr__(convolution, "call")
                    object.__delattr__(pool, "call")


def with_fused_convolution_pools(model, function, *, gradients: bool = True):
    """`function`, tracing inside `fused_convolution_pools(model, gradients=gradients)`.

    The scope is entered in each call, so it holds in whichever thread traces
    (each replica's, under `tf.distribute`).
    """

    def call(*args, **kwargs):
        with fused_convolution_pools(model, gradients=gradients):
            return function(*args, **kwargs)

    return call
