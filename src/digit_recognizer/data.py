"""Read and validate the competition CSVs; reshape pixel rows into 28x28x1 images.

Pixels stay ``uint8`` (one copy of the data, 784 bytes an image); they become
float32 in [0, 1] only when batched (:func:`to_float`). Parsed arrays are cached
under ``inputs/digit-recognizer/cache/`` keyed by the CSV's content hash, so a
changed or corrupt CSV or cache is never used silently.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from digit_recognizer.atomic import atomic_path
from digit_recognizer.config import Competition, Paths
from digit_recognizer.errors import UserError

CACHE_VERSION = 1


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
    return load_csv(paths.data_file(competition, "train"), competition, labelled=True, cache_dir=paths.cache if use_cache else None)


def load_test(paths: Paths, competition: Competition, use_cache: bool = True) -> Dataset:
    return load_csv(paths.data_file(competition, "test"), competition, labelled=False, cache_dir=paths.cache if use_cache else None)


def load_csv(path: Path, competition: Competition, labelled: bool, cache_dir: Path | None = None) -> Dataset:
    """Validate and parse train.csv (``labelled``) or test.csv; use/refresh the cache."""
    path = Path(path)
    check_readable_file(path, hint="run `digit-recognizer fetch` first")
    fingerprint = file_fingerprint(path)
    cache_file = cache_dir / f"{path.stem}-{fingerprint}-v{CACHE_VERSION}.npz" if cache_dir else None
    if cache_file is not None and cache_file.exists():
        cached = _read_cache(cache_file, labelled, competition)
        if cached is not None:
            return Dataset(cached[0], cached[1], fingerprint)
    images, labels = parse_csv(path, competition, labelled)
    if cache_file is not None:
        _write_cache(cache_file, images, labels)
    return Dataset(images, labels, fingerprint)


def check_readable_file(path: Path, hint: str = "") -> None:
    suffix = f" ({hint})" if hint else ""
    if not path.exists():
        raise UserError(f"{path}: file not found{suffix}")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, expected a CSV file")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: file is empty")


def expected_header(competition: Competition, labelled: bool) -> list[str]:
    return competition.train_columns if labelled else competition.pixel_columns


def read_header(path: Path) -> list[str]:
    with open(path, "rb") as handle:
        first = handle.readline()
    try:
        text = first.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a UTF-8 text CSV file") from None
    return text.split(",")


def check_header(path: Path, header: list[str], expected: list[str]) -> None:
    """Exact header match, with a message naming the first difference."""
    if header == expected:
        return
    name = path.name
    if len(header) == 1 and ";" in header[0]:
        raise UserError(f"{name}: columns are separated by ';', expected ',' (the competition's files are comma-separated)")
    if len(header) == 1 and "\t" in header[0]:
        raise UserError(f"{name}: columns are separated by tabs, expected ','")
    if all(column.strip().lstrip("+-").replace(".", "", 1).isdigit() for column in header):
        raise UserError(f"{name}: the first line is data, not the header {expected[0]},{expected[1]},...,{expected[-1]}")
    seen = set()
    for column in header:
        if column in seen:
            raise UserError(f"{name}: header repeats column '{column}'")
        seen.add(column)
    for index, (got, want) in enumerate(zip(header, expected)):
        if got != want:
            raise UserError(f"{name}: header column {index + 1} is '{got}', expected '{want}' (header must be {expected[0]},{expected[1]},...,{expected[-1]})")
    if len(header) > len(expected):
        raise UserError(f"{name}: header has {len(header)} columns, expected {len(expected)} (extra column '{header[len(expected)]}')")
    raise UserError(f"{name}: header has {len(header)} columns, expected {len(expected)} (missing '{expected[len(header)]}')")


_FIELDS_ERROR = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def parse_csv(path: Path, competition: Competition, labelled: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate every cell; return (uint8 images, int64 labels or None)."""
    name = path.name
    expected = expected_header(competition, labelled)
    check_header(path, read_header(path), expected)
    try:
        frame = pd.read_csv(path, encoding="utf-8-sig", header=0, engine="c", low_memory=False)
    except pd.errors.ParserError as error:
        match = _FIELDS_ERROR.search(str(error))
        if match:
            want, line, saw = (int(value) for value in match.groups())
            raise UserError(f"{name}: row {line - 1} (line {line}) has {saw} fields, expected {want}") from None
        raise UserError(f"{name}: cannot be parsed as CSV ({str(error).strip().splitlines()[-1]})") from None
    except UnicodeDecodeError:
        raise UserError(f"{name}: not a UTF-8 text CSV file") from None
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


def _integer_values(frame: pd.DataFrame, path: Path) -> np.ndarray:
    """The frame as int64, or a UserError naming the first empty or non-integer cell."""
    name = path.name
    missing = frame.isna().to_numpy()
    if missing.any():
        row, column = np.argwhere(missing)[0]
        raise UserError(f"{name}: row {row + 1}, column '{frame.columns[column]}': missing value")
    for column in frame.columns:
        if pd.api.types.is_signed_integer_dtype(frame[column].dtype):
            continue
        # pandas turned the whole column into floats or text: re-read it as text to name the first bad cell as written
        text = pd.read_csv(path, encoding="utf-8-sig", usecols=[column], dtype=str, keep_default_na=False)[column].str.strip()
        bad = ~text.str.fullmatch(r"[+-]?\d+")
        problem = "is not an integer"
        if not bad.any():  # integers, but too large for int64
            bad, problem = text.str.lstrip("+-").str.lstrip("0").str.len() > 18, "is far too large"
        row = int(np.flatnonzero(bad.to_numpy())[0]) if bad.any() else 0
        raise UserError(f"{name}: row {row + 1}, column '{column}': '{text.iloc[row]}' {problem}")
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
    shape_ok = images.dtype == np.uint8 and images.ndim == 4 and len(images) > 0 and images.shape[1:] == tuple(competition.image_shape)
    labels_ok = labels is None or (labels.shape == (len(images),) and np.issubdtype(labels.dtype, np.integer)
                                   and shape_ok and labels.min() >= 0 and labels.max() < competition.num_classes)
    if not (shape_ok and labels_ok):
        cache_file.unlink(missing_ok=True)
        return None
    return images, labels


def _write_cache(cache_file: Path, images: np.ndarray, labels: np.ndarray | None) -> None:
    for stale in cache_file.parent.glob(f"{cache_file.name.rsplit('-', 2)[0]}-*.npz") if cache_file.parent.exists() else []:
        stale.unlink(missing_ok=True)
    arrays = {"images": images}
    if labels is not None:
        arrays["labels"] = labels
    with atomic_path(cache_file) as tmp:
        np.savez(tmp, **arrays)
