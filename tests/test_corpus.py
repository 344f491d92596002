"""The corpus of bad inputs (issue 7): CSVs, zips, models, submissions, arguments and photos.

Every case runs a real command on a copy of a project and must end with exit code 2 and exactly one
stderr line `error: ...` that names the problem, no traceback, and no new, changed or removed file or
folder under inputs/, models/ or submissions/. All cases run in this process (fast: TensorFlow is
loaded once); a representative subset also runs as real subprocesses, where TensorFlow's own start-up
output and Python warnings would show. Photos are different by design (`images` reports a bad file as
a row of predictions.csv and goes on): see the last tests.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from badfiles import (
    BAD_SUBMISSIONS,
    BAD_TRAIN_CSVS,
    append_to_data_rows,
    bad_zips,
    competition_zip,
    csv_text,
    drop_last_field,
    edit_cell,
    keep_rows,
    snapshot,
    write_sample,
)
from conftest import run_cli
from digit_recognizer.cli import main
from digit_recognizer.config import Paths

TRAIN = ("train", "--preset", "seed", "--epochs", "1", "--name", "corpus", "--quiet")
HAS_IMAGES = importlib.util.find_spec("digit_recognizer.cli.images") is not None
needs_images = pytest.mark.skipif(not HAS_IMAGES, reason="the `images` command (cli_images) is not installed")


@dataclass(frozen=True)
class Context:
    """What a case may use: the project copy, a folder outside it, and the good files' text."""

    root: Path
    outside: Path
    train_text: str
    test_text: str
    answer_text: str
    zip_texts: dict  # small competition files, by name, for building zips

    @property
    def data(self) -> Path:
        return Paths(self.root).data

    @property
    def tiny(self) -> Path:
        return Paths(self.root).experiment_dir("tiny")


@dataclass(frozen=True)
class Case:
    id: str
    template: str  # "data" (the sample), "trained" (the sample with experiment 'tiny'), "empty"
    prepare: Callable[[Context], list]  # damages the copy, returns the command's arguments
    expected: str  # part of the one error line


def _write(path: Path, content) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))


# ---------------------------------------------------------------- CSV cases (train, predict)
def _train_csv(mutate):
    def prepare(ctx):
        _write(ctx.data / "train.csv", mutate(ctx.train_text))
        return list(TRAIN)

    return prepare


def _train_csv_replaced_by(kind):
    def prepare(ctx):
        (ctx.data / "train.csv").unlink()
        if kind == "directory":
            (ctx.data / "train.csv").mkdir()
        return list(TRAIN)

    return prepare


def _test_csv(mutate):
    def prepare(ctx):
        _write(ctx.data / "test.csv", mutate(ctx))
        return ["predict", "--experiment", "tiny"]

    return prepare


CSV_CASES = [
    Case(f"train-{name}", "data", _train_csv(mutate), expected) for name, mutate, expected in BAD_TRAIN_CSVS
] + [
    Case("train-directory", "data", _train_csv_replaced_by("directory"), "train.csv: is a directory"),
    Case(
        "train-missing",
        "data",
        _train_csv_replaced_by("missing"),
        "train.csv: file not found (run `digit-recognizer fetch` first)",
    ),
    Case(
        "test-pixel-300",
        "trained",
        _test_csv(lambda ctx: edit_cell(ctx.test_text, 3, 10, "300")),
        "test.csv: row 3, column 'pixel10': pixel 300 is outside 0-255",
    ),
    Case(
        "test-with-label-column",
        "trained",
        _test_csv(lambda ctx: ctx.train_text),
        "test.csv: header column 1 is 'label', expected 'pixel0'",
    ),
    Case("test-empty", "trained", _test_csv(lambda ctx: ""), "test.csv: file is empty"),
]


# ---------------------------------------------------------------- zip cases (fetch --zip)
def _zip_case(build):
    def prepare(ctx):
        return ["fetch", "--zip", str(build(ctx.outside, ctx.zip_texts))]

    return prepare


