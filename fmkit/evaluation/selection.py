"""Which unlabelled texts to label next: uncertainty, diversity (k-center greedy), and a mix of the two.

Pure numpy on a model's predicted probabilities and unit-length text vectors; `fmkit suggest`
(workflows/suggest.py) computes both and calls these.

  uncertainty  the texts the model is least sure of: smallest margin between its top two labels
               (or highest entropy); cheap, but picks near-copies of the same confusion
  diversity    k-center greedy (Sener & Savarese, 2018): each pick is the text farthest from everything
               labelled or picked so far, so the picks cover the pool
  mix          the most uncertain `prefilter` x n texts, then k-center within them: uncertain and spread out
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# mix: how many times n the uncertain shortlist holds before k-center picks n of it.
MIX_PREFILTER = 5


def margin_uncertainty(probs: np.ndarray) -> np.ndarray:
    """1 - (p_top - p_second): 1 when the top two labels tie, 0 when the model is certain."""
    if probs.shape[1] < 2:
        return np.zeros(probs.shape[0])
    top2 = -np.sort(-probs, axis=1)[:, :2]
    return 1.0 - (top2[:, 0] - top2[:, 1])


def entropy_uncertainty(probs: np.ndarray) -> np.ndarray:
    """Entropy of the predicted distribution over log(num_labels): 1 for uniform, 0 for one-hot."""
    if probs.shape[1] < 2:
        return np.zeros(probs.shape[0])
    clipped = np.clip(probs, 1e-12, 1.0)
    return -(clipped * np.log(clipped)).sum(axis=1) / np.log(probs.shape[1])


@dataclass(frozen=True)
class Picks:
    """Chosen pool indices in the order they were chosen, each one's score (its distance to what was covered
    before it for k-center, its uncertainty otherwise) and, where k-center chose, that distance."""

    index: np.ndarray
    score: np.ndarray
    distance: np.ndarray | None = None


def top_uncertain(uncertainty: np.ndarray, n: int) -> Picks:
    order = np.argsort(-uncertainty, kind="stable")[:n]
    return Picks(order, uncertainty[order])


def k_center_greedy(pool: np.ndarray, n: int, seeds: np.ndarray | None = None) -> Picks:
    """n pool indices, each the point farthest (cosine distance on unit vectors) from the seeds and the points
    already picked. Without seeds the first pick is the point farthest from the pool's mean direction."""
    n = min(n, pool.shape[0])
    if n <= 0:
        return Picks(np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0))
    if seeds is not None and len(seeds):
        nearest = 1.0 - max_similarity(pool, seeds)
        first = int(np.argmax(nearest))
        first_distance = float(nearest[first])
    else:
        # Nothing covered yet: start from the text least like the pool's mean direction (its distance to that
        # direction is the first pick's score).
        centre = pool.mean(axis=0)
        centre = centre / max(float(np.linalg.norm(centre)), 1e-12)
        first = int(np.argmin(pool @ centre))
        first_distance = 1.0 - float(pool[first] @ centre)
        nearest = np.full(pool.shape[0], np.inf)
    chosen = np.empty(n, dtype=np.int64)
    distance = np.empty(n)
    for step in range(n):
        pick = first if step == 0 else int(np.argmax(nearest))
        chosen[step], distance[step] = pick, first_distance if step == 0 else nearest[pick]
        nearest = np.minimum(nearest, 1.0 - pool @ pool[pick])
        nearest[pick] = -np.inf  # never again
    return Picks(chosen, distance, distance)


def max_similarity(rows: np.ndarray, columns: np.ndarray, block: int = 4096) -> np.ndarray:
    """Each row's largest dot product with any of `columns`, computed in column blocks so a large labelled set
    never needs a rows x columns matrix at once."""
    best = np.full(rows.shape[0], -np.inf)
    for start in range(0, columns.shape[0], block):
        best = np.maximum(best, (rows @ columns[start : start + block].T).max(axis=1))
    return best


def mixed_selection(pool: np.ndarray, uncertainty: np.ndarray, n: int, seeds: np.ndarray | None = None,
                    prefilter: int = MIX_PREFILTER) -> Picks:
    """k-center greedy within the `prefilter` x n most uncertain texts; scores are the shortlisted texts'
    uncertainties, in pick order."""
    shortlist = top_uncertain(uncertainty, max(n, prefilter * n)).index
    picks = k_center_greedy(pool[shortlist], n, seeds)
    index = shortlist[picks.index]
    return Picks(index, uncertainty[index], picks.distance)


__all__ = ["MIX_PREFILTER", "Picks", "entropy_uncertainty", "k_center_greedy", "margin_uncertainty",
           "max_similarity", "mixed_selection", "top_uncertain"]
