"""Predict test.csv with an experiment's model(s) and write its submission.

Fold models' probabilities are averaged (a fold ensemble); ``tta`` adds
test-time augmentation (the average over a few shifted copies).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digit_recognizer.atomic import together
from digit_recognizer.config import Competition, Paths
from digit_recognizer.data import load_test
from digit_recognizer.errors import UserError
from digit_recognizer.modeling.keras_import import import_keras_quietly
from digit_recognizer.submission import write_submission


@dataclass(frozen=True)
class Prediction:
    experiment: str
    probabilities: np.ndarray
    submission: Path
    latest: Path
    tta: bool = False


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

    import digit_recognizer.modeling.models  # noqa: F401  (registers the project's own layers for loading)

    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as error:  # Keras raises many types for a damaged archive
        reason = str(error).strip().splitlines()[0][:120] if str(error).strip() else type(error).__name__
        if "safe_mode" in str(error):
            reason = "it carries Python code, which safe mode does not run"
        raise UserError(f"{path}: not a loadable Keras model ({reason}); retrain the experiment") from None


def load_members(paths: Paths, experiment: str) -> list:
    """The experiment's models (fold models, the holdout model or the full-data model), each checked to fit the
    competition's images and classes."""
    from digit_recognizer.config import load_competition
    from digit_recognizer.experiment import Experiment

    competition = load_competition(paths.root)
    models = []
    for path in Experiment(paths, experiment).member_files():
        model = load_model_file(path)
        inputs, outputs = (
            tuple(model.input_shape[1:]) if isinstance(model.input_shape, tuple) else None,
            model.output_shape,
        )
        if (
            inputs != tuple(competition.image_shape)
            or not isinstance(outputs, tuple)
            or outputs[-1] != competition.num_classes
        ):
            raise UserError(
                f"{path}: a model of {inputs or 'several'} inputs and {outputs} outputs, not one for this competition's "
                f"{tuple(competition.image_shape)} images and {competition.num_classes} classes; retrain the experiment"
            )
        models.append(model)
    return models


def load_reader(paths: Paths, experiment: str):
    """The experiment's string reader (:mod:`digit_recognizer.modeling.reader`), or None when it has none."""
    from digit_recognizer.experiment import Experiment

    path = Experiment(paths, experiment).reader_file
    return load_model_file(path) if path.exists() else None


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
    variants = shifted_copies(images) if tta else [images]
    total = None
    for model in models:
        for variant in variants:
            probabilities = predict_probabilities(model, variant)
            total = probabilities if total is None else total + probabilities
    return total / (len(models) * len(variants))


def predict_probabilities(model, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """One model's softmax probabilities for uint8 images, in batches."""
    from digit_recognizer.data import to_float

    probabilities = [
        np.asarray(model(to_float(images[start : start + batch_size]), training=False))
        for start in range(0, len(images), batch_size)
    ]
    if not probabilities:
        return np.zeros((0, int(model.output_shape[-1])), np.float32)
    return np.concatenate(probabilities).astype(np.float32)


def predict_experiment(
    paths: Paths, competition: Competition, experiment: str | None = None, tta: bool | None = None
) -> Prediction:
    """Predict test.csv with an experiment's models; save the probabilities (keyed by test.csv's hash) and write its
    submission and the latest submission.csv. ``tta`` None follows the experiment's recipe (its ``--tta``)."""
    from digit_recognizer.experiment import find

    found = find(paths, experiment)
    if tta is None:
        tta = found.default_tta()
    test = load_test(paths, competition)  # before the models: a bad test.csv is reported without loading TensorFlow
    found.read_metrics()
    models = load_members(paths, found.name)
    probabilities = ensemble_probabilities(models, test.images, tta=tta)
    labels = probabilities.argmax(axis=1)
    with together():  # the three outputs replace the previous ones all or none
        submission = write_submission(found.submission_file, labels, competition)
        latest = write_submission(paths.latest_submission, labels, competition)
        found.write_test_probabilities(probabilities, test.fingerprint, tta=tta)
    return Prediction(found.name, probabilities, submission, latest, tta)
