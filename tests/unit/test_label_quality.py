"""Confident learning, near-duplicate conflicts and outliers on small arrays with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from fmkit.evaluation.label_quality import (
    confident_joint,
    confident_thresholds,
    conflicting_duplicates,
    find_label_issues,
    keep_at_least,
    keep_groups_together,
    near_duplicate_groups,
    nearest_neighbours,
    normalized_margin,
    outlier_mask,
    outlier_scores,
    round_keeping_row_sums,
    stratified_folds,
    top_other_label,
)

# Six examples, two classes; example 2 is labelled 0 but the model is sure it is a 1.
LABELS = np.array([0, 0, 0, 1, 1, 1])
PROBS = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.8], [0.1, 0.9], [0.3, 0.7]])


def test_stratified_folds_spread_every_class_evenly_and_repeat_with_the_seed() -> None:
    labels = np.array([0] * 7 + [1] * 5 + [2] * 3)
    folds = stratified_folds(labels, 3, seed=0)
    for cls in range(3):
        counts = np.bincount(folds[labels == cls], minlength=3)
        assert counts.max() - counts.min() <= 1, (cls, counts)
    assert np.array_equal(folds, stratified_folds(labels, 3, seed=0))
    assert set(folds.tolist()) == {0, 1, 2}


def test_thresholds_are_mean_self_confidence() -> None:
    assert confident_thresholds(LABELS, PROBS) == pytest.approx([0.6, 0.8])


def test_confident_joint_counts_the_flipped_example_off_the_diagonal() -> None:
    # Example 5 (p1 = 0.7 < t1 = 0.8, p0 = 0.3 < t0 = 0.6) is confident of nothing: row 1 holds [0, 2] before
    # calibration, which scales it to the 3 examples labelled 1.
    assert confident_joint(LABELS, PROBS).tolist() == [[2, 1], [0, 3]]


def test_find_label_issues_flags_exactly_the_flipped_example() -> None:
    assert find_label_issues(LABELS, PROBS).tolist() == [False, False, True, False, False, False]


def test_an_example_the_model_agrees_with_is_never_an_issue() -> None:
    # Example 0 misses t0 = 0.7 but reaches t1 = 0.5, so the joint counts one example labelled 0 as a 1; yet
    # its top guess ties with its given label, and a tie goes to the given label.
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.5, 0.5], [0.9, 0.1], [0.5, 0.5], [0.5, 0.5]])
    assert confident_joint(labels, probs)[0].tolist() == [1, 1]
    assert find_label_issues(labels, probs).tolist() == [False, False, False, False]


def test_keep_at_least_moves_counts_back_to_the_diagonal() -> None:
    joint = np.array([[0, 2, 2], [0, 4, 0], [1, 0, 3]])
    assert keep_at_least(joint, 2).tolist() == [[2, 1, 1], [0, 4, 0], [1, 0, 3]]


def test_rounding_keeps_each_row_sum() -> None:
    out = round_keeping_row_sums(np.array([[0.4, 0.4, 0.2], [1.5, 1.5, 0.0]]))
    assert out.sum(axis=1).tolist() == [1, 3]
    assert out.tolist() == [[1, 0, 0], [2, 1, 0]]


def test_normalized_margin_and_suggested_label() -> None:
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1]])
    labels = np.array([0, 0])
    assert normalized_margin(labels, probs) == pytest.approx([0.65, 0.25])
    assert top_other_label(labels, probs).tolist() == [1, 1]


def unit(rows: list[list[float]]) -> np.ndarray:
    array = np.asarray(rows, dtype=np.float32)
    return array / np.linalg.norm(array, axis=1, keepdims=True)


VECTORS = unit([[1, 0, 0], [0.99, 0.01, 0], [0, 1, 0], [0, 0.98, 0.02], [0.7, 0.7, 0], [0, 0, 1]])


def test_nearest_neighbours_exclude_self_and_come_nearest_first() -> None:
    found = nearest_neighbours(VECTORS, k=2, block=4)  # two blocks: the self-exclusion must use global rows
    assert found.index[:, 0].tolist() == [1, 0, 3, 2, 1, 3]
    assert found.similarity[0, 0] == pytest.approx(float(VECTORS[0] @ VECTORS[1]))
    assert (found.index != np.arange(6)[:, None]).all()
    assert np.all(np.diff(found.similarity, axis=1) <= 0)


def test_conflicting_duplicates_flag_only_the_side_the_model_disagrees_with() -> None:
    labels = np.array([0, 1, 1, 1, 0, 2])
    probs = np.full((6, 3), 0.1)
    probs[[0, 1], 0] = 0.8  # the model reads examples 0 and 1 as class 0
    probs[[2, 3, 4], 1] = 0.8
    probs[5, 2] = 0.8
    conflicts = conflicting_duplicates(labels, probs, nearest_neighbours(VECTORS, k=2), threshold=0.95)
    assert [(c.example, c.suggested, c.partner) for c in conflicts] == [(1, 0, 0)]
    assert conflicts[0].similarity == pytest.approx(float(VECTORS[0] @ VECTORS[1]))


def test_outlier_score_is_one_minus_the_mean_neighbour_similarity() -> None:
    found = nearest_neighbours(VECTORS, k=2)
    assert outlier_scores(found) == pytest.approx(1.0 - found.similarity.mean(axis=1))
    assert outlier_scores(found).argmax() == 5  # (0, 0, 1) is orthogonal to everything else


def test_outliers_lie_beyond_tukeys_fence() -> None:
    scores = np.array([0.30, 0.32, 0.35, 0.31, 0.33, 0.34, 0.36, 0.90, 0.40])
    # Q1 0.32, Q3 0.36: the fence is 0.42.
    assert np.flatnonzero(outlier_mask(scores)).tolist() == [7]
    assert not outlier_mask(np.array([0.5, 0.9, 0.1])).any()  # too few to tell


def test_near_duplicates_share_a_group_and_then_a_fold() -> None:
    groups = near_duplicate_groups(nearest_neighbours(VECTORS, k=2), threshold=0.95)
    assert groups.tolist() == [0, 0, 2, 2, 4, 5]
    assert keep_groups_together(np.array([1, 0, 2, 1, 0, 2]), groups).tolist() == [1, 1, 2, 2, 0, 2]
