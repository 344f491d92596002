"""The local leaderboard: rows per experiment, best first, safe under concurrent writers, kept up to date by the CLI hooks."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from digit_recognizer.tracking import leaderboard


def _main(*args: str) -> int:
    from digit_recognizer.cli import main

    return main(list(args))


# ---------------------------------------------------------------- the module
def test_upsert_adds_then_updates_one_row(tmp_path):
    path = tmp_path / "submissions" / "leaderboard.csv"
    leaderboard.upsert(path, "a", preset="seed", score="0.9")
    leaderboard.upsert(path, "b", preset="fast", score="0.95")
    leaderboard.upsert(path, "a", local_key_score=0.91, kaggle_public_score=None)
    rows = leaderboard.read_rows(path)
    assert [row["experiment"] for row in rows] == ["a", "b"]
    assert rows[0]["preset"] == "seed" and rows[0]["score"] == "0.9" and rows[0]["local_key_score"] == "0.91"
    assert path.read_text().splitlines()[0] == ",".join(leaderboard.COLUMNS)
    with pytest.raises(ValueError, match="unknown leaderboard columns"):
        leaderboard.upsert(path, "a", nonsense=1)
    assert leaderboard.update_where(path, lambda row: row["preset"] == "fast", kaggle_status="pending") == 1
    assert leaderboard.read_rows(path)[1]["kaggle_status"] == "pending"


def test_sorted_rows_best_first(tmp_path):
    path = tmp_path / "leaderboard.csv"
    for name, score, local, kaggle in (
        ("low", "0.90", "", "0.99"),
        ("none", "", "", ""),
        ("top", "0.99", "", ""),
        ("tie-local", "0.95", "0.97", ""),
        ("tie", "0.95", "0.96", "0.5"),
        ("nan", "nan", "", ""),
    ):
        leaderboard.upsert(path, name, score=score, local_key_score=local, kaggle_public_score=kaggle)
    assert [row["experiment"] for row in leaderboard.sorted_rows(path)] == [
        "top",
        "tie-local",
        "tie",
        "low",
        "none",
        "nan",
    ]
    assert [row["experiment"] for row in leaderboard.sorted_rows(path, by="kaggle")][:2] == ["low", "tie"]
    assert [row["experiment"] for row in leaderboard.sorted_rows(path, by="local")][:2] == ["tie-local", "tie"]
    assert leaderboard.best_experiment(path) == "top"
    assert leaderboard.best_experiment(path, by="kaggle") == "low"
    assert leaderboard.best_experiment(tmp_path / "missing.csv") is None
    with pytest.raises(ValueError):
        leaderboard.sorted_rows(path, by="nope")


WRITER = textwrap.dedent("""
    import sys, time
    from digit_recognizer.tracking import leaderboard
    path, prefix, start, count = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    while time.time() < start:
        time.sleep(0.001)
    for index in range(count):
        leaderboard.upsert(path, f"{prefix}-{index}", preset=prefix, score=str(index / count))
        leaderboard.upsert(path, "shared", **{"kaggle_ref" if prefix == "a" else "kaggle_status": str(index)})
