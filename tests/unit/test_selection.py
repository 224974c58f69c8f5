"""Uncertainty, k-center greedy and the mix of both on small arrays with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from fmkit.evaluation.selection import (
    entropy_uncertainty,
    k_center_greedy,
    margin_uncertainty,
    max_similarity,
    mixed_selection,
    top_uncertain,
)


def test_margin_uncertainty() -> None:
    probs = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.6, 0.3, 0.1]])
    assert margin_uncertainty(probs) == pytest.approx([1.0, 0.0, 0.7])


def test_entropy_uncertainty_is_one_for_uniform_and_zero_for_certain() -> None:
    probs = np.array([[0.25] * 4, [1.0, 0.0, 0.0, 0.0]])
    assert entropy_uncertainty(probs) == pytest.approx([1.0, 0.0], abs=1e-9)


def test_top_uncertain_orders_by_uncertainty() -> None:
    picks = top_uncertain(np.array([0.1, 0.9, 0.5, 0.9]), 3)
    assert picks.index.tolist() == [1, 3, 2]  # ties keep pool order
    assert picks.score.tolist() == [0.9, 0.9, 0.5]


# Unit vectors at 0, 10, 90, 180 and 270 degrees.
ANGLES = np.radians([0, 10, 90, 180, 270])
POOL = np.stack([np.cos(ANGLES), np.sin(ANGLES)], axis=1)


def test_k_center_covers_the_pool_from_the_seeds() -> None:
    picks = k_center_greedy(POOL, 3, seeds=POOL[[0]])
    # 180 degrees is farthest from the seed at 0; then 90 and 270 tie (distance 1): the first wins.
    assert picks.index.tolist() == [3, 2, 4]
    assert picks.score == pytest.approx([2.0, 1.0, 1.0])


def test_k_center_without_seeds_starts_far_from_the_mean_and_never_repeats() -> None:
    picks = k_center_greedy(POOL, 5)
    assert sorted(picks.index.tolist()) == [0, 1, 2, 3, 4]
    assert picks.index[0] == 3  # the mean direction leans to ~10 degrees; 180 is opposite
    assert picks.index[-1] in (0, 1)  # the near-duplicate pair is split last
    assert np.isfinite(picks.score).all() and picks.score[0] == pytest.approx(1.0 - np.cos(np.radians(180 - 10 / 3)), abs=0.05)


def test_max_similarity_in_blocks_matches_the_full_matrix() -> None:
    rng = np.random.default_rng(0)
    rows, cols = rng.standard_normal((7, 3)), rng.standard_normal((11, 3))
    assert max_similarity(rows, cols, block=4) == pytest.approx((rows @ cols.T).max(axis=1))


def test_mix_picks_spread_out_points_among_the_uncertain() -> None:
    uncertainty = np.array([0.9, 0.8, 0.1, 0.7, 0.2])
    picks = mixed_selection(POOL, uncertainty, 2, prefilter=2)  # shortlist: 0, 1, 3, 4
    assert picks.index.tolist() == [3, 0]
    assert picks.score.tolist() == [0.7, 0.9]
    assert 2 not in mixed_selection(POOL, uncertainty, 2, prefilter=2).index
