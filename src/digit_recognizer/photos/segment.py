"""Turn people's own photos of handwritten digits into MNIST-style 28x28 images.

MNIST was made from binary scans of handwritten digits: each digit was scaled so
its longer side fits a 20x20 box (keeping the aspect ratio; the scaling's
anti-aliasing leaves grey levels at the edges), then placed in a 28x28 field with
its centre of mass at the centre, white ink on black. A photo differs from
those scans in every respect, so :func:`segment_digits` first brings it there:

1. grayscale (alpha composited away), downscaled or upscaled to a working size;
2. ink polarity: dark ink on paper or light ink on a dark board, from which
   side of the local background the extreme pixels lie (:func:`detect_polarity`);
3. uneven lighting evened out by dividing by the paper's brightness, estimated
   with a morphological closing at low resolution (:func:`ink_contrast`);
4. denoise (Gaussian blur) and threshold (Otsu, never below a minimum contrast);
5. long thin ruled lines removed, and strokes they crossed repaired;
6. connected components; specks dropped; broken strokes of one digit merged
   (components overlapping in x and stacked closely); small printed text and
   other marks much smaller than the tallest digit dropped; touching digits in
   an over-wide group split at the thinnest column;
7. per digit, read left to right: stroke width brought into MNIST's range,
   longer side scaled to 20 px with area interpolation (anti-aliased greys),
   placed in 28x28 by centre of mass (:func:`mnist_crop`).

Everything here is a pure function of pixels (no model), so it is testable alone.
Reading files (:func:`read_grayscale`) refuses anything that would exhaust
memory, and raises :class:`ImageReadError` for a file that cannot be read.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
MAX_PIXELS = 40_000_000  # refuse (or, for JPEG, decode at reduced size) anything larger
WORK_MAX_SIDE = 1200  # photos are analysed at most this large...
WORK_MIN_SIDE = 400  # ...and small images are upscaled to at least this
MNIST_SIZE = 28
MNIST_BOX = 20
# Where the centre of mass goes, in pixel-index coordinates: a quarter pixel from the
# array's geometric centre (13.5) and from where MNIST's digits have it on average (14.0).
MNIST_CENTRE = 13.75
MNIST_STROKE_RATIO = 0.128  # median stroke width / longer side of MNIST digits
MIN_INK_CONTRAST = 0.12  # ink must be at least 12% darker (or lighter) than its background
NOISE_MARGIN = 5.0  # ...and stand out from the paper's noise by this many standard deviations
PAPER_KERNEL_FRACTION = 0.35  # the paper's brightness is estimated over windows this fraction of the shorter side
DARKEST_PAPER = 24.0  # grey level below which a background is too dark to hold visible dark ink
SMALL_TEXT_RATIO = 0.45  # marks shorter than this fraction of the tallest digit are dropped
DARK_ON_LIGHT = "dark-on-light"
LIGHT_ON_DARK = "light-on-dark"


class ImageReadError(Exception):
    """A file that cannot be used as an image: missing, unreadable, truncated, too large."""


@dataclass(frozen=True)
class Segmentation:
    """The digits found in one image, left to right.

    ``crops`` are (n, 28, 28) uint8, ink white (255) on black (0): exactly what the
    model sees. ``boxes`` are (x, y, width, height) in the original image's pixels.
    ``message`` says why nothing was found when ``crops`` is empty.
    """

    crops: np.ndarray
    boxes: tuple
    polarity: str
    message: str = ""
    image_shape: tuple = ()

    def __len__(self) -> int:
        return len(self.crops)


# ---------------------------------------------------------------- files
def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def collect_image_files(inputs) -> tuple[list[Path], list[Path]]:
    """Expand files and folders into image files (folders: their images, sorted, not recursive).

    Returns ``(files, missing)``: a file named explicitly is kept whatever its
    suffix (so a non-image gets an error row rather than being skipped silently);
    ``missing`` lists inputs that do not exist.
    """
    files, missing = [], []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.extend(sorted(child for child in path.iterdir()
                                if child.is_file() and is_image_file(child) and not child.name.startswith(".")))
        elif path.exists():
            files.append(path)
        else:
            missing.append(path)
    return files, missing


def expected_from_name(path: Path) -> str | None:
    """The label a file name starts with, like ``7_mine.jpg`` -> "7" or ``2026-bill.png`` -> "2026"."""
    match = re.match(r"^(\d+)(?:[_\-. ]|$)", Path(path).stem)
    return match.group(1) if match else None


def read_grayscale(path: Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an image file to a 2-D uint8 grayscale array (see :func:`read_image`)."""
    return to_gray(read_image(path, max_pixels))


