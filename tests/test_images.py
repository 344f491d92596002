"""Preprocessing of people's photos (no model): files, polarity, segmentation, MNIST-style crops."""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from digit_recognizer.photos import segment as images
from digit_recognizer.photos.segment import (
    DARK_ON_LIGHT,
    LIGHT_ON_DARK,
    ImageReadError,
    centre_of_mass,
    collect_image_files,
    detect_polarity,
    expected_from_name,
    mnist_crop,
    read_grayscale,
    segment_digits,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- synthetic photos
def paper(height=480, width=640, brightness=220.0, gradient=0.5, seed=0) -> np.ndarray:
    """Unevenly lit paper with texture: float32 grayscale."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    light = 1.0 - gradient * (0.6 * xs / width + 0.4 * ys / height)
    texture = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 2) * 4
    return brightness * light + texture


def glyph_mask(shape, text, origin, height, thickness, font=cv2.FONT_HERSHEY_SIMPLEX) -> np.ndarray:
    """Coverage in [0, 1] of ``text`` drawn ``height`` pixels tall with its bottom-left at ``origin``."""
    mask = np.zeros(shape, np.uint8)
    scale = cv2.getFontScaleFromHeight(font, height, thickness)
    cv2.putText(mask, text, origin, font, scale, 255, thickness, cv2.LINE_AA)
    return mask.astype(np.float32) / 255.0


def ink(page: np.ndarray, coverage: np.ndarray, level: float = 0.2) -> np.ndarray:
    """Dark ink laid multiplicatively (``level`` = the ink's reflectance relative to paper)."""
    return page * (1 - coverage * (1 - level))


def to_uint8(image: np.ndarray, noise: float = 2.0, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(image + rng.normal(0, noise, image.shape), 0, 255).astype(np.uint8)


def photo_of(text: str, height=260, thickness=18, shape=(480, 640), origin=None, dark_background=False, gradient=0.5):
    page = paper(*shape, gradient=gradient)
    origin = origin or (shape[1] // 2 - int(0.35 * height * len(text)), shape[0] // 2 + height // 2)
    coverage = glyph_mask(shape, text, origin, height, thickness)
    if dark_background:
        page = paper(*shape, brightness=60.0, gradient=gradient)
        return to_uint8(page * (1 - coverage) + 210 * coverage)
    return to_uint8(ink(page, coverage))


def write_png(path: Path, image: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), image)
    return path


# ---------------------------------------------------------------- polarity
@pytest.mark.parametrize("dark_background, expected", [(False, DARK_ON_LIGHT), (True, LIGHT_ON_DARK)])
@pytest.mark.parametrize("gradient", [0.0, 0.6])
@pytest.mark.parametrize("digit", ["3", "7", "0"])
def test_polarity_is_detected_both_ways(dark_background, expected, gradient, digit):
    gray = photo_of(digit, dark_background=dark_background, gradient=gradient)
    assert detect_polarity(gray) == expected
    segmentation = segment_digits(gray)
    assert segmentation.polarity == expected
    assert len(segmentation) == 1


@pytest.mark.parametrize("dark_background", [False, True])
def test_ink_is_white_on_black_whatever_the_polarity(dark_background):
    crop = segment_digits(photo_of("8", dark_background=dark_background)).crops[0]
    assert crop[0, :].max() == 0 and crop[:, 0].max() == 0  # black border
    assert crop.max() == 255  # white strokes


# ---------------------------------------------------------------- MNIST crops
@pytest.mark.parametrize("text", ["1", "2", "4", "7", "0", "9"])
@pytest.mark.parametrize("height, thickness", [(300, 6), (300, 30), (120, 12), (40, 4)])
def test_crop_centre_of_mass_is_within_half_a_pixel_of_the_centre(text, height, thickness):
    shape = (height * 2, height * 2)
    mask = glyph_mask(shape, text, (height // 3, int(height * 1.5)), height, thickness)
    crop = mnist_crop((mask > 0.5).astype(np.uint8) * 255)
    assert crop.shape == (28, 28) and crop.dtype == np.uint8
    centre_x, centre_y = centre_of_mass(crop)
    for centre in (13.5, 14.0):  # the array's geometric centre, and MNIST's average
        assert abs(centre_x - centre) < 0.5 and abs(centre_y - centre) < 0.5


@pytest.mark.parametrize("text, tall", [("1", True), ("7", True), ("0", True)])
def test_crop_fits_a_20_pixel_box_keeping_aspect_ratio_with_grey_edges(text, tall):
    mask = glyph_mask((600, 600), text, (200, 450), 300, 20)
    crop = mnist_crop((mask > 0.5).astype(np.uint8) * 255)
    rows = np.flatnonzero((crop > 40).any(axis=1))
    cols = np.flatnonzero((crop > 40).any(axis=0))
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    assert 18 <= height <= 21  # the longer side is scaled to 20 pixels
    assert width < height  # digits are taller than wide: the aspect ratio is kept
    greys = ((crop > 0) & (crop < 255)).sum()
    assert greys >= 10, "anti-aliased grey levels expected at the stroke edges"


def test_thin_pen_strokes_are_thickened_towards_mnist():
    thin = glyph_mask((700, 700), "2", (200, 550), 400, 4)
    crop = mnist_crop((thin > 0.3).astype(np.uint8) * 255)
    assert (crop > 128).sum() >= 25, "a hairline digit must not vanish to a faint trace at 28x28"


def test_mnist_crop_rejects_bad_arguments():
    with pytest.raises(ValueError):
        mnist_crop(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError):
        mnist_crop(np.ones((10, 10), np.uint8), box=30)
    with pytest.raises(ValueError):
        segment_digits(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(ValueError):
        segment_digits(np.zeros((10, 10), np.float32))


# ---------------------------------------------------------------- segmentation
@pytest.mark.parametrize("number", ["2026", "417", "90351"])
def test_several_digits_are_read_left_to_right(number):
    shape = (420, 260 * len(number))
    page = paper(*shape)
    coverage = np.zeros(shape, np.float32)
    rng = np.random.default_rng(len(number))
    for index, digit in enumerate(number):  # each at its own height, as handwriting wanders
        baseline = int(300 + rng.integers(-40, 40))
        coverage = np.maximum(coverage, glyph_mask(shape, digit, (40 + 250 * index, baseline), 200, 16))
    segmentation = segment_digits(to_uint8(ink(page, coverage)))
    assert len(segmentation) == len(number)
    lefts = [box[0] for box in segmentation.boxes]
    assert lefts == sorted(lefts)
    for index, (x, _y, _width, _height) in enumerate(segmentation.boxes):
        assert 40 + 250 * index - 10 <= x <= 40 + 250 * index + 120


def test_small_printed_text_beside_a_large_digit_is_ignored():
    shape = (480, 760)
    page = paper(*shape)
    coverage = glyph_mask(shape, "5", (450, 400), 280, 20)
    digit_rows = np.flatnonzero((coverage > 0.5).any(axis=1))
    for row, words in enumerate(["Name: J. Smith", "Date: 12/03/2026", "Score (out of 10):"]):
        coverage = np.maximum(coverage, glyph_mask(shape, words, (20, 80 + 40 * row), 22, 2))
    segmentation = segment_digits(to_uint8(ink(page, coverage)))
    assert len(segmentation) == 1
    x, y, width, height = segmentation.boxes[0]
    assert x >= 420 and abs(height - (digit_rows[-1] - digit_rows[0] + 1)) <= 6


def test_broken_strokes_of_one_digit_are_merged():
    shape = (480, 480)
    coverage = glyph_mask(shape, "5", (140, 400), 320, 22)
    binary = coverage > 0.5
    rows = np.flatnonzero(binary.any(axis=1))
    binary[rows[0] + 50 : rows[0] + 62, :] = False  # a gap below the top bar, as a lifted pen leaves
    segmentation = segment_digits(to_uint8(ink(paper(*shape), binary.astype(np.float32))))
    assert len(segmentation) == 1


def test_specks_and_ruled_lines_are_not_digits():
    shape = (480, 640)
    page = paper(*shape)
    coverage = glyph_mask(shape, "4", (240, 380), 260, 18)
    lines = np.zeros(shape, np.uint8)
    for y in range(30, shape[0], 55):
        cv2.line(lines, (0, y), (shape[1], y), 255, 2, cv2.LINE_AA)
    rng = np.random.default_rng(3)
    for _ in range(40):
        cv2.circle(lines, (int(rng.integers(0, shape[1])), int(rng.integers(0, shape[0]))), 2, 255, -1)
    coverage = np.maximum(coverage, 0.6 * lines.astype(np.float32) / 255)
    segmentation = segment_digits(to_uint8(ink(page, coverage)))
    assert len(segmentation) == 1
    x, y, width, height = segmentation.boxes[0]
    assert height < 300 and width < 250


def test_touching_digits_are_split_but_a_wide_digit_is_not():
    shape = (400, 700)
    touching = np.zeros(shape, np.uint8)  # "00" written so the two touch at one point
    cv2.ellipse(touching, (240, 200), (100, 120), 0, 0, 360, 255, 18)
    cv2.ellipse(touching, (450, 200), (100, 120), 0, 0, 360, 255, 18)
    assert len(segment_digits(to_uint8(ink(paper(*shape), touching / 255.0)))) == 2
    wide = np.zeros(shape, np.uint8)
    cv2.ellipse(wide, (350, 200), (250, 110), 0, 0, 360, 255, 18)
    assert len(segment_digits(to_uint8(ink(paper(*shape), wide / 255.0)))) == 1


@pytest.mark.parametrize(
    "image",
    [
        np.full((300, 400), 230, np.uint8),
        np.zeros((300, 400), np.uint8),
        to_uint8(paper(300, 400, gradient=0.7), noise=4.0),
    ],
)
def test_an_image_with_no_ink_has_no_digits_and_an_explanation(image):
    segmentation = segment_digits(image)
    assert len(segmentation) == 0 and segmentation.crops.shape == (0, 28, 28)
    assert "no ink" in segmentation.message


def test_shipped_examples_are_labelled_and_segment_into_the_right_number_of_digits():
    import csv

    folder = REPO_ROOT / "inputs" / "custom"
    with open(folder / "labels.csv", newline="", encoding="utf-8") as handle:
        labels = {row["file"]: row["expected"] for row in csv.DictReader(handle)}
    files, missing = collect_image_files([folder])
    assert not missing and len(files) >= 8
    assert {path.name for path in files} == set(labels)
    assert sum(path.stat().st_size for path in files) < 1_000_000
    polarities = set()
    for path in files:
        assert expected_from_name(path) == labels[path.name]
        segmentation = segment_digits(read_grayscale(path))
        assert len(segmentation) == len(labels[path.name]), path.name
        polarities.add(segmentation.polarity)
    assert polarities == {DARK_ON_LIGHT, LIGHT_ON_DARK}


# ---------------------------------------------------------------- files
@pytest.mark.parametrize(
    "name, expected",
    [
        ("7_mine.jpg", "7"),
        ("2026-note.png", "2026"),
        ("0042.png", "0042"),
        ("5.bmp", "5"),
        ("seven.jpg", None),
        ("7x.png", None),
        ("IMG_2026.jpg", None),
    ],
)
def test_expected_label_from_the_file_name(name, expected):
    assert expected_from_name(Path(name)) == expected


def test_collect_image_files_from_files_and_folders(tmp_path):
    for name in ("b.png", "a.JPG", "c.webp", "d.tiff", "notes.txt", ".hidden.png"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.png").write_bytes(b"x")
    explicit = tmp_path / "notes.txt"
    files, missing = collect_image_files([tmp_path, explicit, tmp_path / "gone.png"])
    assert [path.name for path in files] == ["a.JPG", "b.png", "c.webp", "d.tiff", "notes.txt"]
    assert missing == [tmp_path / "gone.png"]


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".tiff", ".webp"])
def test_every_supported_format_reads(tmp_path, suffix):
    image = photo_of("6")
    path = tmp_path / f"six{suffix}"
    assert cv2.imwrite(str(path), image)
    gray = read_grayscale(path)
    assert gray.shape == image.shape and gray.dtype == np.uint8
    assert len(segment_digits(gray)) == 1


def test_transparent_png_and_16_bit_png_read(tmp_path):
    coverage = glyph_mask((300, 300), "3", (90, 250), 200, 14)
    rgba = np.zeros((300, 300, 4), np.uint8)
    rgba[..., 3] = (coverage * 255).astype(np.uint8)  # black strokes on a transparent canvas
    gray = read_grayscale(write_png(tmp_path / "transparent.png", rgba))
    assert len(segment_digits(gray)) == 1
    deep = (ink(paper(300, 300), coverage) * 257).astype(np.uint16)
    gray = read_grayscale(write_png(tmp_path / "deep.png", deep))
    assert gray.dtype == np.uint8 and len(segment_digits(gray)) == 1


def _png_with_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def test_a_huge_image_is_refused_from_its_header_without_decoding(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(_png_with_header(100_000, 100_000))  # 10 gigapixels claimed in 80 bytes
    started = time.perf_counter()
    with pytest.raises(ImageReadError, match="over the 40 MP limit"):
        read_grayscale(path)
    assert time.perf_counter() - started < 2.0


def test_over_the_limit_png_is_refused_and_jpeg_is_decoded_smaller(tmp_path):
    image = photo_of("2", shape=(1500, 2000), height=900, thickness=60)
    png = write_png(tmp_path / "big.png", image)
    with pytest.raises(ImageReadError, match="limit"):
        read_grayscale(png, max_pixels=1_000_000)
    jpeg = tmp_path / "big.jpg"
    assert cv2.imwrite(str(jpeg), image)
    gray = read_grayscale(jpeg, max_pixels=1_000_000)
    assert gray.size <= 1_000_000 and gray.shape[1] > gray.shape[0]
    assert len(segment_digits(gray)) == 1


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda path: path.write_text("not an image at all\n"), "not an image"),
        (lambda path: path.write_bytes(b""), "empty"),
        (lambda path: path.write_bytes(cv2.imencode(".png", photo_of("1"))[1].tobytes()[:900]), "truncated"),
        (lambda path: path.write_bytes(cv2.imencode(".jpg", photo_of("1"))[1].tobytes()[:900]), "truncated"),
        (lambda path: path.mkdir(), "folder"),
        (lambda path: None, "not found"),
    ],
)
def test_unreadable_files_raise_a_one_line_reason(tmp_path, make, reason):
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(ImageReadError, match=reason) as error:
        read_grayscale(path)
    assert "\n" not in str(error.value)


def test_read_grayscale_rejects_a_bad_limit(tmp_path):
    with pytest.raises(ValueError):
        read_grayscale(tmp_path / "x.png", max_pixels=0)


def test_library_constants_match_the_issue():
    assert images.MAX_PIXELS == 40_000_000
    assert set(images.IMAGE_SUFFIXES) >= {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


@pytest.mark.parametrize("text", ["1", "7"])
def test_a_straight_thin_digit_filling_a_tight_crop_is_not_taken_for_a_ruled_line(text):
    shape = (420, 300)
    coverage = np.zeros(shape, np.float32)
    if text == "1":
        cv2.line(coverage, (150, 10), (150, 410), 1.0, 5)
    else:
        cv2.line(coverage, (10, 12), (290, 12), 1.0, 5)
        cv2.line(coverage, (290, 12), (120, 410), 1.0, 5)
    segmentation = segment_digits(to_uint8(ink(paper(*shape), coverage)))
    assert len(segmentation) == 1
    x, y, width, height = segmentation.boxes[0]
    assert height > 350
    if text == "7":
        assert width > 250, "the 7's bar must stay"


def test_very_bold_strokes_are_found_whole():
    shape = (400, 480)
    coverage = np.zeros(shape, np.uint8)
    cv2.ellipse(coverage, (240, 200), (110, 150), 0, 0, 360, 255, 90)  # a marker "0" with strokes 1/4 of the image
    segmentation = segment_digits(to_uint8(ink(paper(*shape), coverage / 255.0)))
    assert len(segmentation) == 1
    crop = segmentation.crops[0]
    assert crop[14, 14] < 60 and crop[14, 4:24].max() == 255  # a ring with its hole, not slivers
