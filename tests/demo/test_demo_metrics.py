"""Accuracy, macro precision / recall / F1 and the confusion matrix against hand-worked cases."""

import numpy as np
import pytest

from zoo.demo import metrics


def test_confusion_matrix_counts_pairs():
    matrix = metrics.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], num_classes=4)
    assert matrix.tolist() == [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]]
    assert matrix.dtype == np.int64


def test_report_matches_hand_computation():
    # class 0: P = 1/2, R = 1/2; class 1: P = 1, R = 1/2; class 2: P = 2/3, R = 1.
    report = metrics.classification_report([0, 0, 1, 1, 2, 2], [0, 2, 1, 0, 2, 2], num_classes=3)
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["macro_precision"] == pytest.approx((1 / 2 + 1 + 2 / 3) / 3)
    assert report["macro_recall"] == pytest.approx((1 / 2 + 1 / 2 + 1) / 3)
    f1 = [1 / 2, 2 / 3, 0.8]
    assert report["macro_f1"] == pytest.approx(sum(f1) / 3)
    assert report["num_examples"] == 6
    assert report["confusion_matrix"] == [[1, 0, 1], [1, 1, 0], [0, 0, 2]]


def test_macro_average_skips_absent_classes_and_scores_unpredicted_ones_zero():
    # Class 3 never occurs: left out. Class 2 occurs but is never predicted: precision 0.
    report = metrics.classification_report([0, 1, 2], [0, 1, 1], num_classes=4)
    assert report["classes_averaged"] == [0, 1, 2]
    assert report["macro_precision"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert report["macro_recall"] == pytest.approx((1 + 1 + 0) / 3)


def test_perfect_predictions():
    labels = np.arange(10).repeat(3)
    report = metrics.classification_report(labels, labels, num_classes=10)
    assert report["accuracy"] == report["macro_precision"] == report["macro_recall"] == report["macro_f1"] == 1.0


@pytest.mark.parametrize(
    "y_true, y_pred, num_classes, message",
    [
        ([0, 1], [0], 2, "differ in length: 2 and 1"),
        ([0, 3], [0, 1], 3, "y_true holds class id 3, outside \\[0, 3\\)"),
        ([0, 1], [0, -1], 3, "y_pred holds class id -1"),
        ([0.5, 1], [0, 1], 3, "integer class ids"),
        ([[0, 1]], [[0, 1]], 3, "1-D array"),
        ([], [], 3, "empty"),
        ([0], [0], 0, "num_classes=0"),
    ],
)
def test_bad_input_is_named(y_true, y_pred, num_classes, message):
    with pytest.raises(ValueError, match=message):
        metrics.classification_report(y_true, y_pred, num_classes)


def test_per_class_scores_needs_a_square_matrix():
    with pytest.raises(ValueError, match="square"):
        metrics.per_class_scores(np.zeros((2, 3)))
