"""Test-time augmentation as part of an experiment's recipe (`train --tta`): its validation score is measured with
it, `predict` and `ensemble` use it by default, and `predict --no-tta` turns it off."""

from __future__ import annotations

import numpy as np
import pytest

from digit_recognizer.cli import main
from digit_recognizer.experiment import Experiment
from digit_recognizer.modeling.presets import get_preset


def train(project, name: str, *options: str) -> None:
    arguments = ["--root", str(project.root), "train", "--preset", "seed", "--epochs", "1", "--max-rows", "300"]
    assert main([*arguments, *options, "--name", name, "--quiet"]) == 0


@pytest.mark.slow
def test_validation_predict_and_ensemble_follow_the_recipe(project, competition, capsys):
    from digit_recognizer.data import load_test, load_train
    from digit_recognizer.modeling.inference import ensemble_probabilities, load_members

    train(project, "with", "--tta")
    train(project, "without")
    with_tta, without = Experiment(project, "with"), Experiment(project, "without")
    assert with_tta.default_tta() and not without.default_tta()

    # the saved validation probabilities are the TTA ones (5 shifted copies), so the reported score is the recipe's
    validation = np.load(with_tta.valid_file(0))
    images = load_train(project, competition).images[validation["rows"]]
    model = load_members(project, "with")
    np.testing.assert_allclose(
        validation["probabilities"], ensemble_probabilities(model, images, tta=True), rtol=1e-5, atol=1e-6
    )
    assert not np.allclose(validation["probabilities"], ensemble_probabilities(model, images, tta=False), atol=1e-6)

    capsys.readouterr()
    assert main(["--root", str(project.root), "predict", "--experiment", "with"]) == 0
    assert "test-time augmentation" in capsys.readouterr().out
    assert with_tta.test_probabilities_file(tta=True).is_file()
    assert not with_tta.test_probabilities_file(tta=False).exists()

    assert main(["--root", str(project.root), "predict", "--experiment", "with", "--no-tta"]) == 0
    assert "test-time augmentation" not in capsys.readouterr().out
    assert with_tta.test_probabilities_file(tta=False).is_file()

    assert main(["--root", str(project.root), "predict", "--experiment", "without"]) == 0
    assert without.test_probabilities_file(tta=False).is_file()
    assert not without.test_probabilities_file(tta=True).exists()

    # an ensemble takes each member's probabilities as its recipe predicts them
    from digit_recognizer.modeling.ensemble import member_test_probabilities

    test = load_test(project, competition)
    expected = ensemble_probabilities(load_members(project, "with"), test.images, tta=True)
    np.testing.assert_allclose(
        member_test_probabilities(project, competition, "with", test), expected, rtol=1e-5, atol=1e-6
    )


def test_presets_beyond_the_baseline_predict_with_tta():
    assert all(get_preset(name).config("x").tta for name in ("fast", "strong", "best"))
    assert not get_preset("seed").config("x").tta  # the baseline stays the seeds' notebook exactly
    assert not get_preset("fast").config("x", tta=False).tta  # --no-tta overrides the preset