def _forced_zip(name, mutate):
    """`fetch --zip --force` over good data with a zip whose file ``name`` is edited: refused, the data kept."""

    def prepare(ctx):
        texts = dict(ctx.zip_texts, **{name: mutate(ctx.zip_texts[name])})
        return ["fetch", "--zip", str(competition_zip(ctx.outside / "bad.zip", texts)), "--force"]

    return prepare


def _nested_twice(ctx):
    extra = {f"{folder}/train.csv": ctx.zip_texts["train.csv"] for folder in ("old", "new")}
    texts = {name: text for name, text in ctx.zip_texts.items() if name != "train.csv"}
    return ["fetch", "--zip", str(competition_zip(ctx.outside / "bad.zip", texts, extra=extra)), "--force"]


# issue 13 item 2: every file is fully validated before anything replaces the data (and the sample's answer key)
FORCED_ZIPS = [
    (
        "train-nan",
        "train.csv",
        lambda t: edit_cell(t, 4, 20, ""),
        "bad.zip: train.csv: row 4, column 'pixel19': missing value",
    ),
    (
        "train-pixel-300",
        "train.csv",
        lambda t: edit_cell(t, 3, 10, "300"),
        "bad.zip: train.csv: row 3, column 'pixel9': pixel 300 is outside 0-255",
    ),
    (
        "train-label-11",
        "train.csv",
        lambda t: edit_cell(t, 2, 0, "11"),
        "bad.zip: train.csv: row 2, column 'label': label 11 is outside 0-9",
    ),
    (
        "train-float-pixel",
        "train.csv",
        lambda t: edit_cell(t, 5, 30, "1.5"),
        "bad.zip: train.csv: row 5, column 'pixel29': '1.5' is not an integer",
    ),
    (
        "train-short-row",
        "train.csv",
        lambda t: drop_last_field(t, 6),
        "bad.zip: train.csv: row 6, column 'pixel783': missing value",
    ),
    ("train-header-only", "train.csv", lambda t: keep_rows(t, 0), "bad.zip: train.csv: has a header but no rows"),
    (
        "train-extra-field",
        "train.csv",
        lambda t: append_to_data_rows(t, ",0"),
        "bad.zip: train.csv: row 1 (line 2) has 786 fields, expected 785",
    ),
    (
        "test-pixel-300",
        "test.csv",
        lambda t: edit_cell(t, 2, 3, "300"),
        "bad.zip: test.csv: row 2, column 'pixel3': pixel 300 is outside 0-255",
    ),
    (
        "sample-submission-label",
        "sample_submission.csv",
        lambda t: edit_cell(t, 3, 1, "x"),
        "bad.zip: sample_submission.csv: row 3, column 'Label': 'x' is not an integer",
    ),
    (
        "sample-submission-rows",
        "sample_submission.csv",
        lambda t: keep_rows(t, 5),
        "bad.zip: sample_submission.csv: has 5 rows, expected 10",
    ),
]

ZIP_CASES = (
    [
        Case(name if name.startswith("zip-") else f"zip-{name}", "empty", _zip_case(build), expected)
        for name, build, expected in bad_zips()
    ]
    + [
        Case(
            "zip-missing",
            "empty",
            lambda ctx: ["fetch", "--zip", str(ctx.outside / "nope.zip")],
            "nope.zip: file not found",
        ),
        Case(
            "zip-missing-with-data",
            "data",
            lambda ctx: ["fetch", "--zip", str(ctx.outside / "nope.zip")],
            "nope.zip: file not found",
        ),
        Case(
            "zip-nested-twice",
            "data",
            _nested_twice,
            "holds train.csv twice, as 'old/train.csv' and 'new/train.csv'; keep one copy",
        ),
    ]
    + [
        Case(f"zip-force-{name}", "data", _forced_zip(file, mutate), expected)
        for name, file, mutate, expected in FORCED_ZIPS
    ]
)


