"""The prediction sheet's pages and the reading of per-digit probabilities (no model)."""

from __future__ import annotations

import numpy as np
import pytest

from digit_recognizer.photos.pipeline import format_digits, read_number
from digit_recognizer.photos.sheet import SheetEntry, draw_sheets, page_count, thumbnail


def one_hot(labels, probability=0.97):
    rows = np.full((len(labels), 10), (1 - probability) / 9, np.float32)
    rows[np.arange(len(labels)), labels] = probability
    return rows


@pytest.mark.parametrize(
    "probabilities, min_confidence, number",
    [
        (one_hot([2, 0, 2, 6]), 0.5, "2026"),
        (one_hot([7], 0.3), 0.5, "?"),
        (np.vstack([one_hot([1]), one_hot([4], 0.45)]), 0.5, "1?"),
        (one_hot([4], 0.45), 0.0, "4"),
    ],
)
def test_read_number_left_to_right_with_doubt_as_question_mark(probabilities, min_confidence, number):
    text, confidence = read_number(probabilities, min_confidence)
    assert text == number
    assert confidence == pytest.approx(float(np.prod(probabilities.max(axis=1))))


def test_read_number_rejects_a_bad_threshold():
    with pytest.raises(ValueError):
        read_number(one_hot([1]), 1.5)


def test_format_digits_lists_label_and_probability_per_digit():
    assert format_digits(one_hot([2, 0], 0.9)) == "2:0.900 0:0.900"
    assert format_digits(None) == ""


def test_sheet_is_paginated_and_stale_pages_are_removed(tmp_path):
    rng = np.random.default_rng(0)
    entries = []
    for index in range(12):
        crops = rng.integers(0, 255, (index % 3 + 1, 28, 28)).astype(np.uint8)
        probabilities = one_hot(list(range(len(crops))))
        entries.append(
            SheetEntry(
                f"{index}.png",
                rng.integers(0, 255, (120, 160)).astype(np.uint8),
                ((10, 10, 40, 60),),
                crops,
                probabilities,
                "".join(map(str, range(len(crops)))),
                expected="0" if index % 2 else None,
                polarity="dark-on-light",
                min_confidence=0.5,
            )
        )
    entries.append(SheetEntry("broken.jpg", note="cannot decode the image: truncated or corrupt", expected="5"))
    (tmp_path / "sheet-9.png").write_bytes(b"old")
    (tmp_path / "sheet-notes.png").write_bytes(b"keep")
    pages = draw_sheets(entries, tmp_path, "test", rows_per_page=5)
    assert (
        [page.name for page in pages]
        == ["sheet-1.png", "sheet-2.png", "sheet-3.png"]
        == [f"sheet-{n}.png" for n in range(1, page_count(13, 5) + 1)]
    )
    assert all(page.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for page in pages)
    assert not (tmp_path / "sheet-9.png").exists() and (tmp_path / "sheet-notes.png").exists()
    with pytest.raises(ValueError):
        draw_sheets(entries, tmp_path, "test", rows_per_page=0)


def test_thumbnail_scales_boxes_with_the_image():
    image = np.zeros((1000, 2000), np.uint8)
    small, boxes = thumbnail(image, ((100, 200, 300, 400),), longest=400)
    assert small.shape == (200, 400)
    assert boxes == ((20.0, 40.0, 60.0, 80.0),)
