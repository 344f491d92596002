"""On-the-fly augmentation for training: Keras preprocessing layers run inside the ``tf.data`` pipeline.

- the affine part: ``RandomRotation``, ``RandomZoom``, ``RandomTranslation`` (zero fill, never flips);
- elastic distortions (Simard, Steinkraus and Platt, 2003): a random displacement field, uniform in [-1, 1] per
  pixel, smoothed by a Gaussian of ``sigma`` pixels and scaled by ``alpha`` pixels, applied with bilinear
  interpolation to a random share (``probability``) of the images.

Keras ships ``RandomElasticTransform``, but it ties the field's smoothness to its strength (sigma = 0.05 x side
at most, 1.4 px on 28x28), which turns the field into per-pixel speckle at moderate strengths; MNIST wants
Simard's smooth field (sigma 4-6 px), so :class:`ElasticDistortion` is a small layer of its own built on Keras ops
(``keras.ops.depthwise_conv`` for the smoothing, ``keras.ops.image.map_coordinates`` for the warp).

- photo-like changes (:func:`photo_augment_layer`, opt-in): what reading a photo does to a digit before the model sees
  it. The photo pipeline (``photos/segment.py``) thresholds the photo to a binary ink mask, brings the stroke width
  towards MNIST's, scales the longer side to 20 px and centres the digit by mass; so its digits differ from
  MNIST's in stroke width (the normalisation is coarse), in their edges (a binary shape resampled, not a
  scanned pen stroke), in their width for their height (a digit cut from touching ones loses a little), and in
  leftovers (a piece of a form box's line beside the digit). Grey-level noise, contrast and gamma are not
  modelled: the model never sees the photo's grey levels, only the resampled mask.

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


PHOTO_STRETCH = 0.2  # photo augmentation: the width changes by up to this fraction, the height staying
PHOTO_BAR = 0.3  # ...and this share of the changed images get a bar (a box line's leftover) along one edge


def photo_augment_layer(probability: float = 0.5, seed: int | None = None):
    """A :class:`PhotoAugment` Keras layer: for a random share (``probability``) of the images, one of

    - thicker strokes (grey-level dilation, a 3x3 maximum) or thinner ones (erosion, a 2x2 minimum, only where
      strokes survive it), or the stroke width kept;
    - then, for half of them, the edges of a binary shape: thresholded at a random level in [0.2, 0.6] and
      smoothed with a 3x3 Gaussian (sigma 0.6), as the photo pipeline's area resampling of a mask leaves them;
    - and, for :data:`PHOTO_BAR` of them, a one- or two-pixel bar of random length along one edge of the 28x28 field.

    Values stay in [0, 1]; shapes are kept; off at inference (``training=False``) and at ``probability`` 0.
    """
    import keras
    from keras import ops

    if not 0 <= probability <= 1:
        raise ValueError(f"need a probability in [0, 1], got {probability}")
    smoothing = gaussian_kernel(0.6)[:, :, None, None]  # 5x5 (radius ceil(1.8) = 2)

    class PhotoAugment(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.seed_generator = keras.random.SeedGenerator(seed)

        def _uniform(self, shape):
            return keras.random.uniform(shape, seed=self.seed_generator)

        def call(self, images, training=True):
            if not training or probability == 0:
                return images
            shape = ops.shape(images)
            batch, height, width = shape[0], shape[1], shape[2]
            one = (batch, 1, 1, 1)
            chosen = ops.cast(self._uniform(one) < probability, images.dtype)

            thick = ops.max_pool(images, pool_size=3, strides=1, padding="same")
            thin = -ops.max_pool(-images, pool_size=2, strides=1, padding="same")
            survives = ops.cast(
                ops.sum(thin, axis=(1, 2, 3), keepdims=True) > 0.5 * ops.sum(images, axis=(1, 2, 3), keepdims=True),
                images.dtype,
            )
            stroke = self._uniform(one)
            result = ops.where(
                stroke < 1 / 3, thick, ops.where(stroke < 2 / 3, survives * thin + (1 - survives) * images, images)
            )

            level = 0.2 + 0.4 * self._uniform(one)
            binary = ops.cast(result > level, images.dtype)
            edged = ops.depthwise_conv(binary, ops.convert_to_tensor(smoothing), strides=1, padding="same")
            result = ops.where(self._uniform(one) < 0.5, edged, result)

            rows = ops.cast(ops.arange(height), "float32")[None, :, None, None]
            columns = ops.cast(ops.arange(width), "float32")[None, None, :, None]
            side = self._uniform(one)  # which edge: top, bottom, left, right
            along = ops.where(side < 0.5, columns, rows)
            across = ops.where(side < 0.5, rows, columns)
            extent = ops.cast(ops.where(side < 0.5, height, width), "float32")
            thickness = ops.where(self._uniform(one) < 0.5, 1.0, 2.0)
            offset = ops.floor(3 * self._uniform(one))  # 0-2 pixels in from the edge
            near = ops.where(ops.mod(ops.floor(4 * side), 2.0) < 1, offset, extent - offset - thickness)
            start = ops.floor(extent * 0.5 * self._uniform(one))
            length = extent * (0.3 + 0.7 * self._uniform(one))
            bar = (across >= near) & (across < near + thickness) & (along >= start) & (along < start + length)
            with_bar = ops.cast(bar, images.dtype) * ops.cast(self._uniform(one) < PHOTO_BAR, images.dtype)
            result = ops.maximum(result, with_bar)
            return chosen * ops.clip(result, 0.0, 1.0) + (1 - chosen) * images

        def compute_output_shape(self, input_shape):
            return input_shape

    return PhotoAugment(name="photo_augment")


def build_augmenter(
    seed: int = 0,
    rotation_degrees: float = 10.0,
    zoom: float = 0.1,
    shift: float = 0.1,
    elastic: float = 0.0,
    photo: float = 0.0,
):
    """The augmentation layers (constant zero fill, no flips); ``elastic`` is the share of images that are also
    elastically distorted first (0 = off); ``photo`` the share also given photo-like changes
    (:func:`photo_augment_layer`) after the affine part, which then also stretches the width alone by up to
    :data:`PHOTO_STRETCH` (0 = off: the pipeline is unchanged)."""
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
    if photo:
        stages += [
            layers.RandomZoom(
                (0.0, 0.0), PHOTO_STRETCH, fill_mode="constant", fill_value=0.0, seed=seed + 4, name="photo_stretch"
            ),
            photo_augment_layer(probability=photo, seed=seed + 5),
        ]
    return keras.Sequential(stages, name="augmentation")


NON_DIGIT_KINDS = ("pair", "fragment", "lines")
MIN_FRAGMENT_COLUMNS = 7  # a fragment narrower than this (in its 28 columns) may be a fair 1: it is not used


def non_digits(images, seed: int = 0):
    """Synthetic non-digits made from a batch of digits ``(n, 28, 28, 1)`` in [0, 1], one per image, as the photo
    pipeline's touching-digit scorer meets them among its candidate pieces (``photos/segment.py``), brought to 28x28
    the way ``mnist_crop`` does (longer side about 20 px, centred), and whether each is usable:

    - ``pair``: the digit beside the next one in the batch, overlapping by 0-6 columns (two touching digits read as
      one), scaled to 28 columns wide;
    - ``fragment``: the left or the right 30-50% of a digit's own ink width, at the digit's height (the longer side,
      as ``mnist_crop`` scales a cut piece), centred; unusable when under :data:`MIN_FRAGMENT_COLUMNS` columns of
      ink (a stroke that may be a fair 1) or cut from a digit under twice that wide (a part would be most of it);
    - ``lines``: a form box's leftovers: a horizontal bar with a vertical bar at one or both ends (an L, a U),
      1-3 px thick (never a top bar with its right end alone: that is a 7).

    Returns ``(images, usable)``: float32 ``(n, 28, 28, 1)`` in [0, 1] and a bool ``(n,)``. TensorFlow ops, for a
    ``tf.data`` map.
    """
    import tensorflow as tf

    images = tf.convert_to_tensor(images, tf.float32)
    count = tf.shape(images)[0]
    size = 28

    def uniform(shape, low=0.0, high=1.0, salt=0):
        return tf.random.uniform(shape, low, high, seed=seed + salt)

    # pairs: every image beside the next one, the overlap drawn once per batch
    overlap = tf.random.uniform((), 0, 7, tf.int32, seed=seed + 1)
    neighbour = tf.roll(images, 1, axis=0)
    left, right = images[:, :, 4:24], neighbour[:, :, 4:24]
    joined = tf.concat(
        [
            left[:, :, : 20 - overlap],
            tf.maximum(left[:, :, 20 - overlap :], right[:, :, :overlap]),
            right[:, :, overlap:],
        ],
        axis=2,
    )  # (n, 28, 40 - overlap)
    height = tf.cast(tf.round(28.0 * 28.0 / tf.cast(40 - overlap, tf.float32)), tf.int32)
    pair = tf.image.resize(joined, tf.stack([height, size]), antialias=True)
    pair = tf.image.resize_with_crop_or_pad(pair, size, size)

    # fragments: the left or the right 30-50% of a digit's own ink width, centred again (a digit cut in two)
    index = tf.range(size, dtype=tf.int32)[None, :]
    inked = tf.reduce_max(images[..., 0], axis=1) > 0.3  # (n, 28) columns holding ink
    first = tf.argmax(tf.cast(inked, tf.int32), axis=1, output_type=tf.int32)[:, None]
    last = size - 1 - tf.argmax(tf.cast(inked[:, ::-1], tf.int32), axis=1, output_type=tf.int32)[:, None]
    digit_width = tf.cast(last - first + 1, tf.float32)
    kept = tf.cast(tf.round(digit_width * uniform(tf.shape(digit_width), 0.3, 0.5, salt=2)), tf.int32)
    from_left = uniform(tf.shape(digit_width), salt=3) < 0.5
    keep = tf.where(from_left, index < first + kept, index > last - kept)
    fragment = images * tf.cast(keep, tf.float32)[:, None, :, None]
    shift = tf.cast(
        tf.round(
            (size - 1) / 2
            - tf.cast(tf.where(from_left, first, last - kept + 1), tf.float32)
            - (tf.cast(kept, tf.float32) - 1) / 2
        ),
        tf.int32,
    )
    fragment = tf.gather(fragment, tf.math.floormod(index - shift, size), axis=2, batch_dims=1)
    columns = tf.reduce_sum(tf.cast(tf.reduce_max(fragment[..., 0], axis=1) > 0.3, tf.int32), axis=1)
    fragment_usable = (columns >= MIN_FRAGMENT_COLUMNS) & (digit_width[:, 0] >= 2 * MIN_FRAGMENT_COLUMNS)

    # lines: a bar along the top or the bottom of a 20x20 box with vertical bars at its ends (an L or a U)
    rows = tf.range(size, dtype=tf.float32)[None, :, None, None]
    cols = tf.range(size, dtype=tf.float32)[None, None, :, None]
    one = tf.stack([count, 1, 1, 1])
    thick = tf.floor(uniform(one, 1.0, 4.0, salt=4))
    top = uniform(one, salt=5) < 0.5
    bar_row = tf.where(top, 4.0, 24.0 - thick)
    first, last = 4.0 + tf.floor(uniform(one, 0, 6, salt=6)), 24.0 - tf.floor(uniform(one, 0, 6, salt=7))
    horizontal = (rows >= bar_row) & (rows < bar_row + thick) & (cols >= first) & (cols < last)
    reach = tf.floor(uniform(one, 8, 20, salt=8))
    span_rows = tf.where(top, (rows >= 4.0) & (rows < 4.0 + reach), (rows >= 24.0 - reach) & (rows < 24.0))
    ends = uniform(one, salt=9)  # < 1/3: left end only, < 2/3: right end only, else both (a U)
    at_left = (cols >= first) & (cols < first + thick) & ((ends < 1 / 3) | (ends >= 2 / 3) | top)
    # a bar along the top with its right end alone would be a fair 7: those get both ends
    at_right = (cols >= last - thick) & (cols < last) & (ends >= 1 / 3)
    lines = tf.cast(horizontal | (span_rows & (at_left | at_right)), tf.float32)

    kind = tf.random.uniform((count,), 0, len(NON_DIGIT_KINDS), tf.int32, seed=seed + 10)
    pick = tf.reshape(kind, (-1, 1, 1, 1))
    result = tf.where(pick == 0, pair, tf.where(pick == 1, fragment, lines))
    usable = tf.where(kind == 1, fragment_usable, tf.ones_like(fragment_usable))
    return tf.clip_by_value(result, 0.0, 1.0), usable


def with_non_digits(images, targets, share: float, seed: int = 0):
    """A batch with a random ``share`` of its images replaced by :func:`non_digits`, their targets uniform over the
    classes (no class at all: the model learns to be unsure of them, "outlier exposure", Hendrycks et al. 2019). The
    classes stay 10, so a model trained so is used like any other."""
    import tensorflow as tf

    if not 0 <= share <= 1:
        raise ValueError(f"need a share in [0, 1], got {share}")
    if not share:
        return images, targets
    negatives, usable = non_digits(images, seed)
    replace = (tf.random.uniform(tf.shape(usable), seed=seed + 11) < share) & usable
    classes = tf.cast(tf.shape(targets)[1], targets.dtype)
    uniform = tf.ones_like(targets) / classes
    return (
        tf.where(tf.reshape(replace, (-1, 1, 1, 1)), negatives, images),
        tf.where(tf.reshape(replace, (-1, 1)), uniform, targets),
    )
