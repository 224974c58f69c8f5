"""Behaviour models of the recommender: popularity, item-kNN, EASE, recent popularity, and fmkit's fusion.

Everything here works on item indices (0..n_items-1) and on `Histories`: each user's items in time
order with their timestamps. Scores are dense (users, items) arrays; callers mask what a user has seen.

EASE (Steck 2019, "Embarrassingly Shallow Autoencoders"): B = I - P diag(1/diag(P)) with
P = (XᵀX + λI)⁻¹ and diag(B) = 0, where X is the binary (user, item) matrix. When there are fewer users
than items (MovieLens small: 671 vs 9,125) P comes from the Woodbury identity,
P = (I - Xᵀ(XXᵀ + λI)⁻¹X) / λ, so only a (users x users) matrix is inverted: the same B, exactly, in
about a second instead of a minute, and without ever storing the (items x items) matrix.

fmkit's model (`FusionModel`) scores an item for a user as

    row_normalised(EASE scores of the recency-weighted history)
    + text_weight * cosine(the history's recency-weighted text profile, the item's text vector)
    + popularity_weight * row_normalised(log(1 + ratings of the item in the window before the user's last rating))

Items nobody interacted with (cold items) have no EASE column. Their evidence is text only: the
behaviour score borrowed from their `cold_neighbours` nearest warm items by text (a similarity-weighted
average of those items' scores for this user) and the text-profile cosine. A cold item scores

    cold_offset + cold_weight * borrowed + cold_text_weight * cosine(profile, item)

a line that puts it on the warm items' scale: `recommend_fit` learns it on validation histories with
some items held out, as the fused score a warm item needs to be as likely to be the user's next item
as the cold one is. An offset is needed because the evidence is centred near 0 while warm items reach
the top 10 only well above it: scaling alone can either keep every cold item out or flood the list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class Histories:
    """Per user: item indices in time order and their timestamps (epoch seconds)."""

    items: Sequence[np.ndarray]
    times: Sequence[np.ndarray]

    def __len__(self) -> int:
        return len(self.items)

    def binary(self, n_items: int) -> np.ndarray:
        """The (users, items) 0/1 matrix of who interacted with what."""
        matrix = np.zeros((len(self.items), n_items), dtype=np.float32)
        for row, items in enumerate(self.items):
            matrix[row, items] = 1.0
        return matrix

    def recency_weighted(self, n_items: int, recency_items: float) -> np.ndarray:
        """The history with weight exp(-steps back / recency_items): the last item 1, older ones less;
        recency_items <= 0 gives every item weight 1 (plain EASE input). A repeated item keeps its
        latest weight."""
        matrix = np.zeros((len(self.items), n_items), dtype=np.float32)
        for row, items in enumerate(self.items):
            if not len(items):
                continue
            steps_back = np.arange(len(items) - 1, -1, -1, dtype=np.float64)
            weights = np.exp(-steps_back / recency_items) if recency_items > 0 else np.ones(len(items))
            matrix[row, items] = weights.astype(np.float32)  # later duplicates overwrite earlier ones
        return matrix

    def last_times(self) -> np.ndarray:
        return np.array([t[-1] if len(t) else np.nan for t in self.times], dtype=np.float64)


def normalise_rows(scores: np.ndarray) -> np.ndarray:
    """Each row divided by its largest absolute value, so components of different scales can be added."""
    peak = np.abs(scores).max(axis=1, keepdims=True)
    return scores / np.where(peak > 0, peak, 1.0)


def popularity_counts(matrix: np.ndarray) -> np.ndarray:
    counts: np.ndarray = matrix.sum(axis=0)
    return counts


def item_knn_scores(train: np.ndarray, users: np.ndarray) -> np.ndarray:
    """Item-kNN with cosine between item columns of `train` and all neighbours: users' rows x similarity."""
    norms = np.linalg.norm(train, axis=0)
    normed = train / np.where(norms > 0, norms, 1.0)
    scores: np.ndarray = (users @ normed.T) @ normed
    return scores


