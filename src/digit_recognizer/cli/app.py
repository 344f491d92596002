"""The ``app`` subcommand: a local page where people draw or drop their own digits and see what the model sees.

``digit-recognizer app`` serves a Gradio page (:mod:`digit_recognizer.app.page`) on 127.0.0.1 until Ctrl-C.
Gradio and TensorFlow are imported only when the command runs, so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse

from digit_recognizer.app import DEFAULT_HOST, DEFAULT_PORT, check_address
from digit_recognizer.cli import say
from digit_recognizer.cli.images import check_min_confidence_option
from digit_recognizer.errors import UserError
from digit_recognizer.photos.pipeline import DEFAULT_MIN_CONFIDENCE

DESCRIPTION = """\
Serve a local page (Gradio) to draw a digit or a number with the mouse or a finger,
or drop photos of handwritten digits (several at once). For each: the number read,
the boxes found, each 28x28 crop exactly as the model saw it, and the top-3
probabilities per digit. Pick the experiment and the minimum confidence on the page.

Scripts can use the same server: its API endpoint /read takes an image file and
returns the number read, the digits with their probabilities, and a message.
"""

EPILOG = """\
examples:
  digit-recognizer app                          then open http://127.0.0.1:7860
  digit-recognizer app --experiment fast-20260101-120000 --port 8000
  python -c "from gradio_client import Client, handle_file; \\
             print(Client('http://127.0.0.1:7860').predict(handle_file('seven.png'), api_name='/read'))"
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "app",
        help="a local page to draw or drop your own digits and see what the model reads",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--experiment", help="experiment to read with (default: the best on the leaderboard, else the latest trained)"
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST}: this computer only; 0.0.0.0 opens it to your network)",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})")
    parser.add_argument(
        "--min-confidence",
        type=float,
        default=DEFAULT_MIN_CONFIDENCE,
        metavar="P",
        help=f"show a digit as '?' when its top probability is under P (default {DEFAULT_MIN_CONFIDENCE}; "
        "a slider on the page)",
    )
    parser.set_defaults(func=cmd_app)


def cmd_app(args) -> int:
    from digit_recognizer.config import Paths, load_competition
    from digit_recognizer.photos.pipeline import choose_experiment

    paths = Paths.discover(args.root)
    load_competition(paths.root)
    check_min_confidence_option(args.min_confidence)
    check_address(args.host, args.port)
    experiment, why = choose_experiment(paths, args.experiment)
    say(f"starting the app with experiment {experiment} ({why}): loading Gradio and the model...")
    from digit_recognizer.app.page import start

    try:
        blocks, url = start(paths, args.experiment, host=args.host, port=args.port, min_confidence=args.min_confidence)
    except OSError as error:  # the port is taken, or the address is not this computer's
        raise UserError(f"cannot serve on {args.host}:{args.port} ({str(error).strip().splitlines()[0]})") from None
    say(f"the app is running on {url}  (Ctrl-C stops it)")
    try:
        blocks.block_thread()
    finally:
        blocks.close()
    return 0
