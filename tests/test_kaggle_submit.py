"""`digit-recognizer submit` / `submissions` through the real `kaggle` client against the fake Kaggle API."""

from __future__ import annotations

import dataclasses
import json

import pytest

from conftest import run_cli
from digit_recognizer.tracking import leaderboard
from fake_kaggle import (
    ENDPOINT_ENV,
    LIMIT_MESSAGE,
    RULES_MESSAGE,
    SECRET_TOKEN,
    TIMEOUT_ENV,
    Failure,
    assert_no_secrets,
    closed_port,
    error_line,
    write_kaggle_json,
)  # noqa: F401


@pytest.fixture
def submit_project(project, competition, sample_frames, tmp_path, monkeypatch, fake_kaggle):
    """The small sample project, a spec whose test set is the sample's 200 rows, a perfect submission file
    submissions/tiny.csv with its leaderboard row, and the fake server scoring against the answer key."""
    spec = dataclasses.asdict(competition)
    spec["rows"] = {"train": len(sample_frames[0]), "test": len(sample_frames[1])}
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(spec))
    monkeypatch.setenv("DIGIT_RECOGNIZER_COMPETITION", str(spec_file))
    answers = sample_frames[3]
    project.submissions.mkdir(parents=True, exist_ok=True)
    answers.to_csv(project.submission_file("tiny"), index=False)
    leaderboard.upsert(project.leaderboard, "tiny", preset="seed", score="0.9", submission_file="submissions/tiny.csv")
    fake_kaggle.answers = dict(zip(answers["ImageId"], answers["Label"]))
    fake_kaggle.expected_rows = len(answers)
    return project


def _row(paths, experiment="tiny"):
    return next(row for row in leaderboard.read_rows(paths.leaderboard) if row["experiment"] == experiment)


def test_submit_then_wait_records_the_public_score(submit_project, fake_kaggle, kaggle_home):
    write_kaggle_json(kaggle_home)
    file = submit_project.submission_file("tiny")

    result = run_cli(
        "submit", str(file), "-m", "seed preset, 2 epochs", "--wait", "--poll", "0.05", root=submit_project.root
    )

    assert result.returncode == 0, result.stderr
    assert fake_kaggle.methods()[:3] == ["StartSubmissionUpload", "upload", "CreateSubmission"]
    assert "ListSubmissions" in fake_kaggle.methods()
    submission = fake_kaggle.submissions[0]
    assert submission.content == file.read_bytes() and submission.description == "seed preset, 2 epochs"
    assert submission.file_name == "tiny.csv"
    assert "complete, public score 1.00000" in result.stdout
    row = _row(submit_project)
    assert row["kaggle_status"] == "complete" and row["kaggle_public_score"] == "1.00000"
    assert row["kaggle_ref"] == str(submission.ref) and row["kaggle_submitted_at"].endswith("Z")
    assert row["score"] == "0.9", "the other columns are kept"
    assert_no_secrets(result.stdout, result.stderr, folders=[submit_project.root])


def test_latest_submission_is_recorded_against_its_experiment(submit_project, fake_kaggle, monkeypatch):
    monkeypatch.setenv("KAGGLE_API_TOKEN", SECRET_TOKEN)
    submit_project.latest_submission.write_bytes(submit_project.submission_file("tiny").read_bytes())

    result = run_cli("submit", "-m", "latest", root=submit_project.root)

    assert result.returncode == 0, result.stderr
    assert fake_kaggle.methods()[0] == "IntrospectToken", "KAGGLE_API_TOKEN is checked by the client"
    assert "submitted" in result.stdout and "leaderboard row 'tiny'" in result.stdout
    row = _row(submit_project)
    assert row["kaggle_status"] == "pending" and row["kaggle_ref"]
    assert [row["experiment"] for row in leaderboard.read_rows(submit_project.leaderboard)] == ["tiny"]

    fake_kaggle.pending_polls = 0  # scored by now
    listing = run_cli("submissions", root=submit_project.root)

    assert listing.returncode == 0, listing.stderr
    header, line = listing.stdout.splitlines()[:2]
    for column in ("date (UTC)", "file", "status", "public", "message", "local experiment"):
        assert column in header
    assert "submission.csv" in line and "complete" in line and "1.00000" in line and "latest" in line and "tiny" in line
    assert _row(submit_project)["kaggle_public_score"] == "1.00000", "the listing records new scores"
    assert_no_secrets(result.stdout, result.stderr, listing.stdout, listing.stderr, folders=[submit_project.root])


