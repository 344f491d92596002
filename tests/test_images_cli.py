"""The ``images`` subcommand end to end (real CLI in a subprocess) and the ``run`` hook, with a tiny trained model."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import REPO_ROOT, run_cli
from test_images import _png_with_header, photo_of

pytestmark = pytest.mark.slow


def read_rows(path: Path) -> dict:
    with open(path, newline="", encoding="utf-8") as handle:
        return {Path(row["file"]).name: row for row in csv.DictReader(handle)}


@pytest.fixture
def photo_folder(tmp_path):
    """Good photos, bad files of every kind, and a labels.csv."""
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_seven.png"), photo_of("7"))
    cv2.imwrite(str(folder / "3_named.jpg"), photo_of("3"))
    cv2.imwrite(str(folder / "number.png"), photo_of("2026", height=160, thickness=12, shape=(360, 900)))
    cv2.imwrite(str(folder / "blank.png"), np.full((300, 400), 235, np.uint8))
    (folder / "text.png").write_text("this is not an image\n")
    (folder / "cut.jpg").write_bytes(cv2.imencode(".jpg", photo_of("5"))[1].tobytes()[:700])
    (folder / "empty.webp").write_bytes(b"")
    (folder / "huge.png").write_bytes(_png_with_header(90_000, 90_000))
    (folder / "labels.csv").write_text("file,expected\na_seven.png,7\nnumber.png,2026\nblank.png,\n")
    return folder


def test_images_command_writes_predictions_sheet_and_summary(trained_project, photo_folder, tmp_path):
    out = tmp_path / "out"
    result = run_cli("images", str(photo_folder), "--experiment", "tiny", "--out", str(out), root=trained_project.root)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    rows = read_rows(out / "predictions.csv")
    with open(out / "predictions.csv", newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert header[:4] == ["file", "prediction", "confidence", "digits"] and "error" in header
    assert set(rows) == {
        "a_seven.png",
        "3_named.jpg",
        "number.png",
        "blank.png",
        "text.png",
        "cut.jpg",
        "empty.webp",
        "huge.png",
    }
    # Readable photos: one digit, a four-digit number with one probability per digit.
    assert len(rows["a_seven.png"]["prediction"]) == 1 and rows["a_seven.png"]["error"] == ""
    assert len(rows["number.png"]["prediction"]) == 4
    digits = rows["number.png"]["digits"].split()
    assert len(digits) == 4 and all(0 <= float(item.split(":")[1]) <= 1 for item in digits)
    assert 0 < float(rows["number.png"]["confidence"]) <= 1
    # Bad input: a row with its reason each, and the others went on.
    assert "not an image" in rows["text.png"]["error"]
    assert "truncated" in rows["cut.jpg"]["error"]
    assert "empty" in rows["empty.webp"]["error"]
    assert "limit" in rows["huge.png"]["error"]
    assert rows["blank.png"]["prediction"] == "" and "no ink" in rows["blank.png"]["error"]
    # Labels: labels.csv in the folder, else the file name's prefix.
    assert rows["a_seven.png"]["expected"] == "7" and rows["3_named.jpg"]["expected"] == "3"
    assert rows["blank.png"]["expected"] == "" and rows["blank.png"]["correct"] == "1"
    assert rows["text.png"]["expected"] == "" and rows["text.png"]["correct"] == ""  # no label known
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 8 and summary["labelled"] == 4 and summary["unreadable"] == 4
    assert "accuracy:" in result.stdout and "whole prediction exact match" in result.stdout
    sheets = sorted(out.glob("sheet-*.png"))
    assert sheets and all(path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for path in sheets)
    image = cv2.imread(str(sheets[0]))
    assert image is not None and image.shape[1] >= 1000
    assert not list(out.glob(".*tmp*")), "temporary files left behind"


def test_images_default_output_folder_and_experiment(trained_project, tmp_path):
    photo = tmp_path / "4_mine.png"
    cv2.imwrite(str(photo), photo_of("4"))
    result = run_cli("images", str(photo), "--min-confidence", "0.99", root=trained_project.root)
    assert result.returncode == 0, result.stderr
    out = trained_project.submissions / "images" / "tiny"
    row = read_rows(out / "predictions.csv")["4_mine.png"]
    probability = float(row["digits"].split(":")[1])
    assert row["prediction"] == ("?" if probability < 0.99 else row["digits"][0])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--experiment", "missing"], "experiment 'missing' not found"),
        (["--min-confidence", "1.5"], "--min-confidence"),
        (["--labels", "nowhere.csv"], "labels file not found"),
    ],
)
def test_images_user_errors_are_one_line(trained_project, tmp_path, args, message):
    photo = tmp_path / "one.png"
    cv2.imwrite(str(photo), photo_of("1"))
    result = run_cli("images", str(photo), *args, root=trained_project.root)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip() and not _tensorflow_noise(line)]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr


def test_images_with_only_missing_paths_is_a_user_error(trained_project, tmp_path):
    result = run_cli("images", str(tmp_path / "nope.jpg"), root=trained_project.root)
    assert result.returncode == 2 and "error: " in result.stderr and "Traceback" not in result.stderr


def test_labels_file_with_a_bad_header_is_a_user_error(trained_project, tmp_path):
    photo = tmp_path / "one.png"
    cv2.imwrite(str(photo), photo_of("1"))
    labels = tmp_path / "labels.csv"
    labels.write_text("name,label\none.png,1\n")
    result = run_cli("images", str(photo), "--labels", str(labels), "--experiment", "tiny", root=trained_project.root)
    assert result.returncode == 2 and "file,expected" in result.stderr


def test_images_help_is_instant_and_imports_no_tensorflow():
    code = (
        "import sys; from digit_recognizer.cli import build_parser; parser = build_parser(); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; "
        "parser.parse_args(['images', 'x.png'])"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    result = subprocess.run(
        [sys.executable, "-m", "digit_recognizer", "images", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "--min-confidence" in result.stdout and "--labels" in result.stdout


def test_run_reads_the_shipped_examples(trained_project, tmp_path, capsys):
    from digit_recognizer.cli.images import read_examples
    from digit_recognizer.config import Paths

    paths = Paths(tmp_path / "project")
    shutil.copytree(trained_project.models, paths.models)
    shutil.copytree(REPO_ROOT / "inputs" / "custom", paths.custom_images)
    read_examples(paths, "tiny")
    said = capsys.readouterr().out.splitlines()
    out = paths.submissions / "images" / "tiny"
    rows = read_rows(out / "predictions.csv")
    with open(paths.custom_images / "labels.csv", newline="", encoding="utf-8") as handle:
        expected = {row["file"]: row["expected"] for row in csv.DictReader(handle)}
    assert set(rows) == set(expected)
    assert all(
        rows[name]["expected"] == expected[name] and len(rows[name]["digits"].split()) == len(expected[name])
        for name in expected
    )
    assert (out / "sheet-1.png").is_file()
    assert any(line.startswith("accuracy:") for line in said) and any("sheet" in line for line in said)


def test_run_without_examples_says_so(tmp_path, capsys):
    from digit_recognizer.cli.images import read_examples
    from digit_recognizer.config import Paths

    read_examples(Paths(tmp_path), "tiny")
    said = capsys.readouterr().out.splitlines()
    assert said and "no example photos" in said[0]


def _tensorflow_noise(line: str) -> bool:
    return any(
        marker in line
        for marker in ("oneDNN", "absl::", "cpu_feature_guard", "rebuild TensorFlow", "port.cc", "WARNING: All log")
    )
