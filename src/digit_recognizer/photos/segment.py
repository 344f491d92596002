"""From an ink mask to MNIST-style 28x28 digits: marks, touching digits, crops.

MNIST was made from binary scans of handwritten digits: each digit was scaled so its longer side fits a
20x20 box (keeping the aspect ratio; the scaling's anti-aliasing leaves grey levels at the edges), then
placed in a 28x28 field with its centre of mass at the centre, white ink on black. :func:`segment_image`
brings a photo there, after :mod:`.preprocess` has made its ink mask:

1. connected components; specks dropped; broken strokes of one digit merged (components overlapping in x
   and stacked closely); small printed text and other marks much smaller than the tallest digit dropped;
   in a form, one digit per box (the box found by :func:`.preprocess.find_form_boxes`);
2. a number written at a slant is turned upright (its baseline angle from the marks' bottoms) and cut again;
3. a tiny number (a few tens of pixels tall) is cut again from its region upsampled before thresholding, and
   each of its digits is read at a few thresholds, the one the model is surest of kept (with a model);
4. touching digits: a wide mark is cut along candidate paths (:func:`cut_paths`: least-ink paths that may go
   round interleaving strokes, projection minima, the outline's valleys), every possible piece is read by the
   model and scored with a width prior for the class read, and the segmentation with the best total score
   (the whole mark among them) is chosen by dynamic programming (:func:`split_by_recognition`); without a model,
   a thin joint is cut (:func:`split_touching`);
5. per digit, read left to right: stroke width brought into MNIST's range, longer side scaled to 20 px with
   area interpolation (anti-aliased greys), placed in 28x28 by centre of mass (:func:`mnist_crop`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digit_recognizer.photos.preprocess import (  # noqa: F401  (re-exported: the names callers know)
    DARK_ON_LIGHT,
    IMAGE_SUFFIXES,
    LIGHT_ON_DARK,
    MAX_PIXELS,
    MIN_INK_CONTRAST,
    WORK_MAX_SIDE,
    WORK_MIN_SIDE,
    ImageReadError,
    binarize,
    collect_image_files,
    detect_polarity,
    expected_from_name,
    ink_contrast,
    is_image_file,
    read_grayscale,
    read_image,
    remove_ruled_lines,
    resize_longer_side,
    stroke_width,
    to_gray,
    to_working_size,
)

MNIST_SIZE = 28
MNIST_BOX = 20
# Where the centre of mass goes, in pixel-index coordinates: a quarter pixel from the
# array's geometric centre (13.5) and from where MNIST's digits have it on average (14.0).
MNIST_CENTRE = 13.75
MNIST_STROKE_RATIO = 0.128  # median stroke width / longer side of MNIST digits
SMALL_TEXT_RATIO = 0.45  # marks shorter than this fraction of the tallest digit are dropped


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
    debug: tuple = ()  # (title, RGB uint8 image) pairs: the intermediate masks, when asked for
    read: tuple = ()  # per crop, the string reader's probabilities (10,) where it read the digit, else None

    def probabilities(self, classify) -> np.ndarray:
        """(n, 10): the classifier's reading of the crops, with the string reader's where it read the digit."""
        probabilities = np.array(classify(self.crops), np.float32)
        for index, read in enumerate(self.read):
            if read is not None:
                probabilities[index] = read
        return probabilities

    def __len__(self) -> int:
        return len(self.crops)


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

    def merged(self, other: _Mark) -> _Mark:
        x, y = min(self.x, other.x), min(self.y, other.y)
        return _Mark(
            x, y, max(self.right, other.right) - x, max(self.bottom, other.bottom) - y, self.labels + other.labels
        )


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
    return (
        overlap >= 0.1 * narrower
        and short.height < 0.8 * tall.height
        and vertical >= 0.7 * short.height
        and union.width <= 1.0 * union.height
    )


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


def find_digit_marks(
    mask: np.ndarray, small_text_ratio: float = SMALL_TEXT_RATIO, split: bool = True
) -> tuple[np.ndarray, list]:
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
    if split:
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
    is_fragment = [
        (mark.height < small_text_ratio * tallest or _is_flat_stroke(mark, tallest))
        and max(mark.width, mark.height) >= 0.3 * tallest
        for mark in marks
    ]
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
            if (
                overlap >= 0.25 * min(mark.width, digit.width)
                and gap <= 0.35 * digit.height
                and merged.width <= 1.3 * merged.height
                and overlap > best_overlap
            ):
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
    region = np.isin(labels[mark.y : mark.bottom, mark.x : mark.right], mark.labels)
    if isinstance(mark, _SplitMark):
        columns = np.arange(mark.x, mark.right)
        region &= ((columns >= mark.column_range[0]) & (columns < mark.column_range[1]))[None, :]
    cut = _thin_joint(region)
    if cut is None:
        return [mark]
    pieces = []
    for start, end in ((0, cut), (cut, mark.width)):
        piece = region[:, start:end]
        rows, cols = _ink_extent(piece)
        if rows.size == 0 or rows[-1] - rows[0] + 1 < 0.65 * mark.height:
            return [mark]
        pieces.append(_SplitMark(*_piece_box(mark, start, rows, cols), mark.labels, (mark.x + start, mark.x + end)))
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
    if getattr(mark, "piece_mask", None) is not None:
        return mark.piece_mask
    region = np.isin(labels[mark.y : mark.bottom, mark.x : mark.right], mark.labels)
    if isinstance(mark, _SplitMark):
        columns = np.arange(mark.x, mark.right)
        region &= ((columns >= mark.column_range[0]) & (columns < mark.column_range[1]))[None, :]
    return region.astype(np.uint8) * 255


# ---------------------------------------------------------------- MNIST crops
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


def _ink_extent(binary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows and the columns of ``binary`` that hold ink."""
    return np.flatnonzero(binary.any(axis=1)), np.flatnonzero(binary.any(axis=0))


