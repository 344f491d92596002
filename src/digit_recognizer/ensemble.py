"""Ensemble experiments: the last stage of train -> out-of-fold evaluation -> predict -> ensemble.

The members' test probabilities are averaged (optionally weighted). The ensemble
is scored on the validation rows every member held out: the holdout rows when
the members share a holdout split, every train row when they are all
cross-validated on the same folds. Outputs are keyed by the ensemble's name:
``models/<name>/ensemble.json`` and ``test-probabilities.npy``,
``submissions/<name>.csv`` and the latest ``submissions/submission.csv``.
"""

from __future__ import annotations

import functools
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digit_recognizer.atomic import write_json, write_npy
from digit_recognizer.config import Competition, Paths
from digit_recognizer.data import load_test
from digit_recognizer.errors import UserError
from digit_recognizer.predict import ensemble_probabilities, load_members, read_metrics
from digit_recognizer.submission import write_submission

ENSEMBLE_FILE = "ensemble.json"
TEST_PROBABILITIES = "test-probabilities.npy"


@dataclass(frozen=True)
class MemberValidation:
    rows: np.ndarray  # train.csv row numbers, 0-based
    labels: np.ndarray
    probabilities: np.ndarray


@dataclass(frozen=True)
class EnsembleResult:
    name: str
    members: list[str]
    weights: list[float]
    validation: str
    validation_rows: int
    score: float | None  # accuracy of the averaged probabilities on the shared validation rows
    member_scores: dict[str, float]  # each member's accuracy on the same rows
    finished: str
    probabilities: np.ndarray
    submission: Path
    latest: Path
    notes: list[str]


def is_ensemble(paths: Paths, name: str) -> bool:
    return (paths.experiment_dir(name) / ENSEMBLE_FILE).is_file()


def _base_fingerprint(paths: Paths, experiment: str) -> str:
    """The train.csv content hash an experiment was trained on (``--max-rows`` runs add ``-n<rows>``)."""
    config_file = paths.experiment_dir(experiment) / "config.json"
    try:
        fingerprint = json.loads(config_file.read_text(encoding="utf-8"))["data_fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{config_file}: missing or corrupt; retrain experiment '{experiment}'") from None
    return str(fingerprint).split("-n", 1)[0]


def load_validation(paths: Paths, experiment: str) -> MemberValidation:
    """An experiment's validation predictions (holdout or out-of-fold) from models/<experiment>/oof.npz."""
    oof_file = paths.experiment_dir(experiment) / "oof.npz"
    try:
        with np.load(oof_file, allow_pickle=False) as saved:
            validation = MemberValidation(saved["rows"].astype(np.int64), saved["labels"].astype(np.int64),
                                          saved["probabilities"].astype(np.float32))
    except (OSError, ValueError, KeyError) as error:
        reason = "not found" if not oof_file.exists() else (str(error).strip().splitlines()[0][:100] or type(error).__name__)
        raise UserError(f"{oof_file}: {reason}; retrain experiment '{experiment}'") from None
    count = len(validation.rows)
    if validation.labels.shape != (count,) or validation.probabilities.ndim != 2 or len(validation.probabilities) != count:
        raise UserError(f"{oof_file}: rows, labels and probabilities disagree in length; retrain experiment '{experiment}'")
    return validation


def shared_rows(validations: list[MemberValidation]) -> np.ndarray:
    """The train rows every member validated on, sorted."""
    return functools.reduce(np.intersect1d, [validation.rows for validation in validations])


def take_rows(validation: MemberValidation, rows: np.ndarray) -> MemberValidation:
    """The member's predictions for ``rows`` (each of which it validated on), in that order."""
    order = np.argsort(validation.rows, kind="stable")
    positions = order[np.searchsorted(validation.rows, rows, sorter=order)]
    return MemberValidation(rows, validation.labels[positions], validation.probabilities[positions])


def parse_weights(text: str | None, count: int) -> list[float]:
    """``"2,1,1"`` -> weights normalised to sum 1; equal weights without ``text``."""
    if not text:
        return [1.0 / count] * count
    try:
        weights = [float(value) for value in text.split(",")]
    except ValueError:
        raise ValueError(f"--weights '{text}': expected {count} comma-separated numbers") from None
    if len(weights) != count:
        raise ValueError(f"--weights '{text}': {len(weights)} numbers for {count} experiments")
    if any(not np.isfinite(weight) or weight < 0 for weight in weights) or sum(weights) <= 0:
        raise ValueError(f"--weights '{text}': weights must be non-negative and not all zero")
    return [weight / sum(weights) for weight in weights]


