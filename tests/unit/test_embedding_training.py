"""Embedding fine-tuning: the contrastive loss by hand, pair reading/splitting, a tiny run end to end."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import fmkit
from fmkit.data.tasks.retrieval_pairs import group_split, read_pairs
from fmkit.errors import DataError
from fmkit.inference.embedder import Embedder
from fmkit.models.contrastive import PairVectors, in_batch_negatives_loss


def test_loss_matches_hand_computation_and_masks_shared_positives() -> None:
    torch.manual_seed(0)
    q, p, n = torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4)
    out = PairVectors(q, p, n)
    logits = 20 * F.normalize(q, dim=-1) @ torch.cat([F.normalize(p, dim=-1), F.normalize(n, dim=-1)]).T
    want = -torch.log_softmax(logits, dim=1).diagonal().mean()
    got = in_batch_negatives_loss(out, {"_pos_group": torch.tensor([0, 1, 2])})
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    # queries 0 and 1 share a positive: column 1 is not a negative for query 0 (and vice versa)
    masked = logits.clone()
    masked[0, 1] = masked[1, 0] = float("-inf")
    want_masked = -torch.log_softmax(masked, dim=1).diagonal().mean()
    got_masked = in_batch_negatives_loss(out, {"_pos_group": torch.tensor([5, 5, 2])})
    assert got_masked.item() == pytest.approx(want_masked.item(), rel=1e-5)
    assert in_batch_negatives_loss(PairVectors(q, p, None), {}).item() > 0


def test_read_pairs_and_group_split(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    rows = [{"query": f"q{i}", "positive": f"p{i % 4}"} for i in range(12)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    data = read_pairs(path)
    assert data.negatives is None and len(data) == 12
    train, evaluation = group_split(data, 0.25, seed=0)
    assert not set(train.positives) & set(evaluation.positives)
    assert len(train) + len(evaluation) == 12 and len(set(evaluation.positives)) == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("query,positive\nq1,p1\n,p2\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty 'query' on line\(s\) 3"):
        read_pairs(bad)


def write_pairs(path: Path, n: int, seed: int) -> Path:
    """Queries are paraphrase-ish word bags of their topic's answer; topics are separable by words."""
    topics = {"stock market": ["shares", "stock", "market", "rise", "drop"], "movie review": ["movie", "film", "plot", "actor", "story"],
              "bank profit": ["bank", "profit", "loss", "report", "company"], "feelings": ["happy", "sad", "love", "hate", "boring"]}
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            topic = list(topics)[i % len(topics)]
            words = rng.sample(topics[topic], 3)
            other = list(topics)[(i + 1) % len(topics)]
            fh.write(json.dumps({"query": " ".join(words), "positive": topic, "negative": other}) + "\n")
    return path


def test_tiny_embedding_run(tiny_model: Path, tmp_path: Path) -> None:
    train = write_pairs(tmp_path / "train.jsonl", 64, 0)
    evaluation = write_pairs(tmp_path / "eval.jsonl", 16, 1)
    run = tmp_path / "run"
    fmkit.train(data=str(train), eval=str(evaluation), model=str(tiny_model), epochs=4, output=str(run),
                **{"task.type": "embedding", "strategy.name": "full", "train.progress": False,
                   "train.learning_rate": 1e-3, "train.batch_size": 8, "data.max_length": 16})
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["mrr"] > metrics["baseline"]["mrr"], metrics
    assert metrics["recall@1"] >= 0.75, metrics  # four separable topics
    assert {"recall@5", "recall@10", "ndcg@10"} <= set(metrics)
    meta = json.loads((run / "model" / "fmkit.json").read_text())
    assert meta["task"] == "embedding" and meta["max_length"] == 16
    vecs = Embedder.load(run).embed(["shares stock", "stock market", "movie review"])
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
    assert json.loads((run / "run.json").read_text())["status"] == "finished"

    # `fmkit eval` of the embedding model goes through the task registry: retrieval over the file's pairs.
    from fmkit.cli import main
    from fmkit.tracking import Registry

    assert main(["eval", str(run), "--data", str(evaluation), "--json", "--runs", str(tmp_path / "runs")]) == 0
    evals = [r for r in Registry(tmp_path / "runs").runs() if r.command == "eval"]
    assert len(evals) == 1 and 0 < evals[0].headline()["mrr"] <= 1
    assert evals[0].headline()["mrr"] >= metrics["mrr"] - 1e-9  # fewer distractors than in training's evaluation