def to_gray(image: np.ndarray) -> np.ndarray:
    """HxW gray, HxWx3 RGB or HxWx4 RGBA uint8 -> HxW gray uint8 (luminance)."""
    import cv2

    image = np.asarray(image)
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxW gray or HxWx3 RGB image, got shape {image.shape}")
    return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)


def read_image(path: Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an image file to uint8 pixels: HxWx3 RGB for colour files, HxW for gray ones; never more than
    ``max_pixels``.

    The dimensions are read from the header before decoding. A larger JPEG is
    decoded at a reduced scale (1/2, 1/4 or 1/8, done by the decoder itself);
    any other larger image is refused. EXIF rotation is applied; transparency is
    composited onto a background that contrasts with the visible pixels.
    Raises :class:`ImageReadError` with a one-line reason.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if max_pixels < 1:
        raise ValueError(f"max_pixels must be positive, got {max_pixels}")
    path = Path(path)
    if not path.exists():
        raise ImageReadError("file not found")
    if path.is_dir():
        raise ImageReadError("is a folder, not an image")
    if path.stat().st_size == 0:
        raise ImageReadError("file is empty")
    pillow_limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None  # the header is checked here, against max_pixels, before any decoding
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > max_pixels:
                    if image.format != "JPEG":
                        raise ImageReadError(f"image is {width}x{height} = {width * height / 1e6:.0f} MP, over the "
                                             f"{max_pixels / 1e6:.0f} MP limit; downscale it first")
                    factor = int(np.ceil(np.sqrt(width * height / max_pixels)))
                    image.draft("L", (width // factor, height // factor))
                    if image.size[0] * image.size[1] > max_pixels:
                        raise ImageReadError(f"image is {width}x{height}, over the {max_pixels / 1e6:.0f} MP limit "
                                             "and cannot be decoded smaller; downscale it first")
                image.load()
                image = ImageOps.exif_transpose(image)
                return _to_array(image)
    except ImageReadError:
        raise
    except Image.DecompressionBombError as error:
        raise ImageReadError(f"image is over the pixel limit ({error})") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"not an image file (or a format not supported: {', '.join(IMAGE_SUFFIXES)})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:  # truncated or corrupt data
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ImageReadError(f"cannot decode the image: truncated or corrupt ({reason})") from None
    except MemoryError:
        raise ImageReadError("image is too large to decode in memory") from None
    finally:
        Image.MAX_IMAGE_PIXELS = pillow_limit


def _to_array(image) -> np.ndarray:
    """A PIL image (any mode) -> uint8 RGB (colour modes) or 2-D luminance, with alpha composited away."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        return np.zeros(values.shape, np.uint8) if high <= low else ((values - low) * (255.0 / (high - low))).astype(np.uint8)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
        alpha = rgba[..., 3:] / 255.0
        gray = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
        visible = alpha[..., 0] > 0.5
        # Strokes drawn on a transparent canvas: put them on a background they contrast with.
        background = 0.0 if visible.any() and gray[visible].mean() > 127 else 255.0
        return np.clip(rgba[..., :3] * alpha + background * (1 - alpha), 0, 255).astype(np.uint8)
    if image.mode in ("1", "L", "P") and (image.mode != "P" or _palette_is_gray(image)):
        return np.asarray(image.convert("L"), dtype=np.uint8).copy()
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def _palette_is_gray(image) -> bool:
    palette = image.getpalette() or []
    colours = np.asarray(palette[: 3 * (len(palette) // 3)]).reshape(-1, 3)
    return bool((colours.max(axis=1) == colours.min(axis=1)).all())


# ---------------------------------------------------------------- pixels
def _odd(value: float, minimum: int = 3) -> int:
    value = max(minimum, int(round(value)))
    return value if value % 2 else value + 1


def resize_longer_side(gray: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """Scale so the longer side is ``side`` pixels; returns (image, scale factor)."""
    import cv2

    height, width = gray.shape[:2]
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(gray, size, interpolation=interpolation), scale


def to_working_size(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """The image at a size the analysis is tuned for (longer side in [WORK_MIN_SIDE, WORK_MAX_SIDE])."""
    longer = max(gray.shape[:2])
    if longer > WORK_MAX_SIDE:
        return resize_longer_side(gray, WORK_MAX_SIDE)
    if longer < WORK_MIN_SIDE:
        return resize_longer_side(gray, WORK_MIN_SIDE)
    return gray, 1.0


def detect_polarity(gray: np.ndarray) -> str:
    """``"dark-on-light"`` (ink on paper) or ``"light-on-dark"`` (chalk on a board, a negative).

    The local background is the median over a window much larger than a stroke
    (ink covers less than half of any such window); ink is what lies far from it.
    Whichever side, darker or lighter, holds clearly more of those far pixels is
    the ink; when neither does, a light background means dark ink and a dark
    one light ink. Works on uneven lighting because the background is local.
    """
    import cv2

    gray = np.asarray(gray)
    if gray.ndim != 2 or gray.size == 0:
        raise ValueError(f"expected a non-empty 2-D grayscale image, got shape {gray.shape}")
    small, _ = resize_longer_side(gray.astype(np.uint8), 160)
    window = _odd(0.6 * min(small.shape), minimum=5)
    padded = cv2.copyMakeBorder(small, window, window, window, window, cv2.BORDER_REFLECT)
    background = cv2.medianBlur(padded, window)[window:-window, window:-window]
    deviation = small.astype(np.float32) - background.astype(np.float32)
    noise = 1.4826 * float(np.median(np.abs(deviation - np.median(deviation))))
    margin = max(3.0 * noise, 8.0)
    darker = float(np.clip(-deviation - margin, 0, None).sum())
    lighter = float(np.clip(deviation - margin, 0, None).sum())
    # The background's brightness is the prior: paper is light, boards are dark. The other polarity
    # must be clearly stronger to win (a blank page keeps its natural reading).
    if np.median(small) >= 128:
        return LIGHT_ON_DARK if lighter > 2.0 * darker else DARK_ON_LIGHT
    return DARK_ON_LIGHT if darker > 2.0 * lighter else LIGHT_ON_DARK


def ink_contrast(gray: np.ndarray, polarity: str) -> np.ndarray:
    """Ink strength in [0, 1], white ink on black: the relative contrast to the local paper.

    The image is made dark-ink-on-light first (inverted for ``light-on-dark``). The
    paper's brightness is estimated by a morphological closing (which erases
    strokes narrower than its kernel) at low resolution, smoothed and scaled
    back; dividing by it evens out shadows and lighting gradients.
    """
    import cv2

    if polarity not in (DARK_ON_LIGHT, LIGHT_ON_DARK):
        raise ValueError(f"polarity must be '{DARK_ON_LIGHT}' or '{LIGHT_ON_DARK}', got {polarity!r}")
    image = gray.astype(np.uint8)
    if polarity == LIGHT_ON_DARK:
        image = 255 - image
    height, width = image.shape
    small, _ = resize_longer_side(image, 200)
    kernel_size = _odd(PAPER_KERNEL_FRACTION * min(small.shape), minimum=5)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel_size, kernel_size))
    padded = cv2.copyMakeBorder(small, kernel_size, kernel_size, kernel_size, kernel_size, cv2.BORDER_REPLICATE)
    paper = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, kernel)[kernel_size:-kernel_size, kernel_size:-kernel_size]
    # Only a light blur: a wide one would brighten the darker edge of a lighting gradient into false ink.
    paper = cv2.GaussianBlur(paper.astype(np.float32), (0, 0), 1.5, borderType=cv2.BORDER_REPLICATE)
    paper = cv2.resize(paper, (width, height), interpolation=cv2.INTER_LINEAR)
    image = image.astype(np.float32)
    paper = np.maximum(paper, image)  # the paper is never darker than what lies on it
    # Relative contrast. Where the paper is much darker than usual (deep shadow, the dark side of an
    # inverted board) dividing would amplify noise into false ink, so the divisor has a floor; and on
    # a black image nothing is ink.
    floor = max(DARKEST_PAPER, 0.4 * float(np.median(paper)))
    return np.clip((paper - image) / np.maximum(paper, floor), 0.0, 1.0)


def binarize(contrast: np.ndarray, min_contrast: float = MIN_INK_CONTRAST) -> np.ndarray:
    """Ink mask (uint8 0/255): denoise, then Otsu's threshold, never below ``min_contrast``."""
    import cv2

    if not 0 < min_contrast < 1:
        raise ValueError(f"min_contrast must be in (0, 1), got {min_contrast}")
    smooth = cv2.GaussianBlur(contrast.astype(np.float32), (0, 0), 1.0)
    levels = np.clip(smooth * 255.0, 0, 255).astype(np.uint8)
    otsu, _ = cv2.threshold(levels, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    threshold = max(float(otsu), min_contrast * 255.0, 255.0 * _paper_ceiling(smooth))
    return np.where(levels > threshold, 255, 0).astype(np.uint8)


def _paper_ceiling(contrast: np.ndarray, margin: float = NOISE_MARGIN) -> float:
    """The contrast that paper texture and sensor noise stay under: median + ``margin`` robust deviations.

    Ink is a minority of the pixels, so the median and the median absolute
    deviation describe the paper.
    """
    values = contrast[::2, ::2].ravel()
    median = float(np.median(values))
    deviation = 1.4826 * float(np.median(np.abs(values - median)))
    return median + margin * deviation


def remove_ruled_lines(mask: np.ndarray) -> np.ndarray:
    """Remove the long thin straight lines of ruled paper; repair the strokes they crossed.

    A horizontal line must run across 80% of the image, a vertical one (a margin)
    95%, and be thin. A lone line must also reach both edges of the image, as
    lines printed across the page do, or be clearly thinner than the writing;
    several parallel lines are ruling anyway.
    Where a digit's stroke crossed a line, the gap is closed again by a short
    closing across it. A pass that would leave almost no ink is undone: then the
    "line" was the digit itself (a straight 1 or a 7's bar in a tight crop).
    """
    import cv2

    height, width = mask.shape
    cleaned = mask.copy()
    for horizontal, reach in ((True, 0.8), (False, 0.95)):
        extent = width if horizontal else height
        length = int(reach * extent)
        if length < 50:
            continue
        bar = (length, 1) if horizontal else (1, length)
        lines = cv2.morphologyEx(cleaned, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, bar))
        if not lines.any():
            continue
        thickness = _line_thickness(lines, horizontal)
        if thickness > max(6, 0.03 * (height if horizontal else width)):
            continue  # a thick band (a shadow's edge, a table) is judged later, as a shape
        remaining = cv2.subtract(cleaned, lines)
        count, _, stats, _ = cv2.connectedComponentsWithStats(lines, connectivity=8)
        start, size = (cv2.CC_STAT_LEFT, cv2.CC_STAT_WIDTH) if horizontal else (cv2.CC_STAT_TOP, cv2.CC_STAT_HEIGHT)
        edge = 0.02 * extent
        edge_to_edge = stats[1, start] <= edge and stats[1, start] + stats[1, size] >= extent - edge
        thinner_than_writing = thickness <= 0.6 * stroke_width(remaining)
        if count - 1 == 1 and not (edge_to_edge or thinner_than_writing):
            continue
        span = int(2 * thickness + 3)
        across = (1, span) if horizontal else (span, 1)
        closed = cv2.morphologyEx(remaining, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, across))
        repaired = cv2.bitwise_or(remaining, cv2.bitwise_and(closed, lines))
        if np.count_nonzero(repaired) >= 0.1 * np.count_nonzero(cleaned):
            cleaned = repaired
    return cleaned


def _line_thickness(lines: np.ndarray, horizontal: bool) -> float:
    """Median thickness in pixels of the lines: line pixels per run, across the lines."""
    binary = (lines > 0) if horizontal else (lines > 0).T
    counts = binary.sum(axis=0)
    runs = (np.diff(binary.astype(np.int8), axis=0) == 1).sum(axis=0) + binary[0]
    crossed = runs > 0
    return float(np.median(counts[crossed] / runs[crossed])) if crossed.any() else 0.0


@dataclass
class _Mark:
    """A group of connected components believed to be one digit (or a candidate)."""

    x: int
    y: int
    width: int
    height: int
    labels: list

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def bottom(self) -> int:
        return self.y + self.height

    def merged(self, other: "_Mark") -> "_Mark":
        x, y = min(self.x, other.x), min(self.y, other.y)
        return _Mark(x, y, max(self.right, other.right) - x, max(self.bottom, other.bottom) - y, self.labels + other.labels)


def _belong_together(first: _Mark, second: _Mark) -> bool:
    """Broken strokes of one digit.

    Either their x-ranges overlap by half the narrower one and they are close
    vertically (a 5's bar over its body), or one is clearly shorter, lies within
    the other's height, overlaps it a little in x and together they are no wider
    than one digit (the two halves of an open 4).
    """
    overlap = min(first.right, second.right) - max(first.x, second.x)
    narrower = min(first.width, second.width)
    gap = max(first.y, second.y) - min(first.bottom, second.bottom)  # negative when they overlap vertically
    if overlap >= 0.5 * narrower and gap <= 0.25 * max(first.height, second.height):
        return True
    short, tall = sorted((first, second), key=lambda mark: mark.height)
    vertical = min(short.bottom, tall.bottom) - max(short.y, tall.y)
    union = first.merged(second)
    return (overlap >= 0.1 * narrower and short.height < 0.8 * tall.height and vertical >= 0.7 * short.height
            and union.width <= 1.0 * union.height)


def merge_marks(marks: list) -> list:
    """Merge marks that belong together until nothing changes."""
    marks = list(marks)
    changed = True
    while changed:
        changed = False
        for i in range(len(marks)):
            for j in range(i + 1, len(marks)):
                if _belong_together(marks[i], marks[j]):
                    marks[i] = marks[i].merged(marks[j])
                    del marks[j]
                    changed = True
                    break
            if changed:
                break
    return marks


def _is_line_like(mark: _Mark, image_height: int) -> bool:
    """Far wider than tall (a ruled line's remnant), or a thin vertical line from edge to edge of the image
    (a margin; even a thin straight 1 in a tight crop leaves some space above and below)."""
    return mark.width > 8 * mark.height or (mark.height > 25 * mark.width and mark.height >= 0.97 * image_height)


def find_digit_marks(mask: np.ndarray, small_text_ratio: float = SMALL_TEXT_RATIO) -> tuple[np.ndarray, list]:
    """Connected components of the ink mask grouped into digit candidates, left to right.

    Returns ``(label_image, marks)``. Specks, ruled-line remnants and marks much
    shorter than the tallest digit-like mark (small printed text) are dropped.
    """
    import cv2

    if not 0 < small_text_ratio < 1:
        raise ValueError(f"small_text_ratio must be in (0, 1), got {small_text_ratio}")
    count, labels, stats, _ = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8), connectivity=8)
    min_side = max(6, 0.01 * max(mask.shape))
    components = []
    for label in range(1, count):
        x, y, width, height, area = (int(value) for value in stats[label])
        if max(width, height) < min_side or area < 12:
            continue  # specks
        components.append(_Mark(x, y, width, height, [label]))
    candidates = [mark for mark in components if not _is_line_like(mark, mask.shape[0])]
    if not candidates:
        return labels, []
    tallest = max(mark.height for mark in candidates)
    # Fragments far smaller than the tallest stroke group are dots and specks, not parts of digits.
    candidates = [mark for mark in candidates if max(mark.width, mark.height) >= 0.12 * tallest]
    marks = merge_marks(candidates)
    marks = [mark for mark in marks if not _is_line_like(mark, mask.shape[0])]
    if not marks:
        return labels, []
    marks = attach_fragments(marks, small_text_ratio)
    tallest = max(mark.height for mark in marks)
    marks = [mark for mark in marks if mark.height >= small_text_ratio * tallest and not _is_flat_stroke(mark, tallest)]
    marks = [piece for mark in marks for piece in split_touching(mark, labels)]
    return labels, sorted(marks, key=lambda mark: (mark.x + mark.right) / 2)