def _piece_box(mark: _Mark, start: int, rows: np.ndarray, cols: np.ndarray) -> tuple[int, int, int, int]:
    """(x, y, width, height) of a piece cut from ``mark`` at column ``start``, tight around its ink ``rows``/``cols``."""
    return (
        mark.x + start + int(cols[0]),
        mark.y + int(rows[0]),
        int(cols[-1] - cols[0] + 1),
        int(rows[-1] - rows[0] + 1),
    )


def _tight(binary: np.ndarray) -> np.ndarray:
    rows, cols = _ink_extent(binary)
    if rows.size == 0:
        return binary
    return binary[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


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
    square[top : top + height, left : left + width] = shape
    if side > box:
        scaled = cv2.resize(square, (box, box), interpolation=cv2.INTER_AREA)
    else:
        scaled = cv2.resize(cv2.GaussianBlur(square, (3, 3), 0.6), (box, box), interpolation=cv2.INTER_LINEAR)
    centre_x, centre_y = centre_of_mass(scaled)
    target = MNIST_CENTRE * (size / MNIST_SIZE)
    shift = np.float32([[1, 0, target - centre_x], [0, 1, target - centre_y]])
    return cv2.warpAffine(
        scaled, shift, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


# ---------------------------------------------------------------- touching digits, by recognition
MIN_DIGIT_WIDTH = 0.12  # a digit (a thin 1) is at least this fraction of its height wide...
MAX_DIGIT_WIDTH = 1.3  # ...and at most this
SPLIT_ASPECT = 1.2  # marks at least this wide for their height may be several touching digits
SIBLING_RATIO = 1.5  # ...and, among several separate marks, at least this much wider than their median
WHOLE_BONUS = 1.5  # the prior for a mark being one digit: cutting it must win by more than this...
SIBLING_BONUS = 1.0  # ...and by this much more in a number of separate marks, where touching digits are rarer
CONFIDENCE_WEIGHT = 3.0  # the weight of a piece's log-probability against the log-priors on its shape
# Width / height of MNIST's digits per class (tight crops of train.csv): mean and spread. A piece's width for its
# height is scored against the class the model reads in it: a 77 read as one 7 is far too wide for a 7. Digits cut
# from touching ones lose what overlapped their neighbours: the mean expected is CUT_NARROWING of MNIST's, and
# narrower pieces are doubted NARROW_SPREAD times less than wider ones.
CLASS_ASPECT = np.array([0.91, 0.43, 0.94, 0.79, 0.78, 0.96, 0.72, 0.77, 0.77, 0.67])
CLASS_ASPECT_SPREAD = np.array([0.19, 0.20, 0.23, 0.17, 0.18, 0.27, 0.17, 0.17, 0.18, 0.14])
CUT_NARROWING = 0.9
NARROW_SPREAD = 2.5
MIN_PIECE_HEIGHT = 0.75  # a piece shorter than this fraction of its mark is doubtful (a fragment, a bar)
CUT_STEP = 0.08  # a cut path is tried every this x the mark's height...
CUT_BAND = 0.2  # ...wandering at most this x the height sideways from its column
INK_COST = 12.0  # a cut path crossing one ink pixel costs as much as going around it through 12 pixels of paper
VIEW_SHIFT = 2  # each piece is read as cropped and shifted this many pixels left and right: the average is scored


@dataclass(frozen=True)
class Piece:
    """One digit cut from a wide mark: its ink (bool, the mark's region's shape) and the cut paths bounding it
    (per row, the first column of the piece and the first column right of it)."""

    mask: np.ndarray
    left: np.ndarray
    right: np.ndarray

    @property
    def span(self) -> tuple[int, int]:
        return int(self.left.min()), int(self.right.max())


def cut_paths(region: np.ndarray, step_ratio: float = CUT_STEP, band_ratio: float = CUT_BAND) -> list[np.ndarray]:
    """Where touching digits may part: top-to-bottom paths through the least ink, one started every ``step_ratio`` x
    height; the mark's two edges first and last. Left to right, without duplicates.

    A path goes down row by row (straight or diagonally) and may run sideways along a row (under one digit and over
    the tail of the next), never up: it can go round a stroke, between interleaving strokes, and cross where two
    digits overlap. Each is the cheapest such path (ink crossed x :data:`INK_COST` + length + a little for straying)
    within ``band_ratio`` x height of its column, found by dynamic programming row by row. A path is given as, per
    row, the first column right of it (a sideways run belongs to the right).
    """
    height, width = region.shape
    edges = [np.zeros(height, np.int32), np.full(height, width, np.int32)]
    margin = max(2, int(MIN_DIGIT_WIDTH * height))
    step = max(2, int(round(step_ratio * height)))
    centres = np.arange(margin, width - margin + 1, step)
    if centres.size == 0:
        return edges
    band = max(2, int(round(band_ratio * height)))
    offsets = np.arange(-band, band + 1)
    columns = centres[:, None] + offsets[None, :]  # (paths, band columns)
    valid = (columns >= 1) & (columns <= width - 1)
    columns = np.clip(columns, 0, width - 1)
    blocked = 1e6
    cost = np.where(region, INK_COST, 1.0).astype(np.float64)
    stray = 0.03 * np.abs(offsets)[None, :]
    positions = np.broadcast_to(np.arange(len(offsets)), columns.shape)
    total = np.where(valid, cost[0][columns] + stray, blocked)
    down = np.zeros((height, *columns.shape), np.int8)  # per row and column: where the path came down from (-1, 0, 1)
    along = np.zeros((height, *columns.shape), np.int32)  # ...and the column its sideways run in the row started at
    wall = np.full((len(centres), 1), blocked)
    for row in range(height):
        step_cost = np.where(valid, cost[row][columns] + stray, blocked)
        if row:
            options = np.stack([np.hstack([wall, total[:, :-1] + 0.4]), total, np.hstack([total[:, 1:] + 0.4, wall])])
            choice = options.argmin(axis=0)
            total = np.take_along_axis(options, choice[None], axis=0)[0] + step_cost
            down[row] = choice - 1
        total, along[row] = _run_sideways(total, step_cost, positions)
    index = total.argmin(axis=1)
    paths = np.empty((len(centres), height), np.int32)
    rows = np.arange(len(centres))
    for row in range(height - 1, -1, -1):
        start = along[row, rows, index]
        paths[:, row] = columns[rows, np.minimum(start, index)]
        index = start + down[row, rows, start]
    straight = np.repeat(np.asarray(projection_minima(region, step_ratio), np.int32)[:, None], height, axis=1)
    paths = np.vstack([paths, straight, *contour_valley_cuts(region)])
    paths = paths[np.argsort(paths.mean(axis=1), kind="stable")]
    kept = []
    for path in paths:
        if path.min() < 1 or path.max() > width - 1:
            continue
        if kept and np.abs(path - kept[-1]).mean() < 1.5:
            continue
        kept.append(path)
    return [edges[0], *kept, edges[1]]


def projection_minima(region: np.ndarray, step_ratio: float = CUT_STEP) -> list[int]:
    """Columns where touching digits may part along a straight line: one every ``step_ratio`` x height, each moved to
    the column holding least ink near it (a minimum of the column profile, lightly smoothed)."""
    import cv2

    height, width = region.shape
    profile = cv2.blur(region.sum(axis=0).astype(np.float32).reshape(1, -1), (5, 1)).ravel()
    step = max(2, int(round(step_ratio * height)))
    margin = max(2, int(MIN_DIGIT_WIDTH * height))
    cuts = []
    for centre in range(margin, width - margin + 1, step):
        low, high = max(margin, centre - step // 2), min(width - margin, centre + step // 2 + 1)
        if high > low:
            column = low + int(np.argmin(profile[low:high]))
            if not cuts or column - cuts[-1] >= 2:
                cuts.append(column)
    return cuts


def contour_valley_cuts(region: np.ndarray, prominence: float = 0.06) -> list[np.ndarray]:
    """Straight cuts at the valleys of a mark's outline, where two touching digits' tops (or bottoms) meet: a cut
    down each valley of the top outline and up each valley of the bottom one, and one joining a top valley to the
    bottom valley nearest below it (slanted when they are not in line). Each as a path (see :func:`cut_paths`)."""
    from scipy.signal import find_peaks

    height, width = region.shape
    inked = region.any(axis=0)
    top = np.where(inked, region.argmax(axis=0), height).astype(np.float64)
    bottom = np.where(inked, height - 1 - region[::-1].argmax(axis=0), -1).astype(np.float64)
    margin = max(2, int(MIN_DIGIT_WIDTH * height))
    tops = [
        c
        for c in find_peaks(np.minimum(top, height), prominence=prominence * height)[0]
        if margin <= c < width - margin
    ]
    bottoms = [
        c for c in find_peaks(-np.maximum(bottom, 0), prominence=prominence * height)[0] if margin <= c < width - margin
    ]
    cuts = [np.full(height, column, np.int32) for column in (*tops, *bottoms)]
    for column in tops:
        near = [other for other in bottoms if abs(other - column) <= 0.35 * height and other != column]
        if near:
            other = min(near, key=lambda candidate: abs(candidate - column))
            cuts.append(np.round(np.linspace(column, other, height)).astype(np.int32))
    return cuts


def _run_sideways(total: np.ndarray, step_cost: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One row of :func:`cut_paths`: the cheapest cost at each column when the path may also run along the row (from
    the left or the right) before going down, and the column each run started at."""
    best, start = total.copy(), positions.copy()
    for flip in (False, True):
        cost = step_cost[:, ::-1] if flip else step_cost
        entered = total[:, ::-1] if flip else total
        climbed = np.cumsum(cost, axis=1)
        value = entered - climbed
        lowest = np.minimum.accumulate(value, axis=1)
        where = np.maximum.accumulate(np.where(value <= lowest, positions, 0), axis=1)
        running = lowest + climbed
        if flip:
            running, where = running[:, ::-1], (positions.shape[1] - 1 - where)[:, ::-1]
        better = running < best
        best[better], start[better] = running[better], where[better]
    return best, start


def piece_between(region: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The ink between two cut paths (bool), without the slivers a cut takes off a neighbour (small pieces that
    touch a cut)."""
    import cv2

    columns = np.arange(region.shape[1])[None, :]
    piece = region & (columns >= left[:, None]) & (columns < right[:, None])
    count, labels, stats, _ = cv2.connectedComponentsWithStats(piece.astype(np.uint8), connectivity=8)
    if count <= 2:
        return piece
    total = float(stats[1:, cv2.CC_STAT_AREA].sum())
    at_cut = piece & ((columns == left[:, None]) | (columns == right[:, None] - 1))
    touching = np.zeros(count, bool)
    touching[np.unique(labels[at_cut])] = True
    keep = ~(touching & (stats[:, cv2.CC_STAT_AREA] < 0.15 * total))
    keep[0] = False
    return keep[labels]


def piece_score(probability: np.ndarray, aspect: float, height_ratio: float, cut: bool = True) -> float:
    """How much a piece looks like one digit: the log of the model's top probability (x :data:`CONFIDENCE_WEIGHT`)
    plus log-priors on its width for its height (for the class read; a piece ``cut`` from a wider mark is expected
    a little narrower than a whole digit) and on its height (a piece much shorter than the mark is a fragment)."""
    label = int(probability.argmax())
    score = CONFIDENCE_WEIGHT * float(np.log(max(float(probability.max()), 1e-6)))
    mean = (CUT_NARROWING if cut else 1.0) * CLASS_ASPECT[label]
    spread = CLASS_ASPECT_SPREAD[label] * (NARROW_SPREAD if aspect < mean else 1.0)
    score -= 0.5 * ((aspect - mean) / spread) ** 2
    if height_ratio < MIN_PIECE_HEIGHT:
        score -= 0.5 * ((MIN_PIECE_HEIGHT - height_ratio) / 0.08) ** 2
    return score


def read_views(crops: np.ndarray, classify) -> np.ndarray:
    """The model's probabilities for crops, averaged over the crop as it is and shifted :data:`VIEW_SHIFT` pixels
    left and right: a steadier reading of doubtful pieces than one view."""
    crops = np.asarray(crops)
    views = np.concatenate([crops, np.roll(crops, VIEW_SHIFT, axis=2), np.roll(crops, -VIEW_SHIFT, axis=2)])
    return np.asarray(classify(views)).reshape(3, len(crops), -1).mean(axis=0)


def split_by_recognition(
    region: np.ndarray, classify, whole_bonus: float = WHOLE_BONUS, count: int | None = None
) -> list[Piece]:
    """Touching digits cut where the model reads them best: the chosen digits, left to right.

    Every stretch of the mark between two cut paths (:func:`cut_paths`) that could be one digit is read by the
    model (averaged over shifted views, :func:`read_views`) and scored by :func:`piece_score`; the segmentation with
    the best total score is found by dynamic programming over the paths (:func:`best_segmentations`). The whole mark
    is one of the candidates, with ``whole_bonus`` added to its score: a wide single digit stays whole unless it
    reads clearly better cut. With ``count`` (digits known to be there, e.g. from the string reader) the best
    segmentation into that many pieces is taken when there is one.
    """
    height, width = region.shape
    whole = Piece(region, np.zeros(height, np.int32), np.full(height, width, np.int32))
    if width < SPLIT_ASPECT * height or count == 1:
        return [whole]
    paths = cut_paths(region)
    spans, masks, crops, shapes = [], [], [], []
    last = len(paths) - 1
    for i, left in enumerate(paths):
        for j in range(i + 1, len(paths)):
            right = paths[j]
            extent = float((right - left).mean())
            if extent > MAX_DIGIT_WIDTH * height and (i, j) != (0, last):
                if i > 0:
                    break
                continue  # the whole mark is always a candidate, however wide
            if extent < MIN_DIGIT_WIDTH * height:
                continue
            piece = region if (i, j) == (0, last) else piece_between(region, left, right)
            rows, cols = _ink_extent(piece)
            if rows.size == 0:
                continue
            piece_height = rows[-1] - rows[0] + 1
            if piece_height < 0.4 * height:
                continue
            spans.append((i, j))
            masks.append(piece)
            crops.append(mnist_crop(piece.astype(np.uint8) * 255))
            shapes.append(((cols[-1] - cols[0] + 1) / piece_height, piece_height / height, (i, j) != (0, last)))
    if len(spans) <= 1:
        return [whole]
    probabilities = read_views(np.stack(crops), classify)
    scores = {
        span: piece_score(probability, *shape) + (0.0 if shape[2] else whole_bonus)
        for span, probability, shape in zip(spans, probabilities, shapes)
    }
    pieces = dict(zip(spans, masks))
    ways = best_segmentations(scores, len(paths))
    if not ways:
        return [whole]
    if count not in ways:
        count = max(ways, key=lambda n: ways[n][0])
    chosen = ways[count][1]
    return [Piece(pieces[(i, j)], paths[i], paths[j]) for i, j in chosen]


def best_segmentations(scores: dict, nodes: int, most: int = 8) -> dict:
    """{number of pieces: (best total score, [(i, j) spans])} over paths from node 0 to node ``nodes - 1`` whose
    steps are the scored spans ``scores[(i, j)]``: dynamic programming over the nodes and the piece count."""
    best = np.full((nodes, most + 1), -np.inf)
    previous = np.full((nodes, most + 1), -1, np.int64)
    best[0, 0] = 0.0
    for j in range(1, nodes):
        for i in range(j):
            score = scores.get((i, j))
            if score is None:
                continue
            candidate = best[i, :-1] + score
            better = candidate > best[j, 1:]
            best[j, 1:][better] = candidate[better]
            previous[j, 1:][better] = i
    ways = {}
    for count in range(1, most + 1):
        if best[-1, count] == -np.inf:
            continue
        spans, j, n = [], nodes - 1, count
        while j > 0:
            i = int(previous[j, n])
            spans.append((i, j))
            j, n = i, n - 1
        ways[count] = (float(best[-1, count]), spans[::-1])
    return ways


# ---------------------------------------------------------------- the pipeline
TINY_HEIGHT = 40  # digits shorter than this (working pixels) are cut again from their region upsampled
TINY_EDGE_LEVEL = 0.5  # ...thresholded at this fraction of their ink's strength...
TINY_OTHER_LEVELS = (0.3, 0.4, 0.6, 0.7)  # ...and each digit also at these, the model's surest reading kept
DESKEW_MIN_DEGREES = 2.0  # a number's baseline tilted by more than this is turned upright
# A digit cut where the string reader read several keeps the reader's reading of it (touching photos, seeds 1 and 11:
# 63 of 80 against 41 when the reader only gives the count and the classifier reads the cut pieces; seed 1's first 20:
# 16 against 14 with the mean of the reader's and the classifier's probabilities)
READER_DIGITS = True
READER_ASPECT = 0.95  # marks at least this wide for their height are read whole by the string reader (seed 11:
# 35 of 40 touching photos against 32 at SPLIT_ASPECT, where heavily overlapping digits were never read whole)...
READER_NARROW_CONFIDENCE = 0.6  # ...but one narrower than SPLIT_ASPECT is cut only when the reader is this sure of its
# frame path (dev seeds: overlapping digits read right at 0.69-0.70; a single 8 read "95" at 0.46)


@dataclass
class _View:
    """An ink mask to cut digits from, and how its pixels map back to the input image (3x3 matrix); the ink's
    contrast, while it may still be enlarged as a tiny number; once enlarged, the ink's ``strength`` (its smoothed
    contrast over its own strength, the mask's pixels above :data:`TINY_EDGE_LEVEL`) to read it at other levels."""

    mask: np.ndarray
    to_original: np.ndarray
    contrast: np.ndarray | None = None
    strength: np.ndarray | None = None


def segment_image(
    image: np.ndarray,
    classify=None,
    debug: bool = False,
    read_string=None,
    polarity: str | None = None,
    min_contrast: float = MIN_INK_CONTRAST,
    small_text_ratio: float = SMALL_TEXT_RATIO,
) -> Segmentation:
    """Find the handwritten digits in an image (HxW gray or HxWx3 RGB uint8) and make each an MNIST-style crop.

    ``classify`` (crops -> probabilities), when given, chooses how touching digits are cut; ``read_string``
    (binary marks -> :class:`~digit_recognizer.modeling.reader.StringReading`), when given too, reads each mark
    that may be several touching digits as a whole, which says how many digits to cut it into and what they are
    (:func:`_split_mark`). ``polarity`` is detected unless given. With ``debug`` the intermediate masks come back in ``Segmentation.debug``.
    """
    from digit_recognizer.photos import preprocess

    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {image.dtype}")
    if image.size == 0 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"expected a non-empty HxW gray or HxWx3 RGB image, got shape {image.shape}")
    original_shape = image.shape[:2]
    work, scale = to_working_size(image)
    to_original = np.diag([1 / scale, 1 / scale, 1.0])
    steps = []
    corners = preprocess.find_page(work)
    if corners is not None:
        if debug:
            steps.append(("page", _outlined(work, corners)))
        work, page_to_work = preprocess.rectify(work, corners)
        work, page_scale = to_working_size(work)
        to_original = to_original @ page_to_work @ np.diag([1 / page_scale, 1 / page_scale, 1.0])
    gray = to_gray(work)
    polarity = polarity or detect_polarity(gray)
    contrast = ink_contrast(gray, polarity, colour=work if work.ndim == 3 else None, min_contrast=min_contrast)
    empty = np.zeros((0, MNIST_SIZE, MNIST_SIZE), np.uint8)
    if float(contrast.max()) < min_contrast:
        return Segmentation(
            empty,
            (),
            polarity,
            "no ink found: the image is blank or has too little contrast",
            original_shape,
            tuple(steps),
        )
    edges = preprocess.shadow_edges(gray, polarity)
    ink = preprocess.bridge_shadow_edges(
        preprocess.ink_on_shadow_edges(gray, polarity, contrast, edges, min_contrast), edges
    )
    ruled = remove_ruled_lines(ink)
    # A form's printed frame is looked for in the faint ink too: thin and light, it is often only in pieces in the
    # ink mask, and a frame in pieces is no frame (its digits would be read with bits of it, or not at all).
    # Only a single row of boxes is taken from it: the faint ink also holds the fine grid of squared paper.
    form = preprocess.find_form_boxes(ruled)
    faint_form = preprocess.find_form_boxes(remove_ruled_lines(preprocess.faint_ink(contrast, min_contrast)))
    if len(faint_form.boxes) > len(form.boxes) and _one_row(faint_form.boxes):
        form = faint_form
    clean = preprocess.remove_lines(ruled, form.lines) if form.boxes else ruled
    if debug:
        steps.append(("ink", _with_edges(ink, edges)))
        steps.append(("lines removed", _removed(ink, clean)))
    view = _View(clean, to_original, contrast)
    if form.boxes:
        labels, marks = marks_in_boxes(clean, form.boxes, form.lines)
    else:
        labels, marks = find_digit_marks(clean, small_text_ratio, split=classify is None)
        view, labels, marks = _upright(view, labels, marks, small_text_ratio, classify)
        view, labels, marks = _enlarged_if_tiny(view, labels, marks, small_text_ratio, classify, min_contrast)
    if not marks:
        return Segmentation(
            empty,
            (),
            polarity,
            "no ink found: no digit-sized marks (only specks or lines)",
            original_shape,
            tuple(steps),
        )
    if classify is not None and not form.boxes:
        marks = [piece for mark in marks for piece in _split_mark(mark, marks, labels, classify, read_string)]
    crops = [mnist_crop(mark_mask(mark, labels)) for mark in marks]
    if classify is not None and view.strength is not None:
        crops = _surest_levels(crops, marks, labels, view.strength, classify)
    boxes = [_box_to_original(mark, view.to_original, original_shape) for mark in marks]
    if debug:
        steps.append(("cuts", _cuts(view.mask, marks)))
    read = tuple(getattr(mark, "read", None) for mark in marks)
    if all(probabilities is None for probabilities in read):
        read = ()
    return Segmentation(np.stack(crops), tuple(boxes), polarity, "", original_shape, tuple(steps), read)


def segment_digits(
    gray: np.ndarray,
    polarity: str | None = None,
    min_contrast: float = MIN_INK_CONTRAST,
    small_text_ratio: float = SMALL_TEXT_RATIO,
) -> Segmentation:
    """Find the handwritten digits in a grayscale image without a model (see :func:`segment_image`)."""
    gray = np.asarray(gray)
    if gray.ndim != 2 or gray.size == 0:
        raise ValueError(f"expected a non-empty 2-D grayscale image, got shape {gray.shape}")
    return segment_image(gray, None, polarity=polarity, min_contrast=min_contrast, small_text_ratio=small_text_ratio)


def _one_row(boxes: tuple) -> bool:
    """Whether the boxes (x, y, w, h) stand side by side in one row: their middles within half a box's height."""
    middles = [y + h / 2 for _x, y, _w, h in boxes]
    return max(middles) - min(middles) <= 0.5 * min(h for *_rest, h in boxes)


FRAME_RESIDUE = 0.9  # a component with this fraction of its pixels next to the removed frame is left of the frame...
FRAME_RESIDUE_GAP = 3  # ...unless it comes within this many pixels of other ink (a stroke's piece the frame cut off)


def marks_in_boxes(mask: np.ndarray, boxes: tuple, lines: np.ndarray | None = None) -> tuple[np.ndarray, list]:
    """One mark per form box that holds ink: the components whose centre lies in the box (strokes may cross its
    frame); ink outside every box (the form's printed words) is left out, and so, with ``lines`` (the frame's
    pixels that were removed), are the frame's leftovers: specks of its blurred edges lying (almost) all within a
    pixel of it (:data:`FRAME_RESIDUE`) and apart from the other ink (:data:`FRAME_RESIDUE_GAP`). A handwritten
    stroke lying along a frame line is wider than that, or, cut thin by the frame's removal, still next to its digit."""
    import cv2

    count, labels, stats, centroids = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8), connectivity=8)
    residue = np.zeros(count, bool)
    if lines is not None and lines.any():
        near = cv2.dilate((lines > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        beside = np.bincount(labels[near & (mask > 0)], minlength=count)
        residue = beside >= FRAME_RESIDUE * np.maximum(stats[:, cv2.CC_STAT_AREA], 1)
        residue[0] = False
        if residue.any():  # a piece of a digit's stroke the frame's removal cut off lies next to the digit
            strokes = ((mask > 0) & ~residue[labels]).astype(np.uint8)
            reach = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * FRAME_RESIDUE_GAP + 1, 2 * FRAME_RESIDUE_GAP + 1))
            beside_strokes = cv2.dilate(strokes, reach) > 0
            residue &= np.bincount(labels[beside_strokes & (mask > 0)], minlength=count) == 0
    marks = []
    for x, y, width, height in boxes:
        reach = 0.25 * height  # a stroke crossing the box's top or bottom line is cut off there, a little outside
        inside = [
            label
            for label in range(1, count)
            if x <= centroids[label][0] < x + width
            and y - reach <= centroids[label][1] < y + height + reach
            and stats[label][cv2.CC_STAT_AREA] >= max(12, 0.002 * width * height)
            and not residue[label]
        ]
        if not inside:
            continue
        mark = None
        for label in inside:
            left, top, w, h = (int(value) for value in stats[label][:4])
            piece = _Mark(left, top, w, h, [label])
            mark = piece if mark is None else mark.merged(piece)
        if mark.height >= 0.25 * height:
            marks.append(mark)
    return labels, marks


def _may_be_several(mark: _Mark, marks: list) -> bool:
    """Whether a mark is wide enough to be touching digits: wider than :data:`SPLIT_ASPECT` x its height and, in a
    number of several separate marks, clearly wider (:data:`SIBLING_RATIO`) than the others (a wide 2 or 4 among
    single digits stays whole)."""
    if mark.width < SPLIT_ASPECT * mark.height:
        return False
    siblings = _siblings(mark, marks)
    return len(siblings) < 2 or mark.width >= SIBLING_RATIO * float(np.median(siblings))


def _siblings(mark: _Mark, marks: list) -> list:
    """The widths of the other digit-tall marks of the number."""
    return [other.width for other in marks if other is not mark and other.height >= 0.6 * mark.height]


def _whole_bonus(mark: _Mark, marks: list) -> float:
    return WHOLE_BONUS + (SIBLING_BONUS if len(_siblings(mark, marks)) >= 2 else 0.0)


def _split_mark(mark: _Mark, marks: list, labels: np.ndarray, classify, read_string=None) -> list:
    """A mark of the number ``marks`` that may be several touching digits, cut into its digits
    (:func:`split_by_recognition`); a mark that cannot be several is returned as it is.

    With a string reader (``read_string``) the mark is first read whole: when it reads several digits, the mark is
    cut into that many, at the best cuts for that count or, when no cut paths give that many pieces (digits that
    overlap), straight down between the columns where the reader read them; the reader's reading of each digit is
    kept with it (:data:`READER_DIGITS`), since a piece cut from overlapping digits carries a neighbour's ink.
    A mark not wide enough to be cut on the classifier's word alone (:func:`_may_be_several`) but at least
    :data:`READER_ASPECT` x as wide as tall is cut only where the reader reads several digits in it with confidence
    :data:`READER_NARROW_CONFIDENCE`."""
    several = _may_be_several(mark, marks)
    if not several and (read_string is None or mark.width < READER_ASPECT * mark.height):
        return [mark]
    region = mark_mask(mark, labels) > 0
    reading = read_string([region])[0] if read_string is not None else None
    count = len(reading.digits) if reading is not None and len(reading.digits) >= 2 else None
    if not several and (count is None or reading.confidence < READER_NARROW_CONFIDENCE):
        return [mark]  # not wide enough to be cut on the classifier's word alone, nor on a doubtful reading
    pieces = split_by_recognition(region, classify, _whole_bonus(mark, marks), count=count)
    if count is not None and len(pieces) != count:
        pieces = straight_cuts(region, reading.columns)
    if len(pieces) == 1:
        return [mark]
    marks = []
    for index, piece in enumerate(pieces):
        rows, cols = _ink_extent(piece.mask)
        if rows.size == 0:
            continue
        marks.append(
            _CutMark(
                *_piece_box(mark, 0, rows, cols),
                mark.labels,
                (mark.x + piece.span[0], mark.x + piece.span[1]),
                piece_mask=piece.mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.uint8) * 255,
                cuts=tuple(
                    np.stack([mark.x + path, mark.y + np.arange(len(path))], axis=1)
                    for path, edge in ((piece.left, 0), (piece.right, region.shape[1]))
                    if not (path == edge).all()
                ),
                read=reading.probabilities[index] if count is not None and READER_DIGITS else None,
            )
        )
    return marks if len(marks) == len(pieces) else [mark]


