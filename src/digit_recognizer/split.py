"""Stratified holdout split and K stratified folds, made once and written to a file.

Every experiment with the same seed (and the same train.csv) reuses the same
rows, so scores are comparable (Thakur's ``train_folds.csv``). A fold file has
one row per train row: ``row,fold``; for a holdout split fold 0 is the
validation part and fold -1 the training part.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from digit_recognizer.atomic import atomic_open
from digit_recognizer.errors import UserError, quote

HOLDOUT_TRAIN = -1


def holdout_file(splits_dir: Path, fraction: float, seed: int, fingerprint: str) -> Path:
    return Path(splits_dir) / f"holdout-{fraction:g}-seed{seed}-{fingerprint}.csv"


def folds_file(splits_dir: Path, num_folds: int, seed: int, fingerprint: str) -> Path:
    return Path(splits_dir) / f"folds-k{num_folds}-seed{seed}-{fingerprint}.csv"


def make_holdout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Fold id per row: 0 for the stratified validation part, -1 for training."""
    from sklearn.model_selection import train_test_split

    if not 0 < fraction < 1:
        raise ValueError(f"holdout fraction must be between 0 and 1, got {fraction}")
    rows = np.arange(len(labels))
    try:
        _, valid_rows = train_test_split(rows, test_size=fraction, stratify=labels, random_state=seed)
    except ValueError as error:  # too few rows (per class) for this fraction
        raise UserError(
            f"cannot hold out {fraction:g} of {len(labels)} rows stratified by label: {quote(error)}"
        ) from None
    folds = np.full(len(labels), HOLDOUT_TRAIN, dtype=np.int64)
    folds[valid_rows] = 0
    return folds


def make_folds(labels: np.ndarray, num_folds: int, seed: int) -> np.ndarray:
    """Fold id 0..K-1 per row from scikit-learn's StratifiedKFold (shuffled)."""
    if num_folds < 2:
        raise ValueError(f"number of folds must be at least 2, got {num_folds}")
    folds = np.empty(len(labels), dtype=np.int64)
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=num_folds, shuffle=True, random_state=seed)
    try:
        for fold, (_, valid_rows) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
            folds[valid_rows] = fold
    except ValueError as error:  # more folds than rows of some label
        raise UserError(f"cannot make {num_folds} stratified folds of {len(labels)} rows: {quote(error)}") from None
    return folds


def load_or_make(path: Path, labels: np.ndarray, make, fold_ids=None) -> np.ndarray:
    """Read the fold file if it matches these labels (and uses exactly ``fold_ids``); otherwise make it once and write it."""
    import pandas as pd

    path = Path(path)
    if path.exists():
        try:
            frame = pd.read_csv(path)
            if (
                list(frame.columns) == ["row", "fold"]
                and len(frame) == len(labels)
                and pd.api.types.is_integer_dtype(frame["fold"].dtype)
                and (frame["row"].to_numpy() == np.arange(len(labels))).all()
            ):
                folds = frame["fold"].to_numpy(dtype=np.int64)
                if fold_ids is None or set(np.unique(folds).tolist()) == set(fold_ids):
                    return folds
        except (ValueError, TypeError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError):
            pass  # unreadable or foreign: rebuilt below
    folds = make()
    with atomic_open(path, "w", newline="") as handle:
        pd.DataFrame({"row": np.arange(len(labels)), "fold": folds}).to_csv(handle, index=False)
    return folds


def holdout_folds(splits_dir: Path, labels: np.ndarray, fraction: float, seed: int, fingerprint: str) -> np.ndarray:
    return load_or_make(
        holdout_file(splits_dir, fraction, seed, fingerprint),
        labels,
        lambda: make_holdout(labels, fraction, seed),
        fold_ids=(HOLDOUT_TRAIN, 0),
    )


def kfold_folds(splits_dir: Path, labels: np.ndarray, num_folds: int, seed: int, fingerprint: str) -> np.ndarray:
    return load_or_make(
        folds_file(splits_dir, num_folds, seed, fingerprint),
        labels,
        lambda: make_folds(labels, num_folds, seed),
        fold_ids=range(num_folds),
    )


def check_feasible(rows: int, num_classes: int, max_rows: int, holdout: float, cv: int) -> None:
    """Refuse, before any data is read, a subset, holdout or fold count that a stratified split of ``rows`` rows
    of ``num_classes`` balanced classes cannot make (what ``kernel build`` checks against the competition's size;
    training checks the real labels with scikit-learn)."""
    if max_rows and max_rows < rows:
        if max_rows < num_classes or rows - max_rows < num_classes:
            raise UserError(
                f"--max-rows {max_rows}: cannot take a stratified subset of {rows} rows "
                f"(it needs at least {num_classes} rows, one per class, on each side)"
            )
        rows = max_rows
    if cv:
        if cv > rows // num_classes:
            raise UserError(f"cannot make {cv} stratified folds of {rows} rows: each class needs a row in every fold")
    else:
        held_out = math.ceil(holdout * rows)
        if held_out < num_classes or rows - held_out < num_classes:
            raise UserError(
                f"cannot hold out {holdout:g} of {rows} rows stratified by label: each class needs a row on both sides"
            )