def _is_flat_stroke(mark: _Mark, tallest: int) -> bool:
    """Much wider than tall yet clearly shorter than the digits: a detached bar or tail, not a digit."""
    return mark.width > 1.5 * mark.height and mark.height < 0.6 * tallest


def attach_fragments(marks: list, small_text_ratio: float = SMALL_TEXT_RATIO) -> list:
    """Attach detached pieces of a digit (a 5's bar, a 7's stroke) to the digit they sit on.

    A fragment is a mark too short to be a digit, or a flat stroke; it is not
    a letter of small text (its longer side is at least 30% of the tallest digit).
    It joins the digit it overlaps most in x when they are close vertically and
    the result is still shaped like one digit. Fragments left over are dropped
    later with the small marks.
    """
    tallest = max(mark.height for mark in marks)
    is_fragment = [(mark.height < small_text_ratio * tallest or _is_flat_stroke(mark, tallest))
                   and max(mark.width, mark.height) >= 0.3 * tallest for mark in marks]
    digits = [mark for mark, fragment in zip(marks, is_fragment) if not fragment]
    leftovers = []
    for mark, fragment in zip(marks, is_fragment):
        if not fragment:
            continue
        best, best_overlap = None, 0.0
        for index, digit in enumerate(digits):
            overlap = min(mark.right, digit.right) - max(mark.x, digit.x)
            gap = max(mark.y, digit.y) - min(mark.bottom, digit.bottom)
            merged = digit.merged(mark)
            if (overlap >= 0.25 * min(mark.width, digit.width) and gap <= 0.35 * digit.height
                    and merged.width <= 1.3 * merged.height and overlap > best_overlap):
                best, best_overlap = index, overlap
        if best is None:
            leftovers.append(mark)
        else:
            digits[best] = digits[best].merged(mark)
    return digits + leftovers


