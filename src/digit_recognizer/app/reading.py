"""What the app's page shows, without Gradio: images in, readings out, and the pictures and tables made of them.

Every input (a drawing, a dropped photo, an image sent to the ``/read`` API) becomes an :class:`InputResult`:
its reading by :func:`digit_recognizer.photos.pipeline.read_array`, the image with the digits' boxes drawn,
or the one-line reason it could not be read (not an image, truncated, over the pixel limit, no digits).
Nothing here raises for a bad image: a person's upload becomes a message, never a crash.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np

from digit_recognizer.errors import UserError
from digit_recognizer.experiment import Experiment, finished
from digit_recognizer.photos.pipeline import Reading, read_array

MAX_SHOWN_SIDE = 800  # the image with its boxes is shown at most this large
MIN_SHOWN_SIDE = 280  # ...and small ones (a 28x28 digit) are enlarged to at least this
CROP_SHOWN_SIZE = 112  # each 28x28 crop is enlarged 4x (nearest neighbour: every pixel as the model saw it)
TOP_COUNT = 3
BOX_COLOR = (230, 80, 0)  # RGB
DOUBTFUL_COLOR = (200, 0, 160)
BORDER_COLOR = (225, 225, 225)
DRAWING_NAME = "drawing"
TABLE_HEADERS = ["input", "digit", "read", "1st", "2nd", "3rd"]


@dataclass(frozen=True)
class InputResult:
    """One input's outcome: a reading and the image with its boxes drawn, or why there is none."""

    name: str
    reading: Reading | None = None
    shown: np.ndarray | None = None  # RGB uint8, boxes drawn
    error: str = ""

    @property
    def number(self) -> str:
        return self.reading.number if self.reading is not None else ""

    @property
    def message(self) -> str:
        """Why nothing was read ('' when a number was)."""
        if self.error:
            return self.error
        return self.reading.message if self.reading is not None else ""


class ModelCache:
    """Each experiment's models (and string reader, if it has one), loaded once; readings are serialised (one model
    call at a time on a small machine)."""

    def __init__(self, paths):
        self.paths = paths
        self._models: dict[str, tuple] = {}
        self._lock = threading.Lock()

    def models(self, experiment: str) -> tuple:
        """(the experiment's models, its string reader or None)."""
        from digit_recognizer.experiment import find
        from digit_recognizer.modeling.inference import load_members, load_reader

        with self._lock:
            if experiment not in self._models:
                name = find(self.paths, experiment).name
                self._models[experiment] = (load_members(self.paths, name), load_reader(self.paths, name))
            return self._models[experiment]

    def read(self, image: np.ndarray, experiment: str, min_confidence: float) -> Reading:
        models, reader = self.models(experiment)
        with self._lock:
            return read_array(image, models, min_confidence, reader=reader)


# ---------------------------------------------------------------- inputs
def load_photo(path) -> np.ndarray:
    """A dropped file -> 2-D uint8 grayscale, EXIF rotation applied; :class:`ImageReadError` for a bad file
    (not an image, empty, truncated, over the 40-megapixel limit)."""
    from digit_recognizer.photos.segment import read_grayscale

    return read_grayscale(Path(path))


def sketch_to_gray(value) -> np.ndarray | None:
    """The sketchpad's value (a dict with 'composite', or an array) -> 2-D uint8, dark ink on white; None when empty."""
    import cv2

    image = value.get("composite") if isinstance(value, dict) else value
    if image is None:
        return None
    image = np.asarray(image)
    if image.size == 0:
        return None
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 4:  # transparent canvas: composite onto white paper
        alpha = image[..., 3:].astype(np.float32) / 255.0
        image = (image[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    if image.ndim == 3:
        image = cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2GRAY)
    if image.ndim != 2 or image.min() == image.max():
        return None
    return image


def read_input(name: str, load, cache: ModelCache, experiment: str, min_confidence: float) -> InputResult:
    """Load one input with ``load()`` and read it; every failure a person can cause becomes the result's ``error``."""
    import cv2

    from digit_recognizer.photos.segment import ImageReadError

    try:
        image = load()
        if image is None:
            return InputResult(name, error="nothing drawn yet: draw a digit or a number first")
        reading = cache.read(image, experiment, min_confidence)
    except ImageReadError as error:
        return InputResult(name, error=str(error))
    except UserError as error:
        return InputResult(name, error=str(error))
    except (ValueError, MemoryError, cv2.error) as error:
        first_line = str(error).strip().splitlines()[0][:120] if str(error).strip() else ""
        return InputResult(name, error=f"cannot process the image ({type(error).__name__}: {first_line})")
    return InputResult(name, reading, draw_boxes(image, reading))


def read_photos(files, cache: ModelCache, experiment: str, min_confidence: float) -> list[InputResult]:
    """Every dropped file (paths, or objects with a ``.name`` path) read in turn; a bad one does not stop the others."""
    results = []
    for item in files or []:
        path = Path(getattr(item, "name", item))
        results.append(
            read_input(display_name(path), lambda path=path: load_photo(path), cache, experiment, min_confidence)
        )
    return results


def display_name(path: Path) -> str:
    """A dropped file's name without the server's upload folder."""
    return Path(path).name


# ---------------------------------------------------------------- pictures
def shown_scale(shape: tuple) -> float:
    longer = max(shape[:2])
    if longer > MAX_SHOWN_SIDE:
        return MAX_SHOWN_SIDE / longer
    if longer < MIN_SHOWN_SIDE:
        return MIN_SHOWN_SIDE / longer
    return 1.0


def draw_boxes(image: np.ndarray, reading: Reading) -> np.ndarray:
    """The input as RGB (scaled to a viewable size) with each digit's box and its read label drawn above it.

    A light grey border is added around the image so that a label always has room above its box."""
    import cv2

    image = np.asarray(image)
    rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image.copy()
    scale = shown_scale(rgb.shape)
    if scale != 1.0:
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST)
    thickness = max(2, round(max(rgb.shape[:2]) / 250))
    boxes = [tuple(round(value * scale) for value in box) for box in reading.boxes]
    font_scales = [max(0.6, min(2.0, height / 60)) for _, _, _, height in boxes]
    border = max([round(30 * font_scale) + 3 * thickness for font_scale in font_scales], default=thickness)
    rgb = cv2.copyMakeBorder(rgb, border, border, border, border, cv2.BORDER_CONSTANT, value=BORDER_COLOR)
    for (x, y, width, height), label, font_scale in zip(boxes, reading.number, font_scales):
        x, y = x + border, y + border
        color = DOUBTFUL_COLOR if label == "?" else BOX_COLOR
        cv2.rectangle(rgb, (x, y), (x + width, y + height), color, thickness)
        cv2.putText(
            rgb, label, (x, y - 2 * thickness), cv2.FONT_HERSHEY_SIMPLEX, font_scale, color, thickness, cv2.LINE_AA
        )
    return rgb


