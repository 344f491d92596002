"""`validate`: a good submission passes (scored against the sample's answer key); each kind of bad one is one precise error."""

from __future__ import annotations

import numpy as np
import pytest

from badfiles import BAD_SUBMISSIONS, csv_text, to_bytes
from digit_recognizer.cli import main


@pytest.fixture(scope="module")
def answer_text(sample_frames):
    """The sample's answer key as a submission: valid, and 100% right."""
    return csv_text(sample_frames[3])


def _validate(project, capsys, content, name="mine.csv"):
    path = project.root / name
    if content is not None:
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    code = main(["--root", str(project.root), "validate", str(path)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_good_submission_is_valid_and_scored(project, capsys, answer_text):
    # exit 0, the row count, and accuracy 1 against the answer key it was made from
    code, out, err = _validate(project, capsys, answer_text)
    assert code == 0 and err == ""
    assert "valid (200 rows)" in out and "accuracy 1.00000 against the sample's answer key" in out


@pytest.mark.parametrize("wrong", [1, 10, 73])
def test_accuracy_counts_wrong_labels(project, capsys, answer_text, wrong):
    # k changed labels -> accuracy (200 - k) / 200
    lines = answer_text.splitlines()
    for row in range(1, wrong + 1):
        image_id, label = lines[row].split(",")
        lines[row] = f"{image_id},{(int(label) + 1) % 10}"
    code, out, _ = _validate(project, capsys, "\n".join(lines) + "\n")
    assert code == 0 and f"accuracy {(200 - wrong) / 200:.5f}" in out


@pytest.mark.parametrize("variant", ["bom", "crlf", "shuffled", "spaces", "quoted"])
def test_accepted_variants(project, capsys, answer_text, variant):
    # a BOM, CRLF line endings, rows in any order, padded cells and quoted cells are all the same valid submission
    if variant == "shuffled":
        header, *rows = answer_text.splitlines()
        rows = [rows[i] for i in np.random.default_rng(0).permutation(len(rows))]
        content = "\n".join([header, *rows]) + "\n"
    elif variant == "quoted":
        content = (
            "\n".join(",".join(f'"{field}"' for field in line.split(",")) for line in answer_text.splitlines()) + "\n"
        )
    elif variant == "spaces":
        content = answer_text.replace(",", ", ").replace("ImageId, Label", "ImageId,Label")
    else:
        content = to_bytes(answer_text, bom=variant == "bom", crlf=variant == "crlf")
    code, out, _ = _validate(project, capsys, content)
    assert code == 0 and "accuracy 1.00000" in out


def test_without_answer_key_no_accuracy(project, capsys, answer_text):
    # the real competition has no answer key: valid, but no accuracy claimed
    project.test_labels.unlink()
    code, out, _ = _validate(project, capsys, answer_text)
    assert code == 0 and "valid (200 rows)" in out and "accuracy" not in out


@pytest.mark.parametrize(
    "mutate, expected", [case[1:] for case in BAD_SUBMISSIONS], ids=[case[0] for case in BAD_SUBMISSIONS]
)
def test_bad_submission_is_one_line_error(project, capsys, answer_text, mutate, expected):
    # exit 2, nothing on stdout, one stderr line `error: <file>: <problem>`
    code, out, err = _validate(project, capsys, mutate(answer_text))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and "mine.csv: " in err, err
    assert expected in err, err
    assert len(err) <= 200, err  # every quoted value is bounded


@pytest.mark.parametrize("kind, expected", [("directory", "is a directory"), ("missing", "file not found")])
def test_directory_or_missing_file(project, capsys, kind, expected):
    # a folder or a wrong path is named, exit 2
    if kind == "directory":
        (project.root / "mine.csv").mkdir()
    code, out, err = _validate(project, capsys, None)
    assert code == 2 and out == "" and err.count("\n") == 1 and expected in err


def test_default_file_is_submissions_submission_csv(project, capsys, answer_text):
    # without an argument, validate reads submissions/submission.csv
    code, _, err = _validate(project, capsys, None, name="submissions/submission.csv")
    assert code == 2 and "submissions/submission.csv: file not found" in err
    project.latest_submission.parent.mkdir(parents=True, exist_ok=True)
    project.latest_submission.write_text(answer_text)
    assert main(["--root", str(project.root), "validate"]) == 0
    assert "submission.csv: valid (200 rows)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "damage",
    [
        lambda key: "ImageId;Label\n1;2\n",
        lambda key: (
            "\n".join([key.splitlines()[0], *(line + ",0" for line in key.splitlines()[1:])]) + "\n"
        ),  # no silent shift
        lambda key: key.replace(",7\n", ",\uff17\n"),
    ],
    ids=["semicolons", "extra-field-every-row", "fullwidth-digit"],
)
def test_broken_answer_key_is_named(project, capsys, answer_text, damage):
    # a damaged test_labels.csv is reported as such (one bounded line), not as a crash or a wrong accuracy
    project.test_labels.write_text(damage(answer_text))
    code, _, err = _validate(project, capsys, answer_text)
    assert code == 2 and "test_labels.csv: not a valid answer key" in err and err.count("\n") == 1, err
