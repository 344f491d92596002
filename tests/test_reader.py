"""The string reader (modeling/reader.py): synthetic strings, its input, CTC decoding, and how the photo pipeline
uses its reading of touching digits."""

from __future__ import annotations

import numpy as np
import pytest

from digit_recognizer.modeling import reader
from digit_recognizer.modeling.reader import (
    BLANK,
    HEIGHT,
    MARGIN,
    MAX_DIGITS,
    STRIDE,
    WIDTH,
    StringReading,
    decode,
    reader_input,
    synthetic_strings,
)


def digit_images(count: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stand-in 28x28 'digits': a filled block whose width grows with the label (labels 0-9 in turn)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, 28, 28), np.uint8)
    labels = np.arange(count) % 10
    for index, label in enumerate(labels):
        top = int(rng.integers(3, 6))
        images[index, top : top + 20, 10 : 12 + label] = 255
    return images, labels


@pytest.mark.parametrize("seed", [0, 1])
def test_synthetic_strings_have_ctc_targets_for_the_digits_drawn(seed):
    images, labels = digit_images()
    inputs, targets = synthetic_strings(images, labels, 60, seed)
    assert inputs.shape == (60, HEIGHT, WIDTH) and inputs.dtype == np.uint8
    assert targets.shape == (60, MAX_DIGITS) and targets.dtype == np.int32
    lengths = (targets != BLANK).sum(axis=1)
    assert set(lengths) <= set(range(1, MAX_DIGITS + 1)) and len(set(lengths)) > 2
    for row, length in zip(targets, lengths):
        assert (row[:length] >= 1).all() and (row[:length] <= 10).all(), "digit d is class d + 1"
        assert (row[length:] == BLANK).all(), "padded with the blank after the digits"
    assert (inputs.reshape(60, -1).max(axis=1) > 0).all(), "every string has ink"
    ink_columns = (inputs > 0).any(axis=1).sum(axis=1)
    assert np.corrcoef(lengths, ink_columns)[0, 1] > 0.7, "longer strings are wider"
    again = synthetic_strings(images, labels, 60, seed)
    assert np.array_equal(again[0], inputs) and np.array_equal(again[1], targets), "the seed fixes the strings"


def test_synthetic_strings_refuse_bad_arguments():
    images, labels = digit_images()
    with pytest.raises(ValueError, match="labels"):
        synthetic_strings(images, labels[:-1], 5, 0)
    with pytest.raises(ValueError, match="count"):
        synthetic_strings(images, labels, 0, 0)


@pytest.mark.parametrize("shape", [(50, 40), (100, 300), (20, 1000)])
def test_reader_input_scales_the_mark_to_the_height_left_aligned(shape):
    mask = np.zeros(shape, bool)
    mask[2:-2, 3:-3] = True
    image, columns_per_input = reader_input(mask)
    assert image.shape == (HEIGHT, WIDTH) and 0 <= image.min() and image.max() <= 1
    rows = np.flatnonzero(image.any(axis=1))
    cols = np.flatnonzero(image.any(axis=0))
    assert rows[0] == MARGIN and rows[-1] == HEIGHT - MARGIN - 1, "the ink fills the height inside the margin"
    assert cols[0] == MARGIN and cols[-1] <= WIDTH - MARGIN - 1
    ink_width = shape[1] - 6
    assert cols[-1] - cols[0] + 1 == pytest.approx(columns_per_input * ink_width, abs=1)
    natural = ink_width * (HEIGHT - 2 * MARGIN) / (shape[0] - 4)
    if natural <= WIDTH - 2 * MARGIN:
        assert columns_per_input == pytest.approx((HEIGHT - 2 * MARGIN) / (shape[0] - 4), rel=0.05)
    else:
        assert cols[-1] == WIDTH - MARGIN - 1, "a mark too wide is squeezed into the width"


