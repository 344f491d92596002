"""``--partner``: a second model per fold, of another architecture; validation and predict average the two."""

from __future__ import annotations

import json

import numpy as np
import pytest

from digit_recognizer.config import ExperimentConfig
from digit_recognizer.experiment import Experiment


@pytest.fixture(scope="module")
def partner_project(tmp_path_factory, competition, sample_frames):
    """A project with a 2-fold experiment ('pair': seed model + compact partner, 1 epoch, 300 rows), predicted."""
    from conftest import write_sample
    from digit_recognizer.cli import main
    from digit_recognizer.config import Paths

    paths = Paths(tmp_path_factory.mktemp("partner"))
    write_sample(paths.data, competition, sample_frames)
    arguments = ["--root", str(paths.root), "train", "--preset", "seed", "--epochs", "1", "--cv", "2"]
    arguments += ["--max-rows", "300", "--partner", "compact", "--name", "pair", "--quiet"]
    assert main(arguments) == 0
    assert main(["--root", str(paths.root), "predict", "--experiment", "pair"]) == 0
    return paths


@pytest.mark.slow
def test_each_fold_is_scored_as_the_average_of_its_model_and_partner(partner_project):
    experiment = Experiment(partner_project, "pair")
    metrics = experiment.read_metrics()
    assert metrics["members"] == ["member-0.keras", "member-1.keras", "member-b0.keras", "member-b1.keras"]
    assert metrics["partner"] == "compact"
    with np.load(experiment.oof_file, allow_pickle=False) as oof:
        rows, folds, probabilities, labels = oof["rows"], oof["folds"], oof["probabilities"], oof["labels"]
    assert len(rows) == 300 and set(folds) == {0, 1}
    for fold in (0, 1):
        first = experiment.read_member_validation(fold)
        partner = experiment.read_member_validation(f"b{fold}")
        assert np.array_equal(first.rows, partner.rows) and set(first.rows) == set(rows[folds == fold])
        order = np.argsort(rows[folds == fold])
        expected = (first.probabilities + partner.probabilities) / 2
        np.testing.assert_allclose(probabilities[folds == fold][order], expected[np.argsort(first.rows)], atol=1e-6)
        accuracy = float((expected.argmax(1) == first.labels).mean())
        assert metrics["fold_accuracies"][fold] == pytest.approx(accuracy)
    assert metrics["oof_accuracy"] == pytest.approx(float((probabilities.argmax(1) == labels).mean()))


@pytest.mark.slow
def test_the_partner_has_its_own_architecture_and_predict_uses_every_model(partner_project):
    from digit_recognizer.config import load_competition
    from digit_recognizer.data import load_test
    from digit_recognizer.modeling.inference import ensemble_probabilities, load_members, load_model_file

    experiment = Experiment(partner_project, "pair")
    assert load_model_file(experiment.member_file(0)).name == "seed"
    assert load_model_file(experiment.member_file("b0")).name == "compact"
    models = load_members(partner_project, "pair")
    assert len(models) == 4
    test = load_test(partner_project, load_competition(partner_project.root))
    average = ensemble_probabilities(models, test.images[:50])
    without_partners = ensemble_probabilities(models[:2], test.images[:50])
    assert not np.allclose(average, without_partners)  # the partners' votes count
    submission = (partner_project.submissions / "pair.csv").read_text().splitlines()
    written = np.array([int(line.split(",")[1]) for line in submission[1:51]])
    saved = experiment.read_test_probabilities(test.fingerprint, (len(test.images), 10), tta=False)
    assert saved is not None and np.array_equal(written, saved[:50].argmax(1))
    np.testing.assert_allclose(saved[:50], average, atol=1e-5)


@pytest.mark.slow
def test_the_report_draws_the_partners_curves(partner_project):
    from digit_recognizer.tracking.report import _member_histories

    labels = [label for label, frame in _member_histories(Experiment(partner_project, "pair"), 2) if frame is not None]
    assert labels == ["fold 1", "fold 2", "fold 1, partner", "fold 2, partner"]
    config = json.loads(Experiment(partner_project, "pair").config_file.read_text())["config"]
    assert config["partner"] == "compact" and config["architecture"] == "seed"


@pytest.mark.slow
def test_the_leaderboard_names_both_architectures(partner_project):
    from digit_recognizer.tracking.leaderboard import experiment_fields

    assert experiment_fields(partner_project, "pair")["architecture"] == "seed+compact"


def test_member_seeds_are_distinct():
    from digit_recognizer.modeling.train import member_seed

    members = [*range(5), *(f"p{k}" for k in range(5)), *(f"b{k}" for k in range(5))]
    seeds = [member_seed(42, member) for member in members]
    assert len(set(seeds)) == len(seeds)
    assert member_seed(42, "b3") == member_seed(42, 3) + 2000


@pytest.mark.parametrize(
    "values, message",
    [
        (dict(partner="resnet"), "unknown --partner architecture"),
        (dict(partner="deotte", pseudo_label=0.9), "--partner and --pseudo-label"),
        (dict(partner="deotte", full_train=True), "--partner and --full-train"),
    ],
)
def test_bad_partner_settings_are_refused(values, message):
    with pytest.raises(ValueError, match=message):
        ExperimentConfig(name="x", **values)


def test_partner_is_off_by_default_and_in_old_saved_configs():
    assert ExperimentConfig(name="x").partner == "none"
    saved = ExperimentConfig(name="x", architecture="deotte").to_dict()
    del saved["partner"]  # a config saved before --partner existed
    assert ExperimentConfig.from_dict(saved).partner == "none"


def test_best_trains_two_strong_models_in_every_fold():
    from dataclasses import replace

    from digit_recognizer.modeling.presets import get_preset

    best, strong = get_preset("best").config("x"), get_preset("strong").config("x")
    assert best.cv >= 2 and best.partner == strong.architecture
    assert replace(best, preset="strong", partner="none", cv=strong.cv) == strong  # the same recipe twice
    assert strong.partner == "none"  # the single-model preset stays one model
