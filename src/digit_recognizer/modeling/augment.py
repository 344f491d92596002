"""On-the-fly augmentation for training: Keras preprocessing layers run inside the ``tf.data`` pipeline.

- the affine part: ``RandomRotation``, ``RandomZoom``, ``RandomTranslation`` (zero fill, never flips);
- elastic distortions (Simard, Steinkraus and Platt, 2003): a random displacement field, uniform in [-1, 1] per
  pixel, smoothed by a Gaussian of ``sigma`` pixels and scaled by ``alpha`` pixels, applied with bilinear
  interpolation to a random share (``probability``) of the images.

Keras ships ``RandomElasticTransform``, but it ties the field's smoothness to its strength (sigma = 0.05 x side
at most, 1.4 px on 28x28), which turns the field into per-pixel speckle at moderate strengths; MNIST wants
Simard's smooth field (sigma 4-6 px), so :class:`ElasticDistortion` is a small layer of its own built on Keras ops
(``keras.ops.depthwise_conv`` for the smoothing, ``keras.ops.image.map_coordinates`` for the warp).

None of this is part of the saved model: the model file is the plain classifier.
"""

from __future__ import annotations

import math

import numpy as np


def gaussian_kernel(sigma: float) -> np.ndarray:
    """A normalised 2-D Gaussian, ``(size, size)`` with size = 2 * ceil(3 sigma) + 1."""
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    radius = math.ceil(3 * sigma)
    axis = np.arange(-radius, radius + 1, dtype=np.float64)
    one = np.exp(-(axis**2) / (2 * sigma**2))
    kernel = np.outer(one, one)
    return (kernel / kernel.sum()).astype(np.float32)


def elastic_distortion_layer(
    alpha: float = 34.0, sigma: float = 4.0, probability: float = 0.5, seed: int | None = None
):
    """An :class:`ElasticDistortion` Keras layer (built here so that importing this module needs no Keras)."""
    import keras
    from keras import ops

    if alpha < 0 or not 0 <= probability <= 1:
        raise ValueError(f"need alpha >= 0 and probability in [0, 1], got alpha={alpha}, probability={probability}")
    kernel = gaussian_kernel(sigma)

    class ElasticDistortion(keras.layers.Layer):
        """Simard's elastic distortion of a batch of ``(n, height, width, channels)`` images (training only)."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.seed_generator = keras.random.SeedGenerator(seed)
            self.supports_masking = False

        def call(self, images, training=True):
            if not training or alpha == 0 or probability == 0:
                return images
            shape = ops.shape(images)
            batch, height, width = shape[0], shape[1], shape[2]
            noise = keras.random.uniform((batch, height, width, 2), -1.0, 1.0, seed=self.seed_generator)
            smoothing = ops.convert_to_tensor(np.repeat(kernel[:, :, None, None], 2, axis=2))
            field = ops.depthwise_conv(noise, smoothing, strides=1, padding="same") * alpha
            applied = ops.cast(
                keras.random.uniform((batch, 1, 1, 1), seed=self.seed_generator) < probability, field.dtype
            )
            field = field * applied
            rows = ops.cast(ops.arange(height), "float32")[None, :, None] + field[..., 0]
            columns = ops.cast(ops.arange(width), "float32")[None, None, :] + field[..., 1]
            return bilinear_sample(images, rows, columns)

        def compute_output_shape(self, input_shape):
            return input_shape

    return ElasticDistortion(name="elastic_distortion")


def bilinear_sample(images, rows, columns):
    """``images`` (n, h, w, c) sampled at fractional ``rows``/``columns`` (n, h, w) with bilinear interpolation and
    zero outside. (``keras.ops.image.map_coordinates`` needs a static batch size, which a ``tf.data`` batch has not.)"""
    from keras import ops

    shape = ops.shape(images)
    height, width, channels = shape[1], shape[2], shape[3]
    flat = ops.reshape(images, (shape[0], height * width, channels))
    top, left = ops.floor(rows), ops.floor(columns)
    result = 0.0
    for row_offset in (0.0, 1.0):
        for column_offset in (0.0, 1.0):
            row, column = top + row_offset, left + column_offset
            weight = (1.0 - ops.abs(rows - row)) * (1.0 - ops.abs(columns - column))
            inside = (
                (row >= 0)
                & (row <= ops.cast(height - 1, "float32"))
                & (column >= 0)
                & (column <= ops.cast(width - 1, "float32"))
            )
            index = ops.cast(
                ops.clip(row, 0, ops.cast(height - 1, "float32")) * ops.cast(width, "float32")
                + ops.clip(column, 0, ops.cast(width - 1, "float32")),
                "int32",
            )
            values = ops.take_along_axis(flat, ops.reshape(index, (shape[0], -1, 1)), axis=1)
            values = ops.reshape(values, (shape[0], height, width, channels))
            result = result + values * ops.expand_dims(weight * ops.cast(inside, weight.dtype), -1)
    return result


def build_augmenter(
    seed: int = 0, rotation_degrees: float = 10.0, zoom: float = 0.1, shift: float = 0.1, elastic: float = 0.0
):
    """The augmentation layers (constant zero fill, no flips); ``elastic`` is the share of images that are also
    elastically distorted first (0 = off)."""
    import keras
    from keras import layers

    stages = []
    if elastic:
        stages.append(elastic_distortion_layer(probability=elastic, seed=seed + 3))
    stages += [
        layers.RandomRotation(rotation_degrees / 360.0, fill_mode="constant", fill_value=0.0, seed=seed),
        layers.RandomZoom(zoom, fill_mode="constant", fill_value=0.0, seed=seed + 1),
        layers.RandomTranslation(shift, shift, fill_mode="constant", fill_value=0.0, seed=seed + 2),
    ]
    return keras.Sequential(stages, name="augmentation")
