"""`digit-recognizer kernel build/push/status`, and the built script run locally in a fake /kaggle layout."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile

import pytest

from conftest import run_cli
from digit_recognizer.kaggle.kernel import bundle_from_script
from digit_recognizer.submission import read_submission
from fake_kaggle import SECRET_KEY, Failure, assert_no_secrets, error_line, write_kaggle_json

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
sys.argv = sys.argv[1:]
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


@pytest.mark.parametrize(
    "args, expected",
    [
        ((), "no kernel id: pass --kernel-id USER/SLUG"),
        (("--kernel-id", "no-slash"), "must look like USER/SLUG"),
        (("--kernel-id", "jane/abc"), "must look like USER/SLUG"),
    ],
)
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
    env = {
        **__import__("os").environ,
        "KAGGLE_KERNEL_RUN_TYPE": "Batch",
        "DIGIT_RECOGNIZER_KAGGLE_DIR": str(kaggle_dir),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }

    result = subprocess.run(
        [sys.executable, "-c", GUARDED_RUN, str(script)],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "fetched from kernel" in result.stdout
    loaded_from = next(line for line in result.stdout.splitlines() if line.startswith("digit_recognizer "))
    assert "/src/digit_recognizer" not in loaded_from, "the bundled copy, not the checkout, runs"
    submission = kaggle_dir / "working" / "submission.csv"
    labels = read_submission(submission, competition, expected_rows=len(sample_frames[1]))
    assert len(labels) == len(sample_frames[1])
    assert not (kaggle_dir / "working" / "inputs").exists(), "the copy of the input is removed"
    run = json.loads((kaggle_dir / "working" / "kernel-run.json").read_text())
    metrics = json.loads((kaggle_dir / "working" / "models" / run["experiment"] / "metrics.json").read_text())
    assert run["score"] == metrics["score"] and run["preset"] == "seed" and run["run_args"] == ["--epochs", "1"]
    assert run["near_chance"] is (metrics["score"] < 0.5) and ("near chance" in result.stderr) is run["near_chance"]
    import keras
    import tensorflow as tf

    assert (run["tensorflow"], run["keras"]) == (tf.__version__, keras.__version__)
    assert list((kaggle_dir / "working" / "models").glob("*/metrics.json"))
    reports = kaggle_dir / "working" / "reports"
    if reports.is_dir():
        assert list(reports.rglob("*.png")), "report images are part of the output"
    assert not list(elsewhere.iterdir()), "nothing written to the working directory"


# ---------------------------------------------------------------- issue 13, item 8: refused at build time
@pytest.mark.parametrize(
    "args, expected",
    [
        (("--max-rows", "5"), "--max-rows 5: cannot take a stratified subset"),
        (("--cv", "100000"), "cannot make 100000 stratified folds of 42000 rows"),
        (("--holdout", "0.0001"), "cannot hold out 0.0001 of 42000 rows"),
        (("--epochs", "0"), "epochs must be at least 1"),
        (("--name", "../escape"), "must be a plain file name"),
    ],
)
def test_build_refuses_what_train_would_refuse(tmp_path, kaggle_home, args, expected):
    root = tmp_path / "project"

    result = run_cli("kernel", "build", "--kernel-id", KERNEL_ID, *args, root=root)

    assert result.returncode == 2
    assert expected in error_line(result)
    assert not (root / "competition" / "kernel").exists(), "nothing written"


@pytest.mark.parametrize("place", ["file", "parent-is-a-file"])
def test_build_into_a_file_is_one_line(tmp_path, kaggle_home, place):
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder\n")
    folder = blocker if place == "file" else blocker / "kernel"

    result = run_cli("kernel", "build", "--kernel-id", KERNEL_ID, "--folder", str(folder), root=tmp_path / "project")

    assert result.returncode == 2
    assert f"{blocker} is a file, not a folder" in error_line(result)
    assert blocker.read_text() == "not a folder\n"


@pytest.mark.parametrize(
    "command, expected",
    [
        ("push", "Upload competition/kernel/"),
        ("push", "the tail of the run's log"),
        ("status", "queued, running, complete, error"),
        ("output", "validate its submission.csv exactly like `validate`"),
        ("submit", "through the same path as `submit`"),
    ],
)
def test_kernel_commands_explain_themselves(tmp_path, command, expected):
    result = run_cli("kernel", command, "--help", root=tmp_path)

    assert result.returncode == 0, result.stderr
    assert " ".join(expected.split()) in " ".join(result.stdout.split())


def _built_script(tmp_path, *args):
    root = tmp_path / "project"
    built = run_cli("kernel", "build", "--kernel-id", KERNEL_ID, "--preset", "seed", *args, root=root)
    assert built.returncode == 0, built.stderr
    return root / "competition" / "kernel" / "digit_recognizer_kernel.py"


@pytest.mark.parametrize(
    "argv, code, expected",
    [
        (["--help"], 0, "--preset seed --epochs 1"),
        (["-h"], 0, "Needs TensorFlow >= 2.18 and Keras >= 3.8"),
        (["--epochs", "3"], 2, "unrecognized arguments: --epochs 3"),
    ],
)
def test_built_script_reads_its_arguments_without_training(tmp_path, kaggle_home, argv, code, expected):
    script = _built_script(tmp_path, "--epochs", "1")
    kaggle_dir = tmp_path / "kaggle"
    env = {**os.environ, "DIGIT_RECOGNIZER_KAGGLE_DIR": str(kaggle_dir)}

    result = subprocess.run(
        [sys.executable, "-c", GUARDED_RUN, str(script), *argv], capture_output=True, text=True, env=env, timeout=120
    )

    assert result.returncode == code, result.stdout + result.stderr
    assert expected in " ".join((result.stdout + result.stderr).split())
    assert not kaggle_dir.exists(), "nothing trained, nothing written"
    assert "TensorFlow 2" not in result.stdout, "TensorFlow is not even imported"


# ---------------------------------------------------------------- the template
def test_template_is_a_module_the_build_fills_in(tmp_path):
    from digit_recognizer.config import KAGGLE_DIR_ENV
    from digit_recognizer.kaggle import kernel, kernel_template

    assert kernel_template.KAGGLE_DIR_ENV == KAGGLE_DIR_ENV
    script = kernel.render_script(b"bundle bytes", "strong", ["--cv", "5"])
    namespace = {"__name__": "built"}
    exec(compile(script, "built.py", "exec"), namespace)
    assert (namespace["PRESET"], namespace["RUN_ARGS"]) == ("strong", ["--cv", "5"])
    assert namespace["BUILT_WITH"].startswith("digit-recognizer ") and bundle_from_script(script) == b"bundle bytes"
    assert "kernel build fills this in" not in script.split('"""', 2)[2], "every marked constant was replaced"


