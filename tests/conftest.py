"""Shared fixtures: a project folder in tmp_path holding a small slice of the offline sample."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = Path(__file__).resolve().parents[1]

# The fake Kaggle API's fixtures (kaggle_home, fake_kaggle) for every test module.
pytest_plugins = ["fake_kaggle"]


@pytest.fixture(scope="session")
def competition():
    from digit_recognizer.config import load_competition

    return load_competition(REPO_ROOT)


@pytest.fixture(scope="session")
def sample_frames(competition):
    """(train, test, sample_submission, test_labels) frames: 600 train and 200 test real MNIST digits."""
    from digit_recognizer.fetch import build_sample_frames

    return build_sample_frames(competition, seed=0, train_rows=600, test_rows=200)


def write_sample(data_dir: Path, competition, frames) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in zip((*competition.file_names, "test_labels.csv"), frames):
        frame.to_csv(data_dir / name, index=False)


@pytest.fixture
def project(tmp_path, competition, sample_frames):
    """Paths for a fresh project in tmp_path with the small sample in inputs/digit-recognizer/."""
    from digit_recognizer.config import Paths

    paths = Paths(tmp_path)
    write_sample(paths.data, competition, sample_frames)
    return paths


def run_cli(*args: str, root: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m digit_recognizer --root ROOT ARGS`` in a subprocess (the real command line)."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "digit_recognizer", "--root", str(root), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory, competition, sample_frames):
    """A project with one experiment ('tiny', seed preset, 2 epochs) trained and predicted, shared by read-only tests."""
    from digit_recognizer.cli import main

    root = tmp_path_factory.mktemp("trained")
    from digit_recognizer.config import Paths

    paths = Paths(root)
    write_sample(paths.data, competition, sample_frames)
    assert main(["--root", str(root), "train", "--preset", "seed", "--epochs", "2", "--name", "tiny", "--quiet"]) == 0
    assert main(["--root", str(root), "predict", "--experiment", "tiny"]) == 0
    return paths