def test_a_readable_kaggle_json_is_warned_about(submit_project, fake_kaggle, kaggle_home):
    path = write_kaggle_json(kaggle_home, mode=0o644)

    result = run_cli("submissions", root=submit_project.root)

    assert result.returncode == 0, result.stderr
    assert f"warning: {path} is readable by other users; run `chmod 600 {path}`" in result.stderr
    assert "no submissions to digit-recognizer yet" in result.stdout
    assert_no_secrets(result.stdout, result.stderr)


def test_an_invalid_file_is_refused_and_never_uploaded(submit_project, fake_kaggle, kaggle_home):
    write_kaggle_json(kaggle_home)
    broken = submit_project.submissions / "broken.csv"
    lines = submit_project.submission_file("tiny").read_text().splitlines()
    broken.write_text("\n".join(lines[:50] + lines[51:]) + "\n")

    result = run_cli("submit", str(broken), "-m", "broken", root=submit_project.root)

    assert result.returncode == 2
    line = error_line(result)
    assert "broken.csv" in line and "has 199 rows, expected 200" in line
    assert fake_kaggle.log == [], "nothing sent to Kaggle"


def test_a_submission_of_the_offline_sample_is_refused(project, competition, sample_frames, fake_kaggle, kaggle_home):
    write_kaggle_json(kaggle_home)
    project.submissions.mkdir(parents=True)
    sample_frames[3].to_csv(project.latest_submission, index=False)

    result = run_cli("submit", "-m", "sample", root=project.root)

    assert result.returncode == 2
    assert "offline sample" in error_line(result) and "28000" in result.stderr
    assert fake_kaggle.log == []


def _no_credentials(fake, home, monkeypatch, spec_file):
    return "no Kaggle credentials"


def _bad_credentials(fake, home, monkeypatch, spec_file):
    write_kaggle_json(home, key="wrong-key-0000")
    return "rejected the credentials (HTTP 401)"


def _bad_token(fake, home, monkeypatch, spec_file):
    monkeypatch.setenv("KAGGLE_API_TOKEN", "kgat_expired-token-000")
    return "did not accept the API token"


def _rules_not_accepted(fake, home, monkeypatch, spec_file):
    write_kaggle_json(home)
    fake.failures["StartSubmissionUpload"] = Failure(403, RULES_MESSAGE)
    return "https://www.kaggle.com/competitions/digit-recognizer/rules"


def _permission_denied(fake, home, monkeypatch, spec_file):
    write_kaggle_json(home)
    fake.failures["StartSubmissionUpload"] = Failure(403, "Permission 'competitions.submit' was denied")
    return "permission denied for competition 'digit-recognizer'"


def _wrong_slug(fake, home, monkeypatch, spec_file):
    write_kaggle_json(home)
    spec = json.loads(spec_file.read_text())
    spec["slug"] = "digit-recogniser"
    spec_file.write_text(json.dumps(spec))
    return "found no competition 'digit-recogniser' (HTTP 404)"


def _daily_limit(fake, home, monkeypatch, spec_file):
    write_kaggle_json(home)
    fake.failures["CreateSubmission"] = Failure(400, LIMIT_MESSAGE)
    return "daily submission limit reached"


def _server_error(fake, home, monkeypatch, spec_file):
    write_kaggle_json(home)
    fake.failures["StartSubmissionUpload"] = Failure(503, "<html>Service Unavailable</html>", json_body=False)
    return "Kaggle's server failed (HTTP 503)"


def _connection_refused(fake, home, monkeypatch, spec_file):
    write_kaggle_json(home)
    monkeypatch.setenv(ENDPOINT_ENV, f"http://127.0.0.1:{closed_port()}")
    return "cannot reach Kaggle (connection refused)"


