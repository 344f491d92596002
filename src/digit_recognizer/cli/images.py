"""The ``images`` subcommand: read people's own photos of handwritten digits.

``digit-recognizer images PATH...`` segments every image into MNIST-style 28x28
digits (:mod:`digit_recognizer.photos.segment`), reads them with a trained experiment,
and writes ``predictions.csv``, ``summary.json`` and the prediction sheet
(:mod:`digit_recognizer.photos.sheet`) into the output folder. A file that cannot be
read gets a row with its error; the others go on. TensorFlow is imported only
when a command runs, so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from digit_recognizer.cli import say
from digit_recognizer.errors import UserError
from digit_recognizer.photos.pipeline import DEFAULT_MIN_CONFIDENCE

DESCRIPTION = """\
Read photos of handwritten digits: png, jpg, bmp, tiff or webp files, or folders of them.

Each image is cleaned up the way MNIST itself was made (lighting evened out, ink
made white on black, digits found and separated, each scaled into a 20x20 box
and centred by mass in 28x28), then read by a trained experiment. Several
digits in one image are read left to right as one number ("2026"); a digit the
model is unsure of (top probability under --min-confidence) is shown as "?".

Photos of a page or sticky note on a dark desk are read inside the page
(perspective-corrected); printed ruled lines, squares and form boxes are removed
(a form is read one digit per box); a slanted number is turned upright; a tiny
number is upsampled before thresholding; touching digits are cut where the model
reads the pieces best.

Outputs in --out: predictions.csv (file, prediction, confidence, digits, ...),
summary.json and sheet-N.png (each image with its digit boxes, the 28x28 crops
as the model saw them, and the top-3 probabilities per digit); with --debug also
debug-N.png (each image's page, ink mask, lines removed and cuts).
GIF, HEIC, SVG and PDF files in a folder are skipped, and the command says so.
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
    parser = subparsers.add_parser(
        "images",
        help="read your own photos of handwritten digits and draw a prediction sheet",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="image files or folders of images (not recursive)"
    )
    parser.add_argument(
        "--experiment", help="experiment to read with (default: the best on the leaderboard, else the latest trained)"
    )
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="output folder (default: submissions/images/<experiment>/)"
    )
    parser.add_argument("--labels", type=Path, metavar="CSV", help="true labels: a CSV with columns file,expected")
    parser.add_argument(
        "--min-confidence",
        type=float,
        default=DEFAULT_MIN_CONFIDENCE,
        metavar="P",
        help=f"report a digit as '?' when its top probability is under P (default {DEFAULT_MIN_CONFIDENCE})",
    )
    parser.add_argument(
        "--tta", action="store_true", help="test-time augmentation: average over shifted copies of each digit"
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="also draw debug-N.png: each image's intermediate masks (page, ink, lines removed, cuts)",
    )
    parser.set_defaults(func=cmd_images)


def check_min_confidence_option(value: float) -> None:
    """--min-confidence of `images` and `app`: a probability, or one error line."""
    if not 0.0 <= value <= 1.0:
        raise UserError(f"--min-confidence must be between 0 and 1, got {value}")


def cmd_images(args) -> int:
    from digit_recognizer.config import Paths, load_competition
    from digit_recognizer.photos.pipeline import check_out_dir, choose_experiment, default_out_dir, read_images

    paths = Paths.discover(args.root)
    load_competition(paths.root)
    check_min_confidence_option(args.min_confidence)
    if args.out is not None:
        check_out_dir(args.out)
    experiment, why = choose_experiment(paths, args.experiment)
    say(f"reading with experiment {experiment} ({why})")
    out_dir = args.out or default_out_dir(paths, experiment)
    run = read_images(
        paths,
        experiment,
        args.paths,
        out_dir,
        labels_file=args.labels,
        min_confidence=args.min_confidence,
        tta=args.tta,
        debug=args.debug,
    )
    say_run(run)
    return 0


def read_examples(paths, experiment: str) -> None:
    """The end of ``digit-recognizer run``: read the example photos in inputs/custom/ and draw their sheet."""
    from digit_recognizer.photos.pipeline import default_out_dir, has_images, read_images

    folder = paths.custom_images
    if not has_images(folder):
        say(f"no example photos in {folder}; skipping the photo reading step")
        return
    say(f"reading the example photos in {folder} with {experiment}")
    say_run(read_images(paths, experiment, [folder], default_out_dir(paths, experiment)))


def say_run(run, max_rows: int = 40) -> None:
    """Print one line per image (up to ``max_rows``), the accuracy and where the outputs are."""
    from digit_recognizer.photos.pipeline import display_names

    for path, why in run.skipped:
        say(f"  skipped {path}: {why}")
    names = display_names(run.rows)
    width = min(40, max((len(name) for name in names), default=4))
    for row, name in zip(run.rows[:max_rows], names):
        name = name if len(name) <= width else "..." + name[-(width - 3) :]
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
        say(
            f"accuracy: {summary['correct']}/{summary['labelled']} = {100 * summary['accuracy']:.1f}% "
            f"(whole prediction exact match) with {run.experiment}"
        )
    say(f"predictions: {run.predictions_file}")
    say(f"sheet:       {', '.join(map(str, run.sheets))}")
