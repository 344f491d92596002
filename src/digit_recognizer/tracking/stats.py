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