# ---------------------------------------------------------------- model cases (predict)
def _member(damage):
    def prepare(ctx):
        damage(ctx.tiny / "member-0.keras", ctx)
        return ["predict", "--experiment", "tiny"]

    return prepare


def _truncate(path, ctx):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _bad_config(path, ctx):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", '{"keras_version": "3.0.0"}')
        archive.writestr("config.json", "{not json")


def _keras_file(build):
    def damage(path, ctx):
        keras = pytest.importorskip("keras")
        model = build(keras)
        path.unlink()
        model.save(path)

    return damage


def _lambda_model(keras):
    inputs = keras.Input(shape=(28, 28, 1))
    return keras.Model(inputs, keras.layers.Lambda(lambda x: x[:, 0, 0, :] * 0 + 0.1)(inputs))


def _foreign_model(keras):
    inputs = keras.Input(shape=(4,))
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))


def _metrics(edit):
    def prepare(ctx):
        path = ctx.tiny / "metrics.json"
        path.write_text(edit(path.read_text()))
        return ["predict", "--experiment", "tiny"]

    return prepare


def _with_members(members):
    return lambda text: json.dumps({**json.loads(text), "members": members})


def _replace_by_file(folder, args):
    shutil.rmtree(folder)
    folder.write_text("not a folder")
    return args


def _file_in_place(folder, args):
    folder.write_text("not a folder")
    return list(args)


def _block(path, args):
    """A folder where the command writes the file ``path``: its write fails after the other outputs are written."""
    path.unlink(missing_ok=True)
    path.mkdir()
    (path / "keep").write_text("x")
    return args