def split_touching(mark: _Mark, labels: np.ndarray, max_aspect: float = 1.5) -> list:
    """Split a mark much wider than a digit (digits written touching) where one thin stroke joins them.

    A cut is made only at a column in the middle 30-70% of the mark crossed by a
    single thin run of ink, and only when both sides are still digit-tall; a
    wide single digit (a flat 0, a 2 with a long tail) has no such column and is
    kept whole. Pieces still too wide are split again.
    """
    if mark.width <= max_aspect * mark.height:
        return [mark]
    region = np.isin(labels[mark.y:mark.bottom, mark.x:mark.right], mark.labels)
    if isinstance(mark, _SplitMark):
        columns = np.arange(mark.x, mark.right)
        region &= ((columns >= mark.column_range[0]) & (columns < mark.column_range[1]))[None, :]
    cut = _thin_joint(region)
    if cut is None:
        return [mark]
    pieces = []
    for start, end in ((0, cut), (cut, mark.width)):
        piece = region[:, start:end]
        rows = np.flatnonzero(piece.any(axis=1))
        cols = np.flatnonzero(piece.any(axis=0))
        if rows.size == 0 or rows[-1] - rows[0] + 1 < 0.65 * mark.height:
            return [mark]
        pieces.append(_SplitMark(mark.x + start + int(cols[0]), mark.y + int(rows[0]), int(cols[-1] - cols[0] + 1),
                                 int(rows[-1] - rows[0] + 1), mark.labels, (mark.x + start, mark.x + end)))
    return [part for piece in pieces for part in split_touching(piece, labels, max_aspect)]


