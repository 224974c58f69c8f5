"""The recommender app: behaviour and text together (fmkit.apps.recommend_models.FusionModel).

Built with ratings, the app fits fmkit's fusion model: EASE over each user's recency-weighted history,
plus the similarity of the history's text profile to each item, plus recent popularity, with weights
chosen on a validation split of the ratings (recommend_fit); items nobody rated borrow the behaviour
score of their nearest items by text. Built without ratings (or with --text-only) it is the text
recommender below.

An item's text is "title. Genres: a, b" (or any description column); fmkit's Embedder turns it into a
unit vector. A user vector is the sum of the vectors of the items they rated, each weighted by
(rating - neutral) so disliked items push away, times a recency decay (half-life in days, measured
from the user's latest rating). Candidates are ranked by cosine similarity, optionally blended with
log-popularity, and items the user has seen are excluded. Because items are ranked by their text,
items nobody has rated (cold start) are recommended like any other, and a new user with a few liked
items gets recommendations at once (`recommend_for_items`).

App folder: app.json (settings), items.jsonl (id, title, text), vectors.npy, popularity.npy,
ratings.npz (the histories of known users), and with the fusion model fusion.npz (its arrays; the
settings and validation metrics are in app.json).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fmkit.apps.recommend_models import FusionModel, FusionSettings, Histories
from fmkit.data.readers import check_readable, check_text_file
from fmkit.errors import DataError, FmkitError
from fmkit.utils.folders import read_json_object, refuse_foreign_folder
from fmkit.utils.io import atomic_directory, atomic_write_json
from fmkit.utils.progress import map_in_chunks

APP_KIND = "recommend"


@dataclass
class RecSettings:
    embedder: str
    neutral_rating: float = 2.75
    half_life_days: float = 365.0
    popularity_weight: float = 0.3  # best of 0, 0.1, 0.3, 1 in the MovieLens leave-last-out run (BENCHMARKS.md)


# --- reading -------------------------------------------------------------------------------------------

def _read_csv(path: Path, names: list[str]) -> pd.DataFrame:
    """CSV with or without a header row (the shared MovieLens copy has none)."""
    check_readable(path)
    check_text_file(path)
    first = path.open(encoding="utf-8").readline().split(",")[0].strip().strip('"')
    has_header = not first.replace(".", "").isdigit()
    df = pd.read_csv(path, header=0 if has_header else None, dtype=str, keep_default_na=False)
    if df.shape[1] < len(names):
        raise DataError(f"{path}: expected columns {', '.join(names)}; found {df.shape[1]} column(s).")
    df = df.iloc[:, :len(names)]
    df.columns = names
    return df


def read_items(path: Path | str) -> pd.DataFrame:
    """movies.csv-like: id, title, genres (pipe-separated) -> columns id, title, text."""
    df = _read_csv(Path(path), ["id", "title", "genres"])
    genres = df["genres"].str.replace("(no genres listed)", "", regex=False).str.replace("|", ", ", regex=False)
    df["text"] = np.where(genres.str.len() > 0, df["title"] + ". Genres: " + genres, df["title"])
    if df["id"].duplicated().any():
        raise DataError(f"{path}: item id {df['id'][df['id'].duplicated()].iloc[0]} appears twice.")
    return df[["id", "title", "text"]].reset_index(drop=True)


def read_ratings(path: Path | str) -> pd.DataFrame:
    """ratings.csv-like: user, item, rating, timestamp (epoch seconds)."""
    path = Path(path)
    df = _read_csv(path, ["user", "item", "rating", "ts"])
    try:
        df["rating"] = df["rating"].astype(float)
        df["ts"] = df["ts"].astype(float)
    except ValueError as exc:
        raise DataError(f"{path}: rating and timestamp must be numbers ({exc}).") from None
    return df


# --- the model -----------------------------------------------------------------------------------------

class Recommender:
    def __init__(self, items: pd.DataFrame, vectors: np.ndarray, popularity: np.ndarray, settings: RecSettings,
                 histories: pd.DataFrame | None = None, fusion: FusionModel | None = None) -> None:
        self.items = items.reset_index(drop=True)
        self.vectors = vectors.astype(np.float32)
        self.popularity = popularity.astype(np.float32)
        self.settings = settings
        self.index = {str(i): k for k, i in enumerate(self.items["id"])}
        self.histories = histories
        self.fusion = fusion  # None: the text recommender alone
        self.path: Path | None = None

    @classmethod
    def load(cls, app_dir: Path | str) -> Recommender:
        app_dir = Path(app_dir)
        meta_path = app_dir / "app.json"
        if not meta_path.is_file():
            raise FmkitError(f"{app_dir}: not a recommender app (no app.json); build one with `fmkit app recommend build`.")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("kind") != APP_KIND:
            raise FmkitError(f"{app_dir}: app.json is a '{meta.get('kind')}' app, not a recommender.")
        items = pd.read_json(app_dir / "items.jsonl", lines=True, dtype={"id": str})
        hist = None
        if (app_dir / "ratings.npz").is_file():
            z = np.load(app_dir / "ratings.npz", allow_pickle=False)
            hist = pd.DataFrame({"user": z["user"].astype(str), "item": z["item"].astype(str), "rating": z["rating"],
                                 "ts": z["ts"]})
        vectors = np.load(app_dir / "vectors.npy")
        fusion = None
        if "fusion" in meta:
            with np.load(app_dir / "fusion.npz", allow_pickle=False) as arrays:
                fusion = FusionModel.from_arrays(FusionSettings(**meta["fusion"]["settings"]), vectors, dict(arrays))
        rec = cls(items, vectors, np.load(app_dir / "popularity.npy"), RecSettings(**meta["settings"]), hist, fusion)
        rec.path = app_dir  # the server names the model after it
        return rec

    def user_vectors(self, histories: Sequence[Sequence[tuple[int, float, float]]]) -> np.ndarray:
        """One unit vector per history of (item index, rating, time); zero vector for an empty history."""
        s = self.settings
        out = np.zeros((len(histories), self.vectors.shape[1]), dtype=np.float32)
        for u, hist in enumerate(histories):
            if not hist:
                continue
            idx = np.array([h[0] for h in hist])
            ratings = np.array([h[1] for h in hist], dtype=np.float64)
            ts = np.array([h[2] for h in hist], dtype=np.float64)
            weights = ratings - s.neutral_rating
            if not np.any(weights > 0):
                weights = np.ones_like(weights)  # only low ratings: they are still the best taste signal there is
            age_days = np.nan_to_num((ts.max() - ts) / 86400.0, nan=0.0)  # a new user's liked items have no time
            weights = weights * 0.5 ** (age_days / max(s.half_life_days, 1e-6))
            vec = (weights[:, None] * self.vectors[idx]).sum(0)
            norm = float(np.linalg.norm(vec))
            out[u] = vec / norm if norm > 0 else vec
        return out

    def scores(self, histories: Sequence[Sequence[tuple[int, float, float]]]) -> np.ndarray:
        """(users, items) scores with seen items at -inf; histories of (item index, rating, time) in time order."""
        if self.fusion is not None:
            scores = self.fusion.scores(Histories([np.array([h[0] for h in hist], dtype=np.int64) for hist in histories],
                                                  [np.array([h[2] for h in hist], dtype=np.float64) for hist in histories]))
        else:
            scores = self.user_vectors(histories) @ self.vectors.T
        if self.settings.popularity_weight and self.fusion is None:
            scores = scores + self.settings.popularity_weight * self.popularity[None, :]
        for u, hist in enumerate(histories):
            scores[u, [h[0] for h in hist]] = -np.inf
        return scores

    def top_k(self, histories: Sequence[Sequence[tuple[int, float, float]]], k: int = 10) -> np.ndarray:
        return top_k(self.scores(histories), k)

    def _records(self, row: np.ndarray, scores: np.ndarray) -> list[dict[str, Any]]:
        return [{"id": str(self.items["id"].iloc[i]), "title": str(self.items["title"].iloc[i]),
                 "score": round(float(scores[i]), 4)} for i in row]

    def recommend_for_items(self, liked: Sequence[str], k: int = 10) -> list[dict[str, Any]]:
        """A new user: recommendations from a few liked item ids at once (no retraining); the last one
        counts as the most recent."""
        self.check_request(None, liked)
        # No time: the fusion model's recent popularity then counts the latest window of the ratings.
        hist = [(self.index[str(i)], 5.0, float("nan")) for i in liked]
        scores = self.scores([hist])[0]
        return self._records(top_k(scores[None, :], k)[0], scores)

    def check_request(self, user: str | None, liked: Sequence[str] | None) -> None:
        """DataError/FmkitError naming what is wrong: an unknown user, no liked items, unknown item ids."""
        if user is not None:
            if self.histories is None:
                raise FmkitError("this app was built without ratings; use --liked ITEM_ID ... instead of --user.")
            if not (self.histories["user"] == str(user)).any():
                raise DataError(f"user {user} has no ratings in this app; use --liked ITEM_ID ... for a new user.")
        if liked is not None:
            if not liked:
                raise DataError("no liked items given; name at least one item id.")
            unknown = [i for i in liked if str(i) not in self.index]
            if unknown:
                raise DataError(f"unknown item id(s): {', '.join(map(str, unknown[:5]))}.")

    def recommend_for_user(self, user: str, k: int = 10) -> list[dict[str, Any]]:
        self.check_request(user, None)
        assert self.histories is not None
        rows = self.histories[self.histories["user"] == str(user)].sort_values(["ts", "item"], kind="stable")
        hist = [(self.index[i], r, t) for i, r, t in zip(rows["item"], rows["rating"], rows["ts"], strict=True)
                if i in self.index]
        scores = self.scores([hist])[0]
        return self._records(top_k(scores[None, :], k)[0], scores)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(scores, part, 1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(part, order, 1)


def popularity_vector(items: pd.DataFrame, ratings: pd.DataFrame) -> np.ndarray:
    """log(1 + number of ratings), scaled to [0, 1]."""
    counts = ratings["item"].value_counts()
    pop = np.log1p(items["id"].map(counts).fillna(0).to_numpy(dtype=np.float64))
    return (pop / pop.max() if pop.max() > 0 else pop).astype(np.float32)


def embed_items(items: pd.DataFrame, model: str, embedder: Any | None = None) -> np.ndarray:
    if embedder is None:
        from fmkit.inference.embedder import Embedder

        embedder = Embedder.load(model)
    vectors: np.ndarray = map_in_chunks(embedder.embed, list(items["text"]), "embed items")
    return vectors


def co_liked_pairs(items: pd.DataFrame, ratings: pd.DataFrame, like_threshold: float = 4.0, max_pairs: int = 4000,
                   seed: int = 0) -> list[tuple[str, str]]:
    """(text, text) pairs of items one user liked one after the other: what "liked together" means here."""
    text = dict(zip(items["id"].astype(str), items["text"], strict=True))
    liked = ratings[(ratings["rating"] >= like_threshold) & ratings["item"].isin(text)].sort_values(["user", "ts"])
    pairs: set[tuple[str, str]] = set()
    for _, group in liked.groupby("user"):
        ids = list(group["item"])
        pairs.update((a, b) for a, b in itertools.pairwise(ids) if a != b)
    ordered = sorted(pairs)
    rng = np.random.default_rng(seed)
    chosen = rng.permutation(len(ordered))[:max_pairs]
    return [(text[ordered[i][0]], text[ordered[i][1]]) for i in sorted(chosen)]


def finetune_item_encoder(items: pd.DataFrame, ratings: pd.DataFrame, model: str, run_dir: Path, epochs: float = 1,
                          max_pairs: int = 4000, seed: int = 0, overrides: dict[str, Any] | None = None) -> Path:
    """Fine-tune the encoder on co-liked item pairs with fmkit's embedding workflow; returns its model folder."""
    import fmkit

    pairs = co_liked_pairs(items, ratings, max_pairs=max_pairs, seed=seed)
    if len(pairs) < 10:
        raise DataError(f"only {len(pairs)} co-liked item pairs (ratings >= 4 by one user): too few to fine-tune on.")
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    data = run_dir.parent / f"{run_dir.name}-pairs.jsonl"
    data.write_text("".join(json.dumps({"query": a, "positive": b}, ensure_ascii=False) + "\n" for a, b in pairs),
                    encoding="utf-8")
    fmkit.train(data=str(data), model=model, epochs=epochs, seed=seed, output=str(run_dir),
                **{"task.type": "embedding", **(overrides or {})})
    return run_dir / "model"