def member_test_probabilities(paths: Paths, competition: Competition, experiment: str, test_images: np.ndarray) -> np.ndarray:
    """The experiment's test probabilities: saved by `predict`, else predicted now (and saved)."""
    saved_file = paths.experiment_dir(experiment) / TEST_PROBABILITIES
    expected = (len(test_images), competition.num_classes)
    if saved_file.is_file():
        try:
            probabilities = np.load(saved_file, allow_pickle=False)
            if probabilities.shape == expected and np.isfinite(probabilities).all():
                return probabilities.astype(np.float32)
        except (OSError, ValueError):
            pass  # damaged: predict again
    probabilities = ensemble_probabilities(load_members(paths, experiment), test_images)
    write_npy(saved_file, probabilities)
    return probabilities


def check_name(paths: Paths, name: str, experiments: list[str]) -> None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name or ""):
        raise UserError(f"--name '{name}': use letters, digits, '.', '_' and '-' (it names files)")
    if name in experiments:
        raise UserError(f"--name '{name}' is one of the ensemble's experiments; choose another name")
    folder = paths.experiment_dir(name)
    if (folder / "config.json").exists() or (folder / "metrics.json").exists():
        raise UserError(f"--name '{name}': {folder} holds a trained experiment, not an ensemble; choose another name")


def ensemble_experiments(paths: Paths, competition: Competition, experiments: list[str], name: str,
                         weights: str | None = None) -> EnsembleResult:
    """Average the experiments' test probabilities, score the average on their shared validation rows, and write
    the ensemble's submission. Refusals (unknown experiment, bad weights or name) happen before anything is written."""
    if len(experiments) < 2 or len(set(experiments)) != len(experiments):
        raise UserError("an ensemble needs at least two different experiments")
    check_name(paths, name, experiments)
    try:
        member_weights = parse_weights(weights, len(experiments))
    except ValueError as error:
        raise UserError(str(error)) from None
    metrics = {experiment: read_metrics(paths, experiment) for experiment in experiments}
    fingerprints = {_base_fingerprint(paths, experiment) for experiment in experiments}
    if len(fingerprints) > 1:
        raise UserError("the experiments were trained on different train.csv files; ensemble experiments of one dataset")
    validations = [load_validation(paths, experiment) for experiment in experiments]
    notes = []
    for experiment in experiments:
        if metrics[experiment]["members"] == ["full.keras"]:
            notes.append(f"{experiment} was retrained on every row (--full-train): its validation predictions "
                         "come from the model trained before, so the ensemble's score is an estimate")

    rows = shared_rows(validations)
    member_scores, score = {}, None
    if len(rows):
        shared = [take_rows(validation, rows) for validation in validations]
        if any(not np.array_equal(member.labels, shared[0].labels) for member in shared[1:]):
            raise UserError("the experiments disagree on the labels of the same train rows; were they trained on the same train.csv?")
        average = sum(weight * member.probabilities for weight, member in zip(member_weights, shared))
        score = float((average.argmax(1) == shared[0].labels).mean())
        member_scores = {experiment: float((member.probabilities.argmax(1) == member.labels).mean())
                         for experiment, member in zip(experiments, shared)}
    else:
        notes.append("the experiments share no validation rows (different seeds or splits), so the ensemble has no score")
    kinds = {metrics[experiment].get("validation", "") for experiment in experiments}
    validation = kinds.pop() if len(kinds) == 1 else f"shared-{len(rows)}"

    test = load_test(paths, competition)
    probabilities = sum(weight * member_test_probabilities(paths, competition, experiment, test.images)
                        for weight, experiment in zip(member_weights, experiments)).astype(np.float32)
    folder = paths.experiment_dir(name)
    write_npy(folder / TEST_PROBABILITIES, probabilities)
    labels = probabilities.argmax(axis=1)
    finished = time.strftime("%Y-%m-%dT%H:%M:%S")
    submission = write_submission(paths.submission_file(name), labels, competition)
    latest = write_submission(paths.latest_submission, labels, competition)
    write_json(folder / ENSEMBLE_FILE, {
        "ensemble": name,
        "members": experiments,
        "weights": member_weights,
        "validation": validation,
        "validation_rows": int(len(rows)),
        "score": score,
        "member_scores": member_scores,
        "notes": notes,
        "finished": finished,
    })
    return EnsembleResult(name, experiments, member_weights, validation, int(len(rows)), score, member_scores, finished,
                          probabilities, submission, latest, notes)
