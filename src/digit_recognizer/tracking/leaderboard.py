"""The local leaderboard: one row per experiment in ``submissions/leaderboard.csv``.

Every change is read-modify-write under an exclusive file lock (``fcntl``) and
written atomically, so two processes appending at once lose no row and a
killed process never leaves a half-written file.

Ordering ("best first"): by the validation ``score`` (holdout or out-of-fold
accuracy), which every row has and which is what you choose a submission by;
ties are broken by the local answer-key score, then the Kaggle public score.
The Kaggle public score is not the default key because only submitted
experiments have one (and it is measured on a different, smaller set), so
ranking by it would put every unsubmitted experiment last whatever its
quality; ask for it explicitly with ``sorted_rows(path, by="kaggle")``
(``digit-recognizer leaderboard --by kaggle``). Rows missing the chosen value
sort last, in their file order.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import math
from collections.abc import Callable, Iterator
from pathlib import Path

from digit_recognizer.atomic import ensure_folder, write_text
from digit_recognizer.errors import UserError

COLUMNS = (
    "experiment",
    "preset",
    "architecture",
    "seed",
    "validation",
    "score",
    "validation_rows",
    "local_key_score",
    "train_seconds",
    "date",
    "git_commit",
    "submission_file",
    "kaggle_status",
    "kaggle_ref",
    "kaggle_submitted_at",
    "kaggle_public_score",
    "kaggle_error",
    "source",  # where the experiment ran: empty for this machine, "kernel USER/SLUG v<version>" for a Kaggle kernel
)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<path>.lock`` for the duration of the block."""
    path = Path(path)
    ensure_folder(path.parent)
    with open(path.with_name(path.name + ".lock"), "a+") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def read_rows(path: Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return [{column: row.get(column) or "" for column in COLUMNS} for row in csv.DictReader(handle)]
    except (UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"{path}: not a readable leaderboard CSV ({error}); repair or delete it") from None


def _write_rows(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({column: "" if row.get(column) is None else row.get(column) for column in COLUMNS})
    write_text(path, buffer.getvalue())


def upsert(path: Path, experiment: str, **fields) -> dict:
    """Add the experiment's row, or update the given fields of it; return the row."""
    unknown = set(fields) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown leaderboard columns: {', '.join(sorted(unknown))}")
    with locked(path):
        rows = read_rows(path)
        for row in rows:
            if row["experiment"] == experiment:
                row.update({key: "" if value is None else value for key, value in fields.items()})
                break
        else:
            row = {column: "" for column in COLUMNS}
            row.update({key: "" if value is None else value for key, value in fields.items()}, experiment=experiment)
            rows.append(row)
        _write_rows(path, rows)
        return row


def update_where(path: Path, matches: Callable[[dict], bool], **fields) -> int:
    """Update the given fields of every row for which ``matches(row)``; return how many."""
    with locked(path):
        rows = read_rows(path)
        count = 0
        for row in rows:
            if matches(row):
                row.update({key: "" if value is None else value for key, value in fields.items()})
                count += 1
        if count:
            _write_rows(path, rows)
        return count


def _as_float(text: str) -> float:
    """The number in a cell; -inf for an empty or non-numeric cell (so it ranks last)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return float("-inf")
    return float("-inf") if math.isnan(value) else value


# --by choice -> (column, tie-breaking columns): higher is better for each.
SORT_KEYS = {
    "score": ("score", "local_key_score", "kaggle_public_score"),
    "local": ("local_key_score", "score", "kaggle_public_score"),
    "kaggle": ("kaggle_public_score", "score", "local_key_score"),
}


def sorted_rows(path: Path, by: str = "score") -> list[dict]:
    """Rows best first: by validation score (ties: local key score, then Kaggle public score).

    ``by="local"`` or ``by="kaggle"`` ranks by that score instead; rows without it come last.
    Equal rows keep their file (insertion) order.
    """
    if by not in SORT_KEYS:
        raise ValueError(f"unknown leaderboard order '{by}' (choose from {', '.join(SORT_KEYS)})")
    columns = SORT_KEYS[by]
    return sorted(read_rows(path), key=lambda row: tuple(-_as_float(row[column]) for column in columns))


def best_experiment(path: Path, by: str = "score") -> str | None:
    """The top row's experiment (None when the leaderboard is empty, or no row has the ``by`` score other than ``score``)."""
    rows = sorted_rows(path, by=by)
    if not rows:
        return None
    if by != "score" and _as_float(rows[0][SORT_KEYS[by][0]]) == float("-inf"):
        return None
    return rows[0]["experiment"]


# ---------------------------------------------------------------- recording rules
# Which events add or update which columns. The commands call these explicitly: training adds the experiment's row,
# a prediction records its submission file (and its answer-key score), an ensemble adds its own row, a validated
# file records its score on the rows it belongs to; the Kaggle commands record submissions (kaggle/submit.py).


def git_commit(root: Path) -> str:
    """``git rev-parse --short HEAD`` in the project root when it is a git checkout, else ''."""
    import subprocess

    root = Path(root)
    if not (root / ".git").exists():
        return ""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def relative_to_root(path: Path, paths) -> str:
    """How a file is recorded in the leaderboard: relative to the project root when inside it."""
    path = Path(path).resolve()
    try:
        return path.relative_to(paths.root.resolve()).as_posix()
    except ValueError:
        return str(path)


def resolve_recorded(text: str, paths) -> Path | None:
    """A recorded file (relative to the project root, or absolute) as an absolute path."""
    if not text:
        return None
    path = Path(text)
    return (path if path.is_absolute() else paths.root / path).resolve()


def format_score(value) -> str:
    return "" if value is None else f"{float(value):.6g}"


def architecture_label(metrics: dict) -> str:
    """An experiment's architecture from its metrics: ``deotte``, or ``deotte+deotte-nodrop`` with a partner."""
    names = (metrics.get("architecture", ""), metrics.get("partner", "none"))
    return "+".join(name for name in names if name not in ("", "none"))


def experiment_fields(paths, experiment: str, metrics: dict | None = None) -> dict:
    """The leaderboard fields that training determines, from the experiment's metrics."""
    from digit_recognizer.experiment import Experiment

    if metrics is None:
        metrics = Experiment(paths, experiment).read_metrics()
    return {
        "preset": metrics.get("preset", ""),
        "architecture": architecture_label(metrics),
        "seed": metrics.get("seed", ""),
        "validation": metrics.get("validation", ""),
        "score": format_score(metrics.get("score")),
        "validation_rows": metrics.get("validation_rows", ""),
        "train_seconds": metrics.get("train_seconds", ""),
        "date": metrics.get("finished", ""),
        "git_commit": git_commit(paths.root),
    }


def ensure_row(paths, experiment: str) -> bool:
    """Add the experiment's row from its metrics if it has none (trained before reports existed).
    True when the row exists afterwards."""
    from digit_recognizer.experiment import Experiment

    if any(row["experiment"] == experiment for row in read_rows(paths.leaderboard)):
        return True
    if not Experiment(paths, experiment).is_finished:
        return False
    fields = experiment_fields(paths, experiment)
    fields["git_commit"] = ""  # the commit it was trained at is unknown
    upsert(paths.leaderboard, experiment, **fields)
    return True


def rank(paths, experiment: str) -> tuple[int, int]:
    """(the experiment's rank, best first by validation score, 0 when absent; the number of rows)."""
    names = [row["experiment"] for row in sorted_rows(paths.leaderboard)]
    return (names.index(experiment) + 1 if experiment in names else 0), len(names)


def with_validation_rows(paths, row: dict) -> dict:
    """The row, with its validation row count taken from the experiment's metrics when the row predates that
    column (for showing errors and intervals; the file is not changed)."""
    from digit_recognizer.experiment import Experiment

    if row.get("validation_rows") or not row.get("score"):
        return row
    experiment = Experiment(paths, row["experiment"])
    try:
        rows = experiment.read_metrics().get("validation_rows") if experiment.is_finished else None
    except UserError:
        rows = None
    return {**row, "validation_rows": str(rows)} if isinstance(rows, int) else row


def record_training(paths, experiment: str) -> tuple[int, int]:
    """Add (or refresh) a trained experiment's row; return its rank and the number of rows."""
    upsert(paths.leaderboard, experiment, **experiment_fields(paths, experiment))
    return rank(paths, experiment)


def local_key_accuracy(submission: Path, paths, competition) -> float | None:
    """The submission's accuracy against the offline sample's answer key (None without a key or a valid file)."""
    from digit_recognizer.submission import check_submission

    if not paths.test_labels.is_file():
        return None
    try:
        return check_submission(submission, paths, competition).accuracy
    except UserError:
        return None


def record_prediction(paths, competition, experiment: str, submission: Path) -> float | None:
    """Record the experiment's submission file and, when the sample's answer key exists, its score (returned)."""
    if not ensure_row(paths, experiment):
        return None
    fields = {"submission_file": relative_to_root(submission, paths)}
    accuracy = local_key_accuracy(submission, paths, competition)
    if accuracy is not None:
        fields["local_key_score"] = format_score(accuracy)
    upsert(paths.leaderboard, experiment, **fields)
    return accuracy


def record_ensemble(paths, competition, result) -> float | None:
    """Add the ensemble's row (scored on its members' shared validation rows); return its answer-key score."""
    rows = {row["experiment"]: row for row in read_rows(paths.leaderboard)}
    members = [rows.get(experiment, {}) for experiment in result.members]
    architectures = list(dict.fromkeys(row["architecture"] for row in members if row.get("architecture")))
    seeds = {row.get("seed", "") for row in members}
    upsert(
        paths.leaderboard,
        result.name,
        preset="ensemble",
        architecture="+".join(architectures),
        seed=seeds.pop() if len(seeds) == 1 else "",
        validation=result.validation,
        score=format_score(result.score),
        date=result.finished,
        validation_rows=result.validation_rows if result.score is not None else "",
        git_commit=git_commit(paths.root),
        submission_file=relative_to_root(result.submission, paths),
    )
    accuracy = local_key_accuracy(result.submission, paths, competition)
    if accuracy is not None:
        upsert(paths.leaderboard, result.name, local_key_score=format_score(accuracy))
    return accuracy


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
    from digit_recognizer.experiment import Experiment, finished

    path = Path(check_path).resolve()
    rows = read_rows(paths.leaderboard)
    if path == paths.latest_submission.resolve():
        names = {row["experiment"] for row in rows} | set(finished(paths))
        return [
            (name, paths.submission_file(name))
            for name in sorted(names)
            if paths.submission_file(name).is_file() and _same_content(paths.submission_file(name), path)
        ]
    matches = [
        row["experiment"]
        for row in rows
        if row["experiment"] == path.stem or resolve_recorded(row["submission_file"], paths) == path
    ]
    if not matches and Experiment(paths, path.stem).is_finished:
        matches = [path.stem]
    return [(name, path) for name in dict.fromkeys(matches)]


def record_validation(paths, check) -> list[str]:
    """Record a validated file's path (and its answer-key score, when known) on its experiments' rows; return them."""
    recorded = []
    for experiment, submission in matching_experiments(check.path, paths):
        if not ensure_row(paths, experiment):
            continue
        fields = {"submission_file": relative_to_root(submission, paths)}
        if check.accuracy is not None:
            fields["local_key_score"] = format_score(check.accuracy)
        upsert(paths.leaderboard, experiment, **fields)
        recorded.append(experiment)
    return recorded


def record_kernel_output(
    paths, experiment: str, metrics: dict, submission: Path, accuracy: float | None, source: str
) -> dict:
    """Add (or refresh) the row of a Kaggle kernel's run: what it trained and its validation score (from the
    output's metrics.json, when there), its downloaded submission file and where it came from."""
    fields = {key: value for key, value in experiment_fields(paths, experiment, metrics).items() if key != "git_commit"}
    fields.update(
        submission_file=relative_to_root(submission, paths), source=source, local_key_score=format_score(accuracy)
    )
    return upsert(paths.leaderboard, experiment, **fields)
