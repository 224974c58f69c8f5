"""NER tag decoding: the whole sentence's most probable valid BIO sequence, not each word's argmax."""

from __future__ import annotations

import itertools

import numpy as np

from fmkit.data.tasks.ner import bio_decode, tag_labels
from fmkit.evaluation.ner_metrics import get_entities

LABELS = tag_labels(["LOC", "ORG"])  # O, B-LOC, I-LOC, B-ORG, I-ORG


def probs_for(rows: list[dict[str, float]]) -> np.ndarray:
    """One row per word; tags not named share what is left of the probability mass."""
    out = np.zeros((len(rows), len(LABELS)))
    for i, row in enumerate(rows):
        rest = (1.0 - sum(row.values())) / (len(LABELS) - len(row))
        out[i] = [row.get(tag, rest) for tag in LABELS]
    return out


def tags(path: np.ndarray) -> list[str]:
    return [LABELS[i] for i in path]


def is_valid(sequence: list[str]) -> bool:
    previous = "O"
    for tag in sequence:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            return False
        previous = tag
    return True


def test_an_i_tag_after_o_becomes_the_begin_of_its_span() -> None:
    # Argmax: O I-ORG I-ORG O, a span that starts with I- (seqeval counts it, but no gold span is written so).
    probs = probs_for([{"O": 0.9}, {"I-ORG": 0.5, "B-ORG": 0.4}, {"I-ORG": 0.8}, {"O": 0.9}])
    assert tags(probs.argmax(1)) == ["O", "I-ORG", "I-ORG", "O"]
    assert tags(bio_decode(probs, LABELS)) == ["O", "B-ORG", "I-ORG", "O"]


def test_one_uncertain_word_does_not_cut_a_span_in_two() -> None:
    # The middle word leans B-LOC alone, but the ORG span around it makes I-ORG the better sequence.
    probs = probs_for([{"B-ORG": 0.9}, {"B-LOC": 0.45, "I-ORG": 0.4}, {"I-ORG": 0.9}])
    assert get_entities(tags(probs.argmax(1))) == [("ORG", 0, 0), ("LOC", 1, 1), ("ORG", 2, 2)]
    assert tags(bio_decode(probs, LABELS)) == ["B-ORG", "I-ORG", "I-ORG"]


def test_confident_valid_argmax_is_kept_and_empty_sentence() -> None:
    probs = probs_for([{"B-LOC": 0.9}, {"I-LOC": 0.9}, {"O": 0.9}, {"B-ORG": 0.9}, {"B-ORG": 0.9}])
    assert bio_decode(probs, LABELS).tolist() == probs.argmax(1).tolist()
    assert bio_decode(np.zeros((0, len(LABELS))), LABELS).tolist() == []


def test_matches_brute_force_over_all_valid_sequences() -> None:
    rng = np.random.default_rng(0)
    for _ in range(30):
        n = int(rng.integers(1, 5))
        probs = rng.dirichlet(np.ones(len(LABELS)) * 0.5, size=n)
        best = max((seq for seq in itertools.product(range(len(LABELS)), repeat=n)
                    if is_valid([LABELS[i] for i in seq])),
                   key=lambda seq: sum(np.log(probs[i, t]) for i, t in enumerate(seq)))
        decoded = bio_decode(probs, LABELS)
        assert is_valid(tags(decoded))
        assert decoded.tolist() == list(best)


def test_labels_outside_bio_are_unconstrained() -> None:
    labels = ["O", "PER", "LOC"]
    probs = np.array([[0.1, 0.8, 0.1], [0.2, 0.1, 0.7]])
    assert bio_decode(probs, labels).tolist() == [1, 2]
