"""Read and validate the competition CSVs; reshape pixel rows into 28x28x1 images.

Pixels stay ``uint8`` (one copy of the data, 784 bytes an image); they become
float32 in [0, 1] only when batched (:func:`to_float`). Parsed arrays are cached
under ``inputs/digit-recognizer/cache/`` keyed by the CSV's content hash, so a
changed or corrupt CSV or cache is never used silently.
"""

from __future__ import annotations

import csv
import hashlib
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from digit_recognizer.atomic import atomic_path
from digit_recognizer.config import Competition, Paths
from digit_recognizer.errors import UserError, quote

CACHE_VERSION = 1
MAX_DATA_BYTES = (
    256 << 20
)  # the real train.csv is ~73 MB and test.csv ~49 MB; refuse anything far larger before reading it
MAX_CELL_CHARACTERS = 16  # a pixel written as ' "255" ' with room to spare: bounds a line at 16 characters a column


@dataclass(frozen=True)
class Dataset:
    """Images as uint8 (n, 28, 28, 1); labels as int64 (n,) or None for test.csv."""

    images: np.ndarray
    labels: np.ndarray | None
    fingerprint: str  # content hash of the source CSV

    def __len__(self) -> int:
        return len(self.images)


def file_fingerprint(path: Path) -> str:
    """SHA-256 of the file's bytes (first 16 hex digits)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 pixels 0-255 -> float32 in [0, 1]."""
    return images.astype("float32") / 255.0


def rows_to_images(pixels: np.ndarray, image_shape=(28, 28, 1)) -> np.ndarray:
    """(n, 784) pixel rows -> (n, 28, 28, 1), row-major as Kaggle's pixelK = 28*i + j."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 2 or pixels.shape[1] != int(np.prod(image_shape)):
        raise ValueError(f"expected (n, {int(np.prod(image_shape))}) pixel rows, got {pixels.shape}")
    return pixels.reshape((-1, *image_shape))


def load_train(paths: Paths, competition: Competition, use_cache: bool = True) -> Dataset:
    return load_csv(
        paths.data_file(competition, "train"), competition, labelled=True, cache_dir=paths.cache if use_cache else None
    )


def load_test(paths: Paths, competition: Competition, use_cache: bool = True) -> Dataset:
    return load_csv(
        paths.data_file(competition, "test"), competition, labelled=False, cache_dir=paths.cache if use_cache else None
    )


def load_csv(path: Path, competition: Competition, labelled: bool, cache_dir: Path | None = None) -> Dataset:
    """Validate and parse train.csv (``labelled``) or test.csv; use/refresh the cache."""
    path = Path(path)
    check_readable_file(path, hint="run `digit-recognizer fetch` first")
    check_size(path, MAX_DATA_BYTES, "a competition CSV file")
    fingerprint = file_fingerprint(path)
    cache_file = cache_dir / f"{path.stem}-{fingerprint}-v{CACHE_VERSION}.npz" if cache_dir else None
    if cache_file is not None and cache_file.exists():
        cached = _read_cache(cache_file, labelled, competition)
        if cached is not None:
            return Dataset(cached[0], cached[1], fingerprint)
    images, labels = parse_csv(path, competition, labelled)
    if cache_file is not None:
        try:
            _write_cache(cache_file, images, labels)
        except (UserError, OSError):  # the cache only saves time: an unwritable one is skipped
            pass
    return Dataset(images, labels, fingerprint)


def missing_classes(labels: np.ndarray, num_classes: int) -> list[int]:
    """The labels 0..num_classes-1 that no row has (a model then never learns them)."""
    return sorted(set(range(num_classes)) - set(np.unique(labels).tolist()))


def class_warnings(labels: np.ndarray, competition: Competition, name: str = "train.csv") -> list[str]:
    missing = missing_classes(labels, competition.num_classes)
    if not missing:
        return []
    return [
        f"{name} has no row of label {', '.join(map(str, missing))}: a model trained on it never predicts "
        f"{'that digit' if len(missing) == 1 else 'those digits'}"
    ]


def check_readable_file(path: Path, hint: str = "") -> None:
    suffix = f" ({hint})" if hint else ""
    if not path.exists():
        raise UserError(f"{path}: file not found{suffix}")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, expected a CSV file")
    if not path.is_file():
        raise UserError(f"{path}: not a regular file, expected a CSV file")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: file is empty")


def _size_text(size: int) -> str:
    return (
        f"{size / 2**20:.0f} MiB" if size >= 2**20 else f"{size / 2**10:.0f} KiB" if size >= 2**10 else f"{size} bytes"
    )


def check_size(path: Path, max_bytes: int, what: str) -> None:
    """Refuse, before reading it, a file larger than ``what`` can be."""
    size = path.stat().st_size
    if size > max_bytes:
        raise UserError(
            f"{path.name}: {_size_text(size)}, larger than {what} can be (at most {_size_text(max_bytes)}); "
            "is it the right file?"
        )


def check_lines(path: Path, max_line: int, what: str) -> None:
    """Scan the file's lines without holding more than one (bounded) line: refuse NUL bytes, lone CR line endings
    and a line longer than ``max_line`` bytes, naming the line."""
    name = path.name
    with open(path, "rb") as handle:
        for number, line in enumerate(iter(lambda: handle.readline(max_line + 1), b""), start=1):
            if b"\0" in line:
                raise UserError(f"{name}: not a UTF-8 text CSV file (line {number} holds NUL bytes)")
            if b"\r" in line.rstrip(b"\r\n"):
                raise UserError(
                    f"{name}: line {number} ends in a lone CR (old Mac line endings); save the file with "
                    "LF or CRLF line endings"
                )
            if len(line) > max_line:
                raise UserError(
                    f"{name}: line {number} is longer than {max_line} characters, longer than any line of "
                    f"{what}; is it the right file?"
                )


def max_line_bytes(columns: int) -> int:
    return MAX_CELL_CHARACTERS * columns + 64


def expected_header(competition: Competition, labelled: bool) -> list[str]:
    return competition.train_columns if labelled else competition.pixel_columns


def read_header(path: Path, max_line: int | None = None) -> list[str]:
    """The first line's fields (a quoted header is read as the CSV it is), at most ``max_line`` bytes of it."""
    with open(path, "rb") as handle:
        first = handle.readline(max_line + 1 if max_line else -1)
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{path.name}: not a UTF-8 text CSV file") from None
    if "\r" in text.rstrip("\r\n"):
        text = text.split("\r", 1)[0]  # a lone CR ends the header line (check_lines names that problem)
    try:
        return next(csv.reader([text.rstrip("\r\n")]), [""])
    except csv.Error:
        return text.rstrip("\r\n").split(",")


