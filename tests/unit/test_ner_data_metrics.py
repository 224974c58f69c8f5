"""NER data (CoNLL/JSONL readers, tag schemes, alignment, windows) and metrics against seqeval."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from fmkit.data.conll import read_ner, split_words
from fmkit.data.tasks.ner import IGNORE, encode_words, merge_windows, tag_labels
from fmkit.errors import DataError
from fmkit.evaluation.ner_metrics import get_entities, ner_metrics
from fmkit.models.backbone import load_tokenizer

CONLL = """-DOCSTART-\tO

en:John\tB-PER
en:lives\tO
en:in\tO
en:New\tB-LOC
en:York\tI-LOC
\t
en:Acme\tS-ORG
en:Big\tB-ORG
en:Corp\tE-ORG
"""


def test_conll_reader_schemes_prefix_and_blank_tab_lines(tmp_path: Path) -> None:
    path = tmp_path / "a.conll"
    path.write_text(CONLL, encoding="utf-8")
    data = read_ner(path)
    assert data.tokens == [["John", "lives", "in", "New", "York"], ["Acme", "Big", "Corp"]]
    assert data.tags == [["B-PER", "O", "O", "B-LOC", "I-LOC"], ["B-ORG", "B-ORG", "I-ORG"]]
    assert data.warnings == [] and data.entity_types == ["LOC", "ORG", "PER"]


def test_invalid_sequences_repaired_with_warning_and_errors_name_lines(tmp_path: Path) -> None:
    path = tmp_path / "b.conll"
    path.write_text("a\tB-PER\nb\tO\nc\tI-PER\nd\tI-LOC\n", encoding="utf-8")
    data = read_ner(path)
    assert data.tags == [["B-PER", "O", "B-PER", "B-LOC"]]
    assert len(data.warnings) == 1 and "2 invalid tag sequence(s)" in data.warnings[0] and "line 3" in data.warnings[0]
    iob1 = tmp_path / "iob1.conll"  # no B- anywhere: IOB1, converted silently
    iob1.write_text("a\tI-PER\nb\tI-PER\nc\tO\nd\tI-LOC\n", encoding="utf-8")
    assert read_ner(iob1).tags == [["B-PER", "I-PER", "O", "B-LOC"]] and read_ner(iob1).warnings == []
    bad = tmp_path / "bad.conll"
    bad.write_text("a\tO\nlonely\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2: expected 'token<TAB>tag'"):
        read_ner(bad)
    bad.write_text("a\tO\n\nb\tPERSON\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 3: tag 'PERSON'"):
        read_ner(bad)


def test_jsonl_spans(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"text": "Tim Cook visited Paris.", "entities": [{"start": 0, "end": 8, "label": "PER"}, '
                    '{"start": 17, "end": 22, "label": "LOC"}]}\n'
                    '{"tokens": ["Hi", "Bob"], "tags": ["O", "S-PER"]}\n', encoding="utf-8")
    data = read_ner(path)
    assert data.tokens[0] == ["Tim", "Cook", "visited", "Paris", "."]
    assert data.tags == [["B-PER", "I-PER", "O", "B-LOC", "O"], ["O", "B-PER"]]
    assert split_words("U.S. shares, don't") == [("U.S", 0, 3), (".", 3, 4), ("shares", 5, 11), (",", 11, 12),
                                                 ("don't", 13, 18)]
    path.write_text('{"text": "abc", "entities": [{"start": 0, "end": 9, "label": "X"}]}\n', encoding="utf-8")
    with pytest.raises(DataError, match="line 1: entity"):
        read_ner(path)


def test_alignment_first_subtoken_and_windows(tiny_model: Path) -> None:
    tok = load_tokenizer(tiny_model)
    labels = tag_labels(["LOC", "PER"])
    words = ["shares", "jumpxyz", "bank"]  # 'jumpxyz' splits into several sub-tokens
    enc = encode_words(tok, [words], max_length=64, tags=[["B-PER", "I-PER", "O"]], labels=labels)
    assert len(enc) == 1
    firsts = [w for w in enc.first_word[0] if w >= 0]
    assert firsts == [0, 1, 2]
    labelled = [lab for lab in enc.labels[0] if lab != IGNORE]
    assert labelled == [labels.index("B-PER"), labels.index("I-PER"), 0]
    assert len(enc.input_ids[0]) > 5  # the split word adds sub-tokens that carry IGNORE
    long = ["good", "bad"] * 40  # 80 words > max_length 16: windows, nothing dropped
    enc = encode_words(tok, [long], max_length=16, stride=4)
    assert len(enc) > 5 and all(len(ids) <= 16 for ids in enc.input_ids)
    covered = {w for row in enc.first_word for w in row if w >= 0}
    assert covered == set(range(80))
    probs = []
    for row in enc.first_word:  # fake probabilities: label = word index parity, confident
        p = np.zeros((len(row), 3), dtype=np.float32)
        for pos, w in enumerate(row):
            p[pos, (w % 2) + 1 if w >= 0 else 0] = 1
        probs.append(p)
    merged = merge_windows(enc, probs, 3)
    assert merged[0].shape == (80, 3)
    assert merged[0].argmax(1).tolist() == [(i % 2) + 1 for i in range(80)]


def test_entities_and_metrics_match_seqeval() -> None:
    seqeval_metrics = pytest.importorskip("seqeval.metrics")
    from seqeval.metrics.sequence_labeling import get_entities as seqeval_entities

    rng = random.Random(0)
    tags = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    gold = [[rng.choice(tags) for _ in range(rng.randint(1, 12))] for _ in range(300)]
    pred = [[t if rng.random() < 0.7 else rng.choice(tags) for t in sent] for sent in gold]
    for sent in gold[:100]:
        assert get_entities(sent) == seqeval_entities(sent)
    m = ner_metrics(gold, pred)
    assert m["f1"] == pytest.approx(seqeval_metrics.f1_score(gold, pred), abs=1e-12)
    assert m["precision"] == pytest.approx(seqeval_metrics.precision_score(gold, pred), abs=1e-12)
    assert m["recall"] == pytest.approx(seqeval_metrics.recall_score(gold, pred), abs=1e-12)
    report = seqeval_metrics.classification_report(gold, pred, output_dict=True)
    for kind in ("PER", "LOC", "ORG"):
        assert m["per_type"][kind]["f1"] == pytest.approx(report[kind]["f1-score"], abs=1e-12)
        assert m["per_type"][kind]["support"] == report[kind]["support"]
    assert m["token_accuracy"] == pytest.approx(seqeval_metrics.accuracy_score(gold, pred), abs=1e-12)
    small = ner_metrics([["B-PER", "I-PER", "O"]], [["B-PER", "O", "B-LOC"]])
    assert small["f1"] == 0.0 and small["worst_confusions"][0]["count"] == 1
