"""Predict test.csv with an experiment's model(s) and write its submission.

Fold models' probabilities are averaged (a fold ensemble); ``tta`` adds
test-time augmentation (the average over a few shifted copies).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digit_recognizer.atomic import write_npy
from digit_recognizer.config import Competition, Paths
from digit_recognizer.data import load_test
from digit_recognizer.errors import UserError
from digit_recognizer.keras_import import import_keras_quietly
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
        metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
    except ValueError:  # also UnicodeDecodeError
        metrics = None
    members = metrics.get("members") if isinstance(metrics, dict) else None
    if not (isinstance(members, list) and members and all(isinstance(name, str) and name == Path(name).name
                                                           and name.endswith(".keras") for name in members)):
        raise UserError(f"{metrics_file}: corrupt metrics file; retrain the experiment")
    return metrics


def load_model_file(path: Path):
    """Load a .keras model in Keras' safe mode (no arbitrary code), or a one-line error."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: model file not found; train the experiment first")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, expected a .keras model file; retrain the experiment")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: model file is empty; retrain the experiment")
    if not zipfile.is_zipfile(path):  # Keras would call this "file not found"
        raise UserError(f"{path}: not a Keras model archive (truncated or not a .keras file); retrain the experiment")
    import_keras_quietly()
    import keras

    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as error:  # Keras raises many types for a damaged archive
        reason = str(error).strip().splitlines()[0][:120] if str(error).strip() else type(error).__name__
        if "safe_mode" in str(error):
            reason = "it carries Python code, which safe mode does not run"
        raise UserError(f"{path}: not a loadable Keras model ({reason}); retrain the experiment") from None


def load_members(paths: Paths, experiment: str) -> list:
    from digit_recognizer.config import load_competition

    metrics = read_metrics(paths, experiment)
    competition = load_competition(paths.root)
    models = []
    for name in metrics["members"]:
        path = paths.experiment_dir(experiment) / name
        model = load_model_file(path)
        inputs, outputs = tuple(model.input_shape[1:]) if isinstance(model.input_shape, tuple) else None, model.output_shape
        if inputs != tuple(competition.image_shape) or not isinstance(outputs, tuple) or outputs[-1] != competition.num_classes:
            raise UserError(f"{path}: a model of {inputs or 'several'} inputs and {outputs} outputs, not one for this competition's "
                            f"{tuple(competition.image_shape)} images and {competition.num_classes} classes; retrain the experiment")
        models.append(model)
    return models


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
    test = load_test(paths, competition)  # before the models: a bad test.csv is reported without loading TensorFlow
    models = load_members(paths, experiment)
    probabilities = ensemble_probabilities(models, test.images, tta=tta)
    write_npy(paths.experiment_dir(experiment) / ("test-probabilities-tta.npy" if tta else "test-probabilities.npy"), probabilities)
    labels = probabilities.argmax(axis=1)
    submission = write_submission(paths.submission_file(experiment), labels, competition)
    latest = write_submission(paths.latest_submission, labels, competition)
    return Prediction(experiment, probabilities, submission, latest)