def build_recommender(items_path: Path | str, output: Path | str, ratings_path: Path | str | None = None, *,
                      model: str = "all-MiniLM-L6-v2", embedder: Any | None = None, overwrite: bool = False,
                      finetune_epochs: float = 0, text_only: bool = False, **settings: Any) -> dict[str, Any]:
    """Embed the items, fit the fusion model on the ratings (unless text_only) and save the app;
    finetune_epochs > 0 first adapts the encoder to co-liked pairs."""
    output = Path(output)
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise FmkitError(f"{output} already exists; pass --overwrite to replace it.")
    # The build swaps the whole folder, so --overwrite replaces only an app fmkit built there.
    refuse_foreign_folder(output, read_json_object(output / "app.json").get("kind") == APP_KIND, "app.json of a recommender app")
    items = read_items(items_path)
    ratings = read_ratings(ratings_path) if ratings_path else pd.DataFrame(columns=["user", "item", "rating", "ts"])
    with atomic_directory(output) as tmp:
        if finetune_epochs > 0:
            if not len(ratings):
                raise FmkitError("fine-tuning the item encoder needs --ratings.")
            model = str(finetune_item_encoder(items, ratings, model, tmp / "encoder", finetune_epochs))
            embedder = None
        start = time.perf_counter()
        vectors = embed_items(items, model, embedder)
        seconds = time.perf_counter() - start
        # The fine-tuned encoder lives inside the app; its path is recorded relative to survive the final rename.
        model_ref = ("encoder/model" if finetune_epochs > 0
                     else str(Path(model).resolve()) if Path(model).exists() else model)
        np.save(tmp / "vectors.npy", vectors.astype(np.float32))
        np.save(tmp / "popularity.npy", popularity_vector(items, ratings))
        items.to_json(tmp / "items.jsonl", orient="records", lines=True, force_ascii=False)
        fusion = None
        if len(ratings) and not text_only:
            fusion = fit_fusion(items, ratings, vectors)
            # np.savez writes through a file object so the name stays exactly fusion.npz.
            with open(tmp / "fusion.npz", "wb") as fh:
                np.savez(fh, allow_pickle=False, **fusion[0].arrays())
        if len(ratings):
            np.savez(tmp / "ratings.npz", user=ratings["user"].to_numpy(dtype=str), item=ratings["item"].to_numpy(dtype=str),
                     rating=ratings["rating"].to_numpy(dtype=np.float32), ts=ratings["ts"].to_numpy(dtype=np.float64))
        meta: dict[str, Any] = {"kind": APP_KIND, "settings": asdict(RecSettings(embedder=model_ref, **settings)),
                                "items": len(items), "ratings": len(ratings)}
        if fusion is not None:
            meta["fusion"] = {"settings": asdict(fusion[0].settings), "validation": fusion[1]}
        atomic_write_json(tmp / "app.json", meta)
    return {"app_dir": str(output), "items": len(items), "ratings": len(ratings), "embed_seconds": round(seconds, 1),
            "model": "fusion" if fusion is not None else "text", **({"validation": fusion[1]} if fusion else {})}


def fit_fusion(items: pd.DataFrame, ratings: pd.DataFrame, vectors: np.ndarray) -> tuple[FusionModel, dict[str, float]]:
    """fmkit's behaviour + text model on every user's time-ordered ratings, weights chosen on their last ones."""
    from fmkit.apps.recommend_fit import tune_fusion

    index = {str(i): k for k, i in enumerate(items["id"])}
    known = ratings[ratings["item"].isin(index)].sort_values(["user", "ts", "item"], kind="stable")
    groups = [g for _, g in known.groupby("user", sort=False)]
    histories = Histories([g["item"].map(index).to_numpy(dtype=np.int64) for g in groups],
                          [g["ts"].to_numpy(dtype=np.float64) for g in groups])
    settings, validation = tune_fusion(histories, vectors)
    return FusionModel.fit(settings, histories, vectors), validation
