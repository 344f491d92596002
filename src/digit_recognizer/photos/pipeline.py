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
from typing import TYPE_CHECKING

from digit_recognizer.errors import UserError

if TYPE_CHECKING:  # annotations only: numpy is imported where it is used
    import numpy as np

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
    with its models (an ensemble has none of its own, so the next best is taken) among those trained for photos
    (:func:`trained_for_photos`) if there are any, else among all; else the latest trained."""
    from digit_recognizer.experiment import Experiment, find, latest
    from digit_recognizer.tracking.leaderboard import sorted_rows

    if requested:
        return find(paths, requested).name, "as requested"
    trained = [row["experiment"] for row in sorted_rows(paths.leaderboard)]
    trained = [name for name in trained if Experiment(paths, name).is_finished]
    for_photos = [name for name in trained if trained_for_photos(Experiment(paths, name))]
    if for_photos:
        why = "the best experiment trained for photos (--photo-augment, --photo-negatives, --reader-strings)"
        return for_photos[0], why
    for rank, row in enumerate(sorted_rows(paths.leaderboard), 1):
        if row["experiment"] in trained:
            return (
                row["experiment"],
                "the best on the leaderboard"
                if rank == 1
                else f"the best trained experiment on the leaderboard (rank {rank})",
            )
    return latest(paths).name, "the latest trained"


def trained_for_photos(experiment) -> bool:
    """Whether an experiment was trained with photo-like augmentation, synthetic non-digits or a string reader
    (False when its config cannot be read)."""
    from digit_recognizer.errors import UserError

    try:
        config = experiment.read_config()
    except UserError:
        return False
    return any(float(config.get(name) or 0) > 0 for name in ("photo_augment", "photo_negatives", "reader_strings"))


# ---------------------------------------------------------------- one image
@dataclass(frozen=True)
class Reading:
    """What was read in one image.

    ``number`` is the digits left to right with '?' for doubtful ones ('' when nothing was read, and then
    ``message`` says why); ``confidence`` the product of the digits' top probabilities (None when nothing
    was read); ``probabilities`` (n, 10); ``boxes`` (x, y, w, h) per digit in the input image's pixels;
    ``crops`` (n, 28, 28) uint8, exactly what the model saw; ``polarity`` the ink's polarity.
    """

    number: str
    confidence: float | None
    probabilities: np.ndarray
    boxes: tuple
    crops: np.ndarray
    polarity: str
    message: str = ""


def _check_image_array(image) -> np.ndarray:
    import numpy as np

    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {image.dtype}")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))) or image.size == 0:
        raise ValueError(f"expected an HxW gray or HxWx3 RGB image, got shape {image.shape}")
    return image


def reading_from(segmentation, probabilities, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> Reading:
    """A :class:`Reading` from a segmentation and its crops' probabilities (None when there are no crops)."""
    import numpy as np

    if probabilities is None or len(segmentation.crops) == 0:
        return Reading(
            "",
            None,
            np.zeros((0, 10), np.float32),
            tuple(segmentation.boxes),
            segmentation.crops,
            segmentation.polarity,
            segmentation.message or "no digits found",
        )
    number, confidence = read_number(probabilities, min_confidence)
    return Reading(
        number,
        confidence,
        np.asarray(probabilities),
        tuple(segmentation.boxes),
        segmentation.crops,
        segmentation.polarity,
        "",
    )


def classifier(models: list, tta: bool = False):
    """A function (n, 28, 28) uint8 crops -> (n, 10) probabilities: the models' average."""
    import numpy as np

    from digit_recognizer.modeling.inference import ensemble_probabilities

    def classify(crops):
        crops = np.asarray(crops, np.uint8)
        if len(crops) == 0:
            return np.zeros((0, 10), np.float32)
        return ensemble_probabilities(models, crops[..., None], tta=tta)

    return classify


def string_reader(model):
    """A function binary marks -> :class:`~digit_recognizer.modeling.reader.StringReading` list with a string reader
    model (None for None: no reader)."""
    if model is None:
        return None
    from digit_recognizer.modeling.reader import read_strings

    return lambda masks: read_strings(model, masks)


def read_array(image: np.ndarray, models: list, min_confidence: float = DEFAULT_MIN_CONFIDENCE, reader=None) -> Reading:
    """Read the number in one image array (HxW gray or HxWx3 RGB uint8) with ``models`` (from
    :func:`digit_recognizer.modeling.inference.load_members`) and the experiment's string reader, if any (from
    :func:`~digit_recognizer.modeling.inference.load_reader`); the same per-image code as ``images``."""
    if not models:
        raise ValueError("read_array needs at least one model")
    return read_with(image, classifier(models), min_confidence, read_string=string_reader(reader))[0]


def check_min_confidence(min_confidence: float) -> float:
    """The `?` rule's threshold: a probability in [0, 1] (ValueError otherwise)."""
    if not 0.0 <= min_confidence <= 1.0:
        raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
    return min_confidence


def read_with(
    image: np.ndarray,
    classify,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    debug: bool = False,
    read_string=None,
):
    """The per-image step of :func:`read_array` and :func:`read_images`: ``(Reading, Segmentation)``.
    ``read_string`` (from :func:`string_reader`) reads marks of touching digits whole."""
    from digit_recognizer.photos.segment import segment_image

    check_min_confidence(min_confidence)
    image = _check_image_array(image)
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    segmentation = segment_image(image, classify, debug=debug, read_string=read_string)
    probabilities = segmentation.probabilities(classify) if len(segmentation.crops) else None
    return reading_from(segmentation, probabilities, min_confidence), segmentation


