"""Augmentation: elastic distortions (Simard et al. 2003) beside the affine layers; photo-like changes; non-digits."""

from __future__ import annotations

import numpy as np
import pytest

from digit_recognizer.config import ExperimentConfig
from digit_recognizer.modeling.augment import (
    MIN_FRAGMENT_COLUMNS,
    bilinear_sample,
    build_augmenter,
    elastic_distortion_layer,
    gaussian_kernel,
    non_digits,
    photo_augment_layer,
    with_non_digits,
)


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


# ---------------------------------------------------------------- photo-like changes


def _thick_digits(count: int = 8) -> np.ndarray:
    """Strokes two pixels wide (a 3x3 erosion would not erase them), with anti-aliased grey edges."""
    images = np.zeros((count, 28, 28, 1), np.float32)
    for index in range(count):
        images[index, 6:22, 12 + index % 3 : 14 + index % 3, 0] = 1.0
        images[index, 6:8, 8:20, 0] = 1.0
        images[index, 6:22, 14 + index % 3, 0] = np.maximum(images[index, 6:22, 14 + index % 3, 0], 0.4)
    return images


def test_photo_augment_keeps_shape_and_range_and_changes_every_chosen_image():
    images = _thick_digits(64)
    changed = np.asarray(photo_augment_layer(probability=1.0, seed=2)(images, training=True))
    assert changed.shape == images.shape and changed.dtype == np.float32 and np.isfinite(changed).all()
    assert changed.min() >= 0 and changed.max() <= 1
    differs = np.abs(changed - images).reshape(64, -1).sum(axis=1) > 1e-3
    # an image left alone is one whose three changes all drew "none" (stroke kept, no binarising, no bar)
    assert differs.mean() > 0.6


def test_photo_augment_makes_strokes_thicker_and_thinner_but_never_erases_a_digit():
    images = _thick_digits(200)
    changed = np.asarray(photo_augment_layer(probability=1.0, seed=4)(images, training=True))
    ink_before = (images > 0.5).sum(axis=(1, 2, 3))
    ink_after = (changed > 0.5).sum(axis=(1, 2, 3))
    ratio = ink_after / ink_before
    assert (ratio > 1.5).mean() > 0.15  # dilated
    assert (ratio < 0.9).mean() > 0.1  # eroded
    assert ink_after.min() > 0.3 * ink_before.min()  # a digit's strokes survive


def test_photo_augment_erosion_is_skipped_where_it_would_erase_thin_strokes():
    images = _digits(200)  # one-pixel strokes: a 2x2 minimum leaves nothing
    changed = np.asarray(photo_augment_layer(probability=1.0, seed=6)(images, training=True))
    assert (changed > 0.5).sum(axis=(1, 2, 3)).min() >= 0.5 * (images > 0.5).sum(axis=(1, 2, 3)).min()


def test_photo_augment_applies_to_about_the_given_share_and_is_off_at_inference():
    images = _thick_digits(300)
    changed = np.asarray(photo_augment_layer(probability=0.3, seed=8)(images, training=True))
    share = (np.abs(changed - images).reshape(300, -1).sum(axis=1) > 1e-3).mean()
    assert 0.15 < share < 0.35
    for layer, training in ((photo_augment_layer(probability=1.0, seed=1), False), (photo_augment_layer(0.0), True)):
        np.testing.assert_array_equal(np.asarray(layer(images, training=training)), images)


def test_photo_augment_refuses_a_bad_probability():
    with pytest.raises(ValueError, match="probability"):
        photo_augment_layer(probability=1.5)


def test_augmenter_without_photo_option_is_the_plain_pipeline():
    plain = [layer.name for layer in build_augmenter(seed=0).layers]
    assert not any("photo" in name for name in plain)
    assert len(plain) == 3
    photo = [layer.name for layer in build_augmenter(seed=0, photo=0.5).layers]
    assert photo[: len(plain)] == plain or len(photo) == len(plain) + 2
    assert "photo_augment" in photo and "photo_stretch" in photo


@pytest.mark.parametrize(
    "values, message",
    [
        (dict(photo_augment=1.5), "--photo-augment must be between 0 and 1"),
        (dict(photo_augment=0.5, augment=False), "it needs augmentation on"),
        (dict(photo_augment=float("inf")), "--photo-augment must be a finite number"),
        (dict(photo_negatives=1.0), "--photo-negatives must be at least 0 and below 1"),
        (dict(photo_negatives=-0.1), "--photo-negatives must be at least 0 and below 1"),
    ],
)
def test_bad_photo_values_are_refused(values, message):
    with pytest.raises(ValueError, match=message):
        ExperimentConfig(name="x", **values)


