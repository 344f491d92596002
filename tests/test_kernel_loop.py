"""Issue 15: a kernel's run comes back as a validated, scored submission. `kernel push --wait [--submit]`,
`kernel output`, `kernel submit` through the real `kaggle` client against the fake Kaggle API on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import json

import pytest

from conftest import run_cli
from digit_recognizer.cli import main
from digit_recognizer.tracking import leaderboard
from fake_kaggle import Failure, assert_no_secrets, error_line, write_kaggle_json

KERNEL_ID = "fakeuser/digit-recognizer-cnn"
SLUG = "digit-recognizer-cnn"
EXPERIMENT = "fast-20260101-120000"


def _csv(frame) -> bytes:
    return frame.to_csv(index=False).encode()


def _run_files(answers, score=0.987, near_chance=False) -> dict:
    """What a finished kernel run leaves in /kaggle/working (a perfect submission for the sample's test rows)."""
    metrics = {
        "experiment": EXPERIMENT,
        "preset": "fast",
        "architecture": "compact",
        "seed": 42,
        "validation": "holdout-0.1",
        "score": score,
        "train_seconds": 321.5,
        "finished": "2026-01-01T12:05:21",
    }
    run = {
        "experiment": EXPERIMENT,
        "score": score,
        "validation": "holdout-0.1",
        "preset": "fast",
        "run_args": [],
        "built_with": "digit-recognizer test",
        "tensorflow": "2.18.0",
        "keras": "3.8.0",
        "near_chance": near_chance,
    }
    return {
        "submission.csv": _csv(answers),
        "kernel-run.json": json.dumps(run).encode(),
        f"models/{EXPERIMENT}/metrics.json": json.dumps(metrics).encode(),
        f"submissions/{EXPERIMENT}.csv": _csv(answers),
        f"reports/{EXPERIMENT}/index.html": b"<html></html>",
    }


@pytest.fixture
def kernel_project(project, competition, sample_frames, tmp_path, monkeypatch, fake_kaggle, kaggle_home):
    """A project whose spec's test set is the sample's 200 rows, credentials, a built kernel, and the fake API
    scoring uploads against the answer key and holding a finished run's output."""
    spec = dataclasses.asdict(competition)
    spec["rows"] = {"train": len(sample_frames[0]), "test": len(sample_frames[1])}
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(spec))
    monkeypatch.setenv("DIGIT_RECOGNIZER_COMPETITION", str(spec_file))
    for name in ("train.csv", "test.csv", "test_labels.csv"):  # like the real data: nothing local says 200 rows
        (project.data / name).unlink()
    write_kaggle_json(kaggle_home)
    assert main(["--root", str(project.root), "kernel", "build", "--kernel-id", KERNEL_ID, "--preset", "fast"]) == 0
    answers = sample_frames[3]
    fake_kaggle.answers = dict(zip(answers["ImageId"], answers["Label"]))
    fake_kaggle.expected_rows = len(answers)
    fake_kaggle.kernel_files = _run_files(answers)
    fake_kaggle.kernel_statuses = ["QUEUED", "RUNNING", "COMPLETE"]
    return project


def _rows(paths) -> dict:
    return {row["experiment"]: row for row in leaderboard.read_rows(paths.leaderboard)}


def _outputs(paths) -> list:
    folder = paths.submissions / "kernels"
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*")) if folder.exists() else []


def test_push_wait_submit_ends_with_the_kernels_score_on_the_leaderboard(kernel_project, fake_kaggle, sample_frames):
    result = run_cli("kernel", "push", "--wait", "--submit", "--poll", "0.05", root=kernel_project.root)

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout
    for expected in (
        f"pushed kernel {KERNEL_ID} version 1",
        f"kernel {KERNEL_ID}: queued",
        f"kernel {KERNEL_ID}: running",
        f"kernel {KERNEL_ID}: complete",
        "valid, 200 rows",
        "complete, public score 1.00000",
    ):
        assert expected in lines, lines
    assert lines.index("queued") < lines.index("running") < lines.index(": complete")
    folder = kernel_project.submissions / "kernels" / SLUG / "v1"
    assert (folder / "submission.csv").read_bytes() == fake_kaggle.kernel_files["submission.csv"]
    assert (folder / "models" / EXPERIMENT / "metrics.json").is_file() and (folder / "kernel-run.json").is_file()
    row = _rows(kernel_project)[f"kernel-{SLUG}-v1"]
    assert row["source"] == f"kernel {KERNEL_ID} v1"
    assert row["submission_file"] == f"submissions/kernels/{SLUG}/v1/submission.csv"
    assert (row["preset"], row["architecture"], row["validation"], row["score"]) == (
        "fast",
        "compact",
        "holdout-0.1",
        "0.987",
    )
    assert row["kaggle_status"] == "complete" and row["kaggle_public_score"] == "1.00000"
    assert [submission.content for submission in fake_kaggle.submissions] == [
        fake_kaggle.kernel_files["submission.csv"]
    ]
    assert fake_kaggle.submissions[0].description == f"kernel {KERNEL_ID} v1"
    assert fake_kaggle.methods().count("GetKernelSessionStatus") >= 4  # 3 while waiting, 1 before downloading
    assert_no_secrets(result.stdout, result.stderr, folders=[kernel_project.root])


