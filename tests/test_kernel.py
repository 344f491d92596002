"""`digit-recognizer kernel build/push/status`, and the built script run locally in a fake /kaggle layout."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile

import pytest

from conftest import run_cli
from digit_recognizer.kaggle.kernel import bundle_from_script
from digit_recognizer.submission import read_submission
from fake_kaggle import SECRET_KEY, Failure, assert_no_secrets, error_line, fake_kaggle, kaggle_home, write_kaggle_json  # noqa: F401

KERNEL_ID = "fakeuser/digit-recognizer-cnn"

# Runs a script with imports of mlxtend and the Kaggle client made impossible: the kernel path must need neither.
GUARDED_RUN = """
import runpy, sys
class Forbidden:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("mlxtend", "kaggle", "kagglesdk"):
            raise ImportError(f"the kernel script must not import {name}")
        return None
sys.meta_path.insert(0, Forbidden())
sys.argv = [sys.argv[1]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_build_writes_metadata_and_a_self_contained_script(tmp_path, kaggle_home, monkeypatch, competition):
    write_kaggle_json(kaggle_home)
    monkeypatch.setenv("KAGGLE_KEY", SECRET_KEY)
    root = tmp_path / "project"

    result = run_cli("kernel", "build", "--preset", "seed", "--epochs", "1", root=root)

    assert result.returncode == 0, result.stderr
    folder = root / "competition" / "kernel"
    metadata = json.loads((folder / "kernel-metadata.json").read_text())
    assert metadata["id"] == KERNEL_ID, "the id defaults to the credentials' user name"
    assert metadata["title"] == "Digit Recognizer CNN"
    assert metadata["code_file"] == "digit_recognizer_kernel.py" and (folder / metadata["code_file"]).is_file()
    assert (metadata["language"], metadata["kernel_type"]) == ("python", "script")
    assert metadata["competition_sources"] == ["digit-recognizer"]
    assert metadata["enable_internet"] is False and metadata["is_private"] is True and metadata["enable_gpu"] is True
    script = (folder / metadata["code_file"]).read_text()
    compile(script, "digit_recognizer_kernel.py", "exec")
    assert "PRESET = 'seed'" in script and "RUN_ARGS = ['--epochs', '1']" in script
    with zipfile.ZipFile(io.BytesIO(bundle_from_script(script))) as bundle:
        names = bundle.namelist()
        spec = json.loads(bundle.read("competition.json"))
        contents = b"".join(bundle.read(name) for name in names)
    assert "digit_recognizer/cli/__init__.py" in names and "digit_recognizer/modeling/train.py" in names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    assert spec["slug"] == competition.slug and spec["rows"] == competition.rows
    assert SECRET_KEY.encode() not in contents
    assert_no_secrets(result.stdout, result.stderr, folders=[root])

    again = run_cli("kernel", "build", "--preset", "seed", "--epochs", "1", "--public", "--no-gpu", root=root)
    assert again.returncode == 0, again.stderr
    metadata = json.loads((folder / "kernel-metadata.json").read_text())
    assert metadata["id"] == KERNEL_ID and metadata["is_private"] is False and metadata["enable_gpu"] is False
    assert (folder / "digit_recognizer_kernel.py").read_text() == script, "the same sources give the same script"


@pytest.mark.parametrize("args, expected", [
    ((), "no kernel id: pass --kernel-id USER/SLUG"),
    (("--kernel-id", "no-slash"), "must look like USER/SLUG"),
    (("--kernel-id", "jane/abc"), "must look like USER/SLUG"),
])
def test_build_needs_a_valid_kernel_id(tmp_path, kaggle_home, args, expected):
    result = run_cli("kernel", "build", *args, root=tmp_path / "project")

    assert result.returncode == 2
    assert expected in error_line(result)
    assert not (tmp_path / "project" / "competition" / "kernel" / "kernel-metadata.json").exists()


def test_push_and_status_through_the_client(tmp_path, fake_kaggle, kaggle_home):
    write_kaggle_json(kaggle_home)
    root = tmp_path / "project"
    assert run_cli("kernel", "build", "--kernel-id", KERNEL_ID, "--preset", "fast", root=root).returncode == 0

    pushed = run_cli("kernel", "push", root=root)

    assert pushed.returncode == 0, pushed.stderr
    assert f"pushed kernel {KERNEL_ID} version 1" in pushed.stdout
    request = fake_kaggle.kernels[0]
    script = (root / "competition" / "kernel" / "digit_recognizer_kernel.py").read_text()
    assert request["slug"] == KERNEL_ID and request["newTitle"] == "Digit Recognizer CNN"
    assert request["text"] == script
    assert (request["language"], request["kernelType"]) == ("python", "script")
    assert request["competitionDataSources"] == ["digit-recognizer"]
    assert request["enableInternet"] is False and request["isPrivate"] is True and request["enableGpu"] is True
    assert SECRET_KEY not in json.dumps(request)

    first, second = run_cli("kernel", "status", root=root), run_cli("kernel", "status", KERNEL_ID, root=root)

    assert first.returncode == 0 and f"kernel {KERNEL_ID}: running" in first.stdout
    assert second.returncode == 0 and f"kernel {KERNEL_ID}: complete" in second.stdout
    assert_no_secrets(pushed.stdout, pushed.stderr, first.stdout, second.stdout, folders=[root])


def test_push_failures_are_one_line(tmp_path, fake_kaggle, kaggle_home):
    write_kaggle_json(kaggle_home)
    root = tmp_path / "project"
    assert run_cli("kernel", "build", "--kernel-id", KERNEL_ID, root=root).returncode == 0
    fake_kaggle.failures["SaveKernel"] = Failure(403, "Permission 'kernels.create' was denied")

    denied = run_cli("kernel", "push", root=root)
    missing = run_cli("kernel", "status", "fakeuser/another-kernel", root=root)

    assert denied.returncode == 2 and f"permission denied for kernel '{KERNEL_ID}'" in error_line(denied)
    assert missing.returncode == 2 and "found no kernel 'fakeuser/another-kernel'" in error_line(missing)


@pytest.mark.slow
def test_built_script_runs_in_a_fake_kaggle_layout(tmp_path, kaggle_home, competition, sample_frames):
    kaggle_dir = tmp_path / "kaggle"
    mounted = kaggle_dir / "input" / "digit-recognizer"
    mounted.mkdir(parents=True)
    for name, frame in zip(competition.file_names, sample_frames):
        frame.to_csv(mounted / name, index=False)
    root = tmp_path / "project"
    built = run_cli("kernel", "build", "--kernel-id", KERNEL_ID, "--preset", "seed", "--epochs", "1", root=root)
    assert built.returncode == 0, built.stderr
    script = root / "competition" / "kernel" / "digit_recognizer_kernel.py"
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    env = {**__import__("os").environ, "KAGGLE_KERNEL_RUN_TYPE": "Batch", "DIGIT_RECOGNIZER_KAGGLE_DIR": str(kaggle_dir),
           "TF_CPP_MIN_LOG_LEVEL": "2"}

    result = subprocess.run([sys.executable, "-c", GUARDED_RUN, str(script)], cwd=elsewhere, env=env,
                            capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "fetched from kernel" in result.stdout
    loaded_from = next(line for line in result.stdout.splitlines() if line.startswith("digit_recognizer "))
    assert "/src/digit_recognizer" not in loaded_from, "the bundled copy, not the checkout, runs"
    submission = kaggle_dir / "working" / "submission.csv"
    labels = read_submission(submission, competition, expected_rows=len(sample_frames[1]))
    assert len(labels) == len(sample_frames[1])
    assert not (kaggle_dir / "working" / "inputs").exists(), "the copy of the input is removed"
    assert list((kaggle_dir / "working" / "models").glob("*/metrics.json"))
    reports = kaggle_dir / "working" / "reports"
    if reports.is_dir():
        assert list(reports.rglob("*.png")), "report images are part of the output"
    assert not list(elsewhere.iterdir()), "nothing written to the working directory"
