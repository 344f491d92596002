"""Augmentation: elastic distortions (Simard et al. 2003) beside the affine layers."""

from __future__ import annotations

import numpy as np
import pytest

from digit_recognizer.modeling.augment import bilinear_sample, elastic_distortion_layer, gaussian_kernel


def _digits(count: int = 6) -> np.ndarray:
    images = np.zeros((count, 28, 28, 1), np.float32)
    for index in range(count):
        images[index, 6:22, 12 + index % 3, 0] = 1.0  # a vertical stroke
        images[index, 6, 8:20, 0] = 1.0  # and a bar
    return images


@pytest.mark.parametrize("sigma", [1.0, 4.0, 6.5])
def test_gaussian_kernel_is_normalised_and_symmetric(sigma):
    kernel = gaussian_kernel(sigma)
    assert kernel.shape[0] == kernel.shape[1] == 2 * int(np.ceil(3 * sigma)) + 1
    assert kernel.sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(kernel, kernel.T)
    np.testing.assert_allclose(kernel, kernel[::-1, ::-1])
    assert kernel.argmax() == kernel.size // 2


def test_bilinear_sample_at_the_pixel_grid_is_the_identity_and_zero_outside():
    images = np.random.default_rng(0).random((2, 5, 7, 1)).astype(np.float32)
    rows, columns = np.meshgrid(np.arange(5, dtype=np.float32), np.arange(7, dtype=np.float32), indexing="ij")
    rows, columns = np.broadcast_to(rows, (2, 5, 7)), np.broadcast_to(columns, (2, 5, 7))
    np.testing.assert_allclose(np.asarray(bilinear_sample(images, rows, columns)), images, atol=1e-6)
    halfway = np.asarray(bilinear_sample(images, rows, columns + 0.5))
    np.testing.assert_allclose(halfway[:, :, :-1], (images[:, :, :-1] + images[:, :, 1:]) / 2, atol=1e-6)
    assert np.all(np.asarray(bilinear_sample(images, rows + 10, columns)) == 0)


@pytest.mark.parametrize("alpha, probability", [(0.0, 1.0), (34.0, 0.0)])
def test_elastic_distortion_off_leaves_images_alone(alpha, probability):
    images = _digits()
    layer = elastic_distortion_layer(alpha=alpha, probability=probability, seed=1)
    np.testing.assert_array_equal(np.asarray(layer(images, training=True)), images)


def test_elastic_distortion_moves_strokes_smoothly_and_keeps_the_ink():
    images = _digits(32)
    distorted = np.asarray(
        elastic_distortion_layer(alpha=34.0, sigma=4.0, probability=1.0, seed=3)(images, training=True)
    )
    assert distorted.shape == images.shape and np.isfinite(distorted).all()
    assert distorted.min() >= 0 and distorted.max() <= 1 + 1e-6
    changed = np.abs(distorted - images).reshape(32, -1).sum(axis=1) > 1.0
    assert changed.mean() > 0.9  # every image is distorted
    ink_before, ink_after = images.sum(axis=(1, 2, 3)), distorted.sum(axis=(1, 2, 3))
    np.testing.assert_allclose(ink_after, ink_before, rtol=0.35)  # strokes move and stretch a little; they don't vanish
    # a smooth field moves neighbouring pixels together: the distorted strokes stay connected lines, not speckle
    import cv2

    pieces = [cv2.connectedComponents((image[..., 0] > 0.3).astype(np.uint8))[0] - 1 for image in distorted]
    assert np.median(pieces) <= 2


def test_elastic_distortion_applies_to_about_the_given_share():
    images = _digits(200)
    distorted = np.asarray(elastic_distortion_layer(probability=0.5, seed=5)(images, training=True))
    share = (np.abs(distorted - images).reshape(200, -1).sum(axis=1) > 1e-3).mean()
    assert 0.35 < share < 0.65


def test_elastic_distortion_is_off_at_inference():
    images = _digits()
    layer = elastic_distortion_layer(probability=1.0, seed=1)
    np.testing.assert_array_equal(np.asarray(layer(images, training=False)), images)
