"""The model registry: architecture name -> functional builder ``build(input_shape, num_classes)``.

Models take float32 images in [0, 1] of shape (28, 28, 1) and output softmax
probabilities over the 10 digits. Augmentation is *not* part of these graphs: it
runs in the tf.data input pipeline, so the saved model is the inference model.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers


def build_seed_model(input_shape, num_classes):
    """The seeds' small CNN, exactly: the baseline every preset is compared to."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(32, kernel_size=(3, 3), activation="relu")(inputs)
    x = layers.MaxPooling2D(pool_size=(2, 2))(x)
    x = layers.Conv2D(64, kernel_size=(3, 3), activation="relu")(x)
    x = layers.MaxPooling2D(pool_size=(2, 2))(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="seed")


def _conv_relu(x, filters, kernel_size, padding="same"):
    """A plain convolution for a full-resolution map. Batch norm there cost about a quarter of the training CPU time
    with Keras' own layer, which copies a bfloat16 map to float32 and back (measured before
    :class:`FusedBatchNormalization`)."""
    return layers.Conv2D(filters, kernel_size, padding=padding, activation="relu")(x)


@keras.saving.register_keras_serializable(package="digit_recognizer")
class FusedBatchNormalization(layers.Layer):
    """Batch normalisation over the channels of an image map, as one fused TensorFlow op (``FusedBatchNormV3``, what
    tf.keras 2 used) that reads a bfloat16 or float16 map as it is and keeps float32 statistics.

    The same arithmetic as ``keras.layers.BatchNormalization`` (batch statistics in training, moving averages
    otherwise, also when the layer is frozen; the same four weights in the same order), without its upcast of the
    whole map to float32 and back: under mixed bfloat16 on a 2-core CPU, ``deotte`` trains 1.9x faster per image
    (2,023 against 1,043 images/s, docs/benchmarks.md)."""

    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if not epsilon > 0:
            raise ValueError(f"epsilon must be positive, got {epsilon}")
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"FusedBatchNormalization normalises image maps (batch, height, width, channels), got {input_shape}"
            )
        shape = (input_shape[-1],)
        weight = dict(shape=shape, autocast=False)
        self.gamma = self.add_weight(name="gamma", initializer="ones", **weight)
        self.beta = self.add_weight(name="beta", initializer="zeros", **weight)
        self.moving_mean = self.add_weight(name="moving_mean", initializer="zeros", trainable=False, **weight)
        self.moving_variance = self.add_weight(name="moving_variance", initializer="ones", trainable=False, **weight)

    def call(self, inputs, training=None):
        import tensorflow as tf

        scale, offset = tf.cast(self.gamma, tf.float32), tf.cast(self.beta, tf.float32)
        if training and self.trainable:
            outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, scale, offset, epsilon=self.epsilon, is_training=True
            )
            # the op's variance has Bessel's correction; Keras' moving variance is the plain batch variance
            count = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], tf.float32)
            variance = variance * (count - 1.0) / tf.maximum(count, 2.0)
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
            return outputs
        outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
            inputs,
            scale,
            offset,
            mean=tf.cast(self.moving_mean, tf.float32),
            variance=tf.cast(self.moving_variance, tf.float32),
            epsilon=self.epsilon,
            is_training=False,
        )
        return outputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}


def _conv_bn(x, filters, kernel_size, strides=1, padding="same"):
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False)(x)
    x = FusedBatchNormalization(momentum=0.9)(x)  # moving statistics settle within ~50 steps, also on small data
    return layers.Activation("relu")(x)


