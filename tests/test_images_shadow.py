"""Issue 14, third round, on small synthetic photos: hard shadows on pencil, tiny numbers, digits touching form boxes."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from digit_recognizer.photos.preprocess import DARK_ON_LIGHT, detect_polarity, to_gray

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def render():
    """The benchmark's renderer (scripts/make_custom_images.py), whose functions are importable for stress tests."""
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    try:
        import make_custom_images
    finally:
        sys.path.remove(str(REPO_ROOT / "scripts"))
    return make_custom_images


@pytest.fixture(scope="module")
def printed_pool(render):
    """A pool of 28x28 printed digits (two weights each) standing in for MNIST's."""
    images, labels = [], []
    for digit in range(10):
        for weight in (2, 3):
            image = np.zeros((28, 28), np.uint8)
            cv2.putText(image, str(digit), (6, 23), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 255, weight, cv2.LINE_AA)
            images.append(image)
            labels.append(digit)
    return render.DigitPool(np.array(images), np.array(labels))


def rgb(photo) -> np.ndarray:
    return cv2.cvtColor(photo.image, cv2.COLOR_BGR2RGB)


# ---------------------------------------------------------------- polarity under a hard shadow
def test_a_pencil_digit_under_a_hard_shadow_is_dark_ink_whatever_the_shadow_covers(render, printed_pool):
    # The shadow often covers most of the page: the lit part then looks like light ink to median backgrounds.
    wrong = []
    for seed in range(30):
        photo = render.render_pencil_shadow(np.random.default_rng(seed), printed_pool)
        if detect_polarity(to_gray(rgb(photo))) != DARK_ON_LIGHT:
            wrong.append(seed)
    assert wrong == []
