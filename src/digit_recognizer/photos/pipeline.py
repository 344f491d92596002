"""Read photos of handwritten digits with a trained experiment: the ``images`` pipeline.

Every image is segmented into MNIST-style 28x28 digits (:mod:`.segment`), the digits are read by the
experiment's models (:mod:`digit_recognizer.modeling.inference`), and ``predictions.csv``, ``summary.json``
and the prediction sheet (:mod:`.sheet`) are written into the output folder. A file that cannot be read gets a
row with its error; the others go on.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from digit_recognizer.errors import UserError

DEFAULT_MIN_CONFIDENCE = 0.5
CSV_COLUMNS = ("file", "prediction", "confidence", "digits", "expected", "correct", "polarity", "boxes", "error")
LABELS_FILE = "labels.csv"


def _is_image(path: Path) -> bool:
    from digit_recognizer.photos.segment import is_image_file

    return path.is_file() and is_image_file(path) and not path.name.startswith(".")


def has_images(folder: Path) -> bool:
    """Whether ``folder`` holds at least one image file."""
    return Path(folder).is_dir() and any(_is_image(child) for child in Path(folder).iterdir())


def default_out_dir(paths, experiment: str) -> Path:
    return paths.submissions / "images" / experiment


def choose_experiment(paths, requested: str | None) -> tuple[str, str]:
    """(experiment, why it was chosen): the requested one, else the best leaderboard row that is a trained experiment
    with its models (an ensemble has none of its own, so the next best is taken), else the latest trained."""
    from digit_recognizer.experiment import Experiment, find, latest
    from digit_recognizer.tracking.leaderboard import sorted_rows

    if requested:
        return find(paths, requested).name, "as requested"
    for rank, row in enumerate(sorted_rows(paths.leaderboard), 1):
        if Experiment(paths, row["experiment"]).is_finished:
            return row["experiment"], "the best on the leaderboard" if rank == 1 else f"the best trained experiment on the leaderboard (rank {rank})"
    return latest(paths).name, "the latest trained"


# ---------------------------------------------------------------- reading
@dataclass
class ImageRow:
    """One input file's outcome (a row of predictions.csv and of the sheet)."""

    file: str
    path: Path
    prediction: str = ""
    confidence: float | None = None
    probabilities: object = None  # (n_digits, 10) float array
    expected: str | None = None
    polarity: str = ""
    boxes: tuple = ()
    error: str = ""
    crops: object = None
    thumbnail: object = None
    thumbnail_boxes: tuple = ()

    @property
    def correct(self) -> bool | None:
        if self.expected is None:
            return None
        return self.thumbnail is not None and self.prediction == self.expected


@dataclass
class ImagesRun:
    experiment: str
    out_dir: Path
    rows: list
    predictions_file: Path
    summary_file: Path
    sheets: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)


