"""Which labels of a training set look wrong: confident learning, conflicting near-duplicates, outliers.

Pure numpy on out-of-fold predicted probabilities (each example scored by a model that never saw it) and on
unit-length text vectors; `fmkit audit` (workflows/audit.py) computes both and calls these.

Confident learning (Northcutt et al., 2021; cleanlab's `find_label_issues(filter_by='prune_by_noise_rate')`):
  1. per-class threshold t_k = the mean probability of class k over the examples labelled k (self-confidence);
  2. the confident joint C[given, true]: each example counted under the class it confidently belongs to (the
     likeliest of the classes whose threshold it reaches), calibrated so row sums are the label counts;
  3. for each off-diagonal cell C[i, j], the C[i, j] examples labelled i with the largest margin p_j - p_i are
     label issues, keeping at least `min_per_class` examples of each class; an example whose given label is
     also the model's top guess is never one.
Issues are ranked by the normalised margin (p_given - max other p + 1) / 2, lowest first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Probabilities this close to a threshold count as reaching it (float noise of the probe's softmax).
THRESHOLD_SLACK = 1e-6


def stratified_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold (0..folds-1) of each example: every class dealt round-robin over the folds in a random order,
    so each fold holds each class's share (a class with fewer examples than folds is missing from some)."""
    rng = np.random.default_rng(seed)
    assignment = np.empty(len(labels), dtype=np.int64)
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        assignment[members] = (np.arange(len(members)) + int(rng.integers(folds))) % folds
    return assignment


