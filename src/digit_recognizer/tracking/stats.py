"""Honest statistics for validation scores: a Wilson interval for an accuracy, McNemar's exact test for two models.

Both come from SciPy: ``binomtest(...).proportion_ci(method="wilson")`` and, for McNemar's exact test, the
two-sided binomial test of the discordant pairs (b of one kind out of b + c, against p = 1/2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def wilson_interval(correct: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of an accuracy of ``correct`` out of ``total`` (``(0, 1)`` when ``total`` is 0)."""
    from scipy.stats import binomtest

    if total < 0 or not 0 <= correct <= max(total, 0):
        raise ValueError(f"need 0 <= correct <= total, got {correct} of {total}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if total == 0:
        return 0.0, 1.0
    interval = binomtest(int(correct), int(total)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)


def accuracy_interval(score: float, rows: int) -> str:
    """An accuracy's error count and 95% Wilson interval for people: ``27 errors in 4200 rows, 95% CI 0.99075-0.99558``."""
    errors = round((1 - score) * rows)
    low, high = wilson_interval(rows - errors, rows)
    return f"{errors} errors in {rows} rows, 95% CI {low:.5f}-{high:.5f}"


@dataclass(frozen=True)
class McNemarResult:
    rows: int  # validation rows both models scored
    errors_a: int
    errors_b: int
    only_a_right: int  # rows model A got right and model B wrong
    only_b_right: int
    p_value: float

    @property
    def disagreements(self) -> int:
        return self.only_a_right + self.only_b_right

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_value < alpha


def mcnemar_exact(labels: np.ndarray, predictions_a: np.ndarray, predictions_b: np.ndarray) -> McNemarResult:
    """McNemar's exact test on paired predictions of the same rows: is one model's accuracy different from the other's
    beyond chance? Only the rows where exactly one of them is right count."""
    from scipy.stats import binomtest

    labels, predictions_a, predictions_b = (np.asarray(array) for array in (labels, predictions_a, predictions_b))
    if not labels.shape == predictions_a.shape == predictions_b.shape or labels.ndim != 1:
        raise ValueError("labels and both models' predictions must be 1-D arrays of the same length")
    right_a, right_b = predictions_a == labels, predictions_b == labels
    only_a, only_b = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    p_value = 1.0 if only_a + only_b == 0 else float(binomtest(only_a, only_a + only_b, 0.5).pvalue)
    return McNemarResult(len(labels), int((~right_a).sum()), int((~right_b).sum()), only_a, only_b, min(1.0, p_value))


# ---------------------------------------------------------------- experiments
@dataclass(frozen=True)
class Comparison:
    first: str
    second: str
    test: McNemarResult
    accuracy_first: float
    accuracy_second: float


def compare_experiments(paths, first: str, second: str) -> Comparison:
    """McNemar's exact test of two experiments (or ensembles' members' scoring rows) on the validation rows both
    scored: the same holdout rows (same --seed and --holdout) or the same out-of-fold rows (same folds)."""
    from digit_recognizer.errors import UserError
    from digit_recognizer.experiment import find

    if first == second:
        raise UserError("compare needs two different experiments")
    validations = [find(paths, name).read_validation() for name in (first, second)]
    rows = np.intersect1d(validations[0].rows, validations[1].rows)
    if not len(rows):
        raise UserError(
            f"'{first}' and '{second}' share no validation rows (different seeds, splits or --max-rows); "
            "compare experiments validated on the same split"
        )
    a, b = (validation.take(rows) for validation in validations)
    if not np.array_equal(a.labels, b.labels):
        raise UserError(
            f"'{first}' and '{second}' disagree on the labels of the same train rows; were they trained on the same train.csv?"
        )
    test = mcnemar_exact(a.labels, a.predictions, b.predictions)
    return Comparison(first, second, test, a.accuracy, b.accuracy)
