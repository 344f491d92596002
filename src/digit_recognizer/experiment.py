"""An experiment's folder, ``models/<name>/``: the one module that knows its files.

Training writes ``config.json`` first (the :class:`~digit_recognizer.config.ExperimentConfig`, the data
fingerprint and the split file), then per member ``member-<k>.keras``, ``history-<k>.csv``,
``valid-<k>.npz``, then ``oof.npz`` (every validation prediction) and, last, ``metrics.json``: its presence
means "finished". ``predict`` adds ``test-probabilities.npy`` (and ``-tta``), keyed by the test file's hash.
An ensemble's folder holds ``ensemble.json`` and its test probabilities instead.

Every other module asks an :class:`Experiment` for these paths and contents; none spells a file name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digit_recognizer.config import Paths
from digit_recognizer.errors import UserError, quote

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
OOF_FILE = "oof.npz"
ENSEMBLE_FILE = "ensemble.json"
FULL_MEMBER = "full"


@dataclass(frozen=True)
class Validation:
    """Validation predictions: holdout rows, or every out-of-fold row (``folds`` says which fold held each out)."""

    rows: np.ndarray  # train.csv data-row numbers, 0-based
    labels: np.ndarray
    probabilities: np.ndarray
    folds: np.ndarray | None = None

    @property
    def predictions(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    @property
    def errors(self) -> int:
        return int((self.predictions != self.labels).sum())

    @property
    def accuracy(self) -> float:
        return float((self.predictions == self.labels).mean()) if len(self.labels) else 0.0

    def take(self, rows: np.ndarray) -> Validation:
        """The predictions for ``rows`` (each of which was validated), in that order."""
        order = np.argsort(self.rows, kind="stable")
        positions = order[np.searchsorted(self.rows, rows, sorter=order)]
        folds = None if self.folds is None else self.folds[positions]
        return Validation(np.asarray(rows), self.labels[positions], self.probabilities[positions], folds)


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: missing; retrain {what}") from None
    except (OSError, ValueError):  # ValueError covers UnicodeDecodeError
        raise UserError(f"{path}: corrupt JSON; retrain {what}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: corrupt JSON; retrain {what}")
    return data


@dataclass(frozen=True)
class Experiment:
    """One experiment (or ensemble) folder under ``models/``."""

    paths: Paths
    name: str

    # ------------------------------------------------------------ files
    @property
    def folder(self) -> Path:
        return self.paths.models / self.name

    @property
    def config_file(self) -> Path:
        return self.folder / CONFIG_FILE

    @property
    def metrics_file(self) -> Path:
        return self.folder / METRICS_FILE

    @property
    def oof_file(self) -> Path:
        return self.folder / OOF_FILE

    @property
    def ensemble_file(self) -> Path:
        return self.folder / ENSEMBLE_FILE

    def member_file(self, member) -> Path:
        return self.folder / ("full.keras" if member == FULL_MEMBER else f"member-{member}.keras")

    def history_file(self, member) -> Path:
        return self.folder / f"history-{member}.csv"

    def valid_file(self, member) -> Path:
        return self.folder / f"valid-{member}.npz"

    def backup_dir(self, member) -> Path:
        return self.folder / f"backup-{member}"

    def pseudo_file(self, fold: int) -> Path:
        """The test images (rows of test.csv) and labels fold ``fold``'s first-round model gave the second round."""
        return self.folder / f"pseudo-{fold}.npz"

    @property
    def reader_file(self) -> Path:
        """The string reader for photos of touching digits (``train --reader-strings``), when it was trained."""
        return self.folder / "reader.keras"

    def test_probabilities_file(self, tta: bool = False) -> Path:
        return self.folder / ("test-probabilities-tta.npy" if tta else "test-probabilities.npy")

    @property
    def report_dir(self) -> Path:
        return self.paths.reports / self.name

    @property
    def submission_file(self) -> Path:
        return self.paths.submissions / f"{self.name}.csv"

    # ------------------------------------------------------------ state
    @property
    def is_finished(self) -> bool:
        return self.metrics_file.is_file()

    @property
    def is_ensemble(self) -> bool:
        return self.ensemble_file.is_file()

    @property
    def is_started(self) -> bool:
        """Training has begun (config.json written), finished or not."""
        return self.config_file.is_file()

    # ------------------------------------------------------------ contents
    def read_record(self) -> dict:
        """config.json: {"config": ExperimentConfig fields, "data_fingerprint": ..., "split_file": ...}."""
        return _read_json(self.config_file, f"experiment '{self.name}'")

    def read_config(self) -> dict:
        config = self.read_record().get("config")
        if not isinstance(config, dict):
            raise UserError(f"{self.config_file}: corrupt JSON; retrain experiment '{self.name}'")
        return config

    def default_tta(self) -> bool:
        """Whether the experiment's recipe predicts with test-time augmentation (``--tta`` at training); False for
        ensembles and experiments saved before the option existed."""
        try:
            return bool(self.read_config().get("tta", False))
        except UserError:
            return False

    def data_fingerprint(self) -> str:
        """The train.csv content hash the experiment was trained on (``--max-rows`` runs add ``-n<rows>``)."""
        try:
            return str(self.read_record()["data_fingerprint"])
        except (UserError, KeyError):
            raise UserError(f"{self.config_file}: missing or corrupt; retrain experiment '{self.name}'") from None

    def base_fingerprint(self) -> str:
        """The fingerprint of the whole train.csv, without a ``--max-rows`` suffix."""
        return self.data_fingerprint().split("-n", 1)[0]

    def same_run(self, config_values: dict, fingerprint: str, ignore_name: bool = False) -> bool | None:
        """Whether config.json records these settings and this train.csv, so that training this folder again resumes
        it; None when config.json is unreadable. With ``ignore_name`` (finding a run to resume without --name), the
        names may differ and ``fingerprint`` may be the whole file's (a ``--max-rows`` run records ``<hash>-n<rows>``)."""
        from digit_recognizer.config import ExperimentConfig

        try:
            record = self.read_record()
        except UserError:
            return None
        saved = record.get("config")
        if not isinstance(saved, dict):
            return False
        ours, theirs = ExperimentConfig.normalized(config_values), ExperimentConfig.normalized(saved)
        recorded = str(record.get("data_fingerprint", ""))
        if ignore_name:
            ours.pop("name", None)
            theirs.pop("name", None)
            return (
                bool(theirs) and ours == theirs and (recorded == fingerprint or recorded.startswith(f"{fingerprint}-n"))
            )
        return bool(theirs) and ours == theirs and recorded == fingerprint

    def read_metrics(self) -> dict:
        """metrics.json, checked: its member model files must be plain ``.keras`` names inside the folder."""
        if not self.metrics_file.is_file():
            raise UserError(
                f"experiment '{self.name}' has no finished training ({self.metrics_file} missing); train it first"
            )
        try:
            metrics = json.loads(self.metrics_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # also UnicodeDecodeError
            metrics = None
        members = metrics.get("members") if isinstance(metrics, dict) else None
        if not (
            isinstance(members, list)
            and members
            and all(isinstance(name, str) and name == Path(name).name and name.endswith(".keras") for name in members)
        ):
            raise UserError(f"{self.metrics_file}: corrupt metrics file; retrain the experiment")
        return metrics

    def member_files(self) -> list[Path]:
        """The model files that make the experiment's predictions (fold models, the holdout model or the full-data model)."""
        return [self.folder / name for name in self.read_metrics()["members"]]

    @property
    def is_full_train(self) -> bool:
        return self.read_metrics()["members"] == [self.member_file(FULL_MEMBER).name]

    def read_validation(self) -> Validation:
        """The validation predictions saved by training (holdout rows, or every out-of-fold row)."""
        path = self.oof_file
        try:
            with np.load(path, allow_pickle=False) as saved:
                folds = saved["folds"].astype(np.int64) if "folds" in saved.files else None
                validation = Validation(
                    saved["rows"].astype(np.int64),
                    saved["labels"].astype(np.int64),
                    saved["probabilities"].astype(np.float32),
                    folds,
                )
        except FileNotFoundError:
            raise UserError(f"{path}: missing; retrain experiment '{self.name}'") from None
        except (OSError, ValueError, KeyError) as error:
            raise UserError(f"{path}: not readable ({quote(error)}); retrain experiment '{self.name}'") from None
        count = len(validation.rows)
        if (
            validation.labels.shape != (count,)
            or validation.probabilities.ndim != 2
            or len(validation.probabilities) != count
        ):
            raise UserError(
                f"{path}: rows, labels and probabilities disagree in length; retrain experiment '{self.name}'"
            )
        return validation

    def read_member_validation(self, member) -> Validation:
        with np.load(self.valid_file(member), allow_pickle=False) as saved:
            return Validation(saved["rows"], saved["labels"], saved["probabilities"])

    def read_ensemble(self) -> dict:
        return _read_json(self.ensemble_file, f"ensemble '{self.name}'")

    def read_test_probabilities(
        self, test_fingerprint: str, expected_shape: tuple, tta: bool = False
    ) -> np.ndarray | None:
        """Saved test probabilities, if they were predicted from the test file with this fingerprint and have
        the expected shape; None otherwise (never predicted, damaged, or test.csv changed since)."""
        path = self.test_probabilities_file(tta)
        try:
            with np.load(path.with_suffix(".npz"), allow_pickle=False) as saved:
                if str(saved["test_fingerprint"]) != test_fingerprint:
                    return None
                probabilities = saved["probabilities"]
        except (OSError, ValueError, KeyError):
            return None
        if probabilities.shape != tuple(expected_shape) or not np.isfinite(probabilities).all():
            return None
        return probabilities.astype(np.float32)

    def write_test_probabilities(self, probabilities: np.ndarray, test_fingerprint: str, tta: bool = False) -> Path:
        """Save test probabilities as ``.npy`` (for people) and ``.npz`` with the test file's fingerprint (for reuse)."""
        from digit_recognizer.atomic import write_npy, write_npz

        path = self.test_probabilities_file(tta)
        write_npz(path.with_suffix(".npz"), probabilities=probabilities, test_fingerprint=np.array(test_fingerprint))
        write_npy(path, probabilities)
        return path


# ---------------------------------------------------------------- finding experiments
def finished(paths: Paths) -> list[str]:
    """Finished experiments (those with metrics.json), oldest first."""
    if not paths.models.is_dir():
        return []
    done = [folder for folder in paths.models.iterdir() if (folder / METRICS_FILE).is_file()]
    return [
        folder.name
        for folder in sorted(done, key=lambda folder: ((folder / METRICS_FILE).stat().st_mtime, folder.name))
    ]


def ensembles(paths: Paths) -> list[str]:
    if not paths.models.is_dir():
        return []
    return sorted(folder.name for folder in paths.models.iterdir() if (folder / ENSEMBLE_FILE).is_file())


def latest(paths: Paths) -> Experiment:
    names = finished(paths)
    if not names:
        raise UserError("no trained experiment found under models/; run `digit-recognizer train` first")
    return Experiment(paths, names[-1])


def find(paths: Paths, name: str | None, allow_ensemble: bool = False) -> Experiment:
    """The named finished experiment (the latest when ``name`` is empty), or one line saying why not.

    With ``allow_ensemble`` an ensemble's folder is accepted too."""
    if not name:
        return latest(paths)
    if (
        "/" in name
        or "\\" in name
        or "\0" in name
        or name in (".", "..")
        or len(name.encode("utf-8", "surrogateescape")) > 255
    ):
        raise UserError(f"experiment {quote(name)} not found: not a plain name")
    experiment = Experiment(paths, name)
    if experiment.is_finished:
        return experiment
    if experiment.is_ensemble:
        if allow_ensemble:
            return experiment
        raise UserError(
            f"{quote(name)} is an ensemble (it has no models of its own); name one of its member experiments"
        )
    if experiment.is_started:
        raise UserError(
            f"experiment '{name}' has no finished training ({experiment.metrics_file} missing); "
            f"finish it with `digit-recognizer train --name {name}` and the same options"
        )
    known = finished(paths)
    hint = f"trained: {', '.join(known[-5:])}" if known else "none trained yet; run `digit-recognizer train` first"
    raise UserError(f"experiment {quote(name)} not found under {paths.models} ({hint})")


def resumable(paths: Paths, config_values: dict, fingerprint: str) -> str | None:
    """The newest unfinished experiment whose settings and train.csv equal these (name aside): re-running resumes it."""
    if not paths.models.is_dir():
        return None
    candidates = []
    for folder in paths.models.iterdir():
        experiment = Experiment(paths, folder.name)
        if (
            experiment.is_started
            and not experiment.is_finished
            and experiment.same_run(config_values, fingerprint, ignore_name=True)
        ):
            candidates.append((experiment.config_file.stat().st_mtime, folder.name))
    return max(candidates)[1] if candidates else None