def build_compact_model(input_shape, num_classes, dropout: bool = True):
    """A small batch-normalised conv net (no batch norm at full resolution) that downsamples early with strided
    convolutions: about 9 M multiply-adds an image, so it trains quickly on a CPU. ``dropout=False`` leaves out
    its three dropout layers (:func:`build_compact_nodrop_model`)."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = _conv_relu(inputs, 32, 3)  # 28x28
    x = _conv_bn(x, 32, 3, strides=2)  # 14x14
    if dropout:
        x = layers.Dropout(0.2)(x)
    x = _conv_bn(x, 64, 3)
    x = _conv_bn(x, 64, 3, strides=2)  # 7x7
    if dropout:
        x = layers.Dropout(0.2)(x)
    x = _conv_bn(x, 128, 3, padding="valid")  # 5x5
    x = layers.Flatten()(x)
    if dropout:
        x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="compact" if dropout else "compact_nodrop")


def build_compact_nodrop_model(input_shape, num_classes):
    """``compact`` without dropout (the same layers and weight shapes otherwise), for short runs. Eight epochs of
    augmented data do not overfit it (training accuracy stays under validation accuracy), and dropout only slowed
    its learning: 5-fold out-of-fold 99.53% (199 errors) against 99.44% (236) with dropout, McNemar p = 0.002
    (docs/benchmarks.md)."""
    return build_compact_model(input_shape, num_classes, dropout=False)


def build_deotte_model(input_shape, num_classes, dropout: bool = True):
    """Deotte's "How to choose CNN architecture" best net: 32C3-32C3-32C5S2-64C3-64C3-64C5S2-128C4,
    batch norm after every conv, 40% dropout after each block. ``dropout=False`` leaves out its three dropout
    layers (:func:`build_deotte_nodrop_model`)."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = _conv_bn(inputs, 32, 3, padding="valid")  # 26x26
    x = _conv_bn(x, 32, 3, padding="valid")  # 24x24: batch norm kept here, 99.45% without it against 99.57-99.60%
    x = _conv_bn(x, 32, 5, strides=2)
    if dropout:
        x = layers.Dropout(0.4)(x)
    x = _conv_bn(x, 64, 3, padding="valid")
    x = _conv_bn(x, 64, 3, padding="valid")
    x = _conv_bn(x, 64, 5, strides=2)
    if dropout:
        x = layers.Dropout(0.4)(x)
    x = _conv_bn(x, 128, 4, padding="valid")
    x = layers.Flatten()(x)
    if dropout:
        x = layers.Dropout(0.4)(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="deotte" if dropout else "deotte_nodrop")


def build_deotte_nodrop_model(input_shape, num_classes):
    """``deotte`` without dropout (the same layers and weight shapes otherwise): the architecture of ``fast``,
    ``strong`` and ``best``. In one benchmark run (docs/benchmarks.md, 2026-11-24 late), 24 epochs of it made 155 and
    160 5-fold out-of-fold errors (two seed sets) against 187 for ``deotte``, McNemar p = 0.002 and 0.012; an
    earlier run had found the two alike (160 against 159), so runs drift and only row-by-row tests within one run
    count."""
    return build_deotte_model(input_shape, num_classes, dropout=False)


MODEL_BUILDERS: dict[str, Callable] = {
    "seed": build_seed_model,
    "compact": build_compact_model,
    "compact-nodrop": build_compact_nodrop_model,
    "deotte": build_deotte_model,
    "deotte-nodrop": build_deotte_nodrop_model,
}


def build_model(architecture: str, input_shape, num_classes):
    """Build a registered architecture by name."""
    if architecture not in MODEL_BUILDERS:
        raise ValueError(f"unknown architecture '{architecture}', choose from {', '.join(MODEL_BUILDERS)}")
    return MODEL_BUILDERS[architecture](tuple(input_shape), num_classes)


def count_flops(model) -> int:
    """Multiply-accumulates x 2 of one forward pass for conv and dense layers (an estimate)."""
    flops = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            kernel_h, kernel_w = layer.kernel_size
            in_channels = layer.input.shape[-1]
            out_h, out_w, out_channels = layer.output.shape[1:]
            flops += 2 * out_h * out_w * out_channels * kernel_h * kernel_w * in_channels
        elif isinstance(layer, layers.Dense):
            flops += 2 * layer.input.shape[-1] * layer.units
    return int(flops)