def frame_logits(path: list, sure: float = 8.0, stride: int = STRIDE) -> np.ndarray:
    """Logits over (blank, 0-9) for a frame path: each entry a class (BLANK or digit + 1) made clearly the best."""
    logits = np.zeros((WIDTH // stride, 11), np.float32)
    for frame, label in enumerate(path):
        logits[frame, label] = sure
    for frame in range(len(path), len(logits)):
        logits[frame, BLANK] = sure
    return logits


def test_decode_merges_runs_and_keeps_repeats_split_by_a_blank():
    seven, one = 7 + 1, 1 + 1
    reading = decode(frame_logits([BLANK, seven, seven, BLANK, one, BLANK, one, one, BLANK]), 1.0)
    assert reading.digits == "711"
    assert reading.probabilities.shape == (3, 10)
    assert np.allclose(reading.probabilities.sum(axis=1), 1)
    assert list(reading.probabilities.argmax(axis=1)) == [7, 1, 1]
    assert (np.diff(reading.columns) > 0).all(), "digits left to right"
    # the 7 is read in frames 1-2: input columns STRIDE to 3 x STRIDE, centre 2 x STRIDE, minus the margin
    assert reading.columns[0] == pytest.approx(2 * STRIDE - MARGIN)
    assert 0 < reading.confidence <= 1


def test_decode_of_blank_frames_reads_nothing_and_columns_follow_the_scale():
    assert decode(frame_logits([]), 1.0).digits == ""
    assert decode(frame_logits([]), 1.0).probabilities.shape == (0, 10)
    half = decode(frame_logits([BLANK, 3]), 0.5)
    assert half.columns[0] == pytest.approx((1.5 * STRIDE - MARGIN) / 0.5), "mapped back to the mark's columns"
    moved = decode(frame_logits([BLANK, 3]), 1.0, shift=2)
    assert moved.columns[0] == pytest.approx(1.5 * STRIDE - MARGIN - 2), "a view's shift is taken back out"


@pytest.mark.parametrize("stride", [2, 4])
def test_decode_takes_the_stride_from_the_number_of_frames(stride):
    """A reader saved with another stride (fewer, wider frames) is decoded at its own stride."""
    reading = decode(frame_logits([BLANK, BLANK, 4 + 1], stride=stride), 1.0)
    assert reading.digits == "4"
    assert reading.columns[0] == pytest.approx(2.5 * stride - MARGIN)


def test_a_doubtful_frame_path_is_less_confident():
    sure = decode(frame_logits([BLANK, 5, BLANK]), 1.0)
    doubtful = decode(frame_logits([BLANK, 5, BLANK], sure=1.0), 1.0)
    assert doubtful.confidence < sure.confidence
    assert doubtful.probabilities.max() < sure.probabilities.max()


# ---------------------------------------------------------------- the photo pipeline with a reader
def overlapping_rings(count: int, overlap: int = 14) -> np.ndarray:
    """A photo (uint8 gray, dark ink on paper) of ``count`` rings 0-like, each overlapping the next."""
    import cv2

    width = 60 + count * (80 - overlap)
    image = np.full((200, width + 120), 235, np.uint8)
    for index in range(count):
        cv2.ellipse(image, (100 + index * (80 - overlap), 100), (40, 58), 0, 0, 360, 30, 9)
    return image


def ring_reader(digits: str, confidence: float = 0.9):
    """A stand-in string reader that reads ``digits`` in any mark, spread evenly over its width."""

    def read_string(masks):
        readings = []
        for mask in masks:
            width = np.flatnonzero(np.asarray(mask).any(axis=0)).size
            probabilities = np.full((len(digits), 10), 0.01, np.float32)
            probabilities[np.arange(len(digits)), [int(d) for d in digits]] = 0.91
            columns = (np.arange(len(digits)) + 0.5) * width / len(digits)
            readings.append(StringReading(digits, probabilities, columns.astype(np.float32), confidence))
        return readings

    return read_string


def zero_classifier(crops):
    probabilities = np.full((len(crops), 10), 0.02, np.float32)
    probabilities[:, 0] = 0.82
    return probabilities


@pytest.mark.parametrize("count", [2, 3, 4])
def test_the_reader_says_how_many_digits_a_mark_of_overlapping_ones_holds(count):
    from digit_recognizer.photos.pipeline import read_with

    digits = "3817"[:count]
    without, _ = read_with(overlapping_rings(count), zero_classifier)
    reading, segmentation = read_with(overlapping_rings(count), zero_classifier, read_string=ring_reader(digits))
    assert len(segmentation.crops) == count
    assert reading.number == digits, "each digit keeps the reader's reading of it"
    assert len(segmentation.read) == count and all(read is not None for read in segmentation.read)
    xs = [box[0] for box in reading.boxes]
    assert xs == sorted(xs) and len(set(xs)) == count, "one box per digit, left to right"
    assert without.number != digits


def test_a_mark_the_reader_reads_as_one_digit_is_read_by_the_classifier():
    from digit_recognizer.photos.pipeline import read_with

    reading, segmentation = read_with(overlapping_rings(1), zero_classifier, read_string=ring_reader("5"))
    assert reading.number == "0" and segmentation.read == ()


def test_without_the_reader_digits_override_the_classifier_reads_the_cut_digits(monkeypatch):
    from digit_recognizer.photos import segment
    from digit_recognizer.photos.pipeline import read_with

    monkeypatch.setattr(segment, "READER_DIGITS", False)
    reading, segmentation = read_with(overlapping_rings(3), zero_classifier, read_string=ring_reader("381"))
    assert reading.number == "000" and len(segmentation.crops) == 3


@pytest.mark.slow
def test_a_trained_reader_is_saved_loaded_and_reads_marks(tmp_path, monkeypatch):
    from digit_recognizer.modeling.inference import load_model_file

    monkeypatch.setattr(reader, "EPOCHS", 1)
    images, labels = digit_images(200)
    path = tmp_path / "reader.keras"
    accuracy = reader.train_reader(
        images, labels, path, 256, 3, images[:50], labels[:50], verbose=0, log=lambda _: None
    )
    assert path.is_file() and 0 <= accuracy <= 1
    model = load_model_file(path)
    readings = reader.read_strings(model, [np.ones((30, 60), bool), np.ones((30, 20), bool)])
    assert len(readings) == 2 and all(isinstance(reading, StringReading) for reading in readings)
    assert all(len(reading.digits) == len(reading.probabilities) == len(reading.columns) for reading in readings)


@pytest.mark.slow
def test_train_with_reader_strings_saves_a_reader_that_images_uses(project, tmp_path):
    import json

    import cv2

    from conftest import run_cli
    from digit_recognizer.experiment import Experiment

    args = ("--preset", "seed", "--epochs", "1", "--max-rows", "600", "--reader-strings", "300", "--quiet")
    result = run_cli("train", *args, "--name", "reading", root=project.root)
    assert result.returncode == 0, result.stderr
    experiment = Experiment(project, "reading")
    assert experiment.reader_file.is_file()
    metrics = json.loads(experiment.metrics_file.read_text())
    assert 0 <= metrics["reader_string_accuracy"] <= 1
    assert "string reader" in result.stdout
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "rings.png"), overlapping_rings(3))
    result = run_cli("images", str(photos), "--out", str(tmp_path / "out"), root=project.root)
    assert result.returncode == 0, result.stderr
    assert "reading" in result.stdout and "trained for photos" in result.stdout
    # a run killed after the reader was saved (no metrics yet) resumes without training it again
    experiment.metrics_file.unlink()
    before = experiment.reader_file.stat().st_mtime_ns
    result = run_cli("train", *args, "--name", "reading", root=project.root)
    assert result.returncode == 0, result.stderr
    assert "string reader: already trained" in result.stdout
    assert experiment.reader_file.stat().st_mtime_ns == before