def test_output_then_submit_step_by_step(kernel_project, fake_kaggle):
    fake_kaggle.known_kernels = [KERNEL_ID]
    fake_kaggle.kernel_statuses = ["COMPLETE"]

    output = run_cli("kernel", "output", root=kernel_project.root)

    assert output.returncode == 0, output.stderr
    [folder] = (kernel_project.submissions / "kernels" / SLUG).iterdir()
    assert folder.name[:8].isdigit() and len(folder.name) == len("20260101-120000"), "no push recorded: the UTC time"
    row = _rows(kernel_project)[f"kernel-{SLUG}-{folder.name}"]
    assert row["source"] == f"kernel {KERNEL_ID} {folder.name}" and row["kaggle_status"] == ""
    assert fake_kaggle.submissions == [], "output alone submits nothing"

    submitted = run_cli(
        "kernel", "submit", "-m", "from the kernel", "--wait", "--poll", "0.05", root=kernel_project.root
    )

    assert submitted.returncode == 0, submitted.stderr
    assert fake_kaggle.submissions[0].description == "from the kernel"
    assert _rows(kernel_project)[f"kernel-{SLUG}-{folder.name}"]["kaggle_public_score"] == "1.00000"


def test_output_again_keeps_the_downloaded_folder(kernel_project, fake_kaggle):
    assert run_cli("kernel", "push", "--wait", "--poll", "0.05", root=kernel_project.root).returncode == 0
    first = run_cli("kernel", "output", root=kernel_project.root)
    kept = kernel_project.submissions / "kernels" / SLUG / "v1" / "submission.csv"
    content = kept.read_bytes()
    fake_kaggle.kernel_files["submission.csv"] = b"ImageId,Label\n"  # would be invalid if downloaded again

    again = run_cli("kernel", "output", root=kernel_project.root)

    assert first.returncode == 0 and again.returncode == 0, again.stderr
    assert "output already in" in again.stdout and kept.read_bytes() == content
    assert list(_rows(kernel_project)) == [f"kernel-{SLUG}-v1"]


def _run_failed(fake, answers):
    fake.kernel_statuses = ["RUNNING", "ERROR"]
    fake.kernel_failure = "Your notebook tried to allocate more memory than is available."
    fake.kernel_log = json.dumps(
        [
            {"stream_name": "stdout", "time": 1.0, "data": "epoch 1/30\n"},
            {"stream_name": "stderr", "time": 9.5, "data": "ResourceExhaustedError: OOM when allocating tensor\n"},
        ]
    )
    return "failed on Kaggle: Your notebook tried to allocate more memory than is available."


def _run_cancelled(fake, answers):
    fake.kernel_statuses = ["RUNNING", "CANCEL_ACKNOWLEDGED"]
    return "was cancelled on Kaggle"


def _no_submission(fake, answers):
    del fake.kernel_files["submission.csv"]
    return "output has no submission.csv"


def _invalid_submission(fake, answers):
    fake.kernel_files["submission.csv"] = _csv(answers.iloc[:-1])
    return "submission.csv: has 199 rows, expected 200"


def _wrong_header(fake, answers):
    fake.kernel_files["submission.csv"] = b"id,label\n" + _csv(answers).split(b"\n", 1)[1]
    return "header is 'id,label', expected 'ImageId,Label'"


def _unauthenticated(fake, answers):
    fake.failures["ListKernelSessionOutput"] = Failure(401, "Unauthenticated")
    return "rejected the credentials (HTTP 401)"


def _forbidden(fake, answers):
    fake.failures["GetKernelSessionStatus"] = Failure(403, "Permission 'kernels.get' was denied")
    return f"permission denied for kernel '{KERNEL_ID}'"


def _server_error(fake, answers):
    fake.failures["GetKernelSessionStatus"] = Failure(503, "<html>Service Unavailable</html>", json_body=False)
    return "Kaggle's server failed (HTTP 503)"


def _download_server_error(fake, answers):
    fake.failures["kernel-output"] = Failure(500, "<html>oops</html>", json_body=False, times=2)
    return "Kaggle's server failed (HTTP 500)"


def _unsafe_file_name(fake, answers):
    fake.kernel_files = {"../escaped.csv": _csv(answers)}  # never written outside the output folder
    return "output has no submission.csv"


