"""Support assistant: BM25, fusion, calibration, hand-off, transcript and HTTP route, on a toy FAQ."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fmkit.apps.bm25 import BM25, tokenize
from fmkit.apps.support import SupportAssistant, Transcript, build_support, calibrate_threshold, read_faq
from fmkit.apps.support_fusion import EntryScores, FusionWeights, learn_weights, normalise_bm25
from fmkit.errors import DataError
from tests.unit.apps_fakes import BagOfWordsEmbedder

FAQ = """question,answer
How do I reset my password?,Use the Forgot password link.
I forgot my password,Use the Forgot password link.
Lost password cannot log in,Use the Forgot password link.
password reset email never arrived,Use the Forgot password link.
How do I delete my account?,Settings > Account > Delete.
Remove my account permanently,Settings > Account > Delete.
close my account please,Settings > Account > Delete.
delete profile and account data,Settings > Account > Delete.
What are your opening hours?,9am to 5pm on weekdays.
When is the shop open?,9am to 5pm on weekdays.
opening hours on weekdays,9am to 5pm on weekdays.
what time does the shop close,9am to 5pm on weekdays.
"""
CALIBRATION = """query,answer
reset password,Use the Forgot password link.
delete my account,Settings > Account > Delete.
shop opening hours,9am to 5pm on weekdays.
recipe for banana bread,oos
weather forecast tomorrow,oos
"""


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "faq.csv").write_text(FAQ)
    (tmp_path / "cal.csv").write_text(CALIBRATION)
    build_support(tmp_path / "faq.csv", tmp_path / "app", calibration=tmp_path / "cal.csv", embedder=BagOfWordsEmbedder())
    return tmp_path / "app"


def test_tokenize_and_bm25_rank_the_matching_document_first() -> None:
    assert tokenize("How do I reset my Passwords?") == ["reset", "password"]
    index = BM25.build(["reset password", "delete account", "opening hours of the shop"])
    scores = index.scores("password reset please")
    assert scores.argmax() == 0 and scores[1] == 0 and scores[2] == 0
    assert index.scores("unknown words").sum() == 0


def test_chinese_text_is_indexed_as_characters_and_pairs() -> None:
    assert tokenize("退款Apple") == ["退", "款", "退款", "apple"]
    assert tokenize("Café naïve") == ["café", "naïve"]  # letters outside ASCII stay in their words
    index = BM25.build(["如何申请退款", "修改收货地址", "订单什么时候发货"])
    scores = index.scores("我想退款")
    assert scores.argmax() == 0 and scores[1] == 0 and scores[2] == 0
    assert index.scores("什么时候能发货？").argmax() == 2


def test_read_faq_groups_phrasings_by_answer_and_names_bad_rows(tmp_path: Path) -> None:
    (tmp_path / "faq.csv").write_text(FAQ)
    entries = read_faq(tmp_path / "faq.csv")
    assert [len(e.phrasings) for e in entries] == [4, 4, 4]
    (tmp_path / "bad.csv").write_text("question,answer\nhello,\n")
    with pytest.raises(DataError, match="row 2 has an empty answer"):
        read_faq(tmp_path / "bad.csv")


def test_calibrate_threshold_maximises_macro_f1() -> None:
    conf = np.array([0.9, 0.8, 0.7, 0.4, 0.3, 0.2])
    right = np.array([True, True, True, False, False, False])
    report = calibrate_threshold(conf, right)
    assert report["threshold"] == 0.7 and report["macro_f1"] == 1.0
    one_class = calibrate_threshold(np.array([0.9, 0.6]), np.array([True, True]))
    assert one_class["threshold"] == pytest.approx(0.55) and "note" in one_class


def test_answers_in_scope_and_hands_off_out_of_scope(app_dir: Path) -> None:
    meta = json.loads((app_dir / "app.json").read_text())
    assert meta["kind"] == "support" and meta["settings"]["calibration"]["queries"] == 5
    assistant = SupportAssistant.load(app_dir, embedder=BagOfWordsEmbedder())
    reply = assistant.answer("i forgot the password")
    assert reply.answer == "Use the Forgot password link." and not reply.handoff
    assert reply.candidates[0]["id"] == reply.entry_id and len(reply.candidates) == 3
    off = assistant.answer("banana bread recipe")
    assert off.handoff and off.answer is None and off.reason == "low_confidence"
    assert off.confidence < assistant.settings.threshold <= reply.confidence


def test_calibration_hold_out_without_a_file(tmp_path: Path) -> None:
    (tmp_path / "faq.csv").write_text(FAQ)
    result = build_support(tmp_path / "faq.csv", tmp_path / "app", holdout=0.25, embedder=BagOfWordsEmbedder())
    assert result.calibration["queries"] == 3  # one phrasing of each of the 3 answers held out
    assert "fusion_note" not in result.calibration  # no calibration file: embeddings alone, nothing learned
    assert json.loads((tmp_path / "app" / "app.json").read_text())["settings"]["bm25_weight"] == 0.0
    assert result.phrasings == 12  # ... and put back into the index afterwards


def test_transcript_and_http_route(app_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    import fmkit.apps.support_http as http

    # The server loads the app itself: make it use the toy embedder instead of MiniLM.
    real_load = SupportAssistant.load.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(SupportAssistant, "load", classmethod(lambda cls, d, embedder=None: real_load(cls, d, BagOfWordsEmbedder())))
    app = http.create_support_app(app_dir, transcript=tmp_path / "log.jsonl")
    with TestClient(app) as client:
        response = client.post("/v1/support/answer", json={"queries": ["delete my account", "banana bread"], "session": "s1"})
        assert response.status_code == 200, response.text
        replies = response.json()["replies"]
        assert replies[0]["answer"] == "Settings > Account > Delete." and replies[1]["handoff"] is True
        assert client.post("/v1/support/answer", json={"queries": []}).status_code == 422
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [line["session"] for line in lines] == ["s1", "s1"] and lines[1]["handoff"] is True
    Transcript(tmp_path / "t.jsonl").log(SupportAssistant.load(app_dir).answer("close my account"))
    assert json.loads((tmp_path / "t.jsonl").read_text())["answer"] == "Settings > Account > Delete."


def test_intent_classifier_is_trained_joins_the_fusion_and_can_hand_off(tiny_model: Path, tmp_path: Path) -> None:
    faq = "question,answer,intent\n" + "".join(
        f"{q},{a},{i}\n" for q, a, i in [
            ("good movie", "Answer good.", "pos"), ("great film", "Answer good.", "pos"),
            ("bad movie", "Answer bad.", "neg"), ("awful film", "Answer bad.", "neg")])
    (tmp_path / "faq.csv").write_text(faq)
    rows = [("good great film", "pos"), ("great wonderful movie", "pos"), ("bad awful film", "neg"),
            ("terrible worst movie", "neg"), ("the news report", "oos"), ("bank market stock", "oos")] * 6
    (tmp_path / "intents.csv").write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in rows))
    result = build_support(tmp_path / "faq.csv", tmp_path / "app", model=str(tiny_model), intents=tmp_path / "intents.csv",
                           intent_epochs=2, embedder=BagOfWordsEmbedder(),
                           intent_overrides={"train.batch_size": 8, "strategy.name": "full"})
    assert result.intent_model and (tmp_path / "app" / "intent" / "model" / "fmkit.json").is_file()
    assistant = SupportAssistant.load(tmp_path / "app", embedder=BagOfWordsEmbedder())
    assert sorted(assistant.intent_predictor.labels) == ["neg", "oos", "pos"]
    cands = assistant.rank(["great film"])[0]
    assert all(c.intent_prob is not None for c in cands)
    oos = assistant.intent_predictor.labels.index("oos")
    assistant.intent_predictor.predict_proba = lambda texts: np.eye(3)[[oos] * len(texts)]  # type: ignore[method-assign]
    reply = assistant.answer("great film")
    assert reply.handoff and reply.reason == "out_of_scope" and reply.answer is None


# --- learned fusion (support_fusion) ----------------------------------------------------------------

def _scores(question: list[list[float]], bm25: list[list[float]]) -> EntryScores:
    return EntryScores(np.array(question), np.array(bm25))


def test_fusion_weight_is_learned_where_bm25_helps() -> None:
    # Embeddings rank the gold entry 0 first for queries 0-1 and second for queries 2-3 (by 0.04 and 0.08);
    # BM25 puts the gold first on 2-3 and a wrong entry first on 0-1 (so a weight of 0.4 or more breaks those).
    scores = _scores([[0.9, 0.5, 0.1], [0.9, 0.5, 0.1], [0.60, 0.64, 0.1], [0.60, 0.68, 0.1]],
                     [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    choice = learn_weights(scores, [0, 0, 0, 0])
    # 0.05 flips query 2 only; 0.1 is the smallest weight that answers all four right.
    assert choice.weights == FusionWeights(bm25=0.1) and choice.top1_embeddings == 0.5 and choice.top1_fused == 1.0
    assert learn_weights(scores, [0, 0, -1, -1]).weights == FusionWeights()  # the helped queries not labelled: no gain


def test_fusion_weight_stays_at_embeddings_alone_where_bm25_hurts() -> None:
    # Embeddings are right on all four; BM25 prefers a wrong entry on every query.
    scores = _scores([[0.8, 0.7, 0.1]] * 4, [[0.0, 1.0, 0.5]] * 4)
    choice = learn_weights(scores, [0, 0, 0, 0])
    assert choice.weights == FusionWeights() and choice.top1_fused == choice.top1_embeddings == 1.0
    # One more right answer out of 200 is below the 1% margin (2 queries): not "shown to help".
    one_better = _scores([[0.60, 0.64]] + [[0.9, 0.1]] * 199, [[1.0, 0.0]] + [[0.5, 0.5]] * 199)
    noisy = learn_weights(one_better, [0] * 200)
    assert noisy.weights == FusionWeights() and noisy.min_gain == 2 and "needs 2" in noisy.note


def test_normalised_bm25_is_a_share_of_the_best_match() -> None:
    assert normalise_bm25(np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]])).tolist() == [[1.0, 0.5, 0.0], [0.0, 0.0, 0.0]]


def test_build_without_evidence_keeps_embeddings_alone_and_stores_the_answers(app_dir: Path) -> None:
    meta = json.loads((app_dir / "app.json").read_text())
    calibration = meta["settings"]["calibration"]
    # The toy embedder already answers the 3 calibration queries right: nothing for fusion to gain.
    assert calibration["fusion_top1_embeddings_only"] == 1.0 and calibration["fusion_queries"] == 3
    assert meta["settings"]["bm25_weight"] == 0.0 and meta["settings"]["answer_weight"] == 0.0
    assert np.load(app_dir / "answer_vectors.npy").shape == (3, BagOfWordsEmbedder.dim)


def test_handoff_threshold_is_the_weakest_right_answer_when_that_separates(app_dir: Path) -> None:
    from fmkit.apps.support import outcomes, read_queries

    assistant = SupportAssistant.load(app_dir, embedder=BagOfWordsEmbedder())
    pairs = read_queries(app_dir.parent / "cal.csv")
    conf, right = outcomes(assistant, pairs)
    assert right.tolist() == [True, True, True, False, False]
    assert conf[3:].max() < conf[:3].min()  # out-of-scope queries are less similar than any right answer
    assert assistant.settings.threshold == pytest.approx(float(conf[:3].min()))
    assert assistant.settings.calibration["macro_f1"] == 1.0


def test_calibration_with_an_unknown_answer_id_exits_2_naming_the_row(tmp_path: Path) -> None:
    import contextlib
    import io

    from fmkit.cli import main

    (tmp_path / "faq.csv").write_text("id,question,answer\na1,reset password,Use the link.\na1,forgot password,"
                                      "Use the link.\na2,delete account,Settings.\n")
    (tmp_path / "cal.csv").write_text("query,answer\nreset my password,a1\nremove my account,a9\nbanana,oos\n")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["app", "support", "build", "--faq", str(tmp_path / "faq.csv"), "--calibration",
                     str(tmp_path / "cal.csv"), "--output", str(tmp_path / "app")])
    assert code == 2 and not (tmp_path / "app").exists()
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    assert len(lines) == 1 and "cal.csv: row 3" in lines[0] and "'a9'" in lines[0], err.getvalue()
