"""The ``digit-recognizer`` command line: one entry point, a subcommand per pipeline stage.

Each command module only parses arguments, calls the library and prints through :func:`say`:

- :mod:`.pipeline`  run, fetch, train, predict, ensemble, validate
- :mod:`.tracking`  report, leaderboard, compare
- :mod:`.images`    images (photos of handwritten digits)
- :mod:`.kaggle`    submit, submissions, kernel

Problems a user can cause end in one ``error: ...`` line and exit code 2, never
a traceback. Heavy libraries (TensorFlow, the Kaggle client) are imported only
inside the commands that need them, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from digit_recognizer import __version__
from digit_recognizer.errors import UserError

DESCRIPTION = """\
The Kaggle Digit Recognizer workflow: fetch the data, train a CNN, write submission.csv.

Quick start (offline, no Kaggle account needed):
  digit-recognizer run                 fetch the offline sample, train, predict, validate

With the real competition data:
  digit-recognizer fetch               (or: fetch --zip digit-recognizer.zip)
  digit-recognizer train --preset fast
  digit-recognizer predict
  digit-recognizer validate submissions/submission.csv
  digit-recognizer ensemble EXPERIMENT EXPERIMENT ...   average experiments into one submission
"""


def say(message: str = "") -> None:
    """The commands' one output function: a line on stdout, flushed (progress shows as it happens)."""
    print(message, flush=True)


def warn(message: str) -> None:
    """A warning line on stderr."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def context(args):
    """(Paths, Competition) for the project folder the command works on."""
    from digit_recognizer.config import Paths, load_competition

    paths = Paths.discover(args.root)
    return paths, load_competition(paths.root)


def build_parser() -> argparse.ArgumentParser:
    from digit_recognizer.cli import app, images, kaggle, pipeline, tracking

    parser = argparse.ArgumentParser(
        prog="digit-recognizer", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--root",
        type=Path,
        help="project folder holding inputs/, models/, submissions/ (default: the nearest folder above the "
        "working directory holding competition/competition.json, else the working directory; "
        "$DIGIT_RECOGNIZER_ROOT overrides it)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (pipeline, tracking, images, kaggle, app):
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