@pytest.mark.parametrize(
    "setup",
    [
        _run_failed,
        _run_cancelled,
        _no_submission,
        _invalid_submission,
        _wrong_header,
        _unauthenticated,
        _forbidden,
        _server_error,
        _download_server_error,
        _unsafe_file_name,
    ],
)
def test_each_failure_is_one_line_and_submits_nothing(kernel_project, fake_kaggle, sample_frames, setup):
    expected = setup(fake_kaggle, sample_frames[3])
    before = kernel_project.leaderboard.read_bytes() if kernel_project.leaderboard.exists() else None

    result = run_cli("kernel", "push", "--wait", "--submit", "--poll", "0.05", root=kernel_project.root)

    assert result.returncode == 2, result.stdout + result.stderr
    assert expected in error_line(result)
    assert fake_kaggle.submissions == [] and "StartSubmissionUpload" not in fake_kaggle.methods()
    assert _outputs(kernel_project) == [], "nothing half-written under submissions/kernels/"
    after = kernel_project.leaderboard.read_bytes() if kernel_project.leaderboard.exists() else None
    assert after == before, "no leaderboard row for a run that was not kept"
    assert (
        not (kernel_project.root.parent / "escaped.csv").exists()
        and not (kernel_project.submissions / "escaped.csv").exists()
    )
    assert_no_secrets(result.stdout, result.stderr, folders=[kernel_project.root])


def test_a_failed_run_shows_the_tail_of_its_log(kernel_project, fake_kaggle, sample_frames):
    _run_failed(fake_kaggle, sample_frames[3])

    result = run_cli("kernel", "push", "--wait", "--poll", "0.05", root=kernel_project.root)

    assert result.returncode == 2
    assert "Your notebook tried to allocate more memory" in error_line(result)
    assert "the last 2 lines of the run's log:" in result.stdout
    assert result.stdout.index("| epoch 1/30") < result.stdout.index(
        "| ResourceExhaustedError: OOM when allocating tensor"
    )
    assert f"kernel {KERNEL_ID}: running" in result.stdout


def test_waiting_survives_a_passing_server_error(kernel_project, fake_kaggle):
    fake_kaggle.failures["GetKernelSessionStatus"] = Failure(502, "Bad Gateway", json_body=False, times=2)

    result = run_cli("kernel", "push", "--wait", "--poll", "0.05", root=kernel_project.root)

    assert result.returncode == 0, result.stderr
    assert f"kernel {KERNEL_ID}: complete" in result.stdout


def test_waiting_gives_up_after_the_timeout(kernel_project, fake_kaggle):
    fake_kaggle.kernel_statuses = ["RUNNING"]

    result = run_cli(
        "kernel", "push", "--wait", "--submit", "--timeout", "0.3", "--poll", "0.05", root=kernel_project.root
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert "still running after 0.3 s" in result.stderr and "Traceback" not in result.stderr
    assert fake_kaggle.submissions == [] and _outputs(kernel_project) == []


def test_output_of_a_run_still_going_is_refused(kernel_project, fake_kaggle):
    fake_kaggle.known_kernels = [KERNEL_ID]
    fake_kaggle.kernel_statuses = ["RUNNING"]

    result = run_cli("kernel", "output", root=kernel_project.root)

    assert result.returncode == 2
    assert f"kernel {KERNEL_ID} is running: its output is not ready" in error_line(result)
    assert "ListKernelSessionOutput" not in fake_kaggle.methods() and _outputs(kernel_project) == []


def test_submit_without_a_downloaded_output_is_refused(kernel_project, fake_kaggle):
    result = run_cli("kernel", "submit", root=kernel_project.root)

    assert result.returncode == 2
    assert "no downloaded output of kernel" in error_line(result) and "kernel output" in error_line(result)
    assert fake_kaggle.log == []


def test_a_near_chance_run_is_warned_about(kernel_project, fake_kaggle, sample_frames):
    fake_kaggle.known_kernels = [KERNEL_ID]
    fake_kaggle.kernel_statuses = ["COMPLETE"]
    fake_kaggle.kernel_files = _run_files(sample_frames[3], score=0.11, near_chance=True)

    result = run_cli("kernel", "output", root=kernel_project.root)

    assert result.returncode == 0, result.stderr
    assert "warning: the kernel's validation accuracy (0.11) is near chance" in result.stderr


def test_output_files_come_in_pages(kernel_project, fake_kaggle):
    fake_kaggle.known_kernels = [KERNEL_ID]
    fake_kaggle.kernel_statuses = ["COMPLETE"]
    fake_kaggle.kernel_files.update({f"reports/{EXPERIMENT}/image-{index:02d}.png": b"png" for index in range(45)})

    result = run_cli("kernel", "output", root=kernel_project.root)

    assert result.returncode == 0, result.stderr
    [folder] = (kernel_project.submissions / "kernels" / SLUG).iterdir()
    assert len(list((folder / "reports" / EXPERIMENT).glob("image-*.png"))) == 45
    assert fake_kaggle.methods().count("ListKernelSessionOutput") == 3
