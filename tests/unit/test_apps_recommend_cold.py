"""Cold items (never rated) in fmkit's recommender: the calibrated line that puts their text evidence on the
warm scores' scale, learned on validation histories with items held out, and the pooled cold-item report."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from fmkit.apps.recommend_fit import (
    COLD_SHARE,
    MIN_CALIBRATION_TARGETS,
    calibrate_cold_items,
    calibration_pairs,
    fit_logistic,
    ranked,
    tune_fusion,
    validation_split,
)
from fmkit.apps.recommend_models import FusionModel, FusionSettings, Histories
from tests.unit.apps_fakes import BagOfWordsEmbedder

GENRES = ("space", "laugh", "ghost", "horse")


def genre_world(users: int = 200, per_genre: int = 25, length: int = 8,
                never_rated: int = 0) -> tuple[np.ndarray, Histories]:
    """Items g*per_genre .. g*per_genre+per_genre-1 share the word of genre g (and nothing across genres);
    user u watches `length` random items of genre u % 4, so every unseen item of their genre is equally
    likely next. The last `never_rated` items of each genre are never watched (cold)."""
    rng = np.random.default_rng(0)
    texts = [f"{g} {g}{j}x" for g in GENRES for j in range(per_genre)]
    sequences = [(u % len(GENRES)) * per_genre + rng.choice(per_genre - never_rated, length, replace=False)
                 for u in range(users)]
    return (BagOfWordsEmbedder().embed(texts),
            Histories([np.array(s) for s in sequences], [np.arange(length, dtype=np.float64)] * users))


def genre_of(items: np.ndarray, per_genre: int = 25) -> np.ndarray:
    return np.asarray(items) // per_genre


def test_held_out_items_reach_the_top_k_on_validation() -> None:
    # The defect this replaces: a cold item scored cold_weight * (its text neighbours' average behaviour
    # score), a line through 0, so the grid (0.5 .. 8) could only keep every cold item out of the top k or
    # flood it; validation picked "out" and held-out items had recall 0.0 here.
    vectors, train = genre_world()
    settings, validation = tune_fusion(train, vectors, k=5)
    assert validation["held_out_items_recall@5"] > 0.0
    assert 0.0 < validation["held_out_items_top5_share"] < COLD_SHARE  # some slots, never a flood
    assert settings.cold_offset != 0.0  # the line needs its offset to sit among the warm scores


def test_cold_items_enter_their_own_genre_only_and_warm_order_is_kept() -> None:
    vectors, train = genre_world(never_rated=3)
    settings, _ = tune_fusion(train, vectors, k=5)
    model = FusionModel.fit(settings, train, vectors)
    assert sorted(model.cold_items.tolist()) == [g * 25 + j for g in range(4) for j in (22, 23, 24)]
    top = ranked(model.scores(train), train, 10)
    is_cold = ~model.warm[top]
    assert is_cold.any()  # never-rated items are recommended ...
    user_genre = (np.arange(len(train)) % 4)[:, None]  # user u watches genre u % 4
    assert (genre_of(top[is_cold]) == np.broadcast_to(user_genre, top.shape)[is_cold]).all()  # ... by their text
    # The cold knobs move cold items only: warm items keep the scores (so the order) of the uncalibrated model.
    plain = model.with_settings(replace(settings, cold_offset=0.0, cold_weight=1.0, cold_text_weight=None))
    warm = model.warm
    np.testing.assert_array_equal(model.scores(train)[:, warm], plain.scores(train)[:, warm])


def test_the_cold_line_is_exact() -> None:
    vectors, train = genre_world(never_rated=3)
    settings = FusionSettings(ease_l2=10.0, text_weight=0.2, popularity_weight=0.0, cold_neighbours=5,
                              cold_offset=-0.5, cold_weight=2.0, cold_text_weight=3.0)
    model = FusionModel.fit(settings, train, vectors)
    cold = model.cold_items
    behaviour, text = model.behaviour_scores(train), model.text_scores(train)
    np.testing.assert_allclose(model.scores(train)[:, cold], -0.5 + 2.0 * behaviour[:, cold] + 3.0 * text[:, cold],
                               rtol=1e-6, atol=1e-6)
    # Apps built before the calibration (offset 0, cold text weight unset) score cold items as they did.
    old = model.with_settings(replace(settings, cold_offset=0.0, cold_weight=1.5, cold_text_weight=None))
    np.testing.assert_allclose(old.scores(train)[:, cold], 1.5 * behaviour[:, cold] + 0.2 * text[:, cold],
                               rtol=1e-6, atol=1e-6)


def test_fit_logistic_recovers_the_generating_coefficients() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200_000, 2))
    truth = np.array([-2.0, 1.5, -0.5])
    y = rng.random(len(x)) < 1.0 / (1.0 + np.exp(-(truth[0] + x @ truth[1:])))
    np.testing.assert_allclose(fit_logistic(x, y), truth, atol=0.05)


def test_calibration_equates_the_two_groups_chances() -> None:
    # A cold item scored with the calibrated line has the warm score whose estimated chance of being next
    # equals the cold item's own: checked against the two logistic fits made from the same pairs.
    vectors, train = genre_world(never_rated=3)
    split = validation_split(train)
    model = FusionModel.fit(FusionSettings(ease_l2=100.0, text_weight=0.1, popularity_weight=0.0, cold_neighbours=5),
                            split.histories, vectors)
    _, (_, cold_y) = calibration_pairs(model, split.histories, np.zeros_like(split.targets))
    assert not cold_y.any()  # item 0 is warm: no cold positives, so ...
    assert calibrate_cold_items([(model, split.histories)], np.zeros_like(split.targets)) == (0.0, 1.0, 0.1)  # uncalibrated
    users = np.arange(len(split.targets))
    few = np.where(users < MIN_CALIBRATION_TARGETS - 1, 24 + 25 * (users % 4), split.targets)
    assert calibrate_cold_items([(model, split.histories)], few) == (0.0, 1.0, 0.1)  # too few cold next items
    targets = np.where(users % 3 == 0, 24 + 25 * (users % 4), split.targets)  # a third: a cold item of their genre
    offset, weight, text_weight = calibrate_cold_items([(model, split.histories)], targets)
    (warm_x, warm_y), (cold_x, cold_y) = calibration_pairs(model, split.histories, targets)
    warm, cold = fit_logistic(warm_x, warm_y), fit_logistic(cold_x, cold_y)
    evidence = cold_x[:5]
    line = offset + weight * evidence[:, 0] + text_weight * evidence[:, 1]
    np.testing.assert_allclose(warm[0] + warm[1] * line, cold[0] + evidence @ cold[1:], rtol=1e-4, atol=1e-4)


def test_an_app_saved_before_the_calibration_loads_and_scores_cold_items_as_before(tmp_path: Path) -> None:
    import json

    from fmkit.apps.recommend import Recommender, build_recommender

    texts = [f"{g} {g}{j}x" for g in GENRES for j in range(5)]
    (tmp_path / "movies.csv").write_text("".join(f"{i},{t},Drama\n" for i, t in enumerate(texts)))
    sequences = [[0, 1, 2], [1, 2, 3], [5, 6, 7], [6, 7, 8]]  # items 4 and 9 (and genres 2, 3) never rated
    (tmp_path / "ratings.csv").write_text("".join(f"{u},{i},4.0,{100 * n}\n" for u, seq in enumerate(sequences)
                                                  for n, i in enumerate(seq)))
    build_recommender(tmp_path / "movies.csv", tmp_path / "app", tmp_path / "ratings.csv", embedder=BagOfWordsEmbedder())
    meta = json.loads((tmp_path / "app" / "app.json").read_text())
    for key in ("cold_offset", "cold_text_weight"):  # what an app.json written before these knobs lacks
        meta["fusion"]["settings"].pop(key)
    (tmp_path / "app" / "app.json").write_text(json.dumps(meta))
    rec = Recommender.load(tmp_path / "app")
    assert rec.fusion is not None and rec.fusion.settings.cold_offset == 0.0
    assert rec.fusion.settings.cold_text_weight is None  # so the text weight of warm items, as before
    history = Histories([np.array([0, 1, 2])], [np.array([0.0, 100.0, 200.0])])
    cold, s = rec.fusion.cold_items, rec.fusion.settings
    expected = (s.cold_weight * rec.fusion.behaviour_scores(history)[:, cold]
                + s.text_weight * rec.fusion.text_scores(history)[:, cold])
    np.testing.assert_allclose(rec.fusion.scores(history)[:, cold], expected, rtol=1e-6, atol=1e-6)
    assert len(rec.recommend_for_user("0", k=3)) == 3 and len(rec.recommend_for_items(["5"], k=3)) == 3
