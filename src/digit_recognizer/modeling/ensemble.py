"""Ensemble experiments: the last stage of train -> out-of-fold evaluation -> predict -> ensemble.

The members' test probabilities are averaged (optionally weighted). The ensemble
is scored on the validation rows every member held out: the holdout rows when
the members share a holdout split, every train row when they are all
cross-validated on the same folds. Outputs are keyed by the ensemble's name: its
folder under models/ (named by :class:`digit_recognizer.experiment.Experiment`),
``submissions/<name>.csv`` and the latest ``submissions/submission.csv``.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digit_recognizer.atomic import together, write_json
from digit_recognizer.config import Competition, Paths
from digit_recognizer.data import Dataset, load_test
from digit_recognizer.errors import UserError
from digit_recognizer.experiment import Experiment, Validation, find
from digit_recognizer.modeling.inference import ensemble_probabilities, load_members
from digit_recognizer.submission import write_submission


@dataclass(frozen=True)
class EnsembleResult:
    name: str
    members: list[str]
    weights: list[float]
    validation: str
    validation_rows: int
    score: float | None  # accuracy of the averaged probabilities on the shared validation rows
    member_scores: dict[str, float]  # each member's accuracy on the same rows
    missed_by_all: int | None  # shared rows every member gets wrong: no weighting of these members fixes them
    finished: str
    probabilities: np.ndarray
    submission: Path
    latest: Path
    notes: list[str]


def shared_rows(validations: list[Validation]) -> np.ndarray:
    """The train rows every member validated on, sorted."""
    return functools.reduce(np.intersect1d, [validation.rows for validation in validations])


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


def member_test_probabilities(paths: Paths, competition: Competition, experiment: str, test: Dataset) -> np.ndarray:
    """The experiment's test probabilities: saved by `predict` from this very test.csv (same hash), else predicted
    now (and saved)."""
    member = Experiment(paths, experiment)
    tta = member.default_tta()  # the member's own recipe, as `predict` uses it
    saved = member.read_test_probabilities(test.fingerprint, (len(test.images), competition.num_classes), tta=tta)
    if saved is not None:
        return saved
    probabilities = ensemble_probabilities(load_members(paths, experiment), test.images, tta=tta)
    member.write_test_probabilities(probabilities, test.fingerprint, tta=tta)
    return probabilities


def check_name(paths: Paths, name: str, experiments: list[str]) -> None:
    """The ensemble's name follows the one name rule, is none of its members, and is no trained experiment's folder."""
    from digit_recognizer.config import check_name as check_rule

    try:
        check_rule(name, "ensemble")
    except ValueError as error:
        raise UserError(f"--name: {error}") from None
    if name in experiments:
        raise UserError(f"--name '{name}' is one of the ensemble's experiments; choose another name")
    target = Experiment(paths, name)
    if target.is_started or target.is_finished:
        raise UserError(
            f"--name '{name}': {target.folder} holds a trained experiment, not an ensemble; choose another name"
        )


def ensemble_experiments(
    paths: Paths, competition: Competition, experiments: list[str], name: str, weights: str | None = None
) -> EnsembleResult:
    """Average the experiments' test probabilities, score the average on their shared validation rows, and write
    the ensemble's submission. Refusals (unknown experiment, bad weights or name) happen before anything is written."""
    if len(experiments) < 2 or len(set(experiments)) != len(experiments):
        raise UserError("an ensemble needs at least two different experiments")
    check_name(paths, name, experiments)
    try:
        member_weights = parse_weights(weights, len(experiments))
    except ValueError as error:
        raise UserError(str(error)) from None
    members = [find(paths, experiment) for experiment in experiments]
    for member in members:
        member.read_metrics()
    fingerprints = {member.base_fingerprint() for member in members}
    if len(fingerprints) > 1:
        raise UserError(
            "the experiments were trained on different train.csv files; ensemble experiments of one dataset"
        )
    validations = [member.read_validation() for member in members]
    notes = []
    for member in members:
        if member.is_full_train:
            notes.append(
                f"{member.name} was retrained on every row (--full-train): its validation predictions "
                "come from the model trained before, so the ensemble's score is an estimate"
            )

    rows = shared_rows(validations)
    member_scores, score, missed_by_all = {}, None, None
    if len(rows):
        shared = [validation.take(rows) for validation in validations]
        if any(not np.array_equal(member.labels, shared[0].labels) for member in shared[1:]):
            raise UserError(
                "the experiments disagree on the labels of the same train rows; were they trained on the same train.csv?"
            )
        average = sum(weight * member.probabilities for weight, member in zip(member_weights, shared))
        score = float((average.argmax(1) == shared[0].labels).mean())
        member_scores = {experiment: member.accuracy for experiment, member in zip(experiments, shared)}
        missed_by_all = int(np.logical_and.reduce([member.predictions != member.labels for member in shared]).sum())
    else:
        notes.append(
            "the experiments share no validation rows (different seeds or splits), so the ensemble has no score"
        )
    kinds = {member.read_metrics().get("validation", "") for member in members}
    validation = kinds.pop() if len(kinds) == 1 else f"shared-{len(rows)}"

    test = load_test(paths, competition)
    probabilities = sum(
        weight * member_test_probabilities(paths, competition, experiment, test)
        for weight, experiment in zip(member_weights, experiments)
    ).astype(np.float32)
    ensemble = Experiment(paths, name)
    labels = probabilities.argmax(axis=1)
    finished = time.strftime("%Y-%m-%dT%H:%M:%S")
    with together():  # the ensemble's outputs replace the previous ones all or none
        submission = write_submission(ensemble.submission_file, labels, competition)
        latest = write_submission(paths.latest_submission, labels, competition)
        ensemble.write_test_probabilities(probabilities, test.fingerprint)
        write_json(
            ensemble.ensemble_file,
            {
                "ensemble": name,
                "members": experiments,
                "weights": member_weights,
                "validation": validation,
                "validation_rows": int(len(rows)),
                "score": score,
                "member_scores": member_scores,
                "missed_by_all": missed_by_all,
                "notes": notes,
                "finished": finished,
            },
        )
    return EnsembleResult(
        name,
        experiments,
        member_weights,
        validation,
        int(len(rows)),
        score,
        member_scores,
        missed_by_all,
        finished,
        probabilities,
        submission,
        latest,
        notes,
    )