def test_photo_options_are_off_by_default_and_on_the_command_line():
    config = ExperimentConfig(name="x")
    assert config.photo_augment == 0 and config.photo_negatives == 0
    assert {"photo_augment", "photo_negatives"} <= {item.name for item in ExperimentConfig.options()}
    # a config saved before the options existed reads as off
    saved = config.to_dict()
    del saved["photo_augment"], saved["photo_negatives"]
    assert ExperimentConfig.from_dict(saved) == config


# ---------------------------------------------------------------- synthetic non-digits


def _blobs(count: int = 30) -> np.ndarray:
    """Wide digit-like shapes: a ring 16 columns wide (a 0), most of the 20x20 box."""
    images = np.zeros((count, 28, 28, 1), np.float32)
    images[:, 4:24, 6:22, 0] = 1.0
    images[:, 7:21, 9:19, 0] = 0.0
    return images


def test_non_digits_are_in_range_and_of_every_kind():
    images = _blobs(90)
    negatives, usable = non_digits(images, seed=1)
    negatives, usable = np.asarray(negatives), np.asarray(usable)
    assert negatives.shape == images.shape and usable.shape == (90,) and usable.dtype == bool
    assert negatives.min() >= 0 and negatives.max() <= 1 and usable.mean() > 0.6
    ink = negatives[..., 0] > 0.5
    heights = np.array([np.ptp(np.flatnonzero(m.any(axis=1))) + 1 if m.any() else 0 for m in ink])
    widths = np.array([np.ptp(np.flatnonzero(m.any(axis=0))) + 1 if m.any() else 0 for m in ink])
    # pairs: two rings side by side, scaled to the field's width: wider than tall
    assert (widths > 1.3 * heights).sum() >= 10
    # fragments keep the digit's full height and are at most half of it (a part mostly the digit would be a digit)
    fragments = (heights >= 19) & (widths < 11)  # (a box's lines are at least 11 wide)
    assert fragments.sum() >= 5 and widths[fragments].max() <= 8
    assert not usable[fragments & (widths < MIN_FRAGMENT_COLUMNS)].any() and usable[~fragments].all()
    # ...and are centred again
    centres = [np.flatnonzero(m.any(axis=0)).mean() for m in ink[fragments]]
    assert np.abs(np.array(centres) - 13.5).max() <= 1.0
    assert heights.max() <= 21 and widths.max() <= 28
    assert not np.array_equal(negatives, images)


def test_narrow_fragments_that_may_be_a_one_are_not_used():
    images = np.zeros((64, 28, 28, 1), np.float32)
    images[:, 4:24, 13:15, 0] = 1.0  # a 1: any part of it is a stroke two pixels wide
    negatives, usable = non_digits(images, seed=2)
    negatives, usable = np.asarray(negatives), np.asarray(usable)
    columns = (negatives.max(axis=1)[..., 0] > 0.3).sum(axis=1)
    rows = (negatives.max(axis=2)[..., 0] > 0.3).sum(axis=1)
    # fragments keep the digit's 20 rows (a pair "11" is scaled to the field's width, so shorter; lines are wider)
    fragments = (rows >= 19) & (columns < MIN_FRAGMENT_COLUMNS)
    assert fragments.any() and not usable[fragments].any()
    assert usable.sum() >= 20  # the pairs and the lines are kept


def test_with_non_digits_replaces_about_the_share_with_uniform_targets():
    images = _blobs(400)
    targets = np.eye(10, dtype=np.float32)[np.arange(400) % 10]
    mixed, mixed_targets = (np.asarray(item) for item in with_non_digits(images, targets, 0.25, seed=3))
    replaced = mixed_targets.max(axis=1) < 0.5
    assert 0.15 < replaced.mean() < 0.35
    np.testing.assert_allclose(mixed_targets[replaced], 0.1)
    np.testing.assert_array_equal(mixed_targets[~replaced], targets[~replaced])
    np.testing.assert_array_equal(mixed[~replaced], images[~replaced])
    assert not np.array_equal(mixed[replaced], images[replaced])
    same, same_targets = with_non_digits(images, targets, 0.0)
    assert same is images and same_targets is targets
