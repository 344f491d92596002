"""Reports: train then report on the sample produces every file, with consistent numbers and readable pictures."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest

from conftest import write_sample

pytestmark = pytest.mark.slow


def _main(*args: str) -> int:
    from digit_recognizer.cli import main

    return main(list(args))


@pytest.fixture(scope="module")
def tiny_report(trained_project, competition):
    """The 'tiny' experiment's report, rebuilt by the `report` command (training already built one)."""
    assert _main("--root", str(trained_project.root), "report", "--experiment", "tiny") == 0
    return trained_project, trained_project.report_dir("tiny")


@pytest.fixture(scope="module")
def cv_project(tmp_path_factory, competition, sample_frames):
    """A 2-fold CV experiment on 300 rows, 1 epoch (seconds): out-of-fold confusion matrix, one curve per fold."""
    from digit_recognizer.config import Paths

    paths = Paths(tmp_path_factory.mktemp("cv"))
    write_sample(paths.data, competition, sample_frames)
    assert (
        _main(
            "--root",
            str(paths.root),
            "train",
            "--preset",
            "seed",
            "--cv",
            "2",
            "--max-rows",
            "300",
            "--epochs",
            "1",
            "--name",
            "cv2",
            "--quiet",
        )
        == 0
    )
    return paths


def _metrics(paths, experiment):
    return json.loads((paths.experiment_dir(experiment) / "metrics.json").read_text())


def _png_size(path: Path) -> tuple[int, int]:
    import matplotlib.image

    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    return image.shape[1], image.shape[0]


def _check_consistent(paths, experiment: str, report_dir: Path) -> None:
    """Confusion matrix sums to the validation size; its diagonal gives metrics.json's score."""
    metrics = _metrics(paths, experiment)
    with np.load(paths.experiment_dir(experiment) / "oof.npz", allow_pickle=False) as saved:
        validation_rows = len(saved["rows"])
    confusion = pd.read_csv(report_dir / "confusion_matrix.csv", index_col=0).to_numpy()
    assert confusion.shape == (10, 10)
    assert confusion.sum() == validation_rows == metrics["validation_rows"]
    assert np.trace(confusion) / confusion.sum() == pytest.approx(metrics["score"], abs=1e-9)
    table = pd.read_csv(report_dir / "classification_report.csv", index_col=0)
    assert table.loc[[str(k) for k in range(10)], "support"].sum() == validation_rows
    assert table.loc[[str(k) for k in range(10)], "support"].to_numpy() == pytest.approx(confusion.sum(axis=1))
    assert table.loc["accuracy", "f1-score"] == pytest.approx(metrics["score"], abs=1e-5)
    recall = table.loc[[str(k) for k in range(10)], "recall"].to_numpy()
    expected = np.divide(np.diag(confusion), confusion.sum(axis=1), out=np.zeros(10), where=confusion.sum(axis=1) > 0)
    assert recall == pytest.approx(expected, abs=1e-5)


def test_report_writes_every_file(tiny_report):
    from digit_recognizer.tracking.report import FILES

    _, report_dir = tiny_report
    for name in FILES:
        assert (report_dir / name).is_file() and (report_dir / name).stat().st_size > 0, name
    assert not list(report_dir.glob(".*tmp*")), "temporary files left behind"


def test_pngs_decode_with_expected_sizes(tiny_report):
    from digit_recognizer.tracking.report import figure_pixels, gallery_pixels

    _, report_dir = tiny_report
    for name in ("confusion_counts.png", "confusion_normalized.png", "curves.png"):
        assert _png_size(report_dir / name) == figure_pixels(name)
    shown = len(pd.read_csv(report_dir / "errors.csv"))
    assert _png_size(report_dir / "errors.png") == gallery_pixels(shown)
    for png in report_dir.glob("*.png"):
        assert 5_000 < png.stat().st_size < 600_000, f"{png.name}: {png.stat().st_size} bytes"
        width, height = _png_size(png)
        assert 500 <= width <= 1600 and 300 <= height <= 1200


def test_confusion_matrix_matches_validation_and_score(tiny_report):
    paths, report_dir = tiny_report
    _check_consistent(paths, "tiny", report_dir)


def test_build_report_result(trained_project, competition):
    from digit_recognizer.tracking.report import FILES, build_report

    result = build_report(trained_project, competition, "tiny")
    metrics = _metrics(trained_project, "tiny")
    assert set(result.files) == set(FILES) and all(path.is_file() for path in result.files.values())
    assert result.validation_rows == int(result.confusion.sum()) == metrics["validation_rows"]
    assert result.score == pytest.approx(metrics["score"], abs=1e-9)
    assert result.index == trained_project.report_dir("tiny") / "index.html"
    assert result.warnings == ()


