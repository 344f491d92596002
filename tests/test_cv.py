"""Cross-validation, fold ensembles and the multi-device path, on tiny data."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import REPO_ROOT


@pytest.fixture(scope="module")
def cv_project(tmp_path_factory, competition, sample_frames):
    """A project with a 3-fold experiment ('cv3', seed preset, 1 epoch, 300 rows), trained and predicted."""
    from conftest import write_sample
    from digit_recognizer.cli import main
    from digit_recognizer.config import Paths

    paths = Paths(tmp_path_factory.mktemp("cv"))
    write_sample(paths.data, competition, sample_frames)
    assert (
        main(
            [
                "--root",
                str(paths.root),
                "train",
                "--preset",
                "seed",
                "--epochs",
                "1",
                "--cv",
                "3",
                "--max-rows",
                "300",
                "--name",
                "cv3",
                "--quiet",
            ]
        )
        == 0
    )
    assert main(["--root", str(paths.root), "predict", "--experiment", "cv3"]) == 0
    return paths


@pytest.mark.slow
def test_oof_predictions_cover_every_row_once(cv_project):
    # out-of-fold rows are exactly the (sub)set trained on, each once, each from the fold that held it out
    with np.load(cv_project.experiment_dir("cv3") / "oof.npz", allow_pickle=False) as oof:
        rows, folds, probabilities, labels = oof["rows"], oof["folds"], oof["probabilities"], oof["labels"]
    assert len(rows) == 300 and len(np.unique(rows)) == 300
    assert set(folds) == {0, 1, 2}
    assert probabilities.shape == (300, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    for fold in range(3):
        with np.load(cv_project.experiment_dir("cv3") / f"valid-{fold}.npz", allow_pickle=False) as valid:
            assert set(valid["rows"]) == set(rows[folds == fold])
    metrics = json.loads((cv_project.experiment_dir("cv3") / "metrics.json").read_text())
    assert metrics["oof_accuracy"] == pytest.approx(float((probabilities.argmax(1) == labels).mean()))
    assert len(metrics["fold_accuracies"]) == 3 and metrics["members"] == [
        "member-0.keras",
        "member-1.keras",
        "member-2.keras",
    ]


@pytest.mark.slow
def test_fold_file_is_reused_by_the_next_experiment(cv_project, competition):
    # a second experiment with the same seed and data reads the same fold file instead of making a new one
    from digit_recognizer.cli import main

    fold_files = sorted(cv_project.splits.glob("folds-k3-*.csv"))
    assert len(fold_files) == 1
    before = (fold_files[0].stat().st_mtime_ns, fold_files[0].read_bytes())
    assert (
        main(
            [
                "--root",
                str(cv_project.root),
                "train",
                "--preset",
                "seed",
                "--epochs",
                "1",
                "--cv",
                "3",
                "--max-rows",
                "300",
                "--name",
                "cv3-again",
                "--quiet",
            ]
        )
        == 0
    )
    assert sorted(cv_project.splits.glob("folds-k3-*.csv")) == fold_files
    assert (fold_files[0].stat().st_mtime_ns, fold_files[0].read_bytes()) == before
    with (
        np.load(cv_project.experiment_dir("cv3") / "oof.npz") as first,
        np.load(cv_project.experiment_dir("cv3-again") / "oof.npz") as second,
    ):
        np.testing.assert_array_equal(first["folds"], second["folds"])
        np.testing.assert_array_equal(first["rows"], second["rows"])


@pytest.mark.slow
@pytest.mark.parametrize("tta", [False, True])
def test_fold_ensemble_averages_member_probabilities(cv_project, competition, tta):
    # the ensemble's probabilities are the mean of each fold model's (over shifted copies too with TTA)
    from digit_recognizer.data import load_test
    from digit_recognizer.modeling.inference import (
        ensemble_probabilities,
        load_members,
        predict_probabilities,
        shifted_copies,
    )

    models = load_members(cv_project, "cv3")
    images = load_test(cv_project, competition).images[:50]
    variants = shifted_copies(images) if tta else [images]
    expected = np.mean([predict_probabilities(model, variant) for model in models for variant in variants], axis=0)
    np.testing.assert_allclose(ensemble_probabilities(models, images, tta=tta), expected, rtol=1e-5, atol=1e-6)
    individual = [predict_probabilities(model, images) for model in models]
    assert not all(np.allclose(individual[0], other) for other in individual[1:])  # the members really differ


def test_shifted_copies_move_ink_and_fill_with_zeros():
    # test-time augmentation copies are the image moved one pixel each way, with zeros shifted in
    image = np.zeros((1, 28, 28, 1), np.uint8)
    image[0, 0, 5, 0] = 255
    image[0, 27, 5, 0] = 200
    from digit_recognizer.modeling.inference import shifted_copies

    copies = shifted_copies(image)
    assert len(copies) == 5
    assert copies[1][0, 1, 5, 0] == 255 and copies[1][0, 0, 5, 0] == 0  # down: the bottom row falls off, not wraps
    assert copies[1].sum() == 255
    assert all(copy.shape == image.shape and copy.dtype == np.uint8 for copy in copies)


@pytest.mark.slow
def test_predict_submits_the_average_of_the_fold_models(cv_project, competition):
    # predict's saved probabilities are the mean of the three fold models' probabilities on test.csv, computed here
    # from the model files, and the submission is that mean's argmax, not any single member's
    import pandas as pd

    from digit_recognizer.data import load_test
    from digit_recognizer.modeling.inference import load_members, predict_probabilities

    images = load_test(cv_project, competition).images
    members = [predict_probabilities(model, images) for model in load_members(cv_project, "cv3")]
    expected = np.mean(members, axis=0)
    saved = np.load(cv_project.experiment_dir("cv3") / "test-probabilities.npy")
    np.testing.assert_allclose(saved, expected, rtol=1e-5, atol=1e-6)
    submission = pd.read_csv(cv_project.submission_file("cv3"))["Label"].to_numpy()
    np.testing.assert_array_equal(submission, expected.argmax(1))
    # averaging changes decisions: on some test rows the mean's label differs from a member's own label
    assert any((member.argmax(1) != expected.argmax(1)).any() for member in members)


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tmp_path, competition, sample_frames):
    # with the CPU split into two logical devices, training runs under MirroredStrategy with 2 replicas
    from conftest import write_sample
    from digit_recognizer.config import Paths

    paths = Paths(tmp_path)
    write_sample(paths.data, competition, sample_frames)
    script = textwrap.dedent(f"""
        import os
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from digit_recognizer.config import ExperimentConfig, Paths, load_competition
        from digit_recognizer.modeling.train import choose_strategy, train_experiment
        devices = [device.name for device in tf.config.list_logical_devices("CPU")]
        strategy = choose_strategy(devices)
        print("strategy", type(strategy).__name__, strategy.num_replicas_in_sync)
        config = ExperimentConfig(name="mirrored", preset="seed", architecture="seed", epochs=1, batch_size=32,
                                  learning_rate=1e-3, schedule="constant", augment=True, label_smoothing=0.0, patience=0,
                                  max_rows=200)
        result = train_experiment(config, Paths({str(paths.root)!r}), load_competition(), verbose=0, devices=devices)
        print("score", result.metrics["score"])
    """)
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "strategy MirroredStrategy 2" in completed.stdout
    score = float(completed.stdout.split("score")[-1])
    assert 0.0 <= score <= 1.0
    assert (paths.experiment_dir("mirrored") / "member-0.keras").is_file()
