"""Texts longer than max_length, as a policy (data.long_text) rather than a silent truncation.

  truncate   the first max_length tokens (what encode_texts does; the default)
  head_tail  the first ~1/4 and the last ~3/4 of the token budget (Sun et al. 2019, "How to fine-tune BERT for
             text classification": head 128 + tail 382 of 510 was their best at 512; the ratio is kept at any length)
  chunk      overlapping windows of max_length tokens, `stride` tokens shared by neighbours; every window is
             one row for the model, and the rows of a document are aggregated back into one prediction

Each window (and a head_tail text) is framed exactly as the tokenizer frames a whole text: its leading special
tokens and any fixed prefix a normaliser adds (multilingual-e5's 'query: '), then the content, then the closing
special tokens, so the model reads windows as it reads texts. No torch: the ONNX prediction path uses this.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from fmkit.data.tokenized import EncodedTexts, encode_texts
from fmkit.errors import ConfigError

LongTextMode = Literal["truncate", "head_tail", "chunk"]
Aggregate = Literal["mean", "max", "vote"]
LONG_TEXT_MODES: tuple[str, ...] = ("truncate", "head_tail", "chunk")
AGGREGATES: tuple[str, ...] = ("mean", "max", "vote")

# Sun et al. 2019: head 128 of 510 content tokens at max_length 512.
HEAD_SHARE = 128 / 510


@dataclass(frozen=True)
class LongTextPolicy:
    """How a text longer than max_length becomes model input; saved in fmkit.json as `long_text`."""

    mode: str = "truncate"
    stride: int = 0  # chunk: tokens of overlap between neighbouring windows
    aggregate: str = "mean"  # chunk: how window probabilities become a document's

    @property
    def chunked(self) -> bool:
        return self.mode == "chunk"

    def to_meta(self) -> dict[str, Any]:
        return {"mode": self.mode, "stride": self.stride, "aggregate": self.aggregate}

    @classmethod
    def from_meta(cls, meta: dict[str, Any] | None) -> LongTextPolicy:
        """A saved model's policy; models saved before fmkit recorded one truncate."""
        if not meta:
            return cls()
        policy = cls(str(meta.get("mode", "truncate")), int(meta.get("stride", 0)), str(meta.get("aggregate", "mean")))
        if policy.mode not in LONG_TEXT_MODES or policy.aggregate not in AGGREGATES:
            raise ConfigError(f"fmkit.json: long_text {meta} is not a policy this fmkit knows "
                              f"(modes {', '.join(LONG_TEXT_MODES)}; aggregates {', '.join(AGGREGATES)}).")
        return policy


@dataclass(frozen=True)
class Framing:
    """The tokens the tokenizer puts around any text's content: [CLS] (+ a normaliser's prefix) ... [SEP]."""

    prefix: tuple[int, ...]
    suffix: tuple[int, ...]

    @classmethod
    def of(cls, tokenizer: Any) -> Framing:
        # The common start of two different texts is the prefix; what the empty text has after it, the suffix.
        empty, probe = tokenizer(["", "x"], truncation=False, padding=False, return_attention_mask=False,
                                 return_token_type_ids=False, verbose=False)["input_ids"]
        shared = 0
        while shared < min(len(empty), len(probe)) and empty[shared] == probe[shared]:
            shared += 1
        return cls(tuple(empty[:shared]), tuple(empty[shared:]))

    @property
    def size(self) -> int:
        return len(self.prefix) + len(self.suffix)

    def content(self, ids: list[int]) -> list[int]:
        """The text's own tokens: `ids` without the framing (a text the tokenizer framed differently whole)."""
        head, tail = len(self.prefix), len(self.suffix)
        if tuple(ids[:head]) == self.prefix and (tail == 0 or tuple(ids[len(ids) - tail:]) == self.suffix):
            return ids[head : len(ids) - tail]
        return ids

    def frame(self, content: Sequence[int]) -> list[int]:
        return [*self.prefix, *content, *self.suffix]


def content_budget(max_length: int, framing: Framing) -> int:
    budget = max_length - framing.size
    if budget < 2:
        raise ConfigError(f"data.max_length={max_length} leaves no room for text after the tokenizer's "
                          f"{framing.size} special tokens; raise data.max_length.")
    return budget


def head_tail(content: Sequence[int], budget: int) -> list[int]:
    """The first round(budget * 128/510) tokens and the last of the rest; the whole text if it fits."""
    if len(content) <= budget:
        return list(content)
    head = round(budget * HEAD_SHARE)
    tail = budget - head
    return [*content[:head], *content[len(content) - tail:]]


def window_starts(length: int, size: int, stride: int) -> list[int]:
    """Where windows of `size` tokens start so that neighbours share `stride` tokens and the last one ends
    at the text's end (it shares more when the text does not divide evenly: no short final window)."""
    if stride >= size:
        raise ConfigError(f"data.chunk_stride={stride} must be smaller than the window's {size} text tokens "
                          "(data.max_length minus the special tokens); lower data.chunk_stride.")
    if length <= size:
        return [0]
    step = size - stride
    starts = list(range(0, length - size, step))
    starts.append(length - size)
    return starts


def split_windows(content: Sequence[int], size: int, stride: int) -> list[list[int]]:
    return [list(content[start : start + size]) for start in window_starts(len(content), size, stride)]


@dataclass
class EncodedDocuments:
    """Rows for the model (one per window; one per text unless chunked) and the document each row belongs to."""

    rows: EncodedTexts
    document: np.ndarray  # row -> index of its text
    documents: int

    @property
    def chunks_per_document(self) -> np.ndarray:
        return np.bincount(self.document, minlength=self.documents)

    def row_weights(self) -> np.ndarray:
        """1 / (windows of its document), scaled to mean 1 over the rows: every document weighs the same in the
        loss whatever its length, and the loss keeps the scale the learning rate was tuned for."""
        weights = 1.0 / self.chunks_per_document[self.document]
        return (weights * len(weights) / weights.sum()).astype(np.float32)