def _thin_joint(region: np.ndarray) -> int | None:
    """The column in the middle of a wide shape crossed by one thin run of ink (or none), as a cut position."""
    height, width = region.shape
    low, high = int(0.3 * width), int(0.7 * width)
    sums = region[:, low:high].sum(axis=0)
    runs = (np.diff(region[:, low:high].astype(np.int8), axis=0) == 1).sum(axis=0) + region[0, low:high]
    allowed = (runs <= 1) & (sums <= 0.35 * height)
    if not allowed.any():
        return None
    candidates = np.flatnonzero(allowed)
    return low + int(candidates[np.argmin(sums[candidates])])


@dataclass
class _SplitMark(_Mark):
    """A piece of a mark cut from touching digits: only the columns in ``column_range`` belong to it."""

    column_range: tuple = (0, 0)


def mark_mask(mark: _Mark, labels: np.ndarray) -> np.ndarray:
    """The mark's own ink (uint8 0/255) inside its box: other marks' strokes reaching in are left out."""
    region = np.isin(labels[mark.y:mark.bottom, mark.x:mark.right], mark.labels)
    if isinstance(mark, _SplitMark):
        columns = np.arange(mark.x, mark.right)
        region &= ((columns >= mark.column_range[0]) & (columns < mark.column_range[1]))[None, :]
    return region.astype(np.uint8) * 255


