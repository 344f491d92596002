"""Predict test.csv with an experiment's model(s) and write its submission.

Fold models' probabilities are averaged (a fold ensemble); ``tta`` adds
test-time augmentation (the average over a few shifted copies).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digit_recognizer.atomic import atomic_path
from digit_recognizer.config import Competition, Paths
from digit_recognizer.data import load_test
from digit_recognizer.errors import UserError
from digit_recognizer.submission import write_submission


@dataclass(frozen=True)
class Prediction:
    experiment: str
    probabilities: np.ndarray
    submission: Path
    latest: Path


def list_experiments(paths: Paths) -> list[str]:
    """Completed experiments (those with metrics.json), oldest first."""
    if not paths.models.is_dir():
        return []
    done = [folder for folder in paths.models.iterdir() if (folder / "metrics.json").is_file()]
    return [folder.name for folder in sorted(done, key=lambda folder: (folder / "metrics.json").stat().st_mtime)]


def latest_experiment(paths: Paths) -> str:
    experiments = list_experiments(paths)
    if not experiments:
        raise UserError("no trained experiment found under models/; run `digit-recognizer train` first")
    return experiments[-1]


def read_metrics(paths: Paths, experiment: str) -> dict:
    metrics_file = paths.experiment_dir(experiment) / "metrics.json"
    if not metrics_file.is_file():
        raise UserError(f"experiment '{experiment}' has no finished training ({metrics_file} missing); train it first")
    try:
        return json.loads(metrics_file.read_text(encoding="utf-8"))
    except ValueError:
        raise UserError(f"{metrics_file}: corrupt metrics file; retrain the experiment") from None


def load_model_file(path: Path):
    """Load a .keras model in Keras' safe mode (no arbitrary code), or a one-line error."""
    import keras

    if not Path(path).is_file():
        raise UserError(f"{path}: model file not found; train the experiment first")
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as error:  # Keras raises many types for a damaged archive
        reason = str(error).strip().splitlines()[0][:120] if str(error).strip() else type(error).__name__
        raise UserError(f"{path}: not a loadable Keras model ({reason}); retrain the experiment") from None


def load_members(paths: Paths, experiment: str) -> list:
    metrics = read_metrics(paths, experiment)
    return [load_model_file(paths.experiment_dir(experiment) / name) for name in metrics["members"]]


def shifted_copies(images: np.ndarray, shift: int = 1) -> list[np.ndarray]:
    """The images and four copies shifted by ``shift`` pixels (zero fill): test-time augmentation."""
    copies = [images]
    for axis, step in ((1, shift), (1, -shift), (2, shift), (2, -shift)):
        moved = np.roll(images, step, axis=axis)
        index = [slice(None)] * images.ndim
        index[axis] = slice(0, step) if step > 0 else slice(step, None)
        moved[tuple(index)] = 0
        copies.append(moved)
    return copies


def ensemble_probabilities(models: list, images: np.ndarray, tta: bool = False) -> np.ndarray:
    """Average the members' softmax probabilities (and, with ``tta``, over shifted copies)."""
    from digit_recognizer.train import predict_probabilities

    variants = shifted_copies(images) if tta else [images]
    total = None
    for model in models:
        for variant in variants:
            probabilities = predict_probabilities(model, variant)
            total = probabilities if total is None else total + probabilities
    return total / (len(models) * len(variants))


def predict_experiment(paths: Paths, competition: Competition, experiment: str | None = None, tta: bool = False) -> Prediction:
    experiment = experiment or latest_experiment(paths)
    models = load_members(paths, experiment)
    test = load_test(paths, competition)
    probabilities = ensemble_probabilities(models, test.images, tta=tta)
    with atomic_path(paths.experiment_dir(experiment) / ("test-probabilities-tta.npy" if tta else "test-probabilities.npy")) as tmp:
        np.save(tmp, probabilities)
    labels = probabilities.argmax(axis=1)
    submission = write_submission(paths.submission_file(experiment), labels, competition)
    latest = write_submission(paths.latest_submission, labels, competition)
    return Prediction(experiment, probabilities, submission, latest)