def _timed_out(fake, home, monkeypatch, spec_file):
    write_kaggle_json(home)
    monkeypatch.setenv(TIMEOUT_ENV, "0.5")
    fake.failures["StartSubmissionUpload"] = Failure(503, "late", delay=2.0)
    return "timed out"


@pytest.mark.parametrize(
    "setup",
    [
        _no_credentials,
        _bad_credentials,
        _bad_token,
        _rules_not_accepted,
        _permission_denied,
        _wrong_slug,
        _daily_limit,
        _server_error,
        _connection_refused,
        _timed_out,
    ],
)
def test_each_failure_is_one_line_and_marks_the_row_not_submitted(
    submit_project, fake_kaggle, kaggle_home, monkeypatch, tmp_path, setup
):
    expected = setup(fake_kaggle, kaggle_home, monkeypatch, tmp_path / "spec.json")
    file = submit_project.submission_file("tiny")
    content = file.read_bytes()

    result = run_cli("submit", str(file), "-m", "try", "--wait", "--poll", "0.05", root=submit_project.root)

    assert result.returncode == 2, result.stdout + result.stderr
    line = error_line(result)
    assert expected in line, line
    assert file.read_bytes() == content, "the submission file is kept"
    row = _row(submit_project)
    assert row["kaggle_status"] == "not submitted" and row["kaggle_error"] == line.removeprefix("error: ")
    assert not row["kaggle_ref"]
    assert fake_kaggle.submissions == []
    assert_no_secrets(result.stdout, result.stderr, folders=[submit_project.root])


def test_a_submission_kaggle_cannot_score_records_the_error(submit_project, fake_kaggle, kaggle_home):
    write_kaggle_json(kaggle_home)
    fake_kaggle.expected_rows = 28000  # the server wants another row count than the local spec

    result = run_cli(
        "submit",
        "-m",
        "will fail",
        "--wait",
        "--poll",
        "0.05",
        str(submit_project.submission_file("tiny")),
        root=submit_project.root,
    )

    assert result.returncode == 2
    line = error_line(result)
    assert "could not score submission" in line and "Submission must have 28000 rows (found 200)" in line
    row = _row(submit_project)
    assert row["kaggle_status"] == "error" and row["kaggle_error"] == "Submission must have 28000 rows (found 200)"
    assert row["kaggle_ref"]


def test_waiting_survives_a_passing_server_error(submit_project, fake_kaggle, kaggle_home):
    write_kaggle_json(kaggle_home)
    fake_kaggle.failures["ListSubmissions"] = Failure(502, "Bad Gateway", json_body=False, times=1)

    result = run_cli(
        "submit",
        str(submit_project.submission_file("tiny")),
        "-m",
        "retry",
        "--wait",
        "--poll",
        "0.05",
        root=submit_project.root,
    )

    assert result.returncode == 0, result.stderr
    assert fake_kaggle.methods().count("ListSubmissions") >= 3
    assert _row(submit_project)["kaggle_status"] == "complete"


@pytest.mark.parametrize("where", ["outside the project", "in the project, outside submissions/"])
def test_a_failed_submit_of_a_file_outside_submissions_adds_no_phantom_row(
    submit_project, fake_kaggle, kaggle_home, tmp_path_factory, where
):
    # Issue 13, item 11: a file no experiment owns must not get a leaderboard row of its own when its upload fails.
    write_kaggle_json(kaggle_home)
    folder = tmp_path_factory.mktemp("elsewhere") if where == "outside the project" else submit_project.root / "drafts"
    folder.mkdir(exist_ok=True)
    stray = folder / "my-guess.csv"
    stray.write_bytes(submit_project.submission_file("tiny").read_bytes())
    fake_kaggle.failures["StartSubmissionUpload"] = Failure(403, "Permission 'competitions.submit' was denied")
    before = submit_project.leaderboard.read_bytes()

    result = run_cli("submit", str(stray), "-m", "stray file", root=submit_project.root)

    assert result.returncode == 2
    assert "permission denied for competition" in error_line(result)
    assert submit_project.leaderboard.read_bytes() == before, "no phantom row, no change"
    assert [row["experiment"] for row in leaderboard.read_rows(submit_project.leaderboard)] == ["tiny"]
    assert stray.is_file() and fake_kaggle.submissions == []
