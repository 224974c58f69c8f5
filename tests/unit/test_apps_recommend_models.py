"""The recommender's behaviour models: EASE against a direct solve, recency weights, recent popularity,
cold items recommended from text, the validation grid search, the HTTP route and the CLI's bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fmkit.apps.recommend import Recommender, build_recommender
from fmkit.apps.recommend_fit import COLD_NEIGHBOURS, EASE_L2, RECENCY_ITEMS, tune_fusion, validation_split
from fmkit.apps.recommend_models import (
    Ease,
    FusionModel,
    FusionSettings,
    Histories,
    RecentPopularity,
    text_neighbours,
)
from tests.integration.test_bad_input import assert_clean_failure
from tests.unit.apps_fakes import BagOfWordsEmbedder


def direct_ease(x: np.ndarray, l2: float) -> np.ndarray:
    precision = np.linalg.inv(x.T @ x + l2 * np.eye(x.shape[1]))
    weights = np.eye(x.shape[1]) - precision @ np.diag(1.0 / np.diag(precision))
    np.fill_diagonal(weights, 0.0)
    return weights


@pytest.mark.parametrize("shape", [(4, 7), (9, 5)])  # fewer users than items: the dual form; more: the primal
def test_ease_matches_the_closed_form_solved_directly(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    x = (rng.random(shape) < 0.5).astype(np.float32)
    ease = Ease.fit(x, l2=2.0)
    assert (ease.weights is None) == (shape[0] < shape[1])
    expected = direct_ease(x.astype(np.float64), 2.0)
    history = rng.random((3, shape[1])).astype(np.float32)
    np.testing.assert_allclose(ease.scores(history), history @ expected, atol=1e-5)
    np.testing.assert_allclose(ease.scores(np.eye(shape[1], dtype=np.float32)), expected, atol=1e-5)
    again = Ease.from_arrays(ease.arrays())
    np.testing.assert_allclose(again.scores(history), history @ expected, atol=1e-5)


def test_recency_weights_and_recent_popularity_are_exact() -> None:
    histories = Histories([np.array([2, 0, 1]), np.array([], dtype=np.int64)], [np.array([0.0, 1.0, 2.0]), np.array([])])
    weighted = histories.recency_weighted(4, recency_items=2.0)
    np.testing.assert_allclose(weighted[0], [np.exp(-0.5), 1.0, np.exp(-1.0), 0.0], rtol=1e-6)
    assert not weighted[1].any()
    np.testing.assert_array_equal(histories.recency_weighted(4, 0.0)[0], [1, 1, 1, 0])
    day = 86400.0
    recent = RecentPopularity(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 5, 9, 10, 10, 30]) * day, n_items=3)
    # Window of 5 days ending at day 10: ratings at days 9 and 10 (day 5 is on the open edge, day 30 in the future).
    np.testing.assert_allclose(recent.scores(np.array([10 * day]), 5.0)[0], np.log1p([0, 1, 2]), rtol=1e-6)
    # No moment (a new user): the window before the last rating overall.
    np.testing.assert_allclose(recent.scores(np.array([np.nan]), 25.0)[0], np.log1p([0, 1, 3]), rtol=1e-6)


def test_text_neighbours_average_the_most_similar_warm_items() -> None:
    vectors = np.array([[1, 0], [0.8, 0.6], [0, 1], [-1, 0]], dtype=np.float32)
    weights = text_neighbours(vectors, cold=np.array([0]), warm=np.array([1, 2, 3]), k=2)
    np.testing.assert_allclose(weights, [[1.0, 0.0, 0.0]])  # item 2 has similarity 0, item 3 is not in the top 2


SCIFI = ["Space Battle", "Space War", "Galaxy Space Quest", "Space Station", "Star Space Fleet"]
COMEDY = ["Laugh Riot", "More Laughs", "Laugh Party", "Big Laugh Night", "Laugh Again"]


def toy_catalogue() -> tuple[list[str], Histories]:
    """Items 0-4 sci-fi, 5-9 comedy. Item 4 (sci-fi) and item 9 (comedy) are never rated: cold."""
    texts = [f"{t}. Genres: Sci-Fi" for t in SCIFI] + [f"{t}. Genres: Comedy" for t in COMEDY]
    seqs = [[0, 1, 2, 3], [1, 0, 3, 2], [2, 3, 0], [5, 6, 7, 8], [6, 5, 8, 7], [7, 8, 5]]
    return texts, Histories([np.array(s) for s in seqs], [np.arange(len(s), dtype=np.float64) for s in seqs])


def test_fusion_recommends_a_cold_item_from_its_text() -> None:
    texts, train = toy_catalogue()
    vectors = BagOfWordsEmbedder().embed(texts)
    model = FusionModel.fit(FusionSettings(ease_l2=1.0, text_weight=0.0, popularity_weight=0.0), train, vectors)
    assert model.warm.tolist() == [True] * 4 + [False] + [True] * 4 + [False]
    user = Histories([np.array([0, 1, 2])], [np.array([0.0, 1.0, 2.0])])  # a sci-fi fan who has not seen 3
    scores = model.scores(user)[0]
    scores[[0, 1, 2]] = -np.inf
    assert np.argsort(-scores)[:2].tolist() == [3, 4]  # the warm sci-fi film, then the cold one
    assert scores[4] > scores[5:].max()  # the never-rated sci-fi film beats every comedy
    plain = Ease.fit(train.binary(10), 1.0).scores(user.binary(10))[0]
    assert plain[4] == 0.0  # EASE alone has nothing to say about it


def test_tuning_picks_settings_from_the_grid_on_the_last_training_items() -> None:
    texts, train = toy_catalogue()
    split = validation_split(train)
    assert split.targets.tolist() == [3, 2, 0, 8, 7, 5]
    assert [len(h) for h in split.histories.items] == [3, 3, 2, 3, 3, 2]
    settings, validation = tune_fusion(train, BagOfWordsEmbedder().embed(texts), k=2)
    assert settings.ease_l2 in EASE_L2 and settings.recency_items in RECENCY_ITEMS
    assert settings.cold_neighbours in COLD_NEIGHBOURS and validation["validation_users"] == 6
    assert validation["recall@2"] == 1.0  # each validation item is one of the two unseen items of its genre


MOVIES = "".join(f"{i},{t} ({1990 + i}),{'Sci-Fi' if i < 5 else 'Comedy'}\n" for i, t in enumerate(SCIFI + COMEDY))
RATINGS = "".join(f"{u},{i},4.0,{100 * n}\n" for u, seq in enumerate([[0, 1, 2, 3], [1, 0, 3, 2], [5, 6, 7, 8], [6, 5, 8]])
                  for n, i in enumerate(seq))


@pytest.fixture
def app(tmp_path: Path) -> Path:
    (tmp_path / "movies.csv").write_text(MOVIES)
    (tmp_path / "ratings.csv").write_text(RATINGS)
    result = build_recommender(tmp_path / "movies.csv", tmp_path / "app", tmp_path / "ratings.csv",
                               embedder=BagOfWordsEmbedder())
    assert result["model"] == "fusion"
    return tmp_path / "app"


def test_the_fusion_model_is_saved_and_served_from_the_app(app: Path) -> None:
    meta = json.loads((app / "app.json").read_text())
    assert set(meta["fusion"]["settings"]) == set(FusionSettings.__dataclass_fields__)
    rec = Recommender.load(app)
    assert rec.fusion is not None and rec.fusion.warm.sum() == 8
    # The comedy fan's two unseen comedies, the rated one (7) and the never-rated one (9), before any sci-fi.
    assert {r["id"] for r in rec.recommend_for_user("3", k=2)} == {"7", "9"}
    assert {r["id"] for r in rec.recommend_for_items(["0", "1"], k=3)} >= {"2", "3"}


def test_http_route_answers_and_validates(app: Path) -> None:
    from fastapi.testclient import TestClient

    from fmkit.apps.recommend_http import create_recommend_app
    from fmkit.config.schema import ServeConfig

    server = create_recommend_app(app, ServeConfig(max_texts_per_request=3))
    with TestClient(server) as client:
        reply = client.post("/v1/recommend", json={"user": "3", "k": 2})
        assert reply.status_code == 200 and {r["id"] for r in reply.json()["items"]} == {"7", "9"}
        assert len(client.post("/v1/recommend", json={"liked": ["0"], "k": 4}).json()["items"]) == 4
        unknown = client.post("/v1/recommend", json={"user": "nobody"})
        assert unknown.status_code == 404 and "nobody" in unknown.json()["error"]
        assert client.post("/v1/recommend", json={"liked": ["0", "zzz"]}).status_code == 404
        for bad in ({"liked": []}, {"user": "3", "liked": ["0"]}, {}, {"user": "3", "k": 0}, {"user": 3},
                    {"user": "3", "extra": 1}):
            assert client.post("/v1/recommend", json=bad).status_code == 422, bad
        assert client.post("/v1/recommend", json={"liked": ["0", "1", "2", "3"]}).status_code == 413
        assert client.get("/ready").json()["task"] == "recommend"


def test_cli_bad_input_exits_2_with_one_clear_line(app: Path, tmp_path: Path) -> None:
    assert_clean_failure(["app", "recommend", "for", str(app), "--user", "404"], ["user 404 has no ratings", "--liked"])
    assert_clean_failure(["app", "recommend", "for", str(app), "--liked", "0", "nope"], ["unknown item id", "nope"])
    assert_clean_failure(["app", "recommend", "for", str(app)], ["--user", "--liked"])
    (tmp_path / "bad.csv").write_text("1,0,five stars,100\n")
    before = sorted(p.name for p in app.iterdir())
    assert_clean_failure(["app", "recommend", "build", "--items", str(tmp_path / "movies.csv"), "--ratings",
                          str(tmp_path / "bad.csv"), "--output", str(app), "--overwrite"], ["bad.csv", "number"])
    assert sorted(p.name for p in app.iterdir()) == before  # the existing app is untouched