def test_a_narrow_mark_of_two_heavily_overlapping_digits_is_cut_only_on_the_readers_word():
    from digit_recognizer.photos.pipeline import read_with
    from digit_recognizer.photos.segment import READER_ASPECT, SPLIT_ASPECT

    photo = overlapping_rings(2, overlap=40)
    ink = np.argwhere(photo < 128)
    height, width = np.ptp(ink, axis=0) + 1
    assert READER_ASPECT * height <= width < SPLIT_ASPECT * height, "too narrow to be cut without the reader"
    assert read_with(photo, zero_classifier)[0].number == "0"
    assert read_with(photo, zero_classifier, read_string=ring_reader("38"))[0].number == "38"
    assert read_with(photo, zero_classifier, read_string=ring_reader("6"))[0].number == "0"
    assert read_with(photo, zero_classifier, read_string=ring_reader("38", confidence=0.3))[0].number == "0", (
        "a doubtful reading does not cut a narrow mark"
    )
    wide = overlapping_rings(3)
    assert read_with(wide, zero_classifier, read_string=ring_reader("381", confidence=0.3))[0].number == "381", (
        "a mark wide enough to be several is cut as the reader reads it, however sure"
    )


@pytest.mark.parametrize(("right", "down"), [(0, 0), (2, 0), (-3, 1), (1, -2)])
def test_shifted_moves_the_image_with_zero_fill(right, down):
    from digit_recognizer.modeling.reader import shifted

    image = np.arange(1, 7 * 9 + 1, dtype=np.float32).reshape(7, 9)
    moved = shifted(image, right, down)
    assert moved.shape == image.shape
    for row in range(7):
        for col in range(9):
            source = (row - down, col - right)
            inside = 0 <= source[0] < 7 and 0 <= source[1] < 9
            assert moved[row, col] == (image[source] if inside else 0)


def test_read_strings_takes_the_string_most_views_read():
    from digit_recognizer.modeling.reader import VIEWS, read_strings

    class FakeModel:
        """Reads '12' in every view but the first, which reads '7' with a surer path."""

        def predict(self, inputs, verbose=0, batch_size=256):
            logits = np.stack([frame_logits([BLANK, 2, BLANK, 3]) for _ in inputs])
            logits[:: len(VIEWS)] = frame_logits([BLANK, 8], sure=20.0)
            return logits

    readings = read_strings(FakeModel(), [np.ones((30, 50), bool), np.ones((30, 20), bool)])
    assert [reading.digits for reading in readings] == ["12", "12"]
