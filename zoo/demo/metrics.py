"""Classification metrics from predicted and true labels (NumPy only).

Macro averages follow scikit-learn's defaults: they run over the classes that
occur in the true or the predicted labels, and a class that is never predicted
has precision 0 (likewise recall for a class that never occurs, which cannot
happen among the averaged classes unless it was predicted).

>>> report = classification_report([0, 1, 1, 2], [0, 1, 2, 2], num_classes=3)
>>> round(report["accuracy"], 2), round(report["macro_f1"], 3)
(0.75, 0.778)
"""

from __future__ import annotations

import numpy as np

__all__ = ["confusion_matrix", "classification_report", "per_class_scores"]


def _labels(name: str, values, num_classes: int) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class ids; got shape {array.shape}.")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.mod(array, 1) == 0):
            raise ValueError(f"{name} must hold integer class ids; got dtype {array.dtype}.")
    array = array.astype(np.int64)
    bad = array[(array < 0) | (array >= num_classes)]
    if bad.size:
        raise ValueError(f"{name} holds class id {int(bad[0])}, outside [0, {num_classes}).")
    return array


def _checked(y_true, y_pred, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer) or num_classes < 1:
        raise ValueError(f"num_classes={num_classes!r}: expected a positive int.")
    y_true = _labels("y_true", y_true, int(num_classes))
    y_pred = _labels("y_pred", y_pred, int(num_classes))
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {y_true.shape[0]} and {y_pred.shape[0]}.")
    if y_true.size == 0:
        raise ValueError("y_true and y_pred are empty; metrics need at least one example.")
    return y_true, y_pred


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class) pairs.

    Args:
        y_true: true class ids, shape [N].
        y_pred: predicted class ids, shape [N].
        num_classes: number of classes C; ids must lie in [0, C).

    Returns:
        int64 array [C, C]; row = true class, column = predicted class.

    Raises:
        ValueError: for empty, mismatched, non-integer or out-of-range labels.
    """
    y_true, y_pred = _checked(y_true, y_pred, num_classes)
    flat = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def per_class_scores(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support per class from a confusion matrix.

    A ratio with a zero denominator is 0 (as scikit-learn's `zero_division=0`).

    Returns:
        {"precision", "recall", "f1", "support"}, each an array [C].

    Raises:
        ValueError: if the matrix is not square.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"Expected a square confusion matrix; got shape {matrix.shape}.")
    true_positive = np.diag(matrix)
    predicted = matrix.sum(axis=0)
    actual = matrix.sum(axis=1)
    precision = np.divide(true_positive, predicted, out=np.zeros_like(true_positive), where=predicted > 0)
    recall = np.divide(true_positive, actual, out=np.zeros_like(true_positive), where=actual > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": actual.astype(np.int64)}


def classification_report(y_true, y_pred, num_classes: int) -> dict:
    """Accuracy, macro precision / recall / F1 and the confusion matrix.

    Args:
        y_true: true class ids, shape [N].
        y_pred: predicted class ids, shape [N].
        num_classes: number of classes C.

    Returns:
        A JSON-ready dict: `accuracy`, `macro_precision`, `macro_recall`,
        `macro_f1` (floats), `num_examples`, `classes_averaged` (ids that
        occur in either array) and `confusion_matrix` (nested lists [C][C]).

    Raises:
        ValueError: for empty, mismatched, non-integer or out-of-range labels.
    """
    y_true, y_pred = _checked(y_true, y_pred, num_classes)
    matrix = confusion_matrix(y_true, y_pred, num_classes)
    scores = per_class_scores(matrix)
    present = np.flatnonzero((matrix.sum(axis=0) + matrix.sum(axis=1)) > 0)
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "macro_precision": float(np.mean(scores["precision"][present])),
        "macro_recall": float(np.mean(scores["recall"][present])),
        "macro_f1": float(np.mean(scores["f1"][present])),
        "num_examples": int(y_true.size),
        "classes_averaged": [int(c) for c in present],
        "confusion_matrix": matrix.tolist(),
    }