# ---------------------------------------------------------------- MNIST crops
def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels of a binary shape: twice its area over its perimeter."""
    import cv2

    binary = (mask > 0).astype(np.uint8)
    area = float(binary.sum())
    if area == 0:
        return 0.0
    contours, _ = cv2.findContours(binary, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    perimeter = sum(cv2.arcLength(contour, True) for contour in contours)
    return 2.0 * area / perimeter if perimeter > 0 else float(min(binary.shape))


def normalize_stroke(mask: np.ndarray, target_ratio: float = MNIST_STROKE_RATIO) -> np.ndarray:
    """Thicken a thin-pen digit (or thin a marker's) towards MNIST's stroke width relative to its size.

    Returns a tight crop of the adjusted binary shape.
    """
    import cv2

    binary = (mask > 0).astype(np.uint8) * 255
    side = max(binary.shape)
    width = stroke_width(binary)
    ratio = width / side if side else 0.0
    if 0 < ratio < 0.65 * target_ratio:
        grow = int(round(0.8 * target_ratio * side - width))
        if grow >= 1:
            binary = cv2.copyMakeBorder(binary, grow, grow, grow, grow, cv2.BORDER_CONSTANT, value=0)
            binary = cv2.dilate(binary, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow + 1, grow + 1)))
    elif ratio > 1.7 * target_ratio:
        shrink = int(round(width - 1.3 * target_ratio * side))
        if shrink >= 2:
            thinner = cv2.erode(binary, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (shrink + 1, shrink + 1)))
            if thinner.any():
                binary = thinner
    return _tight(binary)


def _tight(binary: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero(binary.any(axis=1))
    cols = np.flatnonzero(binary.any(axis=0))
    if rows.size == 0:
        return binary
    return binary[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """(x, y) centre of mass of the pixel values, in pixel-index coordinates."""
    import cv2

    moments = cv2.moments(np.asarray(image, dtype=np.float32))
    if moments["m00"] <= 0:
        raise ValueError("the image has no ink: its centre of mass is undefined")
    return moments["m10"] / moments["m00"], moments["m01"] / moments["m00"]


def mnist_crop(mask: np.ndarray, box: int = MNIST_BOX, size: int = MNIST_SIZE, normalize: bool = True) -> np.ndarray:
    """One digit's ink (any size, nonzero = ink) -> (size, size) uint8 as MNIST was made.

    Stroke width brought into MNIST's range (``normalize``), longer side scaled to
    ``box`` pixels keeping the aspect ratio (area interpolation: anti-aliased grey
    edges), then shifted with sub-pixel precision so the centre of mass lands on
    the centre of the ``size`` x ``size`` field.
    """
    import cv2

    mask = np.asarray(mask)
    if mask.ndim != 2 or not (mask > 0).any():
        raise ValueError("mnist_crop needs a 2-D mask with some ink")
    if not 0 < box <= size:
        raise ValueError(f"box must be in (0, size], got box={box}, size={size}")
    shape = normalize_stroke(mask) if normalize else _tight((mask > 0).astype(np.uint8) * 255)
    height, width = shape.shape
    side = max(height, width)
    square = np.zeros((side, side), np.uint8)
    top, left = (side - height) // 2, (side - width) // 2
    square[top:top + height, left:left + width] = shape
    if side > box:
        scaled = cv2.resize(square, (box, box), interpolation=cv2.INTER_AREA)
    else:
        scaled = cv2.resize(cv2.GaussianBlur(square, (3, 3), 0.6), (box, box), interpolation=cv2.INTER_LINEAR)
    centre_x, centre_y = centre_of_mass(scaled)
    target = MNIST_CENTRE * (size / MNIST_SIZE)
    shift = np.float32([[1, 0, target - centre_x], [0, 1, target - centre_y]])
    return cv2.warpAffine(scaled, shift, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


# ---------------------------------------------------------------- the pipeline
def segment_digits(gray: np.ndarray, polarity: str | None = None, min_contrast: float = MIN_INK_CONTRAST,
                   small_text_ratio: float = SMALL_TEXT_RATIO) -> Segmentation:
    """Find the handwritten digits in a grayscale image and make each an MNIST-style 28x28 crop.

    ``polarity`` is detected unless given. Returns a :class:`Segmentation` with the
    crops and boxes left to right, or none and a ``message`` explaining why.
    """
    gray = np.asarray(gray)
    if gray.ndim != 2 or gray.size == 0:
        raise ValueError(f"expected a non-empty 2-D grayscale image, got shape {gray.shape}")
    if gray.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {gray.dtype}")
    original_shape = gray.shape
    work, scale = to_working_size(gray)
    polarity = polarity or detect_polarity(work)
    contrast = ink_contrast(work, polarity)
    empty = np.zeros((0, MNIST_SIZE, MNIST_SIZE), np.uint8)
    if float(contrast.max()) < min_contrast:
        return Segmentation(empty, (), polarity, "no ink found: the image is blank or has too little contrast", original_shape)
    mask = remove_ruled_lines(binarize(contrast, min_contrast))
    labels, marks = find_digit_marks(mask, small_text_ratio)
    if not marks:
        return Segmentation(empty, (), polarity, "no ink found: no digit-sized marks (only specks or lines)", original_shape)
    crops, boxes = [], []
    for mark in marks:
        crops.append(mnist_crop(mark_mask(mark, labels)))
        boxes.append(_to_original(mark, scale, original_shape))
    return Segmentation(np.stack(crops), tuple(boxes), polarity, "", original_shape)


def _to_original(mark: _Mark, scale: float, shape: tuple) -> tuple[int, int, int, int]:
    height, width = shape
    x0, y0 = int(np.floor(mark.x / scale)), int(np.floor(mark.y / scale))
    x1, y1 = min(width, int(np.ceil(mark.right / scale))), min(height, int(np.ceil(mark.bottom / scale)))
    return (x0, y0, max(1, x1 - x0), max(1, y1 - y0))


def read_digits(path: Path, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, Segmentation]:
    """Read an image file and segment it: ``(grayscale image, segmentation)``."""
    gray = read_grayscale(path, max_pixels=max_pixels)
    return gray, segment_digits(gray)
