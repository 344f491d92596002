"""The whole pipeline through the real command line: train -> predict -> validate, and `run` on an empty folder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from badfiles import copy_project
from conftest import run_cli
from digit_recognizer.config import Paths

pytestmark = pytest.mark.slow

QUICK = ("--preset", "seed", "--epochs", "1", "--max-rows", "300", "--quiet")


def _no_kaggle(tmp_path) -> dict:
    """An environment in which the Kaggle client finds no credentials (so `run` uses the offline sample)."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {
        "HOME": str(home),
        "KAGGLE_CONFIG_DIR": str(home / ".kaggle"),
        "KAGGLE_USERNAME": "",
        "KAGGLE_KEY": "",
        "KAGGLE_API_TOKEN": "",
    }


def _check_submission(path, rows: int) -> pd.DataFrame:
    """Kaggle's format: header ImageId,Label; ImageIds 1..rows once each, in order; integer labels 0-9."""
    assert path.read_text().splitlines()[0] == "ImageId,Label"
    frame = pd.read_csv(path)
    assert len(frame) == rows
    assert np.array_equal(frame["ImageId"], np.arange(1, rows + 1))
    assert pd.api.types.is_integer_dtype(frame["Label"]) and frame["Label"].between(0, 9).all()
    return frame


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, trained_project):
    """A copy of the trained project ('tiny' predicted) in which a second experiment is trained, predicted and validated."""
    paths = Paths(copy_project(trained_project.root, tmp_path_factory.mktemp("pipeline")))
    tiny = paths.submission_file("tiny")
    tiny_before = (tiny.read_bytes(), tiny.stat().st_mtime_ns)
    train = run_cli("train", *QUICK, "--name", "second", root=paths.root)
    predict = run_cli("predict", "--experiment", "second", root=paths.root)
    validate = run_cli("validate", root=paths.root)
    return paths, tiny_before, train, predict, validate


def test_train_writes_a_complete_experiment(pipeline):
    # exit 0; the model, its per-epoch log (one epoch), config and metrics (written last) are there; no backup left
    paths, _, train, _, _ = pipeline
    assert train.returncode == 0, train.stderr
    assert "Traceback" not in train.stderr
    folder = paths.experiment_dir("second")
    for name in ("config.json", "member-0.keras", "valid-0.npz", "oof.npz", "metrics.json", "history-0.csv"):
        assert (folder / name).is_file(), name
    assert len(pd.read_csv(folder / "history-0.csv")) == 1
    assert not any(p.name.startswith("backup-") for p in folder.iterdir())


def test_predict_writes_the_experiment_and_latest_submission(pipeline):
    # submissions/second.csv and submissions/submission.csv are the same valid file, one row per test image
    paths, _, _, predict, _ = pipeline
    assert predict.returncode == 0, predict.stderr
    rows = len(pd.read_csv(paths.data / "test.csv"))
    own = _check_submission(paths.submission_file("second"), rows)
    latest = _check_submission(paths.latest_submission, rows)
    assert own.equals(latest)
    assert str(paths.submission_file("second")) in predict.stdout


def test_predict_leaves_other_experiments_files_alone(pipeline):
    # predicting 'second' does not touch 'tiny''s submission (same bytes, same mtime)
    paths, tiny_before, _, _, _ = pipeline
    tiny = paths.submission_file("tiny")
    assert (tiny.read_bytes(), tiny.stat().st_mtime_ns) == tiny_before


def test_validate_accepts_and_scores_the_submission(pipeline):
    # exit 0 and the accuracy equals the share of labels matching the sample's answer key
    paths, _, _, _, validate = pipeline
    assert validate.returncode == 0, validate.stderr
    predicted = pd.read_csv(paths.latest_submission)["Label"].to_numpy()
    truth = pd.read_csv(paths.test_labels)["Label"].to_numpy()
    rows = len(truth)
    assert f"valid ({rows} rows); accuracy {(predicted == truth).mean():.5f}" in validate.stdout


