"""experiment.py: the one owner of an experiment's folder (finding it, what it holds, whether it resumes)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from digit_recognizer.config import ExperimentConfig, Paths
from digit_recognizer.errors import UserError
from digit_recognizer.experiment import Experiment, find, finished, latest, resumable


def _start(paths: Paths, name: str, fingerprint: str = "abc", **overrides) -> Experiment:
    experiment = Experiment(paths, name)
    experiment.folder.mkdir(parents=True, exist_ok=True)
    config = ExperimentConfig(name=name, **overrides).to_dict()
    experiment.config_file.write_text(
        json.dumps({"config": config, "data_fingerprint": fingerprint, "split_file": "s"})
    )
    return experiment


def _finish(experiment: Experiment) -> Experiment:
    experiment.metrics_file.write_text(json.dumps({"members": ["member-0.keras"], "score": 0.9}))
    return experiment


def test_find_names_each_reason_in_one_line(tmp_path):
    paths = Paths(tmp_path)
    _finish(_start(paths, "done"))
    _start(paths, "half")
    (paths.models / "blend").mkdir()
    (paths.models / "blend" / "ensemble.json").write_text("{}")
    assert find(paths, "done").name == "done" and find(paths, None).name == "done" == latest(paths).name
    assert find(paths, "blend", allow_ensemble=True).is_ensemble
    cases = {
        "half": "has no finished training",
        "blend": "is an ensemble",
        "nope": "not found under",
        "../x": "not a plain name",
        "x" * 300: "not found",
    }
    for name, message in cases.items():
        with pytest.raises(UserError, match=message) as raised:
            find(paths, name)
        assert "\n" not in str(raised.value) and len(str(raised.value)) < 300


def test_no_experiment_at_all(tmp_path):
    with pytest.raises(UserError, match="no trained experiment"):
        latest(Paths(tmp_path))
    assert finished(Paths(tmp_path)) == []


def test_resumable_finds_the_unfinished_run_with_the_same_settings(tmp_path):
    paths = Paths(tmp_path)
    _start(paths, "other-settings", epochs=3)
    _start(paths, "other-data", fingerprint="zzz")
    _finish(_start(paths, "finished"))
    _start(paths, "subset", fingerprint="abc-n1000", max_rows=1000)
    wanted = ExperimentConfig(name="new").to_dict()
    assert resumable(paths, wanted, "abc") is None
    _start(paths, "same")
    assert resumable(paths, wanted, "abc") == "same"
    assert resumable(paths, ExperimentConfig(name="new", max_rows=1000).to_dict(), "abc") == "subset"


def test_a_config_saved_before_a_field_existed_is_the_same_run(tmp_path):
    # config.json written by an older version lacks newer fields (elastic, pseudo_label): their defaults keep the old
    # behaviour, so the run still resumes
    paths = Paths(tmp_path)
    experiment = _start(paths, "old")
    record = json.loads(experiment.config_file.read_text())
    del record["config"]["elastic"], record["config"]["pseudo_label"]
    experiment.config_file.write_text(json.dumps(record))
    assert experiment.same_run(ExperimentConfig(name="old").to_dict(), "abc") is True
    assert experiment.same_run(ExperimentConfig(name="old", elastic=0.5).to_dict(), "abc") is False
    experiment.config_file.write_text("{not json")
    assert experiment.same_run(ExperimentConfig(name="old").to_dict(), "abc") is None


def test_test_probabilities_are_reused_only_for_the_same_test_file(tmp_path):
    experiment = _start(Paths(tmp_path), "e")
    probabilities = np.full((4, 10), 0.1, np.float32)
    experiment.write_test_probabilities(probabilities, "hash-1")
    assert np.array_equal(experiment.read_test_probabilities("hash-1", (4, 10)), probabilities)
    assert experiment.read_test_probabilities("hash-2", (4, 10)) is None  # test.csv changed
    assert experiment.read_test_probabilities("hash-1", (5, 10)) is None
    assert np.load(experiment.test_probabilities_file()).shape == (4, 10)  # the plain .npy stays for people


def test_member_metrics_refuse_paths_outside_the_folder(tmp_path):
    experiment = _start(Paths(tmp_path), "e")
    experiment.metrics_file.write_text(json.dumps({"members": ["../../evil.keras"]}))
    with pytest.raises(UserError, match="corrupt metrics file"):
        experiment.member_files()
