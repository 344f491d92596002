"""Stratified holdout and K folds: proportions kept, rows covered once, reproducible, written once and reused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from digit_recognizer import split
from digit_recognizer.errors import UserError


def _labels(seed: int = 0, rows: int = 500) -> np.ndarray:
    """Unbalanced labels 0-9 (class k is about (k + 1) / 55 of the rows)."""
    rng = np.random.default_rng(seed)
    return rng.choice(10, size=rows, p=np.arange(1, 11) / 55)


def _proportions(labels: np.ndarray) -> np.ndarray:
    return np.bincount(labels, minlength=10) / len(labels)


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.5])
def test_holdout_is_stratified_and_sized(fraction):
    # the validation part has the asked size and every class in about its overall proportion
    labels = _labels()
    folds = split.make_holdout(labels, fraction, seed=1)
    valid = folds == 0
    assert set(np.unique(folds)) == {split.HOLDOUT_TRAIN, 0}
    assert abs(valid.sum() - fraction * len(labels)) <= 1
    assert np.abs(_proportions(labels[valid]) - _proportions(labels)).max() < 0.03
    assert np.abs(_proportions(labels[~valid]) - _proportions(labels)).max() < 0.03


@pytest.mark.parametrize("num_folds", [2, 3, 5])
def test_folds_cover_every_row_once_and_are_stratified(num_folds):
    # fold ids 0..K-1, each row in exactly one validation fold, folds of near-equal size and class mix
    labels = _labels()
    folds = split.make_folds(labels, num_folds, seed=3)
    assert folds.shape == labels.shape and set(np.unique(folds)) == set(range(num_folds))
    valid_sets = [set(np.flatnonzero(folds == k)) for k in range(num_folds)]
    assert sum(len(rows) for rows in valid_sets) == len(labels)
    assert set().union(*valid_sets) == set(range(len(labels)))
    for k, rows in enumerate(valid_sets):
        assert abs(len(rows) - len(labels) / num_folds) <= 10
        assert np.abs(_proportions(labels[folds == k]) - _proportions(labels)).max() < 0.04
        assert not rows & set().union(*(other for j, other in enumerate(valid_sets) if j != k))


@pytest.mark.parametrize(
    "make",
    [
        lambda labels, seed: split.make_holdout(labels, 0.2, seed),
        lambda labels, seed: split.make_folds(labels, 4, seed),
    ],
    ids=["holdout", "folds"],
)
def test_same_seed_same_rows_other_seed_other_rows(make):
    # the split is a function of (labels, seed): repeatable, and another seed moves rows
    labels = _labels()
    assert np.array_equal(make(labels, 7), make(labels, 7))
    assert not np.array_equal(make(labels, 7), make(labels, 8))


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5])
def test_holdout_fraction_out_of_range(bad):
    # a fraction outside (0, 1) is refused
    with pytest.raises(ValueError, match="between 0 and 1"):
        split.make_holdout(_labels(), bad, seed=0)


@pytest.mark.parametrize(
    "call, expected",
    [
        (lambda labels: split.make_holdout(labels, 0.99, 0), "cannot hold out 0.99 of 30 rows"),
        (lambda labels: split.make_folds(labels, 20, 0), "cannot make 20 stratified folds of 30 rows"),
        (lambda labels: split.make_folds(labels, 1, 0), "at least 2"),
    ],
)
def test_impossible_splits_are_user_errors(call, expected):
    # too few rows for the split asked for: an error a user can act on, not a library traceback
    labels = np.repeat(np.arange(10), 3)
    with pytest.raises((UserError, ValueError), match=expected):
        call(labels)


@pytest.mark.parametrize("kind", ["holdout", "folds"])
def test_fold_file_written_once_then_reused(tmp_path, kind):
    # the first call writes row,fold; the second reads it without rewriting (same bytes, same mtime)
    labels = _labels()
    if kind == "holdout":
        call = lambda: split.holdout_folds(tmp_path, labels, 0.1, 42, "abc")  # noqa: E731
        path = split.holdout_file(tmp_path, 0.1, 42, "abc")
    else:
        call = lambda: split.kfold_folds(tmp_path, labels, 5, 42, "abc")  # noqa: E731
        path = split.folds_file(tmp_path, 5, 42, "abc")
    first = call()
    frame = pd.read_csv(path)
    assert list(frame.columns) == ["row", "fold"] and np.array_equal(frame["fold"], first)
    before = (path.stat().st_mtime_ns, path.read_bytes())
    second = call()
    assert np.array_equal(first, second)
    assert (path.stat().st_mtime_ns, path.read_bytes()) == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind


def test_fold_file_is_what_is_used(tmp_path):
    # a valid fold file is the source of truth: its assignment is returned as written
    labels = _labels()
    path = split.folds_file(tmp_path, 3, 0, "abc")
    chosen = np.arange(len(labels)) % 3
    pd.DataFrame({"row": np.arange(len(labels)), "fold": chosen}).to_csv(path, index=False)
    assert np.array_equal(split.kfold_folds(tmp_path, labels, 3, 0, "abc"), chosen)


def _stale_files(rows: int):
    yield (
        "other-length",
        pd.DataFrame({"row": np.arange(rows - 5), "fold": np.arange(rows - 5) % 3}).to_csv(index=False),
    )
    yield "rows-shuffled", pd.DataFrame({"row": np.arange(rows)[::-1], "fold": np.arange(rows) % 3}).to_csv(index=False)
    yield "wrong-columns", pd.DataFrame({"index": np.arange(rows), "fold": np.arange(rows) % 3}).to_csv(index=False)
    yield "fold-ids-of-5-folds", pd.DataFrame({"row": np.arange(rows), "fold": np.arange(rows) % 5}).to_csv(index=False)
    yield "only-2-of-3-folds", pd.DataFrame({"row": np.arange(rows), "fold": np.arange(rows) % 2}).to_csv(index=False)
    yield "float-folds", pd.DataFrame({"row": np.arange(rows), "fold": (np.arange(rows) % 3) + 0.5}).to_csv(index=False)
    yield "truncated", pd.DataFrame({"row": np.arange(rows), "fold": np.arange(rows) % 3}).to_csv(index=False)[:100]
    yield "empty", ""
    yield "binary", "\udcff\udcfe garbage"


@pytest.mark.parametrize("name, text", list(_stale_files(500)), ids=[name for name, _ in _stale_files(500)])
def test_stale_or_foreign_fold_file_is_rebuilt(tmp_path, name, text):
    # a fold file that does not fit these labels and K is replaced by the real split, never used
    labels = _labels()
    path = split.folds_file(tmp_path, 3, 0, "abc")
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    folds = split.kfold_folds(tmp_path, labels, 3, 0, "abc")
    assert np.array_equal(folds, split.make_folds(labels, 3, 0))
    assert np.array_equal(pd.read_csv(path)["fold"].to_numpy(), folds)


def test_holdout_file_with_fold_ids_is_rebuilt(tmp_path):
    # a K-fold assignment saved under a holdout name is not a holdout split (ids must be -1 and 0)
    labels = _labels()
    path = split.holdout_file(tmp_path, 0.1, 0, "abc")
    pd.DataFrame({"row": np.arange(len(labels)), "fold": np.arange(len(labels)) % 2}).to_csv(path, index=False)
    folds = split.holdout_folds(tmp_path, labels, 0.1, 0, "abc")
    assert np.array_equal(folds, split.make_holdout(labels, 0.1, 0))


@pytest.mark.parametrize("changed", [{"fraction": 0.2}, {"seed": 43}, {"fingerprint": "abd"}])
def test_holdout_file_name_keys_fraction_seed_and_data(tmp_path, changed):
    # another fraction, seed or train.csv fingerprint gets its own file: a split never leaks across them
    base = {"fraction": 0.1, "seed": 42, "fingerprint": "abc"}
    assert split.holdout_file(tmp_path, **base) != split.holdout_file(tmp_path, **{**base, **changed})


@pytest.mark.parametrize("changed", [{"num_folds": 4}, {"seed": 43}, {"fingerprint": "abd"}])
def test_folds_file_name_keys_k_seed_and_data(tmp_path, changed):
    # another K, seed or train.csv fingerprint gets its own file
    base = {"num_folds": 5, "seed": 42, "fingerprint": "abc"}
    assert split.folds_file(tmp_path, **base) != split.folds_file(tmp_path, **{**base, **changed})