def straight_cuts(region: np.ndarray, columns: np.ndarray) -> list[Piece]:
    """The mark cut straight down midway between neighbouring digits' columns (in the mark's ink box)."""
    height, width = region.shape
    cols = np.flatnonzero(region.any(axis=0))
    start = int(cols[0]) if cols.size else 0
    bounds = [0] + [int(round(start + (a + b) / 2)) for a, b in zip(columns[:-1], columns[1:])] + [width]
    bounds = np.clip(bounds, 0, width)
    pieces = []
    for left, right in zip(bounds[:-1], bounds[1:]):
        left_path, right_path = np.full(height, left, np.int32), np.full(height, max(left, right), np.int32)
        pieces.append(Piece(piece_between(region, left_path, right_path), left_path, right_path))
    return pieces


@dataclass
class _CutMark(_Mark):
    """A digit cut from touching digits by recognition: its own ink (slivers of neighbours left out), and the cut
    paths bounding it ((n, 2) x, y points in the mark's view) for the debug picture."""

    column_range: tuple = (0, 0)
    piece_mask: np.ndarray | None = None
    cuts: tuple = ()
    read: np.ndarray | None = None  # the string reader's probabilities for this digit, when it read it


def _upright(view: _View, labels, marks, small_text_ratio, classify):
    """Turn a number written at a slant upright: the line through its marks' centres gives the angle."""
    import cv2

    if len(marks) < 2:
        return view, labels, marks
    centres = np.float32([[(mark.x + mark.right) / 2, (mark.y + mark.bottom) / 2] for mark in marks])
    vx, vy, _, _ = cv2.fitLine(centres, cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
    angle = float(np.degrees(np.arctan2(vy, vx)))
    if angle > 90:
        angle -= 180
    if angle < -90:
        angle += 180
    tallest = max(mark.height for mark in marks)
    spread = float(np.ptp(centres[:, 0]))
    if not DESKEW_MIN_DEGREES <= abs(angle) <= 30 or spread < 1.5 * tallest:
        return view, labels, marks
    height, width = view.mask.shape
    rotation = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    corners = np.float32([[0, 0, 1], [width, 0, 1], [width, height, 1], [0, height, 1]]) @ rotation.T
    low, high = corners.min(axis=0), corners.max(axis=0)
    rotation[:, 2] -= low
    size = (int(np.ceil(high[0] - low[0])), int(np.ceil(high[1] - low[1])))
    mask = cv2.warpAffine(view.mask, rotation, size, flags=cv2.INTER_LINEAR, borderValue=0)
    mask = np.where(mask > 127, 255, 0).astype(np.uint8)
    to_view = np.vstack([rotation, [0, 0, 1]])
    contrast = (
        None
        if view.contrast is None
        else cv2.warpAffine(view.contrast, rotation, size, flags=cv2.INTER_LINEAR, borderValue=0)
    )  # turned too, so that a tiny number written at a slant can still be cut again enlarged
    rotated = _View(mask, view.to_original @ np.linalg.inv(to_view), contrast)
    new_labels, new_marks = find_digit_marks(mask, small_text_ratio, split=classify is None)
    if not new_marks:
        return view, labels, marks
    return rotated, new_labels, new_marks


def _enlarged_if_tiny(view: _View, labels, marks, small_text_ratio, classify, min_contrast):
    """Cut a tiny number (shorter than :data:`TINY_HEIGHT`) again from its region upsampled before thresholding."""
    import cv2

    if not marks or view.contrast is None:
        return view, labels, marks
    tallest = max(mark.height for mark in marks)
    if tallest >= TINY_HEIGHT:
        return view, labels, marks
    factor = min(6.0, 2.5 * TINY_HEIGHT / max(tallest, 4))
    margin = tallest
    height, width = view.mask.shape
    x0, y0 = max(0, min(mark.x for mark in marks) - margin), max(0, min(mark.y for mark in marks) - margin)
    x1, y1 = (
        min(width, max(mark.right for mark in marks) + margin),
        min(height, max(mark.bottom for mark in marks) + margin),
    )
    region = view.contrast[y0:y1, x0:x1]
    big = cv2.resize(region, (int((x1 - x0) * factor), int((y1 - y0) * factor)), interpolation=cv2.INTER_CUBIC)
    mask = binarize(np.clip(big, 0, 1), min_contrast)
    strength = None
    if mask.any():
        # Upsampled, a blurred stroke's faint flanks pass Otsu's threshold and make it bold (a 5's joint, a 9's
        # loop close up); its ink is cut again at half its own strength, where its true edge lies.
        ink_strength = float(np.percentile(big[mask > 0], 90))
        mask = binarize(np.clip(big, 0, 1), min(max(TINY_EDGE_LEVEL * ink_strength, min_contrast), 0.9))
        strength = cv2.GaussianBlur(np.clip(big, 0, 1).astype(np.float32), (0, 0), 1.0) / max(ink_strength, 1e-3)
    new_labels, new_marks = find_digit_marks(mask, small_text_ratio, split=classify is None)
    if not new_marks:
        return view, labels, marks
    to_view = np.float64([[1 / factor, 0, x0], [0, 1 / factor, y0], [0, 0, 1]])
    return _View(mask, view.to_original @ to_view, None, strength), new_labels, new_marks


def _surest_levels(crops: list, marks: list, labels: np.ndarray, strength: np.ndarray, classify) -> list:
    """The crops of a tiny number's digits, each read again cut at :data:`TINY_OTHER_LEVELS` of its ink's
    ``strength`` and replaced by the crop the model is surest of. A digit 20 pixels tall in a heavy JPEG has
    no one right level: half its strength closes one 8's loops and breaks another 5's joint. Only its own ink
    counts (the pixels near its mark: not its neighbours'); a digit cut from touching ones keeps its cut."""
    import cv2

    crops = list(crops)
    others = []
    for index, mark in enumerate(marks):
        if isinstance(mark, _CutMark):
            continue
        pad = max(3, mark.height // 8)
        top, left = max(0, mark.y - pad), max(0, mark.x - pad)
        bottom, right = min(strength.shape[0], mark.bottom + pad), min(strength.shape[1], mark.right + pad)
        own = np.zeros((bottom - top, right - left), np.uint8)
        own[mark.y - top : mark.bottom - top, mark.x - left : mark.right - left] = mark_mask(mark, labels)
        near = cv2.dilate(own, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pad + 1, 2 * pad + 1))) > 0
        for level in TINY_OTHER_LEVELS:
            ink = (strength[top:bottom, left:right] > level) & near
            if ink.any():
                others.append((index, mnist_crop(ink.astype(np.uint8) * 255)))
    if not others:
        return crops
    surest = classify(np.stack(crops)).max(axis=1)
    for (index, crop), probability in zip(others, classify(np.stack([crop for _, crop in others]))):
        if probability.max() > surest[index]:
            surest[index], crops[index] = probability.max(), crop
    return crops