def crop_tiles(results: list[InputResult], named: bool = True) -> list[tuple[np.ndarray, str]]:
    """Each digit's 28x28 crop, white on black exactly as the model saw it (enlarged 4x), captioned with its read
    label and top probability (after its input's name when ``named``)."""
    import cv2

    tiles = []
    for result in results:
        if result.reading is None:
            continue
        for position, (crop, probabilities) in enumerate(zip(result.reading.crops, result.reading.probabilities), 1):
            big = cv2.resize(crop, (CROP_SHOWN_SIZE, CROP_SHOWN_SIZE), interpolation=cv2.INTER_NEAREST)
            label = result.reading.number[position - 1]
            caption = f"{label} ({float(np.max(probabilities)):.2f})"
            tiles.append((big, f"{result.name} #{position}: {caption}" if named else caption))
    return tiles


def shown_images(results: list[InputResult]) -> list[tuple[np.ndarray, str]]:
    return [(result.shown, f"{result.name}: {result.number}") for result in results if result.shown is not None]


# ---------------------------------------------------------------- numbers and text
def top_probabilities(probabilities, count: int = TOP_COUNT) -> list[tuple[int, float]]:
    """A digit's ``count`` most likely labels with their probabilities, most likely first."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 1 or count < 1:
        raise ValueError(
            f"expected one digit's probabilities and a positive count, got shape {probabilities.shape}, count {count}"
        )
    order = np.argsort(-probabilities, kind="stable")[:count]
    return [(int(label), float(probabilities[label])) for label in order]


def top_rows(results: list[InputResult]) -> list[list[str]]:
    """The table: one row per digit, its read label and its top-3 probabilities."""
    rows = []
    for result in results:
        if result.reading is None:
            continue
        for position, probabilities in enumerate(result.reading.probabilities, 1):
            tops = [f"{label}: {probability:.3f}" for label, probability in top_probabilities(probabilities)]
            rows.append([result.name, str(position), result.reading.number[position - 1], *tops])
    return rows


def digits_list(reading: Reading | None) -> list[dict]:
    """The API's digits, left to right: read label, top-3 probabilities and box (x, y, width, height) in input pixels."""
    if reading is None:
        return []
    return [
        {
            "read": reading.number[index],
            "top3": [
                {"digit": label, "probability": round(probability, 6)} for label, probability in top_probabilities(row)
            ],
            "box": [int(value) for value in box],
        }
        for index, (row, box) in enumerate(zip(reading.probabilities, reading.boxes))
    ]


def result_text(results: list[InputResult], named: bool) -> str:
    """The result box: the number read (one per line, after its input's name when ``named``); '-' for nothing read."""
    lines = [f"{result.name}: {result.number or '-'}" if named else (result.number or "-") for result in results]
    return "\n".join(lines)


def messages_text(results: list[InputResult], min_confidence: float) -> str:
    """Markdown for the page: why an input gave nothing, and what '?' means when it appears."""
    lines = [f"- **{result.name}**: {result.message}" for result in results if result.message]
    if any("?" in result.number for result in results):
        lines.append(
            f"- `?` marks a digit whose top probability is under the minimum confidence ({min_confidence:.2f})"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- experiments
def experiment_choices(paths) -> list[str]:
    """Finished experiments for the picker: in leaderboard order (best first), then the others, newest first."""
    from digit_recognizer.tracking.leaderboard import sorted_rows

    trained = finished(paths)
    try:
        ranked = [row["experiment"] for row in sorted_rows(paths.leaderboard)]
    except UserError:  # a damaged leaderboard: still list what is trained
        ranked = []
    ordered = [name for name in dict.fromkeys(ranked) if name in trained]
    return ordered + [name for name in reversed(trained) if name not in ordered]


def report_file(paths, experiment: str) -> Path:
    return Experiment(paths, experiment).report_dir / "index.html"


def report_link(paths, experiment: str) -> str:
    """Markdown (HTML) linking the experiment's report through the server's file route, or how to make it."""
    path = report_file(paths, experiment).resolve()
    if not path.is_file():
        return f"No report for `{experiment}` yet: `digit-recognizer report {experiment}` writes it."
    return (
        f'<a href="gradio_api/file={quote(str(path))}" target="_blank" rel="noopener">'
        f"The report of {experiment}</a> (validation scores, confusion matrix, its mistakes)"
    )
