"""Interrupted training resumes: Ctrl-C and kill -9 mid-epoch (real subprocesses), K-fold runs, damaged backups."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from badfiles import write_sample
from digit_recognizer.config import Paths
from digit_recognizer.errors import UserError
from digit_recognizer.modeling import train

pytestmark = pytest.mark.slow

# Small batches make epochs last about a second on tiny data, so a kill lands mid-run.
EPOCHS = 5
HOLDOUT_ARGS = ("--preset", "seed", "--epochs", str(EPOCHS), "--batch-size", "8", "--max-rows", "600", "--quiet")
CV_ARGS = ("--preset", "seed", "--epochs", "3", "--batch-size", "8", "--max-rows", "400", "--cv", "2", "--quiet")


# ---------------------------------------------------------------- helpers
class Run:
    """A `digit-recognizer train` subprocess with its output in files (no pipe can fill up and block it)."""

    def __init__(self, root: Path, tag: str, *args: str):
        self.out_file, self.err_file = root / f"{tag}.out", root / f"{tag}.err"
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        with open(self.out_file, "w") as out, open(self.err_file, "w") as err:
            # SIGINT back to its default in the child: a suite started in the background (`cmd &` in a script)
            # inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler, so Ctrl-C would do nothing.
            self.process = subprocess.Popen(
                [sys.executable, "-m", "digit_recognizer", "--root", str(root), "train", *args],
                stdout=out,
                stderr=err,
                env=env,
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )

    @property
    def stdout(self) -> str:
        return self.out_file.read_text()

    @property
    def stderr(self) -> str:
        return self.err_file.read_text()

    def wait(self, timeout: float = 300) -> int:
        try:
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()

    def wait_until(self, condition, timeout: float = 240) -> None:
        """Poll ``condition()`` until true; fail if the process ends first."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None:
                pytest.fail(
                    f"train ended (exit {self.process.returncode}) before the test could interrupt it:\n{self.stdout[-2000:]}\n{self.stderr[-2000:]}"
                )
            if time.monotonic() > deadline:
                self.process.kill()
                pytest.fail("timed out waiting for training progress")
            time.sleep(0.02)

    def first_epoch(self) -> int:
        return first_epoch(self.stdout)


def first_epoch(stdout: str) -> int:
    """The first epoch number Keras printed ("Epoch 3/5" -> 3)."""
    match = re.search(r"^Epoch (\d+)/\d+", stdout, flags=re.M)
    assert match, stdout
    return int(match.group(1))


def assert_resumed_after(stdout: str, completed: int, epochs: int) -> None:
    """The run trained from epoch ``completed + 1`` on (or, if the backup already held every epoch, trained none)."""
    if completed < epochs:
        assert first_epoch(stdout) == completed + 1, (completed, stdout[-3000:])
    else:
        assert not re.search(r"^Epoch \d+/", stdout, flags=re.M), stdout[-3000:]


def main_in_process(*args: str) -> tuple[int, str]:
    """The same command line in this process (TensorFlow already loaded: no start-up cost); (exit code, stdout)."""
    import contextlib
    import io

    from digit_recognizer.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(args))
    return code, out.getvalue()


