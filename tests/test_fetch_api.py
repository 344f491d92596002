"""`digit-recognizer fetch` through the real `kaggle` client against the fake Kaggle API."""

from __future__ import annotations

import pandas as pd

from conftest import run_cli
from fake_kaggle import (
    RULES_MESSAGE,
    Failure,
    assert_no_secrets,
    competition_zip,
    error_line,
    write_kaggle_json,
)  # noqa: F401


def test_fetch_downloads_and_extracts_the_competition_zip(
    tmp_path, fake_kaggle, kaggle_home, competition, sample_frames
):
    fake_kaggle.zip_bytes = competition_zip(competition, sample_frames)
    write_kaggle_json(kaggle_home)
    root = tmp_path / "project"

    result = run_cli("fetch", root=root)

    assert result.returncode == 0, result.stderr
    assert fake_kaggle.methods() == ["DownloadDataFiles", "storage"]
    assert all(authorised for _, _, authorised in fake_kaggle.log)
    data = root / "inputs" / "digit-recognizer"
    assert len(pd.read_csv(data / "train.csv")) == len(sample_frames[0])
    assert len(pd.read_csv(data / "test.csv")) == len(sample_frames[1])
    assert (data / "sample_submission.csv").is_file() and not (data / "test_labels.csv").exists()
    assert "fetched from kaggle" in result.stdout
    assert "warning: train.csv has 600 rows, the competition's has 42000" in result.stdout
    assert not list(data.glob(".download-*")), "the download folder is removed"
    assert_no_secrets(result.stdout, result.stderr, folders=[root])


def test_fetch_without_accepted_rules_names_the_rules_page(
    tmp_path, fake_kaggle, kaggle_home, competition, sample_frames
):
    fake_kaggle.zip_bytes = competition_zip(competition, sample_frames)
    fake_kaggle.failures["DownloadDataFiles"] = Failure(403, RULES_MESSAGE)
    write_kaggle_json(kaggle_home)
    root = tmp_path / "project"

    result = run_cli("fetch", root=root)

    assert result.returncode == 2
    line = error_line(result)
    assert "accept this competition's rules" in line and competition.rules_url in line
    assert not [path for path in (root / "inputs").rglob("*") if path.is_file()], "nothing written to inputs/"
    assert "storage" not in fake_kaggle.methods()
    assert_no_secrets(result.stdout, result.stderr, folders=[root])


def test_fetch_without_credentials_says_how_to_set_them(tmp_path, fake_kaggle, kaggle_home):
    result = run_cli("fetch", root=tmp_path / "project")

    assert result.returncode == 2
    line = error_line(result)
    assert "no Kaggle credentials" in line and "kaggle.json" in line and "KAGGLE_USERNAME" in line
    assert fake_kaggle.log == [], "no request without credentials"


def test_the_credentials_hint_names_kaggle_config_dir_when_set(tmp_path, fake_kaggle, kaggle_home, monkeypatch):
    # the client looks for kaggle.json in $KAGGLE_CONFIG_DIR when it is set: the hint must name that folder
    config_dir = tmp_path / "elsewhere"
    config_dir.mkdir()
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config_dir))
    result = run_cli("fetch", root=tmp_path / "project")

    assert result.returncode == 2
    line = error_line(result)
    assert "no Kaggle credentials" in line and f"kaggle.json in {config_dir}/" in line
    assert fake_kaggle.log == [], "no request without credentials"
