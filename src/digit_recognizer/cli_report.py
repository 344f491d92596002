"""``report`` and ``leaderboard`` subcommands, and the hooks that keep both up to date.

cli.py calls :func:`after_training` after every training, :func:`after_prediction`
after ``predict`` writes a submission and :func:`after_validation` after
``validate``. Nothing heavy (matplotlib, scikit-learn, TensorFlow) is imported at
module level, so ``digit-recognizer --help`` stays instant.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from digit_recognizer.errors import UserError

SHOWN_COLUMNS = (  # (header, leaderboard column, right-aligned)
    ("#", None, True),
    ("experiment", "experiment", False),
    ("preset", "preset", False),
    ("architecture", "architecture", False),
    ("seed", "seed", True),
    ("validation", "validation", False),
    ("score", "score", True),
    ("local key", "local_key_score", True),
    ("kaggle public", "kaggle_public_score", True),
    ("train s", "train_seconds", True),
    ("date", "date", False),
    ("commit", "git_commit", False),
    ("submission", "submission_file", False),
)


# ---------------------------------------------------------------- helpers
def _context(args):
    from digit_recognizer.config import Paths, load_competition

    paths = Paths.discover(args.root)
    return paths, load_competition(paths.root)


def git_commit(root: Path) -> str:
    """``git rev-parse --short HEAD`` in the project root when it is a git checkout, else ''."""
    root = Path(root)
    if not (root / ".git").exists():
        return ""
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _relative_to_root(path: Path, paths) -> str:
    """How a file is recorded in the leaderboard: relative to the project root when inside it."""
    path = Path(path).resolve()
    try:
        return path.relative_to(paths.root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _resolve_recorded(text: str, paths) -> Path | None:
    if not text:
        return None
    path = Path(text)
    return (path if path.is_absolute() else paths.root / path).resolve()


def _format_score(value) -> str:
    return "" if value is None else f"{float(value):.6g}"


def experiment_fields(paths, experiment: str, metrics: dict | None = None) -> dict:
    """The leaderboard fields that training determines, from models/<experiment>/metrics.json."""
    if metrics is None:
        from digit_recognizer.predict import read_metrics

        metrics = read_metrics(paths, experiment)
    return {
        "preset": metrics.get("preset", ""),
        "architecture": metrics.get("architecture", ""),
        "seed": metrics.get("seed", ""),
        "validation": metrics.get("validation", ""),
        "score": _format_score(metrics.get("score")),
        "train_seconds": metrics.get("train_seconds", ""),
        "date": metrics.get("finished", ""),
        "git_commit": git_commit(paths.root),
    }


def ensure_row(paths, experiment: str) -> bool:
    """Add the experiment's leaderboard row from its metrics if it has none (trained before reports existed).
    True when the row exists afterwards."""
    from digit_recognizer import leaderboard

    if any(row["experiment"] == experiment for row in leaderboard.read_rows(paths.leaderboard)):
        return True
    if not (paths.experiment_dir(experiment) / "metrics.json").is_file():
        return False
    fields = experiment_fields(paths, experiment)
    fields["git_commit"] = ""  # the commit it was trained at is unknown
    leaderboard.upsert(paths.leaderboard, experiment, **fields)
    return True


def _rank(paths, experiment: str) -> tuple[int, int]:
    from digit_recognizer import leaderboard

    rows = leaderboard.sorted_rows(paths.leaderboard)
    names = [row["experiment"] for row in rows]
    return (names.index(experiment) + 1 if experiment in names else 0), len(rows)


def _check_experiment(paths, experiment: str | None) -> str:
    from digit_recognizer.predict import latest_experiment, list_experiments

    if not experiment:
        return latest_experiment(paths)
    if not (paths.experiment_dir(experiment) / "metrics.json").is_file():
        known = list_experiments(paths)
        if paths.experiment_dir(experiment).is_dir():
            raise UserError(f"experiment '{experiment}' has no finished training ({paths.experiment_dir(experiment) / 'metrics.json'} missing); "
                            f"finish it with `digit-recognizer train --name {experiment}` and the same options")
        hint = f"trained: {', '.join(known)}" if known else "none trained yet; run `digit-recognizer train` first"
        raise UserError(f"experiment '{experiment}' not found under {paths.models} ({hint})")
    return experiment


def _say_report(result, paths, say) -> None:
    say(f"report: {result.index} ({result.validation_rows} validation rows, accuracy {result.score:.5f}, "
        f"{int(result.confusion.sum() - result.confusion.trace())} misclassified)")
    for warning in result.warnings:
        say(f"warning: {warning}")


# ---------------------------------------------------------------- hooks
def after_training(experiment: str, paths, competition, say=print) -> None:
    """Record the experiment on the leaderboard, then build its report (a report failure only warns)."""
    from digit_recognizer import leaderboard
    from digit_recognizer.report import build_report

    leaderboard.upsert(paths.leaderboard, experiment, **experiment_fields(paths, experiment))
    rank, total = _rank(paths, experiment)
    try:
        result = build_report(paths, competition, experiment)
    except Exception as error:  # the model is trained and saved: never fail the run over a picture
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        say(f"warning: could not build the report ({reason}); retry with `digit-recognizer report --experiment {experiment}`")
    else:
        _say_report(result, paths, say)
    say(f"leaderboard: rank {rank} of {total} ({_relative_to_root(paths.leaderboard, paths)}; `digit-recognizer leaderboard` shows it)")


def after_prediction(prediction, paths, competition, say=print) -> None:
    """Record the experiment's submission file (and its local score when the sample's answer key exists)."""
    from digit_recognizer import leaderboard

    if not ensure_row(paths, prediction.experiment):
        return
    fields = {"submission_file": _relative_to_root(prediction.submission, paths)}
    if paths.test_labels.is_file():
        accuracy = local_key_accuracy(prediction.submission, paths, competition)
        fields["local_key_score"] = _format_score(accuracy)
    leaderboard.upsert(paths.leaderboard, prediction.experiment, **fields)


def local_key_accuracy(submission: Path, paths, competition) -> float | None:
    """The submission's accuracy against the offline sample's answer key (None without a key or a valid file)."""
    from digit_recognizer.submission import check_submission

    try:
        return check_submission(submission, paths, competition).accuracy
    except UserError:
        return None


def after_ensemble(result, paths, competition, say=print) -> None:
    """Record the ensemble on the leaderboard (scored on its members' shared validation rows)."""
    from digit_recognizer import leaderboard

    rows = {row["experiment"]: row for row in leaderboard.read_rows(paths.leaderboard)}
    members = [rows.get(experiment, {}) for experiment in result.members]
    architectures = list(dict.fromkeys(row["architecture"] for row in members if row.get("architecture")))
    seeds = {row.get("seed", "") for row in members}
    leaderboard.upsert(paths.leaderboard, result.name, preset="ensemble", architecture="+".join(architectures),
                       seed=seeds.pop() if len(seeds) == 1 else "",
                       validation=result.validation, score=_format_score(result.score), date=result.finished,
                       git_commit=git_commit(paths.root), submission_file=_relative_to_root(result.submission, paths))
    accuracy = local_key_accuracy(result.submission, paths, competition) if paths.test_labels.is_file() else None
    if accuracy is not None:
        leaderboard.upsert(paths.leaderboard, result.name, local_key_score=_format_score(accuracy))
        say(f"accuracy {accuracy:.5f} against the sample's answer key")
    rank, total = _rank(paths, result.name)
    say(f"leaderboard: rank {rank} of {total} ({_relative_to_root(paths.leaderboard, paths)}; `digit-recognizer leaderboard` shows it)")


def _same_content(first: Path, second: Path) -> bool:
    try:
        return first.stat().st_size == second.stat().st_size and first.read_bytes() == second.read_bytes()
    except OSError:
        return False


def matching_experiments(check_path: Path, paths) -> list[tuple[str, Path]]:
    """(experiment, its submission file) pairs a validated file belongs to.

    ``submissions/submission.csv`` (the latest copy) maps to every experiment whose own
    submission has identical content; any other file to the experiment named by its stem,
    or whose recorded submission_file is this file.
    """
    from digit_recognizer import leaderboard

    path = Path(check_path).resolve()
    rows = leaderboard.read_rows(paths.leaderboard)
    if path == paths.latest_submission.resolve():
        names = {row["experiment"] for row in rows}
        if paths.models.is_dir():
            names |= {folder.name for folder in paths.models.iterdir() if (folder / "metrics.json").is_file()}
        return [(name, paths.submission_file(name)) for name in sorted(names)
                if paths.submission_file(name).is_file() and _same_content(paths.submission_file(name), path)]
    matches = [row["experiment"] for row in rows if row["experiment"] == path.stem or _resolve_recorded(row["submission_file"], paths) == path]
    if not matches and (paths.experiment_dir(path.stem) / "metrics.json").is_file():
        matches = [path.stem]
    return [(name, path) for name in dict.fromkeys(matches)]


def after_validation(check, paths, competition, say=print) -> None:
    """Record a validated file's local answer-key score (when known) and path on its experiment's row."""
    from digit_recognizer import leaderboard

    recorded = []
    for experiment, submission in matching_experiments(check.path, paths):
        if not ensure_row(paths, experiment):
            continue
        fields = {"submission_file": _relative_to_root(submission, paths)}
        if check.accuracy is not None:
            fields["local_key_score"] = _format_score(check.accuracy)
        leaderboard.upsert(paths.leaderboard, experiment, **fields)
        recorded.append(experiment)
    if recorded and check.accuracy is not None:
        say(f"leaderboard: local key score {check.accuracy:.5f} recorded for {', '.join(recorded)}")
    elif not recorded and check.accuracy is not None:
        say(f"leaderboard: no experiment matches {Path(check.path).name}; score not recorded")


# ---------------------------------------------------------------- commands
def register(subparsers) -> None:
    report = subparsers.add_parser(
        "report", help="write reports/<experiment>/: confusion matrix, per-class scores, curves, error gallery, index.html",
        description="Build the experiment's report (training does this too): validation confusion matrix (counts and "
                    "row-normalised), classification report, accuracy/loss curves and the most confidently wrong digits, "
                    "all shown by reports/<experiment>/index.html.")
    report.add_argument("--experiment", help="experiment name (default: the latest trained)")
    report.set_defaults(func=cmd_report)

    board = subparsers.add_parser(
        "leaderboard", help="print submissions/leaderboard.csv, best first",
        description="Print the local leaderboard, one row per experiment, best first: by validation score (holdout or "
                    "out-of-fold accuracy), ties broken by the local answer-key score, then the Kaggle public score.")
    board.add_argument("--top", type=int, metavar="N", help="show only the best N rows")
    board.add_argument("--by", choices=("score", "local", "kaggle"), default="score",
                       help="rank by the validation score (default), the local answer-key score or the Kaggle public score")
    board.set_defaults(func=cmd_leaderboard)


def cmd_report(args) -> int:
    from digit_recognizer.report import build_report

    paths, competition = _context(args)
    experiment = _check_experiment(paths, args.experiment)
    result = build_report(paths, competition, experiment)
    ensure_row(paths, experiment)
    _say_report(result, paths, print)
    return 0


def format_leaderboard(rows: list[dict]) -> str:
    """An aligned text table of leaderboard rows (already in the order to show)."""
    def cell(row: dict, rank: int, column: str | None) -> str:
        if column is None:
            return str(rank)
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
        lines.append("  ".join(text.rjust(width) if right else text.ljust(width)
                               for text, width, (_, _, right) in zip(line, widths, SHOWN_COLUMNS)).rstrip())
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def cmd_leaderboard(args) -> int:
    from digit_recognizer import leaderboard
    from digit_recognizer.config import Paths

    paths = Paths.discover(args.root)
    if args.top is not None and args.top < 1:
        raise UserError(f"--top must be at least 1, got {args.top}")
    rows = leaderboard.sorted_rows(paths.leaderboard, by=args.by)
    if not rows:
        raise UserError(f"no leaderboard yet ({paths.leaderboard}); train an experiment first: `digit-recognizer train`")
    shown = rows[:args.top] if args.top else rows
    print(format_leaderboard(shown))
    order = {"score": "validation score", "local": "local answer-key score", "kaggle": "Kaggle public score"}[args.by]
    print(f"\n{len(shown)} of {len(rows)} experiments, best first by {order}; file: {paths.leaderboard}")
    return 0
