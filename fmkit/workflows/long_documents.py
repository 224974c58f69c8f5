"""data.long_text in a classification run: the policy from the config, the encoded splits, what data.json and
the vector cache record, and the objective that trains on windows but scores texts (fmkit/data/long_text.py
has the token-level work; the saved model keeps the policy in fmkit.json for predict, serve and export)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from fmkit.config.schema import DataConfig
from fmkit.data.labeled import LabeledTexts
from fmkit.data.long_text import EncodedDocuments, LongTextPolicy, chunk_histogram, encode_documents
from fmkit.data.tasks.classification import LabelMap
from fmkit.data.tokenized import encode_texts
from fmkit.errors import ConfigError
from fmkit.workflows.objectives import ChunkedSingleLabel, Objective, SingleLabel


def long_text_policy(data: DataConfig, pairs: bool) -> LongTextPolicy:
    policy = LongTextPolicy(data.long_text, data.chunk_stride, data.chunk_aggregate)
    if pairs and policy.mode != "truncate":
        raise ConfigError(f"data.long_text={policy.mode} reads single texts; a text-pair classifier truncates the "
                          "longer text of each pair (set data.long_text=truncate).")
    return policy


def encode_split(tokenizer: Any, data: LabeledTexts, max_length: int, policy: LongTextPolicy,
                 labels: LabelMap) -> EncodedDocuments:
    """The split's rows under `policy` (text pairs: truncated, one row each); chunked training rows carry
    their document weight (1 / windows of their text) for the loss."""
    label_ids = labels.encode(data.labels, data.source)
    if data.pairs is not None:
        rows = encode_texts(tokenizer, data.texts, max_length, label_ids, pairs=data.pairs)
        return EncodedDocuments(rows, np.arange(len(rows), dtype=np.int64), len(rows))
    docs = encode_documents(tokenizer, data.texts, max_length, policy, label_ids)
    if policy.chunked:
        docs.rows.weights = docs.row_weights()
    return docs


def long_text_facts(policy: LongTextPolicy, train: EncodedDocuments, evaluation: EncodedDocuments,
                    max_length: int) -> dict[str, Any]:
    """What data.json (and so the report) says about long texts: how many were cut, or how many windows
    each text became."""
    facts: dict[str, Any] = {"long_text": policy.to_meta()}
    if policy.chunked:
        for name, docs in (("train", train), ("eval", evaluation)):
            counts = docs.chunks_per_document
            facts["long_text"][f"{name}_chunks"] = {
                "windows": int(counts.sum()), "texts": docs.documents, "mean": round(float(counts.mean()), 2),
                "max": int(counts.max()), "histogram": chunk_histogram(counts)}
    else:
        # A row at max_length had more tokens than fit (truncate: its end is cut; head_tail: its middle).
        facts["truncated_train_share"] = float(np.mean(train.rows.lengths >= max_length))
    return facts


def cache_keys(policy: LongTextPolicy, docs: EncodedDocuments, texts: Sequence[str]) -> Sequence[str]:
    """What identifies each row in the vector cache: its text when a row is a text cut at max_length (the
    cache key has max_length), else its token ids, which are exactly what its vector depends on."""
    if policy.mode == "truncate":
        return texts
    return [" ".join(map(str, ids)) for ids in docs.rows.input_ids]


def text_objective(policy: LongTextPolicy, labels: LabelMap, class_weights: torch.Tensor | None,
                   train: EncodedDocuments, evaluation: EncodedDocuments, eval_labels: np.ndarray) -> Objective:
    """chunk: windows weighted per text in the loss, scored per text; otherwise one label per row."""
    if not policy.chunked:
        return SingleLabel(labels, class_weights)
    assert train.rows.weights is not None
    return ChunkedSingleLabel(SingleLabel(labels, class_weights), train.rows.weights, evaluation.document,
                              eval_labels, policy.aggregate)