def test_a_template_without_a_marked_constant_is_refused():
    from digit_recognizer.kaggle import kernel

    template = kernel.TEMPLATE_FILE.read_text().replace(
        'PRESET = "fast"  # kernel build fills this in', 'PRESET = "fast"'
    )
    with pytest.raises(ValueError, match="PRESET"):
        kernel.render_script(b"x", "seed", [], template=template)


@pytest.mark.parametrize(
    "tensorflow, keras, old",
    [
        ("2.17.1", "3.8.0", "TensorFlow 2.17.1"),
        ("2.18.0", "3.7.0", "Keras 3.7.0"),
        ("2.15.0", "2.15.0", "TensorFlow 2.15.0 and Keras 2.15.0"),
        ("2.18.0", "3.8.0", None),
        ("2.19.1", "3.10.0", None),
        ("2.21.0rc1", "3.15.1.dev2026", None),
    ],
)
def test_template_names_a_tensorflow_keras_pair_older_than_the_floor(tensorflow, keras, old):
    from digit_recognizer.kaggle.kernel_template import version_problem

    problem = version_problem(tensorflow, keras)
    if old is None:
        assert problem is None
    else:
        assert f"needs TensorFlow 2.18 and Keras 3.8 or newer, but the environment has {old}:" in problem


@pytest.mark.parametrize("score, warned", [(0.11, True), (0.49, True), (0.5, False), (0.99, False), (None, False)])
def test_template_warns_of_a_near_chance_score(score, warned):
    from digit_recognizer.kaggle.kernel_template import chance_warning

    warning = chance_warning(score, 10)
    assert bool(warning) is warned
    if warned:
        assert f"validation accuracy {score:.3f} is near chance (0.10 for 10 classes)" in warning


def test_readme_states_the_supported_pair():
    from conftest import REPO_ROOT
    from digit_recognizer.kaggle.kernel_template import (
        MINIMUM_KERAS,
        MINIMUM_TENSORFLOW,
    )

    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("## Running as a Kaggle kernel") :]
    pair = f"TensorFlow {'.'.join(map(str, MINIMUM_TENSORFLOW))} with Keras {'.'.join(map(str, MINIMUM_KERAS))}"
    assert pair in section
    ci_lines = (REPO_ROOT / "scripts" / "ci_kernel_compat.sh").read_text().splitlines()
    assert f"TENSORFLOW={'.'.join(map(str, MINIMUM_TENSORFLOW))}.0" in ci_lines, "CI runs the floor TensorFlow"
    assert f"KERAS={'.'.join(map(str, MINIMUM_KERAS))}.0" in ci_lines, "CI runs the floor Keras"