class Ease:
    """EASE item-item weights, kept in whichever form is smaller (see the module docstring)."""

    def __init__(self, l2: float, *, weights: np.ndarray | None = None, train: np.ndarray | None = None,
                 dual: np.ndarray | None = None, diag: np.ndarray | None = None) -> None:
        self.l2 = float(l2)
        self.weights = weights  # primal form: B, (items, items)
        self.train, self.dual, self.diag = train, dual, diag  # dual form: X, (XXᵀ + λI)⁻¹ X, diag(P)

    @classmethod
    def fit(cls, train: np.ndarray, l2: float) -> Ease:
        if l2 <= 0:
            raise ValueError("EASE needs a positive L2 weight (lambda).")
        x = train.astype(np.float64)
        users, items = x.shape
        if users < items:
            inner = np.linalg.inv(x @ x.T + l2 * np.eye(users))
            dual = inner @ x
            diag = (1.0 - np.einsum("ui,ui->i", x, dual)) / l2
            return cls(l2, train=train.astype(np.float32), dual=dual.astype(np.float32), diag=diag)
        precision = np.linalg.inv(x.T @ x + l2 * np.eye(items))
        weights = -precision / np.diag(precision)[None, :]
        np.fill_diagonal(weights, 0.0)
        return cls(l2, weights=weights.astype(np.float32))

    def scores(self, history: np.ndarray) -> np.ndarray:
        """history (users, items) -> history @ B."""
        if self.weights is not None:
            out: np.ndarray = history @ self.weights
            return out
        assert self.train is not None and self.dual is not None and self.diag is not None
        # (hB)_j = h_j - (hP)_j / P_jj, with hP = (h - (h Xᵀ) (XXᵀ+λI)⁻¹ X) / λ
        h_p = (history - (history @ self.train.T) @ self.dual) / self.l2
        return (history - h_p / self.diag[None, :].astype(np.float32)).astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        base = {"ease_l2": np.array(self.l2)}
        if self.weights is not None:
            return {**base, "ease_weights": self.weights}
        assert self.train is not None and self.dual is not None and self.diag is not None
        return {**base, "ease_train": self.train, "ease_dual": self.dual, "ease_diag": self.diag}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Ease:
        l2 = float(arrays["ease_l2"])
        if "ease_weights" in arrays:
            return cls(l2, weights=arrays["ease_weights"])
        return cls(l2, train=arrays["ease_train"], dual=arrays["ease_dual"], diag=arrays["ease_diag"])


class RecentPopularity:
    """How often each item was rated in the `window_days` before a given moment (only the past counts)."""

    def __init__(self, items: np.ndarray, times: np.ndarray, n_items: int) -> None:
        order = np.argsort(times, kind="stable")
        self.items = items[order].astype(np.int64)
        self.times = times[order].astype(np.float64)
        self.n_items = n_items

    @classmethod
    def from_histories(cls, histories: Histories, n_items: int) -> RecentPopularity:
        if not len(histories):
            return cls(np.zeros(0, np.int64), np.zeros(0), n_items)
        return cls(np.concatenate([np.asarray(i, dtype=np.int64) for i in histories.items]),
                   np.concatenate([np.asarray(t, dtype=np.float64) for t in histories.times]), n_items)

    def scores(self, moments: np.ndarray, window_days: float) -> np.ndarray:
        """(len(moments), items) log(1 + count); a NaN moment (no history) counts the last window overall."""
        out = np.zeros((len(moments), self.n_items), dtype=np.float32)
        if not len(self.times):
            return out
        for row, moment in enumerate(moments):
            end = self.times[-1] if np.isnan(moment) else moment
            lo, hi = np.searchsorted(self.times, [end - window_days * SECONDS_PER_DAY, end], side="right")
            out[row] = np.bincount(self.items[lo:hi], minlength=self.n_items)
        return np.log1p(out)


def text_neighbours(vectors: np.ndarray, cold: np.ndarray, warm: np.ndarray, k: int) -> np.ndarray:
    """(cold, warm) weights: each cold item's k most text-similar warm items, similarities (clipped at 0)
    normalised to sum to 1: the average that turns warm items' scores into a cold item's."""
    out = np.zeros((len(cold), len(warm)), dtype=np.float32)
    if not len(cold) or not len(warm):
        return out
    k = min(k, len(warm))
    for start in range(0, len(cold), 1024):
        sims = vectors[cold[start:start + 1024]] @ vectors[warm].T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        picked = np.clip(np.take_along_axis(sims, top, 1), 0.0, None)
        total = picked.sum(1, keepdims=True)
        np.put_along_axis(out[start:start + 1024], top, picked / np.where(total > 0, total, 1.0), 1)
    return out


@dataclass(frozen=True)
class FusionSettings:
    """The fused model's knobs; every one is chosen on a validation split (recommend_fit.GRID)."""

    ease_l2: float = 300.0
    recency_items: float = 5.0  # the weight of an item k steps before the last one is exp(-k / recency_items)
    text_weight: float = 0.3
    popularity_weight: float = 0.1
    popularity_window_days: float = 365.0
    cold_weight: float = 1.0  # a cold item's score per unit of behaviour borrowed from its text neighbours
    cold_neighbours: int = 20
    cold_offset: float = 0.0  # added to every cold item's score (learned; 0 in apps built before it existed)
    cold_text_weight: float | None = None  # a cold item's weight on the text-profile cosine; None: text_weight


