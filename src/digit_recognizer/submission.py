"""Write and check submission files (``ImageId,Label``) against the competition's format."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from digit_recognizer.atomic import atomic_open
from digit_recognizer.config import Competition, Paths
from digit_recognizer.data import check_lines, check_readable_file, check_size, read_header, read_rows_exactly
from digit_recognizer.errors import UserError, quote

MAX_SUBMISSION_BYTES = 16 << 20  # a real submission is ~240 KB (28,000 short rows)
MAX_SUBMISSION_LINE = 256


@dataclass(frozen=True)
class SubmissionCheck:
    path: Path
    rows: int
    accuracy: float | None  # against the answer key, when one exists (the offline sample)
    key_file: Path | None


def submission_frame(labels: np.ndarray, competition: Competition) -> pd.DataFrame:
    id_column, label_column = competition.submission_columns
    image_ids = np.arange(competition.image_id_start, competition.image_id_start + len(labels))
    return pd.DataFrame({id_column: image_ids, label_column: np.asarray(labels, dtype=np.int64)})


def write_submission(path: Path, labels: np.ndarray, competition: Competition) -> Path:
    with atomic_open(path, "w", newline="") as handle:
        submission_frame(labels, competition).to_csv(handle, index=False)
    return Path(path)


def expected_test_rows(paths: Paths, competition: Competition) -> int:
    """Rows of the test.csv present locally (the sample has fewer), else the competition's count."""
    test_file = paths.data_file(competition, "test")
    if test_file.is_file():
        from digit_recognizer.data import MAX_DATA_BYTES

        check_size(test_file, MAX_DATA_BYTES, "a competition CSV file")
        with open(test_file, "rb") as handle:
            lines = sum(1 for line in handle if line.strip())
        return max(0, lines - 1)
    return int(competition.rows["test"])


def read_submission(path: Path, competition: Competition, expected_rows: int) -> np.ndarray:
    """Validate a submission file; return its labels ordered by ImageId."""
    path = Path(path)
    check_readable_file(path)
    check_size(path, MAX_SUBMISSION_BYTES, "a submission")
    check_lines(path, MAX_SUBMISSION_LINE, "a submission")
    name = path.name
    expected = list(competition.submission_columns)
    header = read_header(path, MAX_SUBMISSION_LINE)
    if header != expected:
        raise UserError(f"{name}: header is {quote(','.join(header))}, expected '{','.join(expected)}'")
    frame = read_rows_exactly(path, expected, dtype=str, keep_default_na=False)
    id_column, label_column = expected
    for column, low, high in (
        (id_column, competition.image_id_start, competition.image_id_start + expected_rows - 1),
        (label_column, 0, competition.num_classes - 1),
    ):
        text = frame[column].str.strip()
        not_integer = ~text.str.fullmatch(r"[+-]?[0-9]{1,18}")  # ASCII digits only: Kaggle refuses '٣' or '５'
        if not_integer.any():
            row = int(np.flatnonzero(not_integer.to_numpy())[0])
            raise UserError(
                f"{name}: row {row + 1}, column '{column}': {quote(frame[column].iloc[row])} is not an integer"
            )
        values = text.astype(np.int64).to_numpy()
        out_of_range = (values < low) | (values > high)
        if out_of_range.any():
            row = int(np.flatnonzero(out_of_range)[0])
            raise UserError(f"{name}: row {row + 1}, column '{column}': {values[row]} is outside {low}-{high}")
        frame[column] = values
    duplicated = frame[id_column].duplicated()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated.to_numpy())[0])
        raise UserError(f"{name}: row {row + 1}: {id_column} {frame[id_column].iloc[row]} appears more than once")
    if len(frame) != expected_rows:
        start = competition.image_id_start
        missing = sorted(set(range(start, start + expected_rows)) - set(frame[id_column]))
        detail = f"; missing {id_column} {missing[0]}" if missing else ""
        raise UserError(f"{name}: has {len(frame)} rows, expected {expected_rows} (one per test image){detail}")
    return frame.sort_values(id_column)[label_column].to_numpy()


def read_answer_key(key_file: Path, competition: Competition) -> np.ndarray:
    """The sample's ``test_labels.csv`` (``ImageId,Label``) as labels ordered by ImageId, read as exactly as a
    submission (its row count may differ from test.csv's: then the caller does not score)."""
    columns = list(competition.submission_columns)
    id_column, label_column = columns
    try:
        check_size(key_file, MAX_SUBMISSION_BYTES, "an answer key")
        check_lines(key_file, MAX_SUBMISSION_LINE, "an answer key")
        header = read_header(key_file, MAX_SUBMISSION_LINE)
        if header != columns:
            raise UserError(f"header is {quote(','.join(header))}, expected '{','.join(columns)}'")
        text = read_rows_exactly(key_file, columns, dtype=str, keep_default_na=False).apply(
            lambda column: column.str.strip()
        )
        if not text.apply(lambda column: column.str.fullmatch(r"[0-9]{1,18}")).all().all():
            raise UserError("a cell is not a whole number")
        return text.astype(np.int64).sort_values(id_column)[label_column].to_numpy()
    except UserError as error:
        raise UserError(
            f"{key_file}: not a valid answer key ({quote(error)}); run `digit-recognizer fetch --sample --force`"
        ) from None


def check_submission(path: Path, paths: Paths, competition: Competition) -> SubmissionCheck:
    """Validate a submission; score it when the answer key of the offline sample is present."""
    rows = expected_test_rows(paths, competition)
    labels = read_submission(path, competition, rows)
    accuracy, key_file = None, None
    if paths.test_labels.is_file():
        answers = read_answer_key(paths.test_labels, competition)
        if len(answers) == len(labels):
            accuracy, key_file = float((answers == labels).mean()), paths.test_labels
    return SubmissionCheck(Path(path), len(labels), accuracy, key_file)
