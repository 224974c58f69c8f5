"""Support assistant: BM25, fusion, calibration, hand-off, transcript and HTTP route, on a toy FAQ."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fmkit.apps.bm25 import BM25, tokenize
from fmkit.apps.support import SupportAssistant, Transcript, build_support, calibrate_threshold, read_faq
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