MODEL_CASES = [
    Case(
        "model-zero-bytes", "trained", _member(lambda p, ctx: p.write_bytes(b"")), "member-0.keras: model file is empty"
    ),
    Case(
        "model-truncated",
        "trained",
        _member(_truncate),
        "member-0.keras: not a Keras model archive (truncated or not a .keras file)",
    ),
    Case(
        "model-not-a-zip",
        "trained",
        _member(lambda p, ctx: p.write_text("hello")),
        "member-0.keras: not a Keras model archive",
    ),
    Case(
        "model-directory", "trained", _member(lambda p, ctx: (p.unlink(), p.mkdir())), "member-0.keras: is a directory"
    ),
    Case("model-missing", "trained", _member(lambda p, ctx: p.unlink()), "member-0.keras: model file not found"),
    Case("model-bad-config", "trained", _member(_bad_config), "member-0.keras: not a loadable Keras model"),
    Case(
        "model-lambda-code",
        "trained",
        _member(_keras_file(_lambda_model)),
        "member-0.keras: not a loadable Keras model (it carries Python code",
    ),
    Case(
        "model-foreign-shape",
        "trained",
        _member(_keras_file(_foreign_model)),
        "not one for this competition's (28, 28, 1) images and 10 classes",
    ),
    Case(
        "metrics-corrupt",
        "trained",
        _metrics(lambda text: text[: len(text) // 2]),
        "metrics.json: corrupt metrics file",
    ),
    Case("metrics-no-members", "trained", _metrics(_with_members([])), "metrics.json: corrupt metrics file"),
    Case(
        "metrics-member-outside",
        "trained",
        _metrics(_with_members(["../../inputs/evil.keras"])),
        "metrics.json: corrupt metrics file",
    ),
    Case(
        "predict-submissions-is-a-file",
        "trained",
        lambda ctx: _replace_by_file(Paths(ctx.root).submissions, ["predict", "--experiment", "tiny"]),
        "submissions is a file, not a folder",
    ),
    Case(
        "predict-probabilities-blocked",
        "trained",
        lambda ctx: _block(ctx.tiny / "test-probabilities.npy", ["predict", "--experiment", "tiny"]),
        "test-probabilities.npy: cannot write the file",
    ),
    Case(
        "experiment-unknown",
        "trained",
        lambda ctx: ["predict", "--experiment", "nope"],
        "experiment 'nope' not found under",
    ),
    Case("experiment-none-trained", "data", lambda ctx: ["predict"], "no trained experiment found under models/"),
]


# ---------------------------------------------------------------- submission cases (validate)
def _submission(content):
    def prepare(ctx):
        path = Paths(ctx.root).submissions / "mine.csv"
        _write(path, content(ctx))
        return ["validate", str(path)]

    return prepare


def _submission_directory(ctx):
    path = Paths(ctx.root).submissions / "mine.csv"
    path.mkdir(parents=True)
    return ["validate", str(path)]


SUBMISSION_CASES = [
    Case(f"submission-{name}", "data", _submission(lambda ctx, m=mutate: m(ctx.answer_text)), expected)
    for name, mutate, expected in BAD_SUBMISSIONS
] + [
    Case("submission-directory", "data", _submission_directory, "mine.csv: is a directory"),
    Case(
        "submission-missing", "data", lambda ctx: ["validate", str(ctx.root / "nope.csv")], "nope.csv: file not found"
    ),
]


# ---------------------------------------------------------------- argument cases (train)
def _train_args(*args, name="corpus"):
    return lambda ctx: ["train", "--preset", "seed", "--quiet", *(("--name", name) if name else ()), *args]


def _corrupt_leaderboard(ctx, args):
    _write(Paths(ctx.root).leaderboard, b"experiment,preset\n\xff\xfe broken,\x80\n")
    return list(args)


ARGUMENT_CASES = [
    Case("name-with-slash", "data", _train_args(name="a/b"), "experiment name 'a/b' must be a plain file name"),
    Case("name-hidden", "data", _train_args(name=".hidden"), "must be a plain file name"),
    Case("name-reserved", "data", _train_args(name="submission"), "experiment name 'submission' is reserved"),
    # issue 13 items 9, 10, 12: one strict name rule for experiments and ensembles, nothing written
    Case(
        "name-leaderboard",
        "data",
        _train_args(name="leaderboard"),
        "experiment name 'leaderboard' is reserved for a file the project owns",
    ),
    Case("name-newline", "data", _train_args(name="a\nb"), "experiment name 'a\\nb' must be a plain file name"),
    Case("name-space", "data", _train_args(name=" "), "experiment name ' ' must be a plain file name"),
    Case("name-300-characters", "data", _train_args(name="a" * 300), "experiment name 'aaaaaaaa"),
    Case(
        "ensemble-name-leaderboard",
        "trained",
        lambda ctx: ["ensemble", "tiny", "other", "--name", "leaderboard"],
        "ensemble name 'leaderboard' is reserved for a file the project owns",
    ),
    Case(
        "ensemble-name-submission",
        "trained",
        lambda ctx: ["ensemble", "tiny", "other", "--name", "Submission"],
        "ensemble name 'Submission' is reserved",
    ),
    Case(
        "ensemble-name-newline",
        "trained",
        lambda ctx: ["ensemble", "tiny", "other", "--name", "a\nb"],
        "ensemble name 'a\\nb' must be a plain file name",
    ),
    Case(
        "ensemble-name-space",
        "trained",
        lambda ctx: ["ensemble", "tiny", "other", "--name", " "],
        "ensemble name ' ' must be a plain file name",
    ),
    Case(
        "ensemble-name-300-characters",
        "trained",
        lambda ctx: ["ensemble", "tiny", "other", "--name", "e" * 300],
        "ensemble name 'eeeeeeee",
    ),
    Case(
        "predict-experiment-300-characters",
        "trained",
        lambda ctx: ["predict", "--experiment", "x" * 300],
        "not found: not a plain name",
    ),
    Case(
        "report-experiment-300-characters",
        "trained",
        lambda ctx: ["report", "--experiment", "x" * 300],
        "not found: not a plain name",
    ),
    Case("epochs-zero", "data", _train_args("--epochs", "0"), "epochs must be at least 1, got 0"),
    Case("batch-size-negative", "data", _train_args("--batch-size", "-4"), "batch size must be at least 1, got -4"),
    Case(
        "max-rows-negative",
        "data",
        _train_args("--max-rows", "-5"),
        "--max-rows must be 0 (all rows) or positive, got -5",
    ),
    Case(
        "max-rows-too-few",
        "data",
        _train_args("--max-rows", "5"),
        "--max-rows 5: cannot take a stratified subset of 600 rows",
    ),
    Case("holdout-out-of-range", "data", _train_args("--holdout", "1.5"), "holdout must be between 0 and 1, got 1.5"),
    Case("holdout-too-large", "data", _train_args("--holdout", "0.999"), "cannot hold out 0.999 of 600 rows"),
    Case("cv-one-fold", "data", _train_args("--cv", "1"), "--cv needs at least 2 folds, got 1"),
    Case("cv-too-many-folds", "data", _train_args("--cv", "100"), "cannot make 100 stratified folds of 600 rows"),
    Case(
        "label-smoothing", "data", _train_args("--label-smoothing", "1.5"), "label smoothing must be in [0, 1), got 1.5"
    ),
    # issue 13 item 7: every numeric option refuses non-finite and out-of-range values before anything is written
    *[
        Case(f"option-{flag.lstrip('-')}-{value}", "data", _train_args(flag, value), expected)
        for flag, value, expected in [
            ("--learning-rate", "nan", "--learning-rate must be a finite number, got nan"),
            ("--learning-rate", "inf", "--learning-rate must be a finite number, got inf"),
            ("--learning-rate", "-1", "--learning-rate must be positive, got -1.0"),
            ("--learning-rate", "0", "--learning-rate must be positive, got 0.0"),
            ("--label-smoothing", "nan", "--label-smoothing must be a finite number, got nan"),
            ("--label-smoothing", "-0.1", "label smoothing must be in [0, 1), got -0.1"),
            ("--holdout", "inf", "--holdout must be a finite number, got inf"),
            ("--holdout", "nan", "--holdout must be a finite number, got nan"),
            ("--holdout", "0", "holdout must be between 0 and 1, got 0.0"),
            ("--holdout", "-0.5", "holdout must be between 0 and 1, got -0.5"),
            ("--seed", "8589934592", "--seed must be between 0 and 2**32 - 1, got 8589934592"),
            ("--seed", "-1", "--seed must be between 0 and 2**32 - 1, got -1"),
            ("--epochs", "-3", "epochs must be at least 1, got -3"),
            ("--batch-size", "0", "batch size must be at least 1, got 0"),
            ("--patience", "-1", "--patience must be 0 (off) or positive, got -1"),
            ("--cv", "-2", "--cv needs at least 2 folds, got -2"),
            ("--max-rows", "-1", "--max-rows must be 0 (all rows) or positive, got -1"),
        ]
    ],
    Case(
        "experiment-other-settings",
        "trained",
        _train_args("--epochs", "2", "--holdout", "0.2", name="tiny"),
        "experiment 'tiny' already exists with other settings or data",
    ),
    Case(
        "experiment-already-trained",
        "trained",
        _train_args("--epochs", "2", name="tiny"),
        "experiment 'tiny' is already trained",
    ),
    Case("no-data", "empty", _train_args(), "train.csv: file not found (run `digit-recognizer fetch` first)"),
    # issue 13 item 12: an output folder that cannot be written is refused before training, not after it
    Case(
        "train-models-is-a-file",
        "data",
        lambda ctx: _file_in_place(Paths(ctx.root).models, TRAIN),
        "models is a file, not a folder",
    ),
    Case(
        "train-submissions-is-a-file",
        "data",
        lambda ctx: _file_in_place(Paths(ctx.root).submissions, TRAIN),
        "submissions is a file, not a folder",
    ),
    Case(
        "ensemble-submissions-is-a-file",
        "trained",
        lambda ctx: _replace_by_file(Paths(ctx.root).submissions, ["ensemble", "tiny", "other", "--name", "blend"]),
        "submissions is a file, not a folder",
    ),
    # issue 13 item 14: a corrupt leaderboard is reported before any training (or ensembling) starts
    Case(
        "leaderboard-corrupt-train",
        "data",
        lambda ctx: _corrupt_leaderboard(ctx, TRAIN),
        "leaderboard.csv: not a readable leaderboard CSV",
    ),
    Case(
        "leaderboard-corrupt-run",
        "data",
        lambda ctx: _corrupt_leaderboard(ctx, ["run", *TRAIN[1:]]),
        "leaderboard.csv: not a readable leaderboard CSV",
    ),
    Case(
        "leaderboard-corrupt-ensemble",
        "trained",
        lambda ctx: _corrupt_leaderboard(ctx, ["ensemble", "tiny", "other", "--name", "blend"]),
        "leaderboard.csv: not a readable leaderboard CSV",
    ),
]


# ---------------------------------------------------------------- photo cases that stop the command
def _images_in(files: dict, *extra):
    def prepare(ctx):
        folder = ctx.outside / "photos"
        folder.mkdir()
        for name, content in files.items():
            _write(folder / name, content)
        return ["images", str(folder), "--experiment", "tiny", *extra]

    return prepare


def _images_bad_labels(ctx):
    args = _images_in({"7_seven.png": b"not a png"})(ctx)
    _write(ctx.outside / "labels.csv", "name,digit\nx.png,7\n")
    return [*args, "--labels", str(ctx.outside / "labels.csv")]


IMAGE_ERROR_CASES = [
    Case(
        "images-missing-path",
        "trained",
        lambda ctx: ["images", str(ctx.outside / "nope.png"), "--experiment", "tiny"],
        "nope.png",
    ),
    Case("images-empty-folder", "trained", _images_in({}), "no images found"),
    Case(
        "images-unknown-experiment",
        "trained",
        lambda ctx: _images_in({"a.png": b"x"})(ctx)[:-1] + ["nope"],
        "experiment 'nope' not found",
    ),
    Case("images-bad-labels-file", "trained", _images_bad_labels, "labels file needs the header file,expected"),
    Case(
        "images-confidence-out-of-range",
        "trained",
        _images_in({"a.png": b"x"}, "--min-confidence", "2"),
        "--min-confidence must be between 0 and 1",
    ),
]

ALL_CASES = CSV_CASES + ZIP_CASES + MODEL_CASES + SUBMISSION_CASES + ARGUMENT_CASES + IMAGE_ERROR_CASES
BY_ID = {case.id: case for case in ALL_CASES}

# Run again as real subprocesses: one or more of each kind, including one that loads TensorFlow.
SUBPROCESS_IDS = [
    "train-semicolons",
    "test-pixel-300",
    "zip-slip-parent",
    "zip-declared-huge",
    "model-truncated",
    "model-bad-config",
    "submission-duplicate-id",
    "submission-float-label",
    "name-with-slash",
    "images-empty-folder",
    # issue 13
    "train-extra-field-every-row",
    "zip-force-train-nan",
    "submission-fullwidth-label",
    "name-300-characters",
    "predict-probabilities-blocked",
    "leaderboard-corrupt-train",
]


def test_corpus_is_large_and_unique():
    # at least 30 cases in all, across CSV, zip, model, submission and photo inputs, with unique ids
    assert len(ALL_CASES) >= 30 and len(BY_ID) == len(ALL_CASES)
    for prefix in ("train-", "test-", "zip-", "model-", "submission-", "images-"):
        assert any(case.id.startswith(prefix) for case in ALL_CASES), prefix
    assert set(SUBPROCESS_IDS) <= set(BY_ID)


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def texts(sample_frames):
    train, test, sample_submission, answers = sample_frames
    zip_texts = {
        "train.csv": csv_text(train.head(30)),
        "test.csv": csv_text(test.head(10)),
        "sample_submission.csv": csv_text(sample_submission.head(10)),
    }
    return {"train": csv_text(train), "test": csv_text(test), "answers": csv_text(answers), "zip": zip_texts}


@pytest.fixture(scope="module")
def templates(tmp_path_factory, competition, sample_frames, trained_project, texts):
    """The three starting projects. Their caches are warm, as in a project that has been used."""
    from digit_recognizer.data import load_test, load_train

    data_root = tmp_path_factory.mktemp("corpus-data")
    write_sample(Paths(data_root).data, competition, sample_frames)
    load_train(Paths(data_root), competition)
    load_test(Paths(data_root), competition)
    empty_root = tmp_path_factory.mktemp("corpus-empty")
    return {"data": data_root, "trained": trained_project.root, "empty": empty_root}


def _setup(case: Case, templates, texts, folder: Path) -> tuple[Context, list]:
    root = folder / "project"
    shutil.copytree(templates[case.template], root)
    outside = folder / "outside"
    outside.mkdir()
    ctx = Context(root, outside, texts["train"], texts["test"], texts["answers"], texts["zip"])
    return ctx, [str(arg) for arg in case.prepare(ctx)]


def _assert_one_error_line(stderr: str, expected: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    assert len(lines[0]) <= 500, lines[0]  # quoted values are bounded (paths of the temporary project aside)


# ---------------------------------------------------------------- the corpus, in process
def _params(cases):
    return [
        pytest.param(case, id=case.id, marks=[needs_images] if case.id.startswith("images-") else []) for case in cases
    ]


@pytest.mark.parametrize("case", _params(ALL_CASES))
def test_bad_input_is_one_line_error_and_changes_nothing(case, templates, texts, tmp_path, capsys):
    # exit 2, one `error:` line naming the problem, no traceback, inputs/ models/ submissions/ untouched
    ctx, args = _setup(case, templates, texts, tmp_path)
    before = snapshot(ctx.root)
    capsys.readouterr()
    code = main(["--root", str(ctx.root), *args])
    captured = capsys.readouterr()
    assert code == 2, captured
    _assert_one_error_line(captured.err, case.expected)
    assert "Traceback" not in captured.out
    assert snapshot(ctx.root) == before


# ---------------------------------------------------------------- a subset, as real subprocesses
@pytest.fixture(scope="module")
def subprocess_results(templates, texts, tmp_path_factory):
    """Run the subset two at a time; {id: (result, snapshot before, snapshot after)}."""

    def run(case_id):
        case = BY_ID[case_id]
        ctx, args = _setup(case, templates, texts, tmp_path_factory.mktemp(case_id))
        before = snapshot(ctx.root)
        result = run_cli(*args, root=ctx.root, timeout=300)
        return case_id, (result, before, snapshot(ctx.root))

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(
            pool.map(run, [case_id for case_id in SUBPROCESS_IDS if HAS_IMAGES or not case_id.startswith("images-")])
        )


@pytest.mark.slow
@pytest.mark.parametrize(
    "case_id",
    [
        pytest.param(case_id, marks=[needs_images] if case_id.startswith("images-") else [])
        for case_id in SUBPROCESS_IDS
    ],
)
def test_bad_input_in_a_real_subprocess(case_id, subprocess_results):
    # the same promises where nothing is captured for us: the whole stderr of the process is the one line
    result, before, after = subprocess_results[case_id]
    assert result.returncode == 2, (result.stdout, result.stderr)
    _assert_one_error_line(result.stderr, BY_ID[case_id].expected)
    assert after == before


# ---------------------------------------------------------------- photos that cannot be read: a row each, the run goes on
def _png(size=(40, 40)) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random(size) * 255).astype("uint8")).save(buffer, format="PNG")
    return buffer.getvalue()


def _pixel_bomb() -> bytes:
    """A valid PNG header claiming 100,000 x 100,000 pixels (decoding it would need 10 GB)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1000))
        + chunk(b"IEND", b"")
    )


BAD_PHOTOS = [
    ("zero-bytes.png", lambda: b"", "file is empty"),
    ("text.png", lambda: b"hello, not a picture", "not an image file"),
    ("truncated.png", lambda: _png()[:60], "truncated or corrupt"),
    ("bomb.png", _pixel_bomb, "over the"),
    ("notes.txt", lambda: b"some notes", "not an image file"),
]


@needs_images
@pytest.mark.parametrize("name, content, expected", BAD_PHOTOS, ids=[case[0] for case in BAD_PHOTOS])
def test_bad_photo_is_a_row_with_its_error(name, content, expected, templates, tmp_path, capsys):
    # `images` goes on past a bad file: exit 0, the file's row in predictions.csv carries the error,
    # no traceback, and nothing changes under inputs/ models/ submissions/ (outputs go to --out)
    root = tmp_path / "project"
    shutil.copytree(templates["trained"], root)
    photo = tmp_path / name
    photo.write_bytes(content())
    out = tmp_path / "read"
    before = snapshot(root)
    code = main(["--root", str(root), "images", str(photo), "--experiment", "tiny", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0 and "Traceback" not in captured.err + captured.out
    rows = pd.read_csv(out / "predictions.csv", dtype=str, keep_default_na=False)
    assert len(rows) == 1 and rows.loc[0, "prediction"] == ""
    assert expected in rows.loc[0, "error"], rows.loc[0, "error"]
    assert snapshot(root) == before


@pytest.mark.parametrize("command", [["train", "--preset", "seed"], ["predict"], ["validate"]])
def test_missing_root_is_one_line_and_not_created(command, tmp_path, capsys):
    # --root naming a folder that does not exist: one error line, and the folder is not created
    root = tmp_path / "no-such-project"
    code = main(["--root", str(root), *command])
    captured = capsys.readouterr()
    assert code == 2
    _assert_one_error_line(captured.err, "")
    assert not root.exists()


@pytest.mark.parametrize(
    "command", [["fetch", "--sample"], ["train", "--preset", "seed"], ["predict"], ["validate"], ["ensemble", "a", "b"]]
)
def test_root_that_is_a_file_is_one_line(command, tmp_path, capsys):
    # --root naming a file: one line saying it is a file, no traceback, the file unchanged
    root = tmp_path / "afile"
    root.write_text("not a folder")
    code = main(["--root", str(root), *command])
    captured = capsys.readouterr()
    assert code == 2
    _assert_one_error_line(captured.err, f"--root {root}: is a file, not a project folder")
    assert root.read_text() == "not a folder"


def _file_size_limit(limit: int):
    """A preexec function: files the process writes may not grow past ``limit`` bytes (a full disk, for it)."""

    def apply():
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_full_disk_while_predicting_is_one_line_and_replaces_nothing(templates, tmp_path):
    # a disk that fills while predict writes: one error line naming the file, no traceback, and none of the
    # outputs (submissions, the saved test probabilities) replaced: they are renamed into place together
    import subprocess
    import sys

    root = tmp_path / "project"
    shutil.copytree(templates["trained"], root)
    before = snapshot(root)
    result = subprocess.run(
        [sys.executable, "-m", "digit_recognizer", "--root", str(root), "predict", "--experiment", "tiny"],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_file_size_limit(4096),
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    _assert_one_error_line(result.stderr, "cannot write the file")
    assert "File too large" in result.stderr
    assert snapshot(root) == before


def test_corrupt_leaderboard_stops_train_before_any_output(templates, texts, tmp_path, capsys):
    # issue 13 item 14: the corrupt leaderboard is found first: no training line is printed, no model folder made
    ctx, args = _setup(BY_ID["leaderboard-corrupt-train"], templates, texts, tmp_path)
    capsys.readouterr()
    assert main(["--root", str(ctx.root), *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "leaderboard.csv" in captured.err
    assert not Paths(ctx.root).experiment_dir("corpus").exists()
