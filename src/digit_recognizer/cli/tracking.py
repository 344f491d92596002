"""The tracking commands: ``report``, ``leaderboard`` and ``compare``, and the lines they print.

The recording rules (which event writes which leaderboard column) live in
:mod:`digit_recognizer.tracking.leaderboard`; the commands here only parse, call and print.
Nothing heavy (matplotlib, scikit-learn, TensorFlow) is imported at module level,
so ``digit-recognizer --help`` stays instant.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from digit_recognizer.cli import context, say
from digit_recognizer.errors import UserError

SHOWN_COLUMNS = (  # (header, leaderboard column, right-aligned)
    ("#", None, True),
    ("experiment", "experiment", False),
    ("preset", "preset", False),
    ("architecture", "architecture", False),
    ("seed", "seed", True),
    ("validation", "validation", False),
    ("score", "score", True),
    ("errors", "validation_rows", True),
    ("95% CI", "interval", False),
    ("local key", "local_key_score", True),
    ("kaggle public", "kaggle_public_score", True),
    ("train s", "train_seconds", True),
    ("date", "date", False),
    ("commit", "git_commit", False),
    ("submission", "submission_file", False),
)


# ---------------------------------------------------------------- lines
def say_score(score: float, rows: int) -> str:
    """An accuracy with its error count and 95% Wilson interval: ``0.99500 (21 errors in 4200 rows, 95% CI 0.99238-0.99674)``."""
    from digit_recognizer.tracking.stats import accuracy_interval

    return f"{score:.5f} ({accuracy_interval(score, rows)})"


def say_rank(paths, rank: int, total: int) -> None:
    from digit_recognizer.tracking.leaderboard import relative_to_root

    say(
        f"leaderboard: rank {rank} of {total} ({relative_to_root(paths.leaderboard, paths)}; `digit-recognizer leaderboard` shows it)"
    )


def say_report(result) -> None:
    say(
        f"report: {result.index} ({result.validation_rows} validation rows, accuracy {result.score:.5f}, "
        f"{int(result.confusion.sum() - result.confusion.trace())} misclassified)"
    )
    for warning in result.warnings:
        say(f"warning: {warning}")


def try_report(paths, competition, experiment: str) -> None:
    """Build the experiment's report after a training; a failure only warns (the model is trained and saved)."""
    from digit_recognizer.tracking.report import build_report

    try:
        result = build_report(paths, competition, experiment)
    except Exception as error:  # never fail a finished run over a picture
        from digit_recognizer.errors import quote

        say(
            f"warning: could not build the report ({quote(error)}); retry with `digit-recognizer report --experiment {experiment}`"
        )
    else:
        say_report(result)