def encode_documents(tokenizer: Any, texts: Sequence[str], max_length: int, policy: LongTextPolicy,
                     labels: np.ndarray | None = None) -> EncodedDocuments:
    """Token ids of `texts` under `policy`; a chunked text's windows each carry its label (a row of `labels`)."""
    if policy.mode == "truncate":
        rows = encode_texts(tokenizer, texts, max_length, labels)
        return EncodedDocuments(rows, np.arange(len(texts), dtype=np.int64), len(texts))
    framing = Framing.of(tokenizer)
    budget = content_budget(max_length, framing)
    ids: list[list[int]] = []
    owner: list[int] = []
    step = 4096
    for start in range(0, len(texts), step):
        whole = tokenizer(list(texts[start : start + step]), truncation=False, padding=False,
                          return_attention_mask=False, return_token_type_ids=False, verbose=False)["input_ids"]
        for offset, text_ids in enumerate(whole):
            content = framing.content(list(text_ids))
            pieces = (split_windows(content, budget, policy.stride) if policy.chunked
                      else [head_tail(content, budget)])
            ids.extend(framing.frame(piece) for piece in pieces)
            owner.extend([start + offset] * len(pieces))
    document = np.asarray(owner, dtype=np.int64)
    row_labels = labels[document] if labels is not None else None
    return EncodedDocuments(EncodedTexts(ids, row_labels), document, len(texts))


def mean_per_document(values: np.ndarray, document: np.ndarray, documents: int) -> np.ndarray:
    """The mean of each document's rows of `values` (window probabilities, or window vectors)."""
    sums = np.zeros((documents, values.shape[1]), dtype=np.float64)
    np.add.at(sums, document, values)
    return sums / np.bincount(document, minlength=documents)[:, None]


def aggregate_probabilities(probs: np.ndarray, document: np.ndarray, documents: int, how: str) -> np.ndarray:
    """Per-document class probabilities from per-window ones (rows of `probs`, owners in `document`).

    mean: the average window distribution. max: each class's highest window probability, renormalised (one
    window that is sure decides). vote: the share of windows whose top class each class is (ties go to the
    mean probability, so the argmax is never decided by class order)."""
    if len(probs) == len(document) == documents and np.array_equal(document, np.arange(documents)):
        return probs
    num = probs.shape[1]
    if how == "mean":
        out = mean_per_document(probs, document, documents)
    elif how == "max":
        out = np.full((documents, num), -np.inf, dtype=np.float64)
        np.maximum.at(out, document, probs)
        out = out / out.sum(axis=1, keepdims=True)
    elif how == "vote":
        votes = np.zeros((documents, num), dtype=np.float64)
        np.add.at(votes, (document, probs.argmax(axis=1)), 1.0)
        mean = aggregate_probabilities(probs, document, documents, "mean")
        # A tie between the top vote counts is broken by the mean probability, kept below one vote's weight.
        out = (votes + 1e-3 * mean) / (votes.sum(axis=1, keepdims=True) + 1e-3)
    else:
        raise ConfigError(f"data.chunk_aggregate: {how!r} is not one of {', '.join(AGGREGATES)}.")
    return out.astype(np.float32)


def chunk_histogram(chunks_per_document: np.ndarray) -> dict[str, int]:
    """How many documents had 1, 2, 3-4, 5-8, 9-16, >16 windows (the report's line)."""
    edges = ((1, 1), (2, 2), (3, 4), (5, 8), (9, 16))
    out = {(f"{lo}" if lo == hi else f"{lo}-{hi}"): int(((chunks_per_document >= lo) & (chunks_per_document <= hi)).sum())
           for lo, hi in edges}
    out[">16"] = int((chunks_per_document > 16).sum())
    return {k: v for k, v in out.items() if v}


# Above this share of texts longer than max_length, `fmkit doctor` recommends a policy other than truncate.
RECOMMEND_ABOVE_SHARE = 0.2


def recommend_policy(lengths: np.ndarray, max_length: int, framing: Framing, current: str, stride: int
                     ) -> dict[str, Any]:
    """doctor's advice from the texts' untruncated token counts: how many would be cut at max_length, how many
    windows `chunk` would make of them, and the flag to use when truncation would lose too much."""
    budget = max(2, max_length - framing.size)
    usable_stride = min(stride, budget - 1)
    windows = np.fromiter((len(window_starts(max(0, int(n) - framing.size), budget, usable_stride)) for n in lengths),
                          dtype=np.int64, count=len(lengths))
    share = float((lengths > max_length).mean()) if len(lengths) else 0.0
    facts: dict[str, Any] = {"current": current, "longer_share": share,
                             "chunk_windows_mean": round(float(windows.mean()), 2) if len(windows) else 0.0,
                             "recommended": current}
    if current == "truncate" and share > RECOMMEND_ABOVE_SHARE:
        facts["recommended"] = "chunk"
        facts["advice"] = (f"{share:.0%} of texts are longer than max_length={max_length} and would lose their end: train with "
                           f"--set data.long_text=chunk to read all of each text ({facts['chunk_windows_mean']:g} windows "
                           "per text on average, about that many times the compute), or with --set "
                           "data.long_text=head_tail to keep each text's beginning and end at no extra cost")
    elif current == "chunk":
        facts["advice"] = f"data.long_text=chunk: {facts['chunk_windows_mean']:g} windows per text on average"
    return facts
