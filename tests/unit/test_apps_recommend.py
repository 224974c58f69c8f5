"""Recommender: headerless CSVs, user vectors, seen-item exclusion, cold start, new users, evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fmkit.apps.recommend import Recommender, build_recommender, read_items, read_ratings, top_k
from fmkit.apps.recommend_eval import evaluate_recommender, leave_last_out, rank_metrics
from tests.unit.apps_fakes import BagOfWordsEmbedder

MOVIES = """1,Space Battle (1990),Sci-Fi|Action
2,Space Battle II (1992),Sci-Fi|Action
3,Laugh Riot (1995),Comedy
4,More Laughs (1997),Comedy
5,Galaxy Space War (2001),Sci-Fi|Action
6,"Quiet Drama, The (1999)",Drama
"""
# User 1 likes sci-fi and hates comedy; user 2 likes comedy. Movie 5 was never rated (cold start).
RATINGS = """1,1,5.0,100
1,3,1.0,200
1,2,4.5,300
2,3,5.0,100
2,6,2.0,150
2,4,4.0,400
"""


@pytest.fixture
def data(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "movies.csv").write_text(MOVIES)
    (tmp_path / "ratings.csv").write_text(RATINGS)
    return tmp_path / "movies.csv", tmp_path / "ratings.csv"


def test_readers_handle_headerless_files_and_quoted_titles(data: tuple[Path, Path], tmp_path: Path) -> None:
    items = read_items(data[0])
    assert list(items["id"]) == ["1", "2", "3", "4", "5", "6"]
    assert items["text"][0] == "Space Battle (1990). Genres: Sci-Fi, Action"
    assert items["title"][5] == "Quiet Drama, The (1999)"
    (tmp_path / "with_header.csv").write_text("movieId,title,genres\n" + MOVIES)
    assert len(read_items(tmp_path / "with_header.csv")) == 6
    assert read_ratings(data[1])["rating"].tolist()[:2] == [5.0, 1.0]


def test_recommendations_exclude_seen_items_and_reach_cold_start_items(data: tuple[Path, Path], tmp_path: Path) -> None:
    build_recommender(data[0], tmp_path / "app", data[1], embedder=BagOfWordsEmbedder(), popularity_weight=0.0,
                      text_only=True)  # the text recommender; the fusion model: test_apps_recommend_models.py
    rec = Recommender.load(tmp_path / "app")
    top = rec.recommend_for_user("1", k=3)
    assert top[0]["id"] == "5"  # the never-rated sci-fi film: cold start
    assert not {"1", "2", "3"} & {r["id"] for r in top}
    new_user = rec.recommend_for_items(["3"], k=2)
    assert new_user[0]["id"] == "4"  # a comedy fan gets the other comedy at once
    assert json.loads((tmp_path / "app" / "app.json").read_text())["ratings"] == 6


def test_disliked_items_push_away_and_recency_matters(data: tuple[Path, Path]) -> None:
    items = read_items(data[0])
    vectors = BagOfWordsEmbedder().embed(list(items["text"]))
    from fmkit.apps.recommend import RecSettings

    rec = Recommender(items, vectors, np.zeros(len(items), dtype=np.float32), RecSettings("fake", popularity_weight=0.0))
    hated_comedy = rec.scores([[(0, 5.0, 0.0), (2, 1.0, 0.0)]])[0]
    assert hated_comedy[3] < hated_comedy[4]  # More Laughs below Galaxy Space War
    old_scifi_new_comedy = rec.user_vectors([[(0, 5.0, 0.0), (2, 5.0, 86400.0 * 3650)]])[0]
    assert old_scifi_new_comedy @ vectors[3] > old_scifi_new_comedy @ vectors[4]


def test_top_k_and_metrics_are_exact() -> None:
    scores = np.array([[0.1, 0.9, 0.5, -np.inf], [0.3, 0.2, 0.1, 0.0]])
    assert top_k(scores, 2).tolist() == [[1, 2], [0, 1]]
    metrics = rank_metrics(np.array([[1, 2], [0, 1]]), np.array([2, 3]), n_items=4, k=2)
    assert metrics == {"recall@2": 0.5, "ndcg@2": round(0.5 / np.log2(3), 4), "coverage": 0.75}


def test_leave_last_out_and_evaluation_with_baselines(data: tuple[Path, Path]) -> None:
    ratings = read_ratings(data[1])
    train, test = leave_last_out(ratings)
    assert sorted(zip(test["user"], test["item"], strict=True)) == [("1", "2"), ("2", "4")]
    assert len(train) == 4
    result = evaluate_recommender(*data, embedder=BagOfWordsEmbedder(), k=2)
    assert set(result) >= {"popularity", "item_knn", "content", "content+popularity(0.3)"}
    assert result["users"] == 2 and result["content"]["recall@2"] == 1.0  # Space Battle II / More Laughs by their text
    assert result["cold_items"]["draws"] == 5  # independent draws of held-out items, pooled over their users
    cold = evaluate_recommender(*data, embedder=BagOfWordsEmbedder(), k=2, cold_share=0.5, cold_draws=3)["cold_items"]
    assert cold["draws"] == 3 and cold["held_out_items"] == 3  # half of the 6 films, drawn three times
    assert 1 <= len(cold["fmkit"]["recall@2_per_draw"]) <= 3 and cold["test_users_with_a_held_out_item"] >= 1
    assert {"popularity", "item_knn", "ease"} <= set(cold)  # the baselines on the same users, for comparison


def test_co_liked_pairs_follow_each_users_order(data: tuple[Path, Path]) -> None:
    from fmkit.apps.recommend import co_liked_pairs

    pairs = co_liked_pairs(read_items(data[0]), read_ratings(data[1]))
    assert pairs == [("Space Battle (1990). Genres: Sci-Fi, Action", "Space Battle II (1992). Genres: Sci-Fi, Action"),
                     ("Laugh Riot (1995). Genres: Comedy", "More Laughs (1997). Genres: Comedy")]


def test_build_with_a_fine_tuned_item_encoder(tiny_model: Path, tmp_path: Path) -> None:
    import random

    rng = random.Random(0)
    words = ["good", "great", "bad", "awful", "movie", "film", "plot", "story", "actor", "happy", "sad", "boring"]
    (tmp_path / "movies.csv").write_text("".join(f"{i},{' '.join(rng.sample(words, 3))} ({1990 + i}),Drama\n" for i in range(30)))
    (tmp_path / "ratings.csv").write_text("".join(f"{u},{(u + j) % 30},4.5,{100 * j}\n" for u in range(10) for j in range(4)))
    result = build_recommender(tmp_path / "movies.csv", tmp_path / "app", tmp_path / "ratings.csv", model=str(tiny_model),
                               finetune_epochs=1)
    assert result["items"] == 30
    assert (tmp_path / "app" / "encoder" / "model" / "model.safetensors").is_file()
    rec = Recommender.load(tmp_path / "app")
    assert rec.settings.embedder == "encoder/model" and len(rec.recommend_for_user("3", k=5)) == 5