# ---------------------------------------------------------------- reading files
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
    debug: tuple = ()  # (title, RGB image) intermediate masks, with --debug

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
    skipped: list = field(default_factory=list)  # (path, why) of pictures in the folders that were not read


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
        raise UserError(
            f"{path}: labels file needs the header file,expected (got {','.join(reader.fieldnames or []) or 'nothing'})"
        )
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


def check_out_dir(out_dir: Path) -> Path:
    """The output folder, or a one-line error when the path is an existing file."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir}: --out is a file, not a folder; give a folder (it is created if missing)")
    return out_dir


def read_images(
    paths,
    experiment: str,
    inputs: list,
    out_dir: Path,
    labels_file: Path | None = None,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    tta: bool = False,
    rows_per_page: int | None = None,
    debug: bool = False,
) -> ImagesRun:
    """Read every image in ``inputs`` with ``experiment``; write predictions.csv, summary.json and the sheet
    (with ``debug``, also debug-N.png pages of the intermediate masks)."""
    import cv2

    from digit_recognizer.photos.preprocess import ImageReadError, collect_image_files, read_image, skipped_files
    from digit_recognizer.photos.sheet import thumbnail

    out_dir = check_out_dir(out_dir)
    files, missing = collect_image_files(inputs)
    skipped = skipped_files(inputs)
    if not files and missing:
        raise UserError(f"{missing[0]}: no such file or folder")
    if not files:
        why = f"; skipped {skipped[0][0].name}: {skipped[0][1]}" if skipped else ""
        raise UserError(f"no images found in {', '.join(map(str, inputs))} (looked for png, jpg, bmp, tiff, webp){why}")
    labels = read_labels(labels_file) if labels_file else {}
    if not labels_file:
        for item in inputs:
            if Path(item).is_dir() and (Path(item) / LABELS_FILE).is_file():
                labels.update(
                    {str(Path(item) / name): value for name, value in read_labels(Path(item) / LABELS_FILE).items()}
                )
    rows = [
        ImageRow(file=str(path), path=path, error="file not found", expected=expected_label(path, str(path), labels))
        for path in missing
    ]
    classify = read_string = None
    for path in files:
        row = ImageRow(file=str(path), path=path)
        row.expected = expected_label(path, row.file, labels)
        try:
            image = read_image(path)
            if classify is None:  # the models are loaded once, and only when some image is readable
                from digit_recognizer.modeling.inference import load_members, load_reader

                classify = classifier(load_members(paths, experiment), tta=tta)
                read_string = string_reader(load_reader(paths, experiment))
            reading, segmentation = read_with(image, classify, min_confidence, debug=debug, read_string=read_string)
            row.debug = segmentation.debug
        except ImageReadError as error:
            row.error = str(error)
        except (ValueError, MemoryError, cv2.error) as error:  # e.g. OpenCV refusing a degenerate image
            row.error = f"cannot process the image ({error.__class__.__name__}: {str(error).splitlines()[0][:100] if str(error) else ''})"
        else:
            row.polarity = reading.polarity
            row.boxes = reading.boxes
            row.crops = reading.crops
            row.error = reading.message
            if reading.number:
                row.prediction, row.confidence, row.probabilities = (
                    reading.number,
                    reading.confidence,
                    reading.probabilities,
                )
            row.thumbnail, row.thumbnail_boxes = thumbnail(image, reading.boxes)
            del image
        rows.append(row)

    predictions_file = write_predictions(out_dir / "predictions.csv", rows)
    summary = summarize(rows, experiment, min_confidence)
    from digit_recognizer.photos.sheet import ROWS_PER_PAGE, SheetEntry, draw_sheets

    names = display_names(rows)
    entries = [
        SheetEntry(
            name=names[index],
            thumbnail=row.thumbnail,
            boxes=row.thumbnail_boxes,
            crops=row.crops,
            probabilities=row.probabilities,
            prediction=row.prediction,
            expected=row.expected,
            note=row.error,
            polarity=row.polarity,
            min_confidence=min_confidence,
        )
        for index, row in enumerate(rows)
    ]
    title = f"digit-recognizer images: {experiment}   {summary['images']} images"
    if summary["accuracy"] is not None:
        title += f"   accuracy {summary['correct']}/{summary['labelled']} ({100 * summary['accuracy']:.1f}%)"
    sheets = draw_sheets(entries, out_dir, title, rows_per_page or ROWS_PER_PAGE)
    if debug:
        from digit_recognizer.photos.sheet import draw_debug_sheets

        sheets += draw_debug_sheets(
            [(names[index], row.debug) for index, row in enumerate(rows)],
            out_dir,
            f"digit-recognizer images --debug: {experiment}",
            rows_per_page or ROWS_PER_PAGE,
        )
    summary["sheets"] = [str(path) for path in sheets]
    summary["skipped"] = [f"{path}: {why}" for path, why in skipped]
    from digit_recognizer.atomic import write_json

    write_json(out_dir / "summary.json", summary)
    return ImagesRun(experiment, out_dir, rows, predictions_file, out_dir / "summary.json", sheets, summary, skipped)


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

    check_min_confidence(min_confidence)
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
            writer.writerow(
                (
                    row.file,
                    row.prediction,
                    "" if row.confidence is None else f"{row.confidence:.4f}",
                    format_digits(row.probabilities),
                    "" if row.expected is None else row.expected,
                    "" if correct is None else int(correct),
                    row.polarity,
                    " ".join(",".join(str(value) for value in box) for box in row.boxes),
                    row.error,
                )
            )
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
