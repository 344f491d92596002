"""Pseudo-labelling: the second round learns from test images labelled by the first round's own predictions, and
never from any label outside train.csv (the offline sample's answer key is never even opened)."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from digit_recognizer.cli import main
from digit_recognizer.config import ExperimentConfig
from digit_recognizer.experiment import Experiment

OPENED: list[str] = []
RECORDING = [False]


def _record_opens(event: str, args) -> None:
    """An audit hook (sys.addaudithook): every file opened while RECORDING."""
    if RECORDING[0] and event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        OPENED.append(str(args[0]))


sys.addaudithook(_record_opens)


def train_two_folds(project, name: str, *options: str) -> int:
    """`train` of the seed preset on 2 folds with a pseudo-label round (threshold 0.5) and ``options``."""
    arguments = ["--root", str(project.root), "train", "--preset", "seed", "--cv", "2", "--pseudo-label", "0.5"]
    return main([*arguments, *options, "--name", name, "--quiet"])


@pytest.mark.slow
def test_pseudo_labels_come_from_the_fold_model_and_no_answer_key_is_read(project):
    from digit_recognizer.config import load_competition
    from digit_recognizer.data import load_test
    from digit_recognizer.modeling.inference import load_model_file, predict_probabilities

    assert project.test_labels.is_file()  # the offline sample ships an answer key for test.csv: it must stay unread
    OPENED.clear()
    RECORDING[0] = True
    try:
        code = train_two_folds(project, "pl", "--epochs", "5")
    finally:
        RECORDING[0] = False
    assert code == 0
    assert not [path for path in OPENED if "test_labels" in path], "the answer key was opened during training"
    assert any(path.endswith("test.csv") or "test-" in path for path in OPENED)  # the unlabelled test images were read

    experiment = Experiment(project, "pl")
    metrics = experiment.read_metrics()
    assert metrics["members"] == ["member-p0.keras", "member-p1.keras"]
    assert metrics["first_round_score"] is not None and 0 <= metrics["first_round_score"] <= 1
    test = load_test(project, load_competition(project.root))
    for fold in (0, 1):
        with np.load(experiment.pseudo_file(fold)) as saved:
            rows, labels, confidence = saved["test_rows"], saved["labels"], saved["confidence"]
        # the labels are exactly the first-round model of this fold's own confident predictions on test.csv
        probabilities = predict_probabilities(load_model_file(experiment.member_file(fold)), test.images)
        sure = np.flatnonzero(probabilities.max(axis=1) >= 0.5)
        assert np.array_equal(rows, sure) and len(rows) > 0
        assert np.array_equal(labels, probabilities[sure].argmax(axis=1))
        assert np.all(confidence >= 0.5)
    # the second round is validated on the same folds as the first: its out-of-fold rows are every train row
    assert metrics["validation_rows"] == metrics["train_rows"]
    record = json.loads(experiment.config_file.read_text())
    assert record["config"]["pseudo_label"] == 0.5


@pytest.mark.parametrize(
    "values, message",
    [
        (dict(pseudo_label=0.3), "--pseudo-label must be 0 (off) or a probability between 0.5 and 1"),
        (dict(pseudo_label=float("nan")), "--pseudo-label must be a finite number"),
        (dict(pseudo_label=0.9, full_train=True), "do not go together"),
        (dict(pseudo_label=0.9, pseudo_epochs=-1), "--pseudo-epochs must be 0"),
        (dict(pseudo_epochs=3), "it needs --pseudo-label"),
        (dict(pseudo_label=0.9, pseudo_epochs=1.5), "--pseudo-epochs must be a whole number"),
        (dict(elastic=1.5), "--elastic must be between 0 and 1"),
        (dict(elastic=0.5, augment=False), "it needs augmentation on"),
    ],
)
def test_bad_pseudo_label_and_elastic_values_are_refused(values, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ExperimentConfig(name="x", **values)


@pytest.mark.parametrize("smoothing", [0.05, 0.1, 0.2])
@pytest.mark.parametrize("classes", [3, 10])
def test_unsmoothed_undoes_label_smoothing(smoothing, classes):
    from digit_recognizer.modeling.train import unsmoothed

    rng = np.random.default_rng(0)
    certain = rng.dirichlet(np.ones(classes), size=20)
    smoothed = (1 - smoothing) * certain + smoothing / classes  # what a smoothed model outputs for these
    assert smoothed.max() <= 1 - smoothing + smoothing / classes  # so a 0.995 threshold could never be reached
    back = unsmoothed(smoothed, smoothing)
    np.testing.assert_allclose(back, certain, atol=1e-12)
    assert np.all((back >= 0) & (back <= 1))
    top = unsmoothed(np.eye(classes)[:1] * (1 - smoothing) + smoothing / classes, smoothing)
    assert top.max() == pytest.approx(1.0)  # a fully sure smoothed model passes any threshold


def test_unsmoothed_is_the_identity_without_smoothing():
    from digit_recognizer.modeling.train import unsmoothed

    probabilities = np.array([[0.2, 0.8], [0.999, 0.001]])
    assert unsmoothed(probabilities, 0.0) is probabilities


@pytest.mark.parametrize("pseudo_epochs", [0, 1, 4])
def test_second_round_config_fine_tunes_briefly_at_a_lower_rate(pseudo_epochs):
    from digit_recognizer.modeling.train import second_round_config

    config = ExperimentConfig(name="x", epochs=12, learning_rate=3e-3, pseudo_label=0.99, pseudo_epochs=pseudo_epochs)
    second = second_round_config(config)
    if pseudo_epochs:
        assert second.epochs == pseudo_epochs
        assert 0 < second.learning_rate < config.learning_rate
    else:  # from scratch: the first round's recipe exactly
        assert second == config
    unchanged = {"architecture", "batch_size", "augment", "label_smoothing", "ema", "seed", "cv", "pseudo_label"}
    assert {name: getattr(second, name) for name in unchanged} == {name: getattr(config, name) for name in unchanged}


@pytest.mark.slow
@pytest.mark.parametrize("pseudo_epochs", [0, 1])
def test_fine_tuned_second_round_starts_from_the_first_rounds_weights(project, pseudo_epochs):
    """With a learning rate too small to move the weights, a fine-tuned second-round model keeps its fold's
    first-round weights; one trained from scratch does not."""
    from digit_recognizer.modeling.inference import load_model_file

    options = ["--pseudo-epochs", str(pseudo_epochs)] if pseudo_epochs else []
    code = train_two_folds(project, "ft", "--epochs", "1", "--learning-rate", "1e-9", *options)
    assert code == 0
    experiment = Experiment(project, "ft")
    for fold in (0, 1):
        first = load_model_file(experiment.member_file(fold)).get_weights()
        second = load_model_file(experiment.member_file(f"p{fold}")).get_weights()
        same = all(np.allclose(a, b, atol=1e-5) for a, b in zip(first, second))
        assert same == bool(pseudo_epochs)