def _check_sample_layout(paths: Paths, competition) -> None:
    """The offline sample: 4,000 train and 1,000 test real digits in Kaggle's layout, plus the answer key."""
    from digit_recognizer.fetch import SAMPLE_TEST_ROWS, SAMPLE_TRAIN_ROWS

    train = pd.read_csv(paths.data / "train.csv")
    test = pd.read_csv(paths.data / "test.csv")
    sample_submission = pd.read_csv(paths.data / "sample_submission.csv")
    key = pd.read_csv(paths.test_labels)
    assert (SAMPLE_TRAIN_ROWS, SAMPLE_TEST_ROWS) == (4000, 1000)
    assert train.shape == (4000, 785) and list(train.columns) == competition.train_columns
    assert test.shape == (1000, 784) and list(test.columns) == competition.pixel_columns
    assert list(sample_submission.columns) == ["ImageId", "Label"] and list(key.columns) == ["ImageId", "Label"]
    assert np.array_equal(key["ImageId"], np.arange(1, 1001)) and np.array_equal(
        sample_submission["ImageId"], key["ImageId"]
    )
    assert set(train["label"]) == set(range(10)) and set(key["Label"]) == set(range(10))
    pixels = train.iloc[:, 1:].to_numpy()
    assert pixels.min() >= 0 and pixels.max() <= 255
    shares = np.bincount(train["label"], minlength=10) / len(train)
    assert shares.min() > 0.07 and shares.max() < 0.13  # stratified: roughly balanced like MNIST


def test_run_on_an_empty_folder_uses_the_sample(tmp_path, competition):
    # `run` with no data and no credentials: fetch the offline sample (4,000/1,000 digits and an answer key),
    # train, predict, validate, exit 0
    root = tmp_path / "project"
    root.mkdir()
    result = run_cli("run", *QUICK, "--name", "first", root=root, env=_no_kaggle(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "offline sample" in result.stdout and "Traceback" not in result.stderr
    paths = Paths(root)
    _check_sample_layout(paths, competition)
    own = _check_submission(paths.submission_file("first"), 1000)
    assert own.equals(_check_submission(paths.latest_submission, 1000))
    assert "submission.csv: valid (1000 rows)" in result.stdout or "first.csv: valid (1000 rows)" in result.stdout


# ---------------------------------------------------------------- which experiment reads photos by default
def _experiment_on_leaderboard(paths, name: str, score: float, finished: bool = True, **config) -> None:
    import json

    from digit_recognizer.config import ExperimentConfig
    from digit_recognizer.experiment import Experiment
    from digit_recognizer.tracking.leaderboard import upsert

    experiment = Experiment(paths, name)
    experiment.folder.mkdir(parents=True, exist_ok=True)
    record = {"config": ExperimentConfig(name=name, **config).to_dict()}
    experiment.config_file.write_text(json.dumps(record), encoding="utf-8")
    if finished:
        experiment.metrics_file.write_text("{}", encoding="utf-8")
    paths.leaderboard.parent.mkdir(parents=True, exist_ok=True)
    upsert(paths.leaderboard, name, score=f"{score:.5f}")


def test_images_prefer_the_best_experiment_trained_for_photos(tmp_path):
    from digit_recognizer.config import Paths
    from digit_recognizer.photos.pipeline import choose_experiment

    paths = Paths(tmp_path)
    _experiment_on_leaderboard(paths, "kaggle-best", 0.996)
    _experiment_on_leaderboard(paths, "plain", 0.99)
    assert choose_experiment(paths, None) == ("kaggle-best", "the best on the leaderboard")
    _experiment_on_leaderboard(paths, "photo-weak", 0.97, photo_negatives=0.2)
    _experiment_on_leaderboard(paths, "photo-strong", 0.98, photo_augment=0.5)
    _experiment_on_leaderboard(paths, "photo-unfinished", 0.995, finished=False, photo_augment=0.5)
    chosen, why = choose_experiment(paths, None)
    assert chosen == "photo-strong" and "trained for photos" in why
    _experiment_on_leaderboard(paths, "photo-reader", 0.985, reader_strings=1000)
    assert choose_experiment(paths, None)[0] == "photo-reader", "a string reader makes an experiment one for photos"
    # a request still wins
    assert choose_experiment(paths, "plain") == ("plain", "as requested")


def test_an_unreadable_config_is_not_trained_for_photos(tmp_path):
    from digit_recognizer.config import Paths
    from digit_recognizer.experiment import Experiment
    from digit_recognizer.photos.pipeline import choose_experiment, trained_for_photos

    paths = Paths(tmp_path)
    _experiment_on_leaderboard(paths, "plain", 0.99)
    _experiment_on_leaderboard(paths, "broken", 0.98, photo_augment=0.5)
    Experiment(paths, "broken").config_file.write_text("{not json", encoding="utf-8")
    assert not trained_for_photos(Experiment(paths, "broken"))
    assert choose_experiment(paths, None)[0] == "plain"