""")


def test_two_processes_appending_at_once_lose_no_row(tmp_path):
    path = tmp_path / "submissions" / "leaderboard.csv"
    count = 40
    start = time.time() + 2.0  # both interpreters are up by then: their writes overlap
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), prefix, str(start), str(count)])
        for prefix in ("a", "b")
    ]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    rows = leaderboard.read_rows(path)
    names = [row["experiment"] for row in rows]
    assert len(names) == len(set(names)) == 2 * count + 1
    assert set(names) == {"shared"} | {f"{prefix}-{index}" for prefix in "ab" for index in range(count)}
    shared = next(row for row in rows if row["experiment"] == "shared")
    assert shared["kaggle_ref"] == str(count - 1) and shared["kaggle_status"] == str(count - 1)
    assert not [name for name in path.parent.iterdir() if name.name.startswith(".")], "temporary files left behind"


# ---------------------------------------------------------------- the CLI
def _write_board(paths, rows):
    for name, score, local in rows:
        leaderboard.upsert(
            paths.leaderboard,
            name,
            preset="seed",
            architecture="seed",
            seed=42,
            validation="holdout-0.1",
            score=score,
            local_key_score=local,
            train_seconds=3.2,
            date="2026-01-02T03:04:05",
        )


def test_leaderboard_command_prints_best_first(tmp_path, capsys):
    from digit_recognizer.config import Paths

    paths = Paths(tmp_path)
    _write_board(paths, [("middle", "0.95", ""), ("worst", "0.90", "0.99"), ("best", "0.99", "0.97")])
    assert _main("--root", str(tmp_path), "leaderboard") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["#", "experiment", "preset"]
    body = [line.split() for line in lines[2:5]]
    assert [(fields[0], fields[1]) for fields in body] == [("1", "best"), ("2", "middle"), ("3", "worst")]
    assert len({len(line) for line in lines[:2]}) == 1  # header and rule line up
    assert lines[0].index("score") + len("score") == lines[2].index("0.99000") + len("0.99000")  # numbers right-aligned
    assert _main("--root", str(tmp_path), "leaderboard", "--top", "1", "--by", "local") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split()[:2] == ["1", "worst"] and lines[3] == "" and "1 of 3" in lines[4]


def test_leaderboard_command_without_leaderboard_is_a_user_error(tmp_path, capsys):
    assert _main("--root", str(tmp_path), "leaderboard") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no leaderboard yet") and err.count("\n") == 1


# ---------------------------------------------------------------- the hooks
@pytest.fixture
def copied_project(project, trained_project):
    """A writable project holding a copy of the trained 'tiny' experiment and its submissions."""
    shutil.copytree(trained_project.experiment_dir("tiny"), project.experiment_dir("tiny"))
    shutil.copytree(trained_project.submissions, project.submissions)
    return project


def test_training_and_prediction_recorded_the_row(trained_project):
    import json

    metrics = json.loads((trained_project.experiment_dir("tiny") / "metrics.json").read_text())
    rows = leaderboard.read_rows(trained_project.leaderboard)
    assert [row["experiment"] for row in rows] == ["tiny"]
    row = rows[0]
    assert (row["preset"], row["architecture"], row["seed"], row["validation"]) == ("seed", "seed", "42", "holdout-0.1")
    assert float(row["score"]) == pytest.approx(metrics["score"], abs=1e-6)
    assert float(row["train_seconds"]) == metrics["train_seconds"] and row["date"] == metrics["finished"]
    assert row["git_commit"] == ""  # tmp_path is not a git checkout
    assert row["submission_file"] == "submissions/tiny.csv"
    assert 0 <= float(row["local_key_score"]) <= 1  # predict scored it against the sample's answer key


def test_validate_records_scores_on_the_matching_row(copied_project, capsys):
    paths = copied_project
    paths.leaderboard.unlink()  # rows are recreated from metrics.json when missing
    assert _main("--root", str(paths.root), "validate") == 0  # submissions/submission.csv: the latest copy of tiny.csv
    out = capsys.readouterr().out
    assert "recorded for tiny" in out
    (row,) = leaderboard.read_rows(paths.leaderboard)
    assert row["experiment"] == "tiny" and row["submission_file"] == "submissions/tiny.csv" and row["local_key_score"]
    score = row["local_key_score"]

    elsewhere = paths.root / "elsewhere" / "tiny.csv"  # matched by its stem
    elsewhere.parent.mkdir()
    shutil.copy(paths.submission_file("tiny"), elsewhere)
    leaderboard.upsert(paths.leaderboard, "tiny", local_key_score="")
    assert _main("--root", str(paths.root), "validate", str(elsewhere)) == 0
    (row,) = leaderboard.read_rows(paths.leaderboard)
    assert row["local_key_score"] == score and row["submission_file"] == "elsewhere/tiny.csv"

    other = paths.root / "other.csv"
    shutil.copy(paths.submission_file("tiny"), other)
    assert _main("--root", str(paths.root), "validate", str(other)) == 0
    assert "no experiment matches other.csv" in capsys.readouterr().out
    assert len(leaderboard.read_rows(paths.leaderboard)) == 1


def test_training_is_recorded_even_when_the_report_fails(copied_project, competition, monkeypatch, capsys):
    from digit_recognizer.cli import tracking as cli_tracking
    from digit_recognizer.tracking import report

    paths = copied_project
    paths.leaderboard.unlink()

    def broken(*args, **kwargs):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(report, "build_report", broken)
    rank, total = leaderboard.record_training(paths, "tiny")
    cli_tracking.try_report(paths, competition, "tiny")
    cli_tracking.say_rank(paths, rank, total)
    said = capsys.readouterr().out.splitlines()
    assert any(line.startswith("warning: could not build the report (no fonts)") for line in said)
    assert any("rank 1 of 1" in line for line in said)
    assert [row["experiment"] for row in leaderboard.read_rows(paths.leaderboard)] == ["tiny"]


def test_git_commit_of_a_checkout(tmp_path):
    from digit_recognizer.tracking.leaderboard import git_commit

    if shutil.which("git") is None:
        pytest.skip("git not installed")
    assert git_commit(tmp_path) == ""
    env_args = ["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f.txt").write_text("x")
    subprocess.run(["git", "-C", str(tmp_path), "add", "f.txt"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), *env_args, "commit", "-q", "-m", "x"], check=True)
    expected = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert git_commit(tmp_path) == expected and len(expected) >= 7