def _is_number(text: str) -> bool:
    return re.fullmatch(r"\s*[+-]?[0-9]+(\.[0-9]*)?\s*", text) is not None


def check_header(path: Path, header: list[str], expected: list[str]) -> None:
    """Exact header match, with a message naming the first difference."""
    if header == expected:
        return
    name = path.name
    if len(header) == 1 and ";" in header[0]:
        raise UserError(
            f"{name}: columns are separated by ';', expected ',' (the competition's files are comma-separated)"
        )
    if len(header) == 1 and "\t" in header[0]:
        raise UserError(f"{name}: columns are separated by tabs, expected ','")
    if all(_is_number(column) for column in header):
        raise UserError(
            f"{name}: the first line is data, not the header {expected[0]},{expected[1]},...,{expected[-1]}"
        )
    seen = set()
    for column in header:
        if column in seen:
            raise UserError(f"{name}: header repeats column {quote(column)}")
        seen.add(column)
    for index, (got, want) in enumerate(zip(header, expected)):
        if got != want:
            raise UserError(
                f"{name}: header column {index + 1} is {quote(got)}, expected '{want}' (header must be {expected[0]},{expected[1]},...,{expected[-1]})"
            )
    if len(header) > len(expected):
        raise UserError(
            f"{name}: header has {len(header)} columns, expected {len(expected)} (extra column {quote(header[len(expected)])})"
        )
    raise UserError(
        f"{name}: header has {len(header)} columns, expected {len(expected)} (missing '{expected[len(header)]}')"
    )


_FIELDS_ERROR = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def read_rows_exactly(path: Path, columns: list[str], **options) -> pd.DataFrame:
    """The data rows below the header as a frame with exactly ``columns``: a row with more or fewer fields than the
    header (a trailing comma, a shifted row) is an error naming it, never a silently re-indexed or truncated frame.

    Reads with ``header=None`` after the header line, so pandas never takes an extra first field as the index."""
    name = path.name
    try:
        frame = pd.read_csv(path, encoding="utf-8-sig", header=None, skiprows=1, engine="c", **options)
    except pd.errors.EmptyDataError:
        return pd.DataFrame({column: pd.Series(dtype=options.get("dtype", "int64")) for column in columns})
    except pd.errors.ParserError as error:
        match = _FIELDS_ERROR.search(str(error))
        if match:
            want, line, saw = (int(value) for value in match.groups())
            if want != len(columns):  # the first data row set the width, and it is the wrong one
                _wrong_width(path, 2, want, len(columns))
            _wrong_width(path, line, saw, len(columns))
        raise UserError(f"{name}: cannot be parsed as CSV ({quote(str(error).strip().splitlines()[-1])})") from None
    except UnicodeDecodeError:
        raise UserError(f"{name}: not a UTF-8 text CSV file") from None
    if frame.shape[1] != len(columns):
        _wrong_width(path, 2, frame.shape[1], len(columns))
    frame.columns = columns
    return frame