def test_error_gallery_lists_the_most_confident_mistakes(tiny_report, competition):
    from digit_recognizer.data import load_train
    from digit_recognizer.tracking.report import GALLERY_MAX

    paths, report_dir = tiny_report
    errors = pd.read_csv(report_dir / "errors.csv")
    with np.load(paths.experiment_dir("tiny") / "oof.npz", allow_pickle=False) as saved:
        wrong = int((saved["probabilities"].argmax(1) != saved["labels"]).sum())
        truth = dict(zip(saved["rows"].tolist(), saved["labels"].tolist()))
    assert len(errors) == min(wrong, GALLERY_MAX)
    assert (errors["true_label"] != errors["predicted_label"]).all()
    assert errors["predicted_probability"].is_monotonic_decreasing
    assert (errors["predicted_probability"] >= errors["true_probability"]).all()
    assert all(truth[row] == label for row, label in zip(errors["train_row"], errors["true_label"]))
    labels = load_train(paths, competition).labels
    assert (labels[errors["train_row"]] == errors["true_label"]).all()  # rows really index train.csv


def test_index_html_links_are_relative_and_resolve(tiny_report):
    paths, report_dir = tiny_report
    page = (report_dir / "index.html").read_text(encoding="utf-8")
    links = re.findall(r"""(?:href|src)=["']([^"']+)["']""", page)
    assert {"confusion_counts.png", "confusion_normalized.png", "curves.png", "errors.png"} <= set(links)
    for link in links:
        parsed = urlparse(link)
        assert not parsed.scheme and not parsed.netloc and not link.startswith("/"), link
        assert (report_dir / link).resolve().is_file(), link
    metrics = _metrics(paths, "tiny")
    assert "<h1>tiny</h1>" in page and f"{metrics['score']:.5f}" in page
    assert "learning_rate" in page and "architecture" in page  # the config table
    assert str(paths.root) not in page  # nothing absolute leaks in


def test_report_for_cross_validation_uses_out_of_fold_predictions(cv_project):
    from digit_recognizer.experiment import Experiment
    from digit_recognizer.tracking.report import FILES, _curves_figure, _member_histories

    report_dir = cv_project.report_dir("cv2")
    for name in FILES:
        assert (report_dir / name).is_file(), name
    _check_consistent(cv_project, "cv2", report_dir)
    assert _metrics(cv_project, "cv2")["validation_rows"] == 300
    errors = pd.read_csv(report_dir / "errors.csv")
    assert set(errors["fold"]) <= {1, 2}
    histories = _member_histories(Experiment(cv_project, "cv2"), 2)
    assert [label for label, _ in histories] == ["fold 1", "fold 2"]
    figure = _curves_figure(histories, "cv2")
    for axes in figure.axes:
        labels = [line.get_label() for line in axes.get_lines()]
        assert labels == ["fold 1: train", "fold 1: validation", "fold 2: train", "fold 2: validation"]
        assert axes.get_xlabel() == "Epoch" and axes.get_ylabel() in ("Accuracy", "Loss")
    assert "out-of-fold" in (report_dir / "index.html").read_text(encoding="utf-8")


def test_read_history_keeps_the_last_copy_of_a_resumed_epoch(tmp_path):
    from digit_recognizer.tracking.report import read_history

    path = tmp_path / "history-0.csv"
    path.write_text(
        "epoch,accuracy,loss,val_accuracy,val_loss\n0,0.5,1.5,0.6,1.2\n1,0.7,0.9,0.7,0.8\n"
        "1,0.75,0.85,0.72,0.79\nepoch,accuracy,loss,val_accuracy,val_loss\n2,0.8,0.6,0.8,0.6\n"
    )
    frame = read_history(path)
    assert frame["epoch"].tolist() == [0, 1, 2]
    assert frame["accuracy"].tolist() == [0.5, 0.75, 0.8]
    assert read_history(tmp_path / "missing.csv") is None


def test_report_survives_missing_history_and_changed_train_csv(tmp_path, trained_project, competition, sample_frames):
    from digit_recognizer.config import Paths
    from digit_recognizer.tracking.report import build_report, gallery_pixels

    paths = Paths(tmp_path)
    write_sample(
        paths.data,
        competition,
        tuple(frame.iloc[:300] if index == 0 else frame for index, frame in enumerate(sample_frames)),
    )
    shutil.copytree(trained_project.experiment_dir("tiny"), paths.experiment_dir("tiny"))
    for history in paths.experiment_dir("tiny").glob("history-*.csv"):
        history.unlink()
    result = build_report(paths, competition, "tiny")
    assert any("train.csv" in warning for warning in result.warnings)
    assert any("history" in warning for warning in result.warnings)
    assert _png_size(result.files["errors.png"]) == gallery_pixels(0)
    assert result.score == pytest.approx(_metrics(paths, "tiny")["score"])


def test_report_user_errors(tmp_path, trained_project, capsys):
    assert _main("--root", str(tmp_path), "report") == 2
    assert "no trained experiment" in capsys.readouterr().err
    assert _main("--root", str(trained_project.root), "report", "--experiment", "nope") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: experiment 'nope' not found") and "tiny" in err


def test_cli_report_imports_nothing_heavy():
    code = (
        "import sys, digit_recognizer.cli.tracking, digit_recognizer.cli; "
        "heavy = [m for m in ('matplotlib', 'tensorflow', 'keras', 'sklearn') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