# ---------------------------------------------------------------- commands
def register(subparsers) -> None:
    report = subparsers.add_parser(
        "report",
        help="write reports/<experiment>/: confusion matrix, per-class scores, curves, error gallery, index.html",
        description="Build the experiment's report (training does this too): validation confusion matrix (counts and "
        "row-normalised), classification report, accuracy/loss curves and the most confidently wrong digits, "
        "all shown by reports/<experiment>/index.html.",
    )
    report.add_argument("--experiment", help="experiment name (default: the latest trained)")
    report.set_defaults(func=cmd_report)

    board = subparsers.add_parser(
        "leaderboard",
        help="print submissions/leaderboard.csv, best first",
        description="Print the local leaderboard, one row per experiment, best first: by validation score (holdout or "
        "out-of-fold accuracy), ties broken by the local answer-key score, then the Kaggle public score.",
    )
    board.add_argument("--top", type=int, metavar="N", help="show only the best N rows")
    board.add_argument(
        "--by",
        choices=("score", "local", "kaggle"),
        default="score",
        help="rank by the validation score (default), the local answer-key score or the Kaggle public score",
    )
    board.set_defaults(func=cmd_leaderboard)

    compare = subparsers.add_parser(
        "compare",
        help="is one experiment better than another beyond chance? (McNemar's exact test on shared validation rows)",
        description="Compare two experiments on the validation rows both scored (the same holdout rows, or the same "
        "out-of-fold rows): their error counts with 95%% Wilson intervals, the rows where they disagree, and "
        "McNemar's exact test of whether the difference is beyond chance at 95%%. A single 4,200-row holdout "
        "moves about 0.1 point by chance; 5-fold out-of-fold scores over all 42,000 rows decide recipes.",
        epilog="example:\n  digit-recognizer compare fast-cv5 fast-elastic-cv5",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    compare.add_argument("first", metavar="EXPERIMENT_A")
    compare.add_argument("second", metavar="EXPERIMENT_B")
    compare.set_defaults(func=cmd_compare)


def cmd_report(args) -> int:
    from digit_recognizer.experiment import find
    from digit_recognizer.tracking.leaderboard import ensure_row
    from digit_recognizer.tracking.report import build_report

    paths, competition = context(args)
    experiment = find(paths, args.experiment).name
    result = build_report(paths, competition, experiment)
    ensure_row(paths, experiment)
    say_report(result)
    return 0


def cmd_compare(args) -> int:
    from digit_recognizer.config import Paths
    from digit_recognizer.tracking.stats import compare_experiments

    paths = Paths.discover(args.root)
    result = compare_experiments(paths, args.first, args.second)
    test = result.test
    say(f"{result.first}: {say_score(result.accuracy_first, test.rows)}")
    say(f"{result.second}: {say_score(result.accuracy_second, test.rows)}")
    say(
        f"disagreements: {test.disagreements} rows ({test.only_a_right} only {result.first} right, "
        f"{test.only_b_right} only {result.second} right)"
    )
    if test.significant():
        better = result.first if test.only_a_right > test.only_b_right else result.second
        say(f"McNemar's exact test: p = {test.p_value:.3g}, the difference is beyond chance at 95%: {better} is better")
    else:
        say(
            f"McNemar's exact test: p = {test.p_value:.3g}, the difference is within chance at 95% (no winner on these rows)"
        )
    return 0


def _errors_cell(row: dict, column: str) -> str:
    """The validation errors (``27/4200``) or their 95% Wilson interval, from the row's score and row count."""
    from digit_recognizer.tracking.stats import wilson_interval

    try:
        score, rows = float(row.get("score") or ""), int(row.get("validation_rows") or "")
    except ValueError:
        return ""
    errors = round((1 - score) * rows)
    if column == "validation_rows":
        return f"{errors}/{rows}"
    low, high = wilson_interval(rows - errors, rows)
    return f"{low:.4f}-{high:.4f}"


def format_leaderboard(rows: list[dict]) -> str:
    """An aligned text table of leaderboard rows (already in the order to show)."""

    def cell(row: dict, rank: int, column: str | None) -> str:
        if column is None:
            return str(rank)
        if column in ("validation_rows", "interval"):
            return _errors_cell(row, column)
        value = row.get(column, "") or ""
        if column in ("score", "local_key_score", "kaggle_public_score") and value:
            try:
                return f"{float(value):.5f}"
            except ValueError:
                return value
        if column == "kaggle_public_score" and not value and row.get("kaggle_status"):
            return row["kaggle_status"]
        if column == "train_seconds" and value:
            try:
                return f"{float(value):.0f}"
            except ValueError:
                return value
        if column == "date":
            return value.replace("T", " ")[:16]
        if column == "submission_file":
            return Path(value).name
        return value

    table = [[header for header, _, _ in SHOWN_COLUMNS]]
    table += [[cell(row, rank, column) or "-" for _, column, _ in SHOWN_COLUMNS] for rank, row in enumerate(rows, 1)]
    widths = [max(len(line[index]) for line in table) for index in range(len(SHOWN_COLUMNS))]
    lines = []
    for number, line in enumerate(table):
        lines.append(
            "  ".join(
                text.rjust(width) if right else text.ljust(width)
                for text, width, (_, _, right) in zip(line, widths, SHOWN_COLUMNS)
            ).rstrip()
        )
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def cmd_leaderboard(args) -> int:
    from digit_recognizer.config import Paths
    from digit_recognizer.tracking import leaderboard

    paths = Paths.discover(args.root)
    if args.top is not None and args.top < 1:
        raise UserError(f"--top must be at least 1, got {args.top}")
    rows = leaderboard.sorted_rows(paths.leaderboard, by=args.by)
    if not rows:
        raise UserError(
            f"no leaderboard yet ({paths.leaderboard}); train an experiment first: `digit-recognizer train`"
        )
    shown = [leaderboard.with_validation_rows(paths, row) for row in (rows[: args.top] if args.top else rows)]
    say(format_leaderboard(shown))
    order = {"score": "validation score", "local": "local answer-key score", "kaggle": "Kaggle public score"}[args.by]
    say(f"\n{len(shown)} of {len(rows)} experiments, best first by {order}; file: {paths.leaderboard}")
    return 0