def confident_thresholds(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """t_k: the mean predicted probability of class k over the examples labelled k (1.0 for a class with none,
    so nothing is confidently counted into it)."""
    thresholds = np.ones(probs.shape[1])
    for k in range(probs.shape[1]):
        mine = labels == k
        if mine.any():
            thresholds[k] = float(probs[mine, k].mean())
    return thresholds


def round_keeping_row_sums(matrix: np.ndarray) -> np.ndarray:
    """Integer counts whose every row sums to the (rounded) row sum of `matrix`: largest remainders round up."""
    out = np.floor(matrix).astype(np.int64)
    for row in range(matrix.shape[0]):
        missing = round(float(matrix[row].sum())) - int(out[row].sum())
        if missing > 0:
            order = np.argsort(-(matrix[row] - out[row]), kind="stable")
            out[row, order[:missing]] += 1
    return out


def confident_joint(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """C[given, true] counts, calibrated: row i sums to the number of examples labelled i."""
    num_classes = probs.shape[1]
    confident = probs >= confident_thresholds(labels, probs) - THRESHOLD_SLACK
    counted = confident.any(axis=1)
    # Of the classes an example reaches the threshold of, the likeliest (cleanlab does the same).
    guess = np.where(confident, probs, -np.inf).argmax(axis=1)
    joint = np.zeros((num_classes, num_classes), dtype=np.float64)
    np.add.at(joint, (labels[counted], guess[counted]), 1.0)
    np.fill_diagonal(joint, np.maximum(joint.diagonal(), 1.0))  # every class keeps at least one clean example
    label_counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    calibrated = joint / joint.sum(axis=1, keepdims=True) * label_counts[:, None]
    calibrated = calibrated / max(calibrated.sum(), 1e-12) * label_counts.sum()
    return round_keeping_row_sums(calibrated)


def normalized_margin(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Label quality in [0, 1]: (p_given - the largest other p + 1) / 2; below 0.5 the model prefers another label."""
    given = probs[np.arange(len(labels)), labels]
    others = probs.copy()
    others[np.arange(len(labels)), labels] = -np.inf
    return (given - others.max(axis=1) + 1.0) / 2.0


def find_label_issues(labels: np.ndarray, probs: np.ndarray, min_per_class: int = 1) -> np.ndarray:
    """Boolean mask of the examples whose given label confident learning finds wrong (prune by noise rate)."""
    num_classes = probs.shape[1]
    prune = keep_at_least(confident_joint(labels, probs), min_per_class)
    issues = np.zeros(len(labels), dtype=bool)
    for given in range(num_classes):
        members = np.flatnonzero(labels == given)
        if len(members) <= min_per_class:
            continue
        for true in range(num_classes):
            count = int(prune[given, true])
            if true == given or count <= 0:
                continue
            margin = probs[members, true] - probs[members, given]
            issues[members[np.argsort(-margin, kind="stable")[:count]]] = True
    # The model agreeing with the given label overrules the count (ties go to the given label).
    adjusted = probs.copy()
    adjusted[np.arange(len(labels)), labels] += THRESHOLD_SLACK
    issues[adjusted.argmax(axis=1) == labels] = False
    return issues


def keep_at_least(joint: np.ndarray, n: int) -> np.ndarray:
    """The joint with each diagonal raised to at least n, taking the difference evenly from that row's non-zero
    off-diagonal cells (so at least n examples of each given label are kept)."""
    out = joint.astype(np.float64).copy()
    for given in range(out.shape[0]):
        short = n - out[given, given]
        if short <= 0:
            continue
        off = [j for j in range(out.shape[1]) if j != given and out[given, j] > 0]
        for j in off:
            out[given, j] = max(0.0, out[given, j] - short / len(off))
        out[given, given] = n
    return round_keeping_row_sums(out)


def top_other_label(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """The likeliest label other than the given one: the suggestion for an example whose label looks wrong."""
    others = probs.copy()
    others[np.arange(len(labels)), labels] = -np.inf
    return others.argmax(axis=1)


@dataclass(frozen=True)
class Neighbours:
    """Each example's k nearest other examples by cosine: `index` and `similarity`, (n, k), nearest first."""

    index: np.ndarray
    similarity: np.ndarray


def nearest_neighbours(unit_vectors: np.ndarray, k: int, block: int = 1024) -> Neighbours:
    """Exact k nearest neighbours on unit vectors (cosine = dot product), in row blocks so memory stays
    block x n, never n x n."""
    n = unit_vectors.shape[0]
    k = max(0, min(k, n - 1))
    index = np.zeros((n, k), dtype=np.int64)
    similarity = np.zeros((n, k), dtype=np.float32)
    if k == 0:
        return Neighbours(index, similarity)
    vectors = unit_vectors.astype(np.float32, copy=False)
    for start in range(0, n, block):
        sims = vectors[start : start + block] @ vectors.T
        rows = np.arange(sims.shape[0])
        sims[rows, start + rows] = -np.inf  # not its own neighbour
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top_sims = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_sims, axis=1, kind="stable")
        index[start : start + block] = np.take_along_axis(top, order, axis=1)
        similarity[start : start + block] = np.take_along_axis(top_sims, order, axis=1)
    return Neighbours(index, similarity)


def near_duplicate_groups(neighbours: Neighbours, threshold: float) -> np.ndarray:
    """A group id per example: examples joined by a cosine >= threshold (transitively) share one. The id is
    the group's smallest member."""
    n = neighbours.index.shape[0]
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    rows, cols = np.nonzero(neighbours.similarity >= threshold)
    for i, slot in zip(rows.tolist(), cols.tolist(), strict=True):
        a, b = root(i), root(int(neighbours.index[i, slot]))
        parent[max(a, b)] = min(a, b)
    return np.array([root(i) for i in range(n)])


def keep_groups_together(folds: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Every member of a group moved to the fold of the group's first member: a text's near-copies must not
    train the probe that scores it (a copy with another label would teach the probe that label)."""
    return folds[groups]


@dataclass(frozen=True)
class Conflict:
    """An example whose near-duplicate(s) carry another label that the probe finds likelier."""

    example: int
    suggested: int  # the label its group agrees on
    similarity: float  # to its closest near-duplicate with another label
    partner: int  # that near-duplicate


def conflicting_duplicates(labels: np.ndarray, probs: np.ndarray, neighbours: Neighbours,
                           threshold: float) -> list[Conflict]:
    """Near-duplicates (cosine >= threshold) with different labels. In each group of such texts the label with
    the most out-of-fold probability summed over the group is taken as right; the members labelled otherwise
    are the conflicts (so the likely-right half of a contradicting pair stays)."""
    parent = np.arange(len(labels))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    closest: dict[int, tuple[float, int]] = {}
    rows, cols = np.nonzero(neighbours.similarity >= threshold)
    for i, slot in zip(rows.tolist(), cols.tolist(), strict=True):
        j = int(neighbours.index[i, slot])
        if labels[i] == labels[j]:
            continue
        parent[root(i)] = root(j)
        sim = float(neighbours.similarity[i, slot])
        for a, b in ((i, j), (j, i)):
            if a not in closest or sim > closest[a][0]:
                closest[a] = (sim, b)
    groups: dict[int, list[int]] = {}
    for i in closest:
        groups.setdefault(root(i), []).append(i)
    conflicts: list[Conflict] = []
    for members in groups.values():
        present = np.unique(labels[members])
        support = probs[members][:, present].sum(axis=0)
        agreed = int(present[int(np.argmax(support))])
        for i in sorted(members):
            if labels[i] != agreed:
                conflicts.append(Conflict(i, agreed, closest[i][0], closest[i][1]))
    return conflicts


def outlier_scores(neighbours: Neighbours) -> np.ndarray:
    """1 - mean cosine to the k nearest neighbours: high for a text unlike any other in the set."""
    if neighbours.similarity.shape[1] == 0:
        return np.zeros(neighbours.similarity.shape[0])
    return 1.0 - neighbours.similarity.mean(axis=1).astype(np.float64)


def outlier_mask(scores: np.ndarray) -> np.ndarray:
    """Tukey's rule: scores above Q3 + 1.5 IQR. Nothing in it is tuned to a data set, and outliers are only
    listed for a look (an unusual text may well carry the right label), so the textbook fence is enough."""
    if len(scores) < 4:
        return np.zeros(len(scores), dtype=bool)
    q1, q3 = np.percentile(scores, [25, 75])
    return scores > q3 + 1.5 * (q3 - q1)


__all__ = ["Conflict", "Neighbours", "confident_joint", "confident_thresholds", "conflicting_duplicates",
           "find_label_issues", "keep_at_least", "keep_groups_together", "near_duplicate_groups",
           "nearest_neighbours", "normalized_margin", "outlier_mask",
           "outlier_scores", "round_keeping_row_sums", "stratified_folds", "top_other_label"]