def _wrong_width(path: Path, line: int, fields: int, expected: int):
    """Raise the error for data line ``line`` (1-based, the header is line 1) holding ``fields`` fields."""
    detail = ""
    if fields == expected + 1:
        with open(path, "rb") as handle:
            for _ in range(line):
                text = handle.readline(max_line_bytes(expected + 1) + 1)
        if text.rstrip(b"\r\n").endswith(b","):
            detail = " (it ends with a comma: remove the trailing comma from every row)"
    raise UserError(f"{path.name}: row {line - 1} (line {line}) has {fields} fields, expected {expected}{detail}")


def parse_csv(path: Path, competition: Competition, labelled: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate every cell; return (uint8 images, int64 labels or None)."""
    name = path.name
    expected = expected_header(competition, labelled)
    check_size(path, MAX_DATA_BYTES, "a competition CSV file")
    max_line = max_line_bytes(len(expected))
    check_lines(path, max_line, f"the competition's {name}")
    check_header(path, read_header(path, max_line), expected)
    frame = read_rows_exactly(path, expected, low_memory=False)
    if len(frame) == 0:
        raise UserError(f"{name}: has a header but no rows")
    values = _integer_values(frame, path)
    low, high = competition.pixel_range
    if labelled:
        labels = values[:, 0]
        _check_range(labels, 0, competition.num_classes - 1, name, frame.columns[0:1], "label")
        pixels = values[:, 1:]
        _check_range(pixels, low, high, name, frame.columns[1:], "pixel")
    else:
        labels = None
        pixels = values
        _check_range(pixels, low, high, name, frame.columns, "pixel")
    images = rows_to_images(pixels.astype(np.uint8), tuple(competition.image_shape))
    return images, (labels.astype(np.int64) if labels is not None else None)


INTEGER = r"[+-]?[0-9]+"  # ASCII digits only: '٣' or '５' are not integers here, as they are not on Kaggle


def _integer_values(frame: pd.DataFrame, path: Path) -> np.ndarray:
    """The frame as int64, or a UserError naming the first empty or non-integer cell."""
    name = path.name
    missing = frame.isna().to_numpy()
    if missing.any():
        row, column = np.argwhere(missing)[0]
        raise UserError(f"{name}: row {row + 1}, column '{frame.columns[column]}': missing value")
    for index, column in enumerate(frame.columns):
        if pd.api.types.is_signed_integer_dtype(frame[column].dtype):
            continue
        # pandas turned the whole column into floats or text: re-read it as text to name the first bad cell as written
        text = pd.read_csv(
            path, encoding="utf-8-sig", header=None, skiprows=1, usecols=[index], dtype=str, keep_default_na=False
        )[index].str.strip()
        bad = ~text.str.fullmatch(INTEGER)
        problem = "is not an integer"
        if not bad.any():  # integers, but too large for int64
            bad, problem = text.str.lstrip("+-").str.lstrip("0").str.len() > 18, "is far too large"
        row = int(np.flatnonzero(bad.to_numpy())[0]) if bad.any() else 0
        raise UserError(f"{name}: row {row + 1}, column '{column}': {quote(text.iloc[row])} {problem}")
    return frame.to_numpy(dtype=np.int64)


def _check_range(values: np.ndarray, low: int, high: int, name: str, columns, what: str) -> None:
    bad = (values < low) | (values > high)
    if bad.any():
        row, column = np.argwhere(bad.reshape(len(values), -1))[0]
        value = values.reshape(len(values), -1)[row, column]
        raise UserError(f"{name}: row {row + 1}, column '{columns[column]}': {what} {value} is outside {low}-{high}")


def _read_cache(cache_file: Path, labelled: bool, competition: Competition):
    """The cached arrays, or None when the cache is unreadable or inconsistent (then it is rebuilt)."""
    try:
        with np.load(cache_file, allow_pickle=False) as archive:
            images = archive["images"]
            labels = archive["labels"] if labelled else None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        cache_file.unlink(missing_ok=True)
        return None
    shape_ok = (
        images.dtype == np.uint8
        and images.ndim == 4
        and len(images) > 0
        and images.shape[1:] == tuple(competition.image_shape)
    )
    labels_ok = labels is None or (
        labels.shape == (len(images),)
        and np.issubdtype(labels.dtype, np.integer)
        and shape_ok
        and labels.min() >= 0
        and labels.max() < competition.num_classes
    )
    if not (shape_ok and labels_ok):
        cache_file.unlink(missing_ok=True)
        return None
    return images, labels


def _write_cache(cache_file: Path, images: np.ndarray, labels: np.ndarray | None) -> None:
    for stale in (
        cache_file.parent.glob(f"{cache_file.name.rsplit('-', 2)[0]}-*.npz") if cache_file.parent.exists() else []
    ):
        stale.unlink(missing_ok=True)
    arrays = {"images": images}
    if labels is not None:
        arrays["labels"] = labels
    with atomic_path(cache_file) as tmp:
        np.savez(tmp, **arrays)
