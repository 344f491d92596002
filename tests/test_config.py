"""Project folder discovery and the one name rule (config.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from digit_recognizer.config import ROOT_ENV, SPEC_RELATIVE, Paths, find_project_root
from digit_recognizer.errors import UserError

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture
def no_root_env(monkeypatch):
    monkeypatch.delenv(ROOT_ENV, raising=False)
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)


def test_root_is_the_nearest_project_above_the_working_directory(tmp_path, no_root_env):
    # from inside a project (a folder holding competition/competition.json), at any depth, that project is used
    (tmp_path / SPEC_RELATIVE).parent.mkdir(parents=True)
    (tmp_path / SPEC_RELATIVE).write_text("{}")
    deep = tmp_path / "models" / "a" / "b"
    deep.mkdir(parents=True)
    assert find_project_root(deep) == tmp_path.resolve()


def test_unrelated_folder_is_its_own_project_not_the_install_checkout(tmp_path, no_root_env):
    # outside any project the working directory is the project: never the checkout the package came from
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    assert find_project_root(folder) == folder.resolve()


def test_command_in_an_unrelated_folder_uses_that_folder(tmp_path):
    # the real command line, run from an unrelated folder: it looks for submissions/ there, as --help says
    env = {key: value for key, value in os.environ.items() if key not in (ROOT_ENV, "KAGGLE_KERNEL_RUN_TYPE")}
    env["PYTHONPATH"] = str(SRC)
    result = subprocess.run(
        [sys.executable, "-m", "digit_recognizer", "validate"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        result.returncode == 2
        and result.stderr.strip() == f"error: {tmp_path.resolve()}/submissions/submission.csv: file not found"
    )
    help_text = subprocess.run(
        [sys.executable, "-m", "digit_recognizer", "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "else the working directory" in " ".join(help_text.split())


def test_root_that_is_a_file_is_refused(tmp_path):
    # --root naming a file: one line saying so (no "file not found (run fetch first)")
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(UserError, match=f"--root {afile}: is a file, not a project folder"):
        Paths.discover(afile)
