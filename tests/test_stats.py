"""Honest statistics: Wilson intervals, McNemar's exact test, and `compare` on experiments' validation rows."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from digit_recognizer.atomic import write_npz
from digit_recognizer.cli import main
from digit_recognizer.config import Paths
from digit_recognizer.errors import UserError
from digit_recognizer.experiment import Experiment
from digit_recognizer.tracking.stats import compare_experiments, mcnemar_exact, wilson_interval


def _wilson_by_formula(correct: int, total: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson's score interval written out (Wilson 1927), independent of SciPy."""
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z / (1 + z * z / total) * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return centre - half, centre + half


@pytest.mark.parametrize("correct, total", [(0, 10), (10, 10), (81, 263), (4179, 4200), (41841, 42000), (1, 2)])
def test_wilson_interval_matches_the_formula(correct, total):
    low, high = wilson_interval(correct, total)
    expected_low, expected_high = _wilson_by_formula(correct, total)
    assert low == pytest.approx(max(0.0, expected_low), abs=1e-9) and high == pytest.approx(
        min(1.0, expected_high), abs=1e-9
    )
    assert 0 <= low <= correct / total <= high <= 1


def test_wilson_interval_known_values():
    # no successes in 10 trials: the upper bound is z^2 / (n + z^2) = 0.2775 (a textbook value)
    assert wilson_interval(0, 10)[1] == pytest.approx(0.27753, abs=1e-5)
    # the interval narrows as the rows grow, at the same accuracy
    assert np.diff(wilson_interval(4179, 4200)) > np.diff(wilson_interval(41790, 42000))


@pytest.mark.parametrize("correct, total", [(-1, 10), (11, 10), (5, -1)])
def test_wilson_interval_refuses_impossible_counts(correct, total):
    with pytest.raises(ValueError):
        wilson_interval(correct, total)


def _predictions(only_a: int, only_b: int, both_right: int = 20, both_wrong: int = 3):
    """Labels and two models' predictions with the given discordant counts."""
    labels = np.zeros(only_a + only_b + both_right + both_wrong, dtype=int)
    a = np.concatenate([np.zeros(only_a), np.ones(only_b), np.zeros(both_right), np.ones(both_wrong)]).astype(int)
    b = np.concatenate([np.ones(only_a), np.zeros(only_b), np.zeros(both_right), np.full(both_wrong, 2)]).astype(int)
    return labels, a, b


@pytest.mark.parametrize(
    "only_a, only_b, p_value",
    [
        (1, 6, 0.125),  # 2 * P(X <= 1 | 7, 1/2) = 2 * 8 / 128
        (0, 10, 2 / 1024),  # 2 * 0.5^10
        (5, 5, 1.0),
        (0, 0, 1.0),  # no disagreement: nothing to test
        (12, 3, 0.03515625),  # 2 * P(X <= 3 | 15, 1/2) = 2 * 576 / 32768
    ],
)
def test_mcnemar_exact_known_p_values(only_a, only_b, p_value):
    labels, a, b = _predictions(only_a, only_b)
    result = mcnemar_exact(labels, a, b)
    assert result.p_value == pytest.approx(p_value, rel=1e-9)
    assert (result.only_a_right, result.only_b_right) == (only_a, only_b)
    assert result.errors_a == only_b + 3 and result.errors_b == only_a + 3
    assert result.significant() == (p_value < 0.05)


def test_mcnemar_is_symmetric_and_ignores_concordant_rows():
    labels, a, b = _predictions(2, 9, both_right=10)
    more_concordant = _predictions(2, 9, both_right=500)
    assert mcnemar_exact(labels, a, b).p_value == mcnemar_exact(labels, b, a).p_value
    assert mcnemar_exact(labels, a, b).p_value == mcnemar_exact(*more_concordant).p_value


def test_mcnemar_refuses_arrays_of_different_lengths():
    with pytest.raises(ValueError):
        mcnemar_exact(np.zeros(3), np.zeros(3), np.zeros(4))


def _experiment(paths: Paths, name: str, rows, labels, predictions) -> None:
    """A finished experiment's files, as training writes them (small arrays, no model needed to compare)."""
    experiment = Experiment(paths, name)
    probabilities = np.eye(10, dtype=np.float32)[np.asarray(predictions)]
    write_npz(
        experiment.oof_file,
        rows=np.asarray(rows),
        labels=np.asarray(labels),
        probabilities=probabilities,
        folds=np.zeros(len(rows), dtype=int),
    )
    experiment.metrics_file.write_text(json.dumps({"members": ["member-0.keras"], "score": 0.5}))


@pytest.fixture
def compared(tmp_path):
    paths = Paths(tmp_path)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 400)
    good = np.where(rng.random(400) < 0.98, labels, (labels + 1) % 10)
    bad = np.where(rng.random(400) < 0.80, labels, (labels + 1) % 10)
    rows = np.arange(400)
    order = rng.permutation(400)  # the second experiment lists the same rows in another order
    _experiment(paths, "good", rows, labels, good)
    _experiment(paths, "bad", rows[order], labels[order], bad[order])
    _experiment(paths, "elsewhere", rows + 1000, labels, good)
    return paths


def test_compare_aligns_rows_and_finds_the_better_experiment(compared):
    result = compare_experiments(compared, "good", "bad")
    assert result.test.rows == 400
    assert result.accuracy_first > result.accuracy_second and result.test.significant()
    assert result.test.only_a_right > result.test.only_b_right


def test_compare_refuses_experiments_without_shared_rows(compared):
    with pytest.raises(UserError, match="share no validation rows"):
        compare_experiments(compared, "good", "elsewhere")


@pytest.mark.parametrize(
    "args, code, expected",
    [
        (["good", "bad"], 0, "beyond chance at 95%: good is better"),
        (["good", "elsewhere"], 2, "error: 'good' and 'elsewhere' share no validation rows"),
        (["good", "good"], 2, "error: compare needs two different experiments"),
        (["good", "nope"], 2, "error: experiment 'nope' not found"),
    ],
)
def test_compare_command(compared, capsys, args, code, expected):
    assert main(["--root", str(compared.root), "compare", *args]) == code
    captured = capsys.readouterr()
    output = captured.out if code == 0 else captured.err
    assert expected in output
    if code:
        assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


def test_leaderboard_shows_errors_and_the_wilson_interval():
    from digit_recognizer.cli.tracking import format_leaderboard

    table = format_leaderboard(
        [
            {"experiment": "a", "score": "0.99398", "validation_rows": "42000"},
            {"experiment": "old", "score": "0.99", "validation_rows": ""},  # a row from before the column: no guess
        ]
    )
    low, high = wilson_interval(42000 - 253, 42000)
    lines = table.splitlines()
    assert "errors" in lines[0] and "95% CI" in lines[0]
    assert "253/42000" in lines[2] and f"{low:.4f}-{high:.4f}" in lines[2]
    assert "/" not in lines[3].split("0.99000")[1].split()[0]


def test_with_validation_rows_fills_old_rows_from_the_metrics(compared):
    from digit_recognizer.tracking.leaderboard import with_validation_rows

    Experiment(compared, "good").metrics_file.write_text(
        json.dumps({"members": ["member-0.keras"], "validation_rows": 400})
    )
    assert (
        with_validation_rows(compared, {"experiment": "good", "score": "0.9", "validation_rows": ""})["validation_rows"]
        == "400"
    )
    assert (
        with_validation_rows(compared, {"experiment": "gone", "score": "0.9", "validation_rows": ""})["validation_rows"]
        == ""
    )
