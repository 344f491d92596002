"""``photos.pipeline.read_array``: one image array in, a :class:`Reading` out (a fake model: no TensorFlow)."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from digit_recognizer.photos.pipeline import Reading, read_array
from test_images import photo_of


class InkCountModel:
    """A stand-in for a Keras model: 'reads' every crop as the digit (ink pixels // 40) % 10, sure of it."""

    output_shape = (None, 10)

    def __init__(self, confidence: float = 0.97):
        self.confidence = confidence

    def __call__(self, images, training=False):
        images = np.asarray(images)
        labels = ((images > 0.5).reshape(len(images), -1).sum(axis=1) // 40) % 10
        probabilities = np.full((len(images), 10), (1 - self.confidence) / 9, np.float32)
        probabilities[np.arange(len(images)), labels] = self.confidence
        return probabilities


@pytest.mark.parametrize("colour", [False, True])
@pytest.mark.parametrize("text", ["7", "2026"])
def test_read_array_reads_gray_and_rgb_with_one_box_and_crop_per_digit(text, colour):
    gray = photo_of(text, height=160, thickness=12, shape=(360, 900))
    image = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB) if colour else gray
    reading = read_array(image, [InkCountModel()])
    assert isinstance(reading, Reading)
    assert len(reading.number) == len(text) and reading.message == ""
    assert reading.crops.shape == (len(text), 28, 28) and reading.crops.dtype == np.uint8
    assert reading.probabilities.shape == (len(text), 10)
    assert len(reading.boxes) == len(text)
    for x, y, width, height in reading.boxes:
        assert 0 <= x and 0 <= y and x + width <= gray.shape[1] and y + height <= gray.shape[0]
    assert 0 < reading.confidence <= 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        reading.number = "1"


def test_read_array_marks_doubtful_digits_and_explains_an_empty_image():
    doubtful = read_array(photo_of("4"), [InkCountModel(confidence=0.3)], min_confidence=0.5)
    assert doubtful.number == "?"
    blank = read_array(np.full((200, 300), 230, np.uint8), [InkCountModel()])
    assert blank.number == "" and blank.confidence is None and blank.message
    assert blank.crops.shape == (0, 28, 28) and blank.probabilities.shape == (0, 10)


@pytest.mark.parametrize(
    "image, models, min_confidence",
    [
        (np.zeros((10, 10), np.float32), [InkCountModel()], 0.5),  # not uint8
        (np.zeros((10, 10, 2), np.uint8), [InkCountModel()], 0.5),  # not gray or RGB
        (np.zeros((0, 10), np.uint8), [InkCountModel()], 0.5),  # empty
        (np.zeros((10, 10), np.uint8), [], 0.5),  # no models
        (np.zeros((10, 10), np.uint8), [InkCountModel()], 1.5),  # bad threshold
    ],
)
def test_read_array_rejects_bad_arguments(image, models, min_confidence):
    with pytest.raises(ValueError):
        read_array(image, models, min_confidence)
