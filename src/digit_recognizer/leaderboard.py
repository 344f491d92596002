"""The local leaderboard: one row per experiment in ``submissions/leaderboard.csv``.

Every change is read-modify-write under an exclusive file lock (``fcntl``) and
written atomically, so two processes appending at once lose no row and a
killed process never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
from pathlib import Path
from typing import Callable, Iterator

from digit_recognizer.atomic import write_text

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
    with open(path, newline="", encoding="utf-8") as handle:
        return [{column: row.get(column) or "" for column in COLUMNS} for row in csv.DictReader(handle)]


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
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("-inf")


def sorted_rows(path: Path) -> list[dict]:
    """Rows best first: by Kaggle public score when known, else validation score."""
    return sorted(read_rows(path), key=lambda row: (_as_float(row["score"]), _as_float(row["local_key_score"])), reverse=True)


def best_experiment(path: Path) -> str | None:
    rows = sorted_rows(path)
    return rows[0]["experiment"] if rows else None