class FusionModel:
    """Behaviour (EASE over the recency-weighted history) + text similarity + recent popularity."""

    def __init__(self, settings: FusionSettings, ease: Ease | None, vectors: np.ndarray, warm: np.ndarray,
                 recent: RecentPopularity) -> None:
        self.settings = settings
        self.ease = ease
        self.vectors = vectors.astype(np.float32)
        self.n_items = len(vectors)
        self.warm = np.asarray(warm, dtype=bool)
        self.recent = recent
        self._warm_index = np.flatnonzero(self.warm)
        self._cold_index = np.flatnonzero(~self.warm)
        self._cold_from_warm = text_neighbours(self.vectors, self._cold_index, self._warm_index, settings.cold_neighbours)

    @classmethod
    def fit(cls, settings: FusionSettings, train: Histories, vectors: np.ndarray) -> FusionModel:
        matrix = train.binary(len(vectors))
        warm = matrix.sum(axis=0) > 0
        ease = Ease.fit(matrix, settings.ease_l2) if warm.any() else None
        return cls(settings, ease, vectors, warm, RecentPopularity.from_histories(train, len(vectors)))

    def with_settings(self, settings: FusionSettings) -> FusionModel:
        """The same fitted parts under other blend weights (what the validation grid search varies)."""
        return FusionModel(settings, self.ease, self.vectors, self.warm, self.recent)

    @property
    def cold_items(self) -> np.ndarray:
        return self._cold_index

    def behaviour_scores(self, histories: Histories) -> np.ndarray:
        """Row-normalised EASE scores; cold items get their text neighbours' average (unweighted)."""
        out = np.zeros((len(histories), self.n_items), dtype=np.float32)
        if self.ease is None:
            return out
        weighted = histories.recency_weighted(self.n_items, self.settings.recency_items)
        out = normalise_rows(self.ease.scores(weighted))
        if len(self._cold_index):
            out[:, self._cold_index] = out[:, self._warm_index] @ self._cold_from_warm.T
        return out

    def text_scores(self, histories: Histories) -> np.ndarray:
        profile = histories.recency_weighted(self.n_items, self.settings.recency_items) @ self.vectors
        norms = np.linalg.norm(profile, axis=1, keepdims=True)
        scores: np.ndarray = (profile / np.where(norms > 0, norms, 1.0)) @ self.vectors.T
        return scores

    def popularity_scores(self, histories: Histories) -> np.ndarray:
        return normalise_rows(self.recent.scores(histories.last_times(), self.settings.popularity_window_days))

    def scores(self, histories: Histories) -> np.ndarray:
        """(users, items) scores; the caller masks the items each user has seen."""
        return self.blend(self.behaviour_scores(histories), self.text_scores(histories),
                          self.popularity_scores(histories) if self.settings.popularity_weight else None)

    def blend(self, behaviour: np.ndarray, text: np.ndarray, popularity: np.ndarray | None) -> np.ndarray:
        """Warm items: behaviour + text_weight * text + popularity_weight * popularity; cold items: the
        line of the module docstring over their borrowed behaviour and text."""
        s = self.settings
        total = behaviour + s.text_weight * text
        if popularity is not None and s.popularity_weight:
            total += s.popularity_weight * popularity
        cold = self._cold_index
        if len(cold) and self.ease is not None:
            cold_text = s.text_weight if s.cold_text_weight is None else s.cold_text_weight
            total[:, cold] = s.cold_offset + s.cold_weight * behaviour[:, cold] + cold_text * text[:, cold]
        return total

    def arrays(self) -> dict[str, np.ndarray]:
        """What `from_arrays` needs besides the settings and the item vectors (saved in one .npz)."""
        ease = self.ease.arrays() if self.ease is not None else {}
        return {**ease, "warm": self.warm, "recent_items": self.recent.items, "recent_times": self.recent.times}

    @classmethod
    def from_arrays(cls, settings: FusionSettings, vectors: np.ndarray, arrays: dict[str, np.ndarray]) -> FusionModel:
        ease = Ease.from_arrays(arrays) if "ease_l2" in arrays else None
        recent = RecentPopularity(arrays["recent_items"], arrays["recent_times"], len(vectors))
        return cls(settings, ease, vectors, arrays["warm"], recent)
