"""`NerPredictor`: texts in, entities out (type, text, character offsets, score), in input order.

Text is split into words exactly as the JSONL reader splits it (fmkit.data.conll.split_words: each
CJK character is a word, as in character-level CoNLL, so Chinese entities start and end at any
character); long texts go through overlapping windows and come back whole. Offsets are in characters
of the input text: text[start:end] is the entity's text. Tags are decoded as a whole sequence in which
every I-X follows B-X or I-X (`bio_decode`), not word by word. The score of an entity is the mean
probability of its words' predicted tags.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fmkit.data.conll import split_words
from fmkit.data.tasks.ner import bio_decode, encode_words, make_ner_loader, merge_windows
from fmkit.evaluation.ner_metrics import get_entities
from fmkit.models.backbone import load_tokenizer
from fmkit.models.meta import saved_model_dir
from fmkit.models.token_classifier import TokenClassifier, predict_window_probs

Record = dict[str, Any]


class NerPredictor:
    def __init__(self, model: TokenClassifier, tokenizer: Any, batch_size: int = 64, path: Path | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.path = path
        self.labels: list[str] = list(model.labels)

    @classmethod
    def load(cls, path: Path | str, batch_size: int = 64) -> NerPredictor:
        path = saved_model_dir(path)
        return cls(TokenClassifier.from_pretrained(path), load_tokenizer(path), batch_size=batch_size, path=path)

    def word_probs(self, sentences: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """(num_words, num_labels) probabilities per sentence of pre-split words."""
        if not sentences:
            return []
        enc = encode_words(self.tokenizer, sentences, self.model.max_length, self.model.stride)
        loader = make_ner_loader(enc, self.tokenizer.pad_token_id or 0, self.batch_size, seed=0, shuffle=False)
        return merge_windows(enc, predict_window_probs(self.model, loader, len(enc)), len(self.labels))

    def predict_tags(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        return [[self.labels[i] for i in bio_decode(p, self.labels)] for p in self.word_probs(sentences)]

    def predict(self, texts: Sequence[str]) -> list[Record]:
        words = [split_words(str(t)) for t in texts]
        probs = self.word_probs([[w for w, _, _ in ws] for ws in words])
        return [self._record(str(text), ws, p) for text, ws, p in zip(texts, words, probs, strict=True)]

    def predict_stream(self, texts: Iterable[str], chunk_size: int = 1024) -> Iterator[Record]:
        iterator = iter(texts)
        while chunk := list(itertools.islice(iterator, chunk_size)):
            yield from self.predict(chunk)

    def _record(self, text: str, words: list[tuple[str, int, int]], probs: np.ndarray) -> Record:
        best = bio_decode(probs, self.labels)
        tags = [self.labels[i] for i in best]
        entities = []
        for kind, first, last in get_entities(tags):
            start, end = words[first][1], words[last][2]
            score = float(np.mean([probs[i, best[i]] for i in range(first, last + 1)]))
            entities.append({"type": kind, "text": text[start:end], "start": start, "end": end,
                             "score": round(score, 6)})
        return {"text": text, "entities": entities}