def read_labels(path: Path) -> dict:
    """``file,expected`` CSV -> {file: expected}; expected kept as text (leading zeros matter)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: labels file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: cannot read the labels file ({error.__class__.__name__})") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "file" not in reader.fieldnames or "expected" not in reader.fieldnames:
        raise UserError(f"{path}: labels file needs the header file,expected (got {','.join(reader.fieldnames or []) or 'nothing'})")
    labels = {}
    for line, row in enumerate(reader, start=2):
        name = (row.get("file") or "").strip()
        expected = (row.get("expected") or "").strip()
        if not name:
            raise UserError(f"{path}: line {line}: empty file name")
        if expected and not expected.isdigit():
            raise UserError(f"{path}: line {line}: expected '{expected}' is not a number")
        labels[name] = expected
    return labels


def expected_label(file: Path, shown: str, labels: dict) -> str | None:
    from digit_recognizer.photos.segment import expected_from_name

    for key in (shown, str(file), file.name):
        if key in labels:
            return labels[key]
    return expected_from_name(file)


def read_images(paths, experiment: str, inputs: list, out_dir: Path, labels_file: Path | None = None,
                min_confidence: float = DEFAULT_MIN_CONFIDENCE, tta: bool = False, rows_per_page: int | None = None) -> ImagesRun:
    """Read every image in ``inputs`` with ``experiment``; write predictions.csv, summary.json and the sheet."""
    import cv2
    import numpy as np

    from digit_recognizer.photos.segment import ImageReadError, collect_image_files, read_grayscale, segment_digits
    from digit_recognizer.photos.sheet import thumbnail

    files, missing = collect_image_files(inputs)
    if not files and missing:
        raise UserError(f"{missing[0]}: no such file or folder")
    if not files:
        raise UserError(f"no images found in {', '.join(map(str, inputs))} (looked for png, jpg, bmp, tiff, webp)")
    labels = read_labels(labels_file) if labels_file else {}
    if not labels_file:
        for item in inputs:
            if Path(item).is_dir() and (Path(item) / LABELS_FILE).is_file():
                labels.update({str(Path(item) / name): value for name, value in read_labels(Path(item) / LABELS_FILE).items()})
    rows = [ImageRow(file=str(path), path=path, error="file not found", expected=expected_label(path, str(path), labels))
            for path in missing]
    for path in files:
        row = ImageRow(file=str(path), path=path)
        row.expected = expected_label(path, row.file, labels)
        try:
            gray = read_grayscale(path)
            segmentation = segment_digits(gray)
        except ImageReadError as error:
            row.error = str(error)
        except (ValueError, MemoryError, cv2.error) as error:  # e.g. OpenCV refusing a degenerate image
            row.error = f"cannot process the image ({error.__class__.__name__}: {str(error).splitlines()[0][:100] if str(error) else ''})"
        else:
            row.polarity = segmentation.polarity
            row.boxes = segmentation.boxes
            row.crops = segmentation.crops
            row.error = segmentation.message
            row.thumbnail, row.thumbnail_boxes = thumbnail(gray, segmentation.boxes)
            del gray
        rows.append(row)

    crops = [row.crops for row in rows if row.crops is not None and len(row.crops)]
    if crops:
        from digit_recognizer.modeling.inference import ensemble_probabilities, load_members

        models = load_members(paths, experiment)
        probabilities = ensemble_probabilities(models, np.concatenate(crops)[..., None], tta=tta)
        start = 0
        for row in rows:
            if row.crops is not None and len(row.crops):
                row.probabilities = probabilities[start:start + len(row.crops)]
                start += len(row.crops)
                row.prediction, row.confidence = read_number(row.probabilities, min_confidence)

    out_dir = Path(out_dir)
    predictions_file = write_predictions(out_dir / "predictions.csv", rows)
    summary = summarize(rows, experiment, min_confidence)
    from digit_recognizer.photos.sheet import SheetEntry, draw_sheets, ROWS_PER_PAGE

    names = display_names(rows)
    entries = [SheetEntry(name=names[index], thumbnail=row.thumbnail, boxes=row.thumbnail_boxes, crops=row.crops,
                          probabilities=row.probabilities, prediction=row.prediction, expected=row.expected,
                          note=row.error, polarity=row.polarity, min_confidence=min_confidence)
               for index, row in enumerate(rows)]
    title = f"digit-recognizer images: {experiment}   {summary['images']} images"
    if summary["accuracy"] is not None:
        title += f"   accuracy {summary['correct']}/{summary['labelled']} ({100 * summary['accuracy']:.1f}%)"
    sheets = draw_sheets(entries, out_dir, title, rows_per_page or ROWS_PER_PAGE)
    summary["sheets"] = [str(path) for path in sheets]
    from digit_recognizer.atomic import write_json

    write_json(out_dir / "summary.json", summary)
    return ImagesRun(experiment, out_dir, rows, predictions_file, out_dir / "summary.json", sheets, summary)


def display_names(rows: list) -> list[str]:
    """File names for people: the bare names when they are unique, else the paths as given."""
    names = [row.path.name for row in rows]
    return names if len(set(names)) == len(names) else [row.file for row in rows]


def read_number(probabilities, min_confidence: float) -> tuple[str, float]:
    """Per-digit probabilities (n, 10) -> (the number left to right with '?' for doubtful digits, confidence).

    The confidence is the product of the digits' top probabilities: the model's
    chance that the whole number is right.
    """
    import numpy as np

    if not 0.0 <= min_confidence <= 1.0:
        raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
    probabilities = np.asarray(probabilities)
    labels = probabilities.argmax(axis=1)
    tops = probabilities.max(axis=1)
    text = "".join("?" if top < min_confidence else str(int(label)) for label, top in zip(labels, tops))
    return text, float(np.prod(tops))


def format_digits(probabilities) -> str:
    """Per-digit top label and probability: ``"2:0.998 0:0.991"``."""
    import numpy as np

    if probabilities is None:
        return ""
    probabilities = np.asarray(probabilities)
    return " ".join(f"{int(row.argmax())}:{row.max():.3f}" for row in probabilities)


def write_predictions(path: Path, rows: list) -> Path:
    from digit_recognizer.atomic import atomic_open

    with atomic_open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            correct = row.correct
            writer.writerow((
                row.file, row.prediction, "" if row.confidence is None else f"{row.confidence:.4f}",
                format_digits(row.probabilities), "" if row.expected is None else row.expected,
                "" if correct is None else int(correct), row.polarity,
                " ".join(",".join(str(value) for value in box) for box in row.boxes), row.error,
            ))
    return Path(path)


def summarize(rows: list, experiment: str, min_confidence: float) -> dict:
    labelled = [row for row in rows if row.expected is not None]
    correct = sum(1 for row in labelled if row.correct)
    return {
        "experiment": experiment,
        "images": len(rows),
        "read": sum(1 for row in rows if row.prediction),
        "unreadable": sum(1 for row in rows if row.error and row.thumbnail is None),
        "no_digits": sum(1 for row in rows if row.thumbnail is not None and not row.prediction),
        "labelled": len(labelled),
        "correct": correct,
        "accuracy": correct / len(labelled) if labelled else None,
        "min_confidence": min_confidence,
    }




# ---------------------------------------------------------------- one image in memory (the app)
@dataclass(frozen=True)
class Reading:
    """What the models read in one image: the number ('?' for doubtful digits) and what it was read from.

    ``boxes`` are (x, y, width, height) in the input image's pixels, left to right; ``crops`` (n, 28, 28) uint8
    are the digits exactly as the models saw them; ``message`` says why nothing was read ('' otherwise).
    """

    number: str
    confidence: float | None
    probabilities: object  # (n, 10) float array
    boxes: tuple
    crops: object  # (n, 28, 28) uint8 array
    polarity: str
    message: str = ""


def read_array(image, models: list, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> Reading:
    """Segment an image array (HxW gray or HxWx3 RGB, uint8) into digits and read them with ``models``."""
    import cv2
    import numpy as np

    from digit_recognizer.modeling.inference import ensemble_probabilities
    from digit_recognizer.photos.segment import segment_digits

    if not 0.0 <= min_confidence <= 1.0:
        raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
    image = np.asarray(image)
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)) or image.size == 0:
        raise ValueError(f"expected a non-empty HxW or HxWx3 uint8 image, got shape {image.shape} of {image.dtype}")
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    segmentation = segment_digits(gray)  # its boxes are already in the input image's pixels
    if not len(segmentation.crops):
        return Reading("", None, np.zeros((0, 10), np.float32), (), segmentation.crops, segmentation.polarity,
                       segmentation.message)
    probabilities = ensemble_probabilities(models, segmentation.crops[..., None])
    number, confidence = read_number(probabilities, min_confidence)
    return Reading(number, confidence, probabilities, segmentation.boxes, segmentation.crops, segmentation.polarity)
