"""The ``images`` subcommand: read people's own photos of handwritten digits.

``digit-recognizer images PATH...`` segments every image into MNIST-style 28x28
digits (:mod:`digit_recognizer.images`), reads them with a trained experiment,
and writes ``predictions.csv``, ``summary.json`` and the prediction sheet
(:mod:`digit_recognizer.sheet`) into the output folder. A file that cannot be
read gets a row with its error; the others go on. TensorFlow is imported only
when a command runs, so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from digit_recognizer.errors import UserError

DEFAULT_MIN_CONFIDENCE = 0.5
CSV_COLUMNS = ("file", "prediction", "confidence", "digits", "expected", "correct", "polarity", "boxes", "error")
LABELS_FILE = "labels.csv"

DESCRIPTION = """\
Read photos of handwritten digits: png, jpg, bmp, tiff or webp files, or folders of them.

Each image is cleaned up the way MNIST itself was made (lighting evened out, ink
made white on black, digits found and separated, each scaled into a 20x20 box
and centred by mass in 28x28), then read by a trained experiment. Several
digits in one image are read left to right as one number ("2026"); a digit the
model is unsure of (top probability under --min-confidence) is shown as "?".

Outputs in --out: predictions.csv (file, prediction, confidence, digits, ...),
summary.json and sheet-N.png (each image with its digit boxes, the 28x28 crops
as the model saw them, and the top-3 probabilities per digit).
"""

EPILOG = """\
true labels, for an accuracy (whole prediction exact match):
  --labels FILE.csv with columns file,expected; else a labels.csv inside a given
  folder; else the number a file name starts with (7_mine.jpg, 2026-note.png)

examples:
  digit-recognizer images inputs/custom
  digit-recognizer images ~/photos/seven.jpg --experiment fast-20260101-120000
  digit-recognizer images scans/ --labels scans/truth.csv --out /tmp/scans-read
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser("images", help="read your own photos of handwritten digits and draw a prediction sheet",
                                   description=DESCRIPTION, epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files or folders of images (not recursive)")
    parser.add_argument("--experiment", help="experiment to read with (default: the best on the leaderboard, else the latest trained)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: submissions/images/<experiment>/)")
    parser.add_argument("--labels", type=Path, metavar="CSV", help="true labels: a CSV with columns file,expected")
    parser.add_argument("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE, metavar="P",
                        help=f"report a digit as '?' when its top probability is under P (default {DEFAULT_MIN_CONFIDENCE})")
    parser.add_argument("--tta", action="store_true", help="test-time augmentation: average over shifted copies of each digit")
    parser.set_defaults(func=cmd_images)


def cmd_images(args) -> int:
    from digit_recognizer.config import Paths, load_competition

    paths = Paths.discover(args.root)
    load_competition(paths.root)
    if not 0.0 <= args.min_confidence <= 1.0:
        raise UserError(f"--min-confidence must be between 0 and 1, got {args.min_confidence}")
    experiment = choose_experiment(paths, args.experiment)
    out_dir = args.out or default_out_dir(paths, experiment)
    run = read_images(paths, experiment, args.paths, out_dir, labels_file=args.labels,
                      min_confidence=args.min_confidence, tta=args.tta)
    report(run, say=_say)
    return 0


def after_run(experiment: str, paths, competition, say) -> None:
    """The end of ``digit-recognizer run``: read the example photos in inputs/custom/ and draw their sheet."""
    folder = paths.custom_images
    if not folder.is_dir() or not any(_is_image(child) for child in folder.iterdir()):
        say(f"no example photos in {folder}; skipping the photo reading step")
        return
    say(f"reading the example photos in {folder} with {experiment}")
    run = read_images(paths, experiment, [folder], default_out_dir(paths, experiment))
    report(run, say=say)


def _say(message: str = "") -> None:
    print(message, flush=True)


def _is_image(path: Path) -> bool:
    from digit_recognizer.images import is_image_file

    return path.is_file() and is_image_file(path) and not path.name.startswith(".")


def default_out_dir(paths, experiment: str) -> Path:
    return paths.submissions / "images" / experiment


def choose_experiment(paths, requested: str | None) -> str:
    """The requested experiment, else the leaderboard's best that still has its models, else the latest trained."""
    from digit_recognizer.predict import latest_experiment, list_experiments

    if requested:
        if requested not in list_experiments(paths):
            known = ", ".join(list_experiments(paths)[-5:]) or "none trained yet"
            raise UserError(f"experiment '{requested}' not found under {paths.models} (trained: {known})")
        return requested
    try:
        from digit_recognizer.leaderboard import best_experiment

        best = best_experiment(paths.leaderboard)
    except (OSError, ValueError, KeyError):
        best = None
    if best and (paths.experiment_dir(best) / "metrics.json").is_file():
        return best
    return latest_experiment(paths)


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
    from digit_recognizer.images import expected_from_name

    for key in (shown, str(file), file.name):
        if key in labels:
            return labels[key]
    return expected_from_name(file)


def read_images(paths, experiment: str, inputs: list, out_dir: Path, labels_file: Path | None = None,
                min_confidence: float = DEFAULT_MIN_CONFIDENCE, tta: bool = False, rows_per_page: int | None = None) -> ImagesRun:
    """Read every image in ``inputs`` with ``experiment``; write predictions.csv, summary.json and the sheet."""
    import cv2
    import numpy as np

    from digit_recognizer.images import ImageReadError, collect_image_files, read_grayscale, segment_digits
    from digit_recognizer.sheet import thumbnail

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
        from digit_recognizer.predict import ensemble_probabilities, load_members

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
    from digit_recognizer.sheet import SheetEntry, draw_sheets, ROWS_PER_PAGE

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


def report(run: ImagesRun, say, max_rows: int = 40) -> None:
    """Print one line per image (up to ``max_rows``), the accuracy and where the outputs are."""
    names = display_names(run.rows)
    width = min(40, max((len(name) for name in names), default=4))
    for row, name in zip(run.rows[:max_rows], names):
        name = name if len(name) <= width else "..." + name[-(width - 3):]
        if row.prediction:
            line = f"  {name:<{width}}  {row.prediction:<8} confidence {row.confidence:.2f}"
        else:
            line = f"  {name:<{width}}  {'-':<8} {row.error}"
        if row.expected is not None:
            line += f"   expected {row.expected or '(none)'}: {'right' if row.correct else 'WRONG'}"
        say(line)
    if len(run.rows) > max_rows:
        say(f"  ... {len(run.rows) - max_rows} more in {run.predictions_file}")
    summary = run.summary
    if summary["accuracy"] is not None:
        say(f"accuracy: {summary['correct']}/{summary['labelled']} = {100 * summary['accuracy']:.1f}% "
            f"(whole prediction exact match) with {run.experiment}")
    say(f"predictions: {run.predictions_file}")
    say(f"sheet:       {', '.join(map(str, run.sheets))}")