def _box_to_original(mark: _Mark, to_original: np.ndarray, shape: tuple) -> tuple[int, int, int, int]:
    height, width = shape
    corners = np.float64(
        [[mark.x, mark.y, 1], [mark.right, mark.y, 1], [mark.right, mark.bottom, 1], [mark.x, mark.bottom, 1]]
    )
    mapped = corners @ np.asarray(to_original, np.float64).T
    points = mapped[:, :2] / mapped[:, 2:3]
    x0, y0 = (
        int(np.clip(np.floor(points[:, 0].min()), 0, width - 1)),
        int(np.clip(np.floor(points[:, 1].min()), 0, height - 1)),
    )
    x1, y1 = int(np.clip(np.ceil(points[:, 0].max()), 0, width)), int(np.clip(np.ceil(points[:, 1].max()), 0, height))
    return (x0, y0, max(1, x1 - x0), max(1, y1 - y0))


# ---------------------------------------------------------------- debug pictures
def _as_rgb(mask: np.ndarray) -> np.ndarray:
    return np.repeat((mask > 0).astype(np.uint8)[..., None] * 255, 3, axis=2)


def _with_edges(mask: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The ink in white, the band along a hard shadow's edge (:func:`.preprocess.shadow_edges`) in dark blue."""
    picture = _as_rgb(mask)
    picture[edges & (mask == 0)] = (30, 50, 140)
    return picture


def _outlined(image: np.ndarray, corners: np.ndarray) -> np.ndarray:
    import cv2

    picture = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    cv2.polylines(picture, [np.round(corners).astype(np.int32)], True, (255, 140, 0), max(2, picture.shape[1] // 200))
    return picture


def _removed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The ink kept in white and the ink removed as printed lines in red."""
    picture = _as_rgb(after)
    picture[(before > 0) & (after == 0)] = (220, 40, 40)
    return picture


def _cuts(mask: np.ndarray, marks: list) -> np.ndarray:
    """Each digit's box, numbered, and the cut paths that parted touching digits (red)."""
    import cv2

    picture = _as_rgb(mask)
    for number, mark in enumerate(marks, start=1):
        cv2.rectangle(picture, (mark.x, mark.y), (mark.right - 1, mark.bottom - 1), (255, 140, 0), 2)
        cv2.putText(
            picture, str(number), (mark.x, max(12, mark.y - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 140, 0), 1
        )
    for mark in marks:  # over the boxes: a cut often runs along a piece's box
        for path in getattr(mark, "cuts", ()):
            cv2.polylines(picture, [path.astype(np.int32).reshape(-1, 1, 2)], False, (230, 30, 30), 2)
    return picture
