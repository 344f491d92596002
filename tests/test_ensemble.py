"""The ensemble stage: averaging experiments' test probabilities, scoring on shared validation rows, refusals."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from badfiles import copy_project, snapshot
from digit_recognizer.cli import main
from digit_recognizer.config import Paths
from digit_recognizer.experiment import Validation
from digit_recognizer.modeling import ensemble
from digit_recognizer.tracking import leaderboard


@pytest.fixture(scope="module")
def two_experiments(tmp_path_factory, trained_project):
    """A copy of the trained project with a second holdout experiment ('other', same seed, so the same holdout
    rows) and a 2-fold CV experiment ('folds'); only 'tiny' has been predicted."""
    paths = Paths(copy_project(trained_project.root, tmp_path_factory.mktemp("ensemble")))
    quick = ["--preset", "seed", "--epochs", "1", "--quiet"]
    assert main(["--root", str(paths.root), "train", *quick, "--name", "other", "--learning-rate", "3e-3"]) == 0
    assert main(["--root", str(paths.root), "train", *quick, "--name", "folds", "--cv", "2"]) == 0
    return paths


def _run(paths: Paths, *args: str) -> int:
    return main(["--root", str(paths.root), "ensemble", *args])


def _oof(paths: Paths, experiment: str) -> pd.DataFrame:
    with np.load(paths.experiment_dir(experiment) / "oof.npz") as saved:
        return pd.DataFrame(
            {"label": saved["labels"], **{f"p{k}": saved["probabilities"][:, k] for k in range(10)}},
            index=saved["rows"],
        )


@pytest.mark.slow
@pytest.mark.parametrize("weights, expected", [(None, (0.5, 0.5)), ("3,1", (0.75, 0.25))])
def test_ensemble_averages_probabilities_and_scores_the_shared_holdout(two_experiments, weights, expected, capsys):
    # the ensemble's test probabilities are the weighted mean of its members' (the unpredicted member is
    # predicted on the way), its submission is their argmax, and its score is the accuracy of the weighted
    # mean of the members' validation probabilities on the holdout rows they share
    paths = two_experiments
    name = f"blend-{weights or 'equal'}".replace(",", "-")
    assert _run(paths, "tiny", "other", "--name", name, *(["--weights", weights] if weights else [])) == 0
    members = [np.load(paths.experiment_dir(experiment) / "test-probabilities.npy") for experiment in ("tiny", "other")]
    blended = np.load(paths.experiment_dir(name) / "test-probabilities.npy")
    assert np.allclose(blended, expected[0] * members[0] + expected[1] * members[1], atol=1e-6)
    assert (pd.read_csv(paths.submission_file(name))["Label"].to_numpy() == blended.argmax(1)).all()
    assert paths.latest_submission.read_bytes() == paths.submission_file(name).read_bytes()

    tiny, other = _oof(paths, "tiny"), _oof(paths, "other")
    assert tiny.index.equals(other.index)  # same seed and holdout: the same rows
    columns = [f"p{k}" for k in range(10)]
    average = expected[0] * tiny[columns].to_numpy() + expected[1] * other[columns].to_numpy()
    record = json.loads((paths.experiment_dir(name) / "ensemble.json").read_text())
    assert record["score"] == pytest.approx((average.argmax(1) == tiny["label"].to_numpy()).mean())
    assert record["validation_rows"] == len(tiny) and record["validation"] == "holdout-0.1"
    wrong = [frame[columns].to_numpy().argmax(1) != frame["label"].to_numpy() for frame in (tiny, other)]
    assert record["missed_by_all"] == int((wrong[0] & wrong[1]).sum()) <= min(wrong[0].sum(), wrong[1].sum())
    assert f"{record['missed_by_all']} of those rows every member gets wrong" in capsys.readouterr().out
    row = next(row for row in leaderboard.read_rows(paths.leaderboard) if row["experiment"] == name)
    assert row["preset"] == "ensemble" and float(row["score"]) == pytest.approx(record["score"], abs=1e-5)
    assert row["local_key_score"]  # the sample's answer key scores the submission too


@pytest.mark.slow
def test_holdout_and_cv_members_are_scored_on_the_holdout_rows(two_experiments):
    # a CV experiment validated every row, so with a holdout experiment the shared rows are the holdout rows
    paths = two_experiments
    assert _run(paths, "tiny", "folds", "--name", "mixed") == 0
    record = json.loads((paths.experiment_dir("mixed") / "ensemble.json").read_text())
    assert record["validation_rows"] == len(_oof(paths, "tiny")) < len(_oof(paths, "folds"))
    assert record["validation"] == f"shared-{record['validation_rows']}"
    assert set(record["member_scores"]) == {"tiny", "folds"}


def test_take_rows_aligns_members_by_train_row():
    # members list their validation rows in different orders; take_rows picks each row's label and probabilities
    holdout = Validation(np.array([7, 2, 5]), np.array([1, 2, 3]), np.eye(10)[[1, 2, 3]])
    label_of_row = np.array([0, 0, 2, 0, 0, 3, 0, 1, 0])
    folds_rows = np.arange(9)[::-1]
    folds = Validation(folds_rows, label_of_row[folds_rows], np.eye(10)[folds_rows])  # argmax = row
    rows = ensemble.shared_rows([holdout, folds])
    assert rows.tolist() == [2, 5, 7]
    assert holdout.take(rows).labels.tolist() == [2, 3, 1]
    assert folds.take(rows).labels.tolist() == [2, 3, 1]
    assert folds.take(rows).probabilities.argmax(1).tolist() == [2, 5, 7]


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, message",
    [
        (["tiny"], "at least two different experiments"),
        (["tiny", "tiny"], "at least two different experiments"),
        (["tiny", "missing"], "experiment 'missing' not found under"),
        (["tiny", "other", "--weights", "1"], "1 numbers for 2 experiments"),
        (["tiny", "other", "--weights", "a,b"], "expected 2 comma-separated numbers"),
        (["tiny", "other", "--weights=-1,2"], "non-negative"),
        (["tiny", "other", "--weights", "0,0"], "non-negative"),
        (["tiny", "other", "--name", "other"], "is one of the ensemble's experiments"),
        (["tiny", "other", "--name", "folds"], "holds a trained experiment"),
        (["tiny", "other", "--name", "../escape"], "use letters, digits"),
        # issue 13 items 9, 10, 12: the name rule of experiments, and no name of a file the project owns
        (
            ["tiny", "other", "--name", "leaderboard"],
            "ensemble name 'leaderboard' is reserved for a file the project owns",
        ),
        (["tiny", "other", "--name", "submission"], "ensemble name 'submission' is reserved"),
        (["tiny", "other", "--name", "a\nb"], "ensemble name 'a\\nb' must be a plain file name"),
        (["tiny", "other", "--name", " "], "ensemble name ' ' must be a plain file name"),
        (["tiny", "other", "--name", "n" * 300], "must be a plain file name"),
    ],
)
def test_bad_ensembles_are_refused_with_one_line_and_nothing_written(two_experiments, capsys, args, message):
    # each refusal: exit 2, one bounded `error:` line naming the problem, and no file under inputs/, models/ or
    # submissions/ written, replaced or changed (submissions/leaderboard.csv above all)
    paths = two_experiments
    before = snapshot(paths.root)
    capsys.readouterr()
    assert _run(paths, *args) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: ") and message in error[0] and len(error[0]) < 250, error
    assert snapshot(paths.root) == before


@pytest.mark.slow
def test_train_refuses_an_ensembles_name(two_experiments, capsys):
    # an ensemble's folder is not an experiment: training under its name is refused
    paths = two_experiments
    assert _run(paths, "tiny", "other", "--name", "taken") == 0
    capsys.readouterr()
    assert (
        main(["--root", str(paths.root), "train", "--preset", "seed", "--epochs", "1", "--name", "taken", "--quiet"])
        == 2
    )
    assert "is an ensemble" in capsys.readouterr().err


@pytest.mark.slow
def test_ensemble_follows_a_changed_test_csv(two_experiments, tmp_path):
    # issue 13 item 4: saved test probabilities are keyed by test.csv's hash: after test.csv's rows are reversed
    # (same row count), the members are predicted again and the ensemble's submission follows the new order
    paths = Paths(copy_project(two_experiments.root, tmp_path / "project"))
    assert _run(paths, "tiny", "other", "--name", "before") == 0
    before = pd.read_csv(paths.submission_file("before"))["Label"].to_numpy()
    test_file = paths.data / "test.csv"
    header, *rows = test_file.read_text().splitlines()
    test_file.write_text("\n".join([header, *rows[::-1]]) + "\n")
    assert _run(paths, "tiny", "other", "--name", "after") == 0
    after = pd.read_csv(paths.submission_file("after"))["Label"].to_numpy()
    assert len(after) == len(before) and (after != before).any()
    assert (after == before[::-1]).mean() > 0.99  # the same images, in the new order (a float tie aside)


@pytest.mark.slow
def test_report_of_an_ensemble_names_it_and_suggests_no_training(two_experiments, capsys):
    # `report --experiment ENSEMBLE`: one line saying it is an ensemble, not a `train --name` that is then refused
    paths = two_experiments
    if not (paths.experiment_dir("reported") / "ensemble.json").exists():
        assert _run(paths, "tiny", "other", "--name", "reported") == 0
    capsys.readouterr()
    assert main(["--root", str(paths.root), "report", "--experiment", "reported"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "'reported' is an ensemble" in error[0] and "train --name" not in error[0], error


@pytest.mark.slow
def test_images_reads_with_the_best_trained_experiment_when_an_ensemble_leads(two_experiments, tmp_path, capsys):
    # issue 13 item 5: with an ensemble first on the leaderboard, `images` reads with the next best *trained*
    # experiment (not the latest one) and says which it used and why
    from conftest import REPO_ROOT

    paths = Paths(copy_project(two_experiments.root, tmp_path / "project"))
    assert _run(paths, "tiny", "other", "--name", "leader") == 0
    for experiment, score in (("leader", "1.00000"), ("tiny", "0.90000"), ("other", "0.50000"), ("folds", "0.40000")):
        leaderboard.upsert(paths.leaderboard, experiment, score=score)
    assert leaderboard.sorted_rows(paths.leaderboard)[0]["experiment"] == "leader"
    from digit_recognizer.experiment import latest

    assert latest(paths).name != "tiny"  # the old choice (the latest trained) would differ
    capsys.readouterr()
    photo = REPO_ROOT / "inputs" / "custom" / "7_shadow.jpg"
    assert main(["--root", str(paths.root), "images", str(photo), "--out", str(tmp_path / "read")]) == 0
    out = capsys.readouterr().out
    assert "reading with experiment tiny (the best trained experiment on the leaderboard (rank 2))" in out, out
