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
from pathlib import Path
from typing import Callable, Iterator

from digit_recognizer.atomic import write_text
from digit_recognizer.errors import UserError

COLUMNS = (
    "experiment", "preset", "architecture", "seed", "validation", "score", "local_key_score",
    "train_seconds", "date", "git_commit", "submission_file",
    "kaggle_status", "kaggle_ref", "kaggle_submitted_at", "kaggle_public_score", "kaggle_error",
)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<path>.lock`` for the duration of the block."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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