def backup_epoch(experiment_dir: Path, member: int = 0) -> int:
    """Completed epochs in a member's backup (0 when there is none yet)."""
    try:
        return json.loads((experiment_dir / f"backup-{member}" / train.BACKUP_METADATA).read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


def only_experiment(root: Path) -> Path:
    folders = [p for p in (root / "models").iterdir() if p.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]


def history_epochs(path: Path) -> list[int]:
    return pd.read_csv(path)["epoch"].tolist()


@pytest.fixture(scope="module")
def sample_root(tmp_path_factory, competition, sample_frames):
    root = tmp_path_factory.mktemp("resume-sample")
    write_sample(Paths(root).data, competition, sample_frames)
    return root


def _project(sample_root: Path, tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(sample_root, root)
    return root


# ---------------------------------------------------------------- holdout: Ctrl-C, kill -9, resume with and without --name
@pytest.fixture(scope="module")
def interrupted_holdout(sample_root, tmp_path_factory):
    """run 1 (no --name): Ctrl-C after an epoch; run 2 (no --name): kill -9 two epochs later (both real
    subprocesses); run 3 (--name of the experiment, in this process): runs to the end. Returns what each saw."""
    root = _project(sample_root, tmp_path_factory.mktemp("holdout"))
    seen = {"root": root}
    first = Run(root, "run1", *HOLDOUT_ARGS)
    first.wait_until(
        lambda: (
            (root / "models").is_dir() and any((root / "models").iterdir()) and backup_epoch(only_experiment(root)) >= 1
        )
    )
    experiment = only_experiment(root)
    first.process.send_signal(signal.SIGINT)
    seen["sigint_code"], seen["sigint_stderr"] = first.wait(), first.stderr
    seen["after_sigint"] = backup_epoch(experiment)

    second = Run(root, "run2", *HOLDOUT_ARGS)
    second.wait_until(lambda: backup_epoch(experiment) >= seen["after_sigint"] + 2)
    second.process.send_signal(signal.SIGKILL)
    seen["kill_code"] = second.wait()
    seen["after_kill"] = backup_epoch(experiment)
    seen["files_after_kill"] = sorted(p.name for p in experiment.iterdir())
    seen["run2_first_epoch"] = second.first_epoch()
    seen["experiments_after_kill"] = [p.name for p in (root / "models").iterdir()]

    seen["final_code"], seen["run3_stdout"] = main_in_process(
        "--root", str(root), "train", *HOLDOUT_ARGS, "--name", experiment.name
    )
    seen["experiment"] = experiment
    return seen


def test_ctrl_c_prints_one_line_saying_how_to_resume(interrupted_holdout):
    # SIGINT mid-training: exit 130, no traceback, one stderr line naming the experiment to resume
    seen = interrupted_holdout
    assert seen["sigint_code"] == 130
    assert "Traceback" not in seen["sigint_stderr"]
    lines = [line for line in seen["sigint_stderr"].splitlines() if line.strip()]
    assert len(lines) == 1, seen["sigint_stderr"]
    assert (
        lines[0].startswith("interrupted: ")
        and f"--name {seen['experiment'].name}" in lines[0]
        and "resume" in lines[0]
    )


def test_rerun_without_name_resumes_the_unfinished_experiment(interrupted_holdout):
    # the same command again (no --name) continues the same experiment from the epoch after the backup
    seen = interrupted_holdout
    assert seen["experiments_after_kill"] == [seen["experiment"].name]
    assert seen["after_sigint"] >= 1
    assert seen["run2_first_epoch"] == seen["after_sigint"] + 1


def test_kill_9_leaves_no_model_and_no_metrics(interrupted_holdout):
    # after kill -9 nothing claims the experiment is finished: no model, no metrics, the backup is there
    seen = interrupted_holdout
    assert seen["kill_code"] == -signal.SIGKILL
    files = seen["files_after_kill"]
    assert "member-0.keras" not in files and "metrics.json" not in files and "valid-0.npz" not in files
    assert "backup-0" in files and seen["after_kill"] >= seen["after_sigint"] + 2


def test_rerun_with_name_resumes_and_finishes(interrupted_holdout):
    # run 3 starts at the epoch after the last backup, finishes, and the log has every epoch exactly once
    seen = interrupted_holdout
    experiment = seen["experiment"]
    assert seen["final_code"] == 0, seen["run3_stdout"][-3000:]
    assert_resumed_after(seen["run3_stdout"], seen["after_kill"], EPOCHS)
    assert history_epochs(experiment / "history-0.csv") == list(range(EPOCHS)), (
        experiment / "history-0.csv"
    ).read_text()
    assert (experiment / "member-0.keras").is_file() and (experiment / "metrics.json").is_file()
    assert not (experiment / "backup-0").exists()


def test_resumed_model_is_as_good_as_an_uninterrupted_one(interrupted_holdout, competition):
    # same settings trained in one go: on the 200 test digits with the sample's answer key, the resumed
    # model is right within a few digits as often as the uninterrupted one
    from digit_recognizer.data import load_test
    from digit_recognizer.modeling.inference import load_model_file, predict_probabilities

    seen = interrupted_holdout
    root = seen["root"]
    assert main_in_process("--root", str(root), "train", *HOLDOUT_ARGS, "--name", "uninterrupted")[0] == 0
    paths = Paths(root)
    images = load_test(paths, competition).images
    truth = pd.read_csv(paths.test_labels)["Label"].to_numpy()

    def accuracy(experiment: Path) -> float:
        model = load_model_file(experiment / "member-0.keras")
        return float((predict_probabilities(model, images).argmax(axis=1) == truth).mean())

    resumed, straight = accuracy(seen["experiment"]), accuracy(root / "models" / "uninterrupted")
    assert straight > 0.7  # the comparison means something: the model learnt
    assert resumed >= straight - 0.05, (resumed, straight)


# ---------------------------------------------------------------- K folds: kill during fold 2
def test_kill_during_second_fold_resumes_without_redoing_the_first(sample_root, tmp_path):
    # fold 1 finished before the kill is skipped on rerun; fold 2 resumes from its backup; the result is complete
    root = _project(sample_root, tmp_path)
    first = Run(root, "cv1", *CV_ARGS, "--name", "cv")
    experiment = root / "models" / "cv"
    first.wait_until(lambda: backup_epoch(experiment, member=1) >= 1)
    first.process.send_signal(signal.SIGKILL)
    first.wait()
    completed = backup_epoch(experiment, member=1)
    files = sorted(p.name for p in experiment.iterdir())
    assert "member-0.keras" in files and "valid-0.npz" in files, files
    assert "member-1.keras" not in files and "metrics.json" not in files, (files, completed, first.stdout[-2000:])
    model_0 = (experiment / "member-0.keras").stat().st_mtime_ns

    code, out = main_in_process("--root", str(root), "train", *CV_ARGS, "--name", "cv")
    assert code == 0, out[-3000:]
    assert "member 1/2: already trained, skipping" in out
    assert "fold 1/2: training" not in out and "fold 2/2: training" in out
    assert_resumed_after(out, completed, 3)
    assert (experiment / "member-0.keras").stat().st_mtime_ns == model_0
    metrics = json.loads((experiment / "metrics.json").read_text())
    assert len(metrics["fold_accuracies"]) == 2 and metrics["validation_rows"] == 400
    assert history_epochs(experiment / "history-0.csv") == [0, 1, 2]
    assert history_epochs(experiment / "history-1.csv") == [0, 1, 2]


# ---------------------------------------------------------------- damaged backups and logs
@pytest.fixture
def tiny_model():
    keras = pytest.importorskip("keras")
    inputs = keras.Input(shape=(4,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model


def _fit(model, backup_dir, epochs):
    rng = np.random.default_rng(0)
    x, y = rng.random((16, 4)).astype("float32"), np.eye(3)[rng.integers(0, 3, 16)].astype("float32")
    model.fit(x, y, epochs=epochs, batch_size=8, verbose=0, callbacks=[train.atomic_backup_callback(backup_dir)])


def test_backup_callback_hook_exists():
    # the atomic backup overrides a private Keras method: fail loudly if Keras renames it
    keras = pytest.importorskip("keras")
    assert callable(getattr(keras.callbacks.BackupAndRestore, "_save_model", None))


def test_backup_is_written_atomically(tmp_path, tiny_model):
    # a save that dies half-way (here: the weights writer raises after writing junk) leaves the previous
    # epoch's backup complete and loadable, with no temporary file behind
    backup_dir = tmp_path / "backup-0"
    _fit(tiny_model, backup_dir, epochs=2)
    assert sorted(p.name for p in backup_dir.iterdir()) == sorted([train.BACKUP_WEIGHTS, train.BACKUP_METADATA])
    assert train.check_backup(tiny_model, backup_dir, epochs=5) == 2
    before = {p.name: p.read_bytes() for p in backup_dir.iterdir()}

    def dying_save(filepath, overwrite=True):
        Path(filepath).write_bytes(b"half a file")
        raise OSError("disk went away")

    original = tiny_model.save_weights
    tiny_model.save_weights = dying_save
    try:
        with pytest.raises((OSError, UserError), match="disk went away"):  # a failed write is the user's one-line error
            _fit(tiny_model, backup_dir, epochs=3)
    finally:
        tiny_model.save_weights = original
    assert {p.name: p.read_bytes() for p in backup_dir.iterdir()} == before
    assert train.check_backup(tiny_model, backup_dir, epochs=5) == 2


def _damages():
    def truncated_weights(folder):
        path = folder / train.BACKUP_WEIGHTS
        path.write_bytes(path.read_bytes()[:100])

    def garbage_weights(folder):
        (folder / train.BACKUP_WEIGHTS).write_bytes(b"\x00" * 64)

    def no_weights(folder):
        (folder / train.BACKUP_WEIGHTS).unlink()

    def garbage_metadata(folder):
        (folder / train.BACKUP_METADATA).write_text('{"epoch": ')

    def no_metadata(folder):
        (folder / train.BACKUP_METADATA).unlink()

    def epoch_out_of_range(folder):
        (folder / train.BACKUP_METADATA).write_text('{"epoch": 99, "batch": 0}')

    def epoch_not_a_number(folder):
        (folder / train.BACKUP_METADATA).write_text('{"epoch": "2", "batch": 0}')

    def empty_folder(folder):
        for path in folder.iterdir():
            path.unlink()

    return [
        truncated_weights,
        garbage_weights,
        no_weights,
        garbage_metadata,
        no_metadata,
        epoch_out_of_range,
        epoch_not_a_number,
        empty_folder,
    ]


@pytest.mark.parametrize("damage", _damages(), ids=lambda f: f.__name__)
def test_damaged_backup_is_discarded_with_a_warning(tmp_path, tiny_model, capsys, damage):
    # a backup that cannot be loaded is deleted and reported (None = start afresh), never a crash
    backup_dir = tmp_path / "backup-0"
    _fit(tiny_model, backup_dir, epochs=2)
    damage(backup_dir)
    assert train.check_backup(tiny_model, backup_dir, epochs=5) is None
    assert not backup_dir.exists()
    assert "warning: the backup in" in capsys.readouterr().out


def test_no_backup_means_epoch_zero(tmp_path, tiny_model):
    # without a backup the member starts at epoch 0 (and nothing is printed or created)
    assert train.check_backup(tiny_model, tmp_path / "backup-0", epochs=5) == 0
    assert list(tmp_path.iterdir()) == []


def _weights_like(model, value):
    return [np.full(w.shape, value, dtype=w.dtype) for w in model.get_weights()]


def test_early_stopping_resumes_with_its_best_score_wait_and_weights(tmp_path, tiny_model):
    # after a resume, early stopping knows the best logged epoch (the first maximum), how long it has waited
    # since, and that epoch's weights; the model keeps the latest weights it resumed with
    backup_dir, history = tmp_path / "backup-0", tmp_path / "history-0.csv"
    history.write_text(
        "epoch,accuracy,loss,val_accuracy,val_loss\n0,0.4,2,0.5,2\n1,0.6,1,0.7,1\n2,0.7,1,0.7,1\n3,0.8,1,0.6,1\n"
    )
    tiny_model.set_weights(_weights_like(tiny_model, 1.0))
    backup_dir.mkdir()
    tiny_model.save_weights(str(train.best_weights_file(backup_dir, 1)))
    tiny_model.set_weights(_weights_like(tiny_model, 3.0))
    early_stopping = train.resumable_early_stopping(backup_dir, history, patience=4)
    early_stopping.set_model(tiny_model)
    early_stopping.on_train_begin()
    assert (early_stopping.best, early_stopping.best_epoch, early_stopping.wait) == (0.7, 1, 2)
    assert all(np.all(w == 1.0) for w in early_stopping.best_weights)
    assert all(np.all(w == 3.0) for w in tiny_model.get_weights())


@pytest.mark.parametrize("log", [None, "epoch,accuracy,loss,val_accuracy,val_loss\n0,0.4,2,0.5,2\n", "epo"])
def test_early_stopping_without_its_saved_state_starts_afresh(tmp_path, tiny_model, log):
    # no log, no best-weights file (a backup from before) or a damaged log: counting starts from scratch
    history = tmp_path / "history-0.csv"
    if log is not None:
        history.write_text(log)
    early_stopping = train.resumable_early_stopping(tmp_path / "backup-0", history, patience=4)
    early_stopping.set_model(tiny_model)
    early_stopping.on_train_begin()
    assert (early_stopping.best, early_stopping.wait, early_stopping.best_weights) == (None, 0, None)


def test_early_stopping_keeps_the_best_and_the_previous_best_weights(tmp_path, tiny_model):
    # each improvement writes best-<epoch>.weights.h5 and keeps the one before it (the resume point until the
    # backup commits the epoch); epochs that do not improve write nothing
    backup_dir = tmp_path / "backup-0"
    early_stopping = train.resumable_early_stopping(backup_dir, tmp_path / "history-0.csv", patience=10)
    early_stopping.set_model(tiny_model)
    early_stopping.on_train_begin()
    kept = []
    for epoch, score in enumerate([0.5, 0.4, 0.6, 0.8, 0.8]):
        early_stopping.on_epoch_end(epoch, {"val_accuracy": score})
        kept.append(sorted(path.name for path in backup_dir.iterdir()))
    assert kept == [
        ["best-0.weights.h5"],
        ["best-0.weights.h5"],
        ["best-0.weights.h5", "best-2.weights.h5"],
        ["best-2.weights.h5", "best-3.weights.h5"],
        ["best-2.weights.h5", "best-3.weights.h5"],
    ]


def test_early_stopping_in_a_real_run_saves_the_best_epoch(tmp_path, sample_root):
    # train --patience: the saved model scores the best logged validation accuracy (best weights restored),
    # and the backup folder with the best-weights files is gone once the model is saved
    from digit_recognizer.cli import main

    root = _project(sample_root, tmp_path)
    assert (
        main(
            [
                "--root",
                str(root),
                "train",
                "--preset",
                "seed",
                "--epochs",
                "10",
                "--patience",
                "2",
                "--learning-rate",
                "0.03",
                "--max-rows",
                "300",
                "--name",
                "stopping",
                "--quiet",
            ]
        )
        == 0
    )
    experiment = root / "models" / "stopping"
    logged = pd.read_csv(experiment / "history-0.csv")["val_accuracy"]
    assert 3 <= len(logged) <= 10
    assert json.loads((experiment / "metrics.json").read_text())["score"] == pytest.approx(logged.max(), abs=1e-6)
    assert not (experiment / "backup-0").exists()


HEADER = "epoch,accuracy,loss\r\n"


@pytest.mark.parametrize(
    "log, completed, expected",
    [
        (
            HEADER + "0,0.1,2\r\n1,0.2,1.9\r\n2,0.3,1.8\r\n",
            2,
            [0, 1],
        ),  # killed after logging epoch 2, before its backup
        (HEADER + "0,0.1,2\r\n1,0.2,1.9\r\n", 2, [0, 1]),  # consistent: untouched
        (HEADER + "0,0.1,2\r\n1,0.2,1.9\r\n2,0.3", 2, [0, 1]),  # a half-written last line
        (HEADER + "0,0.1,2\r\n1,0.2,1.9\r\n", 0, None),  # no backup: the stale log goes
        ("epo", 1, None),  # a half-written header
        ("", 1, None),
    ],
)
def test_trim_history_keeps_the_backed_up_epochs(tmp_path, log, completed, expected):
    # the per-epoch log is cut back to the epochs the backup holds, so resumed runs log each epoch once
    path = tmp_path / "history-0.csv"
    path.write_bytes(log.encode())
    train.trim_history(path, completed)
    if expected is None:
        assert not path.exists()
    else:
        assert history_epochs(path) == expected
        assert path.read_text().startswith("epoch,accuracy,loss")


def test_damaged_backup_in_a_real_run_retrains_the_member(tmp_path, sample_root, capsys):
    # end to end: an unfinished experiment whose backup is junk trains member 0 from the start and finishes
    from digit_recognizer.cli import main

    root = _project(sample_root, tmp_path)
    args = [
        "--root",
        str(root),
        "train",
        "--preset",
        "seed",
        "--epochs",
        "2",
        "--max-rows",
        "100",
        "--name",
        "junk",
        "--quiet",
    ]
    assert main(args) == 0
    experiment = root / "models" / "junk"
    for name in ("metrics.json", "member-0.keras", "valid-0.npz", "oof.npz"):
        (experiment / name).unlink()
    (experiment / "backup-0").mkdir()
    (experiment / "backup-0" / train.BACKUP_WEIGHTS).write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 40)
    (experiment / "backup-0" / train.BACKUP_METADATA).write_text('{"epoch": 1, "batch": 0}')
    (experiment / "history-0.csv").write_text("epoch,accuracy,loss,val_accuracy,val_loss\n0,0.1,2.3,0.1,2.3\n")
    capsys.readouterr()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "warning: the backup in" in out and "training this model from the start" in out
    assert re.search(r"^Epoch 1/2", out, flags=re.M)
    assert history_epochs(experiment / "history-0.csv") == [0, 1]
    assert (experiment / "metrics.json").is_file() and not (experiment / "backup-0").exists()
