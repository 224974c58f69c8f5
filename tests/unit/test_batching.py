"""LabelMap, length-grouped batches (deterministic in seed+epoch, each index once), padding, and the server's
dynamic batcher isolating a failing request."""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

import numpy as np
import pytest
import torch

from fmkit.data.tasks.classification import (
    TRAIN_PAD_MULTIPLE,
    EncodedTexts,
    LabelMap,
    LengthGroupedBatches,
    PaddingCollator,
    class_weights,
    make_loader,
)
from fmkit.errors import DataError
from fmkit.inference.batching import BatchObserver, DynamicBatcher

# --- LabelMap ----------------------------------------------------------------------------------

def test_label_map_orders_numeric_labels_numerically() -> None:
    assert LabelMap.from_labels(["10", "2", "1", "2"]).labels == ("1", "2", "10")


def test_label_map_orders_text_labels_alphabetically() -> None:
    labels = LabelMap.from_labels(["neutral", "bearish", "bullish", "neutral"])
    assert labels.labels == ("bearish", "bullish", "neutral")
    assert labels.label2id == {"bearish": 0, "bullish": 1, "neutral": 2}
    assert labels.id2label == {0: "bearish", 1: "bullish", 2: "neutral"}
    assert len(labels) == 3


def test_label_map_is_independent_of_input_order() -> None:
    assert LabelMap.from_labels(["b", "a", "c"]) == LabelMap.from_labels(["c", "b", "a", "a"])


def test_label_map_encode() -> None:
    labels = LabelMap.from_labels(["pos", "neg"])
    encoded = labels.encode(["pos", "neg", "pos"])
    assert encoded.dtype == np.int64 and encoded.tolist() == [1, 0, 1]


def test_label_map_encode_unknown_label() -> None:
    with pytest.raises(DataError, match=r"eval\.csv: unknown label 'maybe'; known labels: neg, pos"):
        LabelMap.from_labels(["pos", "neg"]).encode(["pos", "maybe"], source="eval.csv")


# --- length-grouped batches --------------------------------------------------------------------

def lengths(n: int = 1000, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(3, 120, size=n)


@pytest.mark.parametrize("group_by_length", [True, False])
@pytest.mark.parametrize(("n", "batch_size"), [(1000, 32), (97, 8), (5, 16), (1, 1)])
def test_every_index_exactly_once(n: int, batch_size: int, group_by_length: bool) -> None:
    sampler = LengthGroupedBatches(lengths(n), batch_size, seed=1, group_by_length=group_by_length)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(n))
        assert len(batches) == len(sampler) == -(-n // batch_size)
        assert all(1 <= len(b) <= batch_size for b in batches)
        assert sum(len(b) < batch_size for b in batches) <= 1  # only one short batch


def test_deterministic_in_seed_and_epoch() -> None:
    a = LengthGroupedBatches(lengths(), 32, seed=5)
    b = LengthGroupedBatches(lengths(), 32, seed=5)
    a.set_epoch(2)
    b.set_epoch(2)
    assert a.batches() == b.batches()
    assert a.batches() == a.batches()  # iterating twice in one epoch gives the same order (resume relies on it)
    b.set_epoch(3)
    assert a.batches() != b.batches()  # a new epoch reshuffles
    c = LengthGroupedBatches(lengths(), 32, seed=6)
    c.set_epoch(2)
    assert a.batches() != c.batches()  # a new seed reshuffles


def test_grouping_cuts_padding() -> None:
    lens = lengths(4096)

    def padded_tokens(group_by_length: bool) -> int:
        sampler = LengthGroupedBatches(lens, 32, seed=0, group_by_length=group_by_length)
        return sum(int(lens[b].max()) * len(b) for b in sampler)

    real = int(lens.sum())
    assert padded_tokens(True) - real < 0.1 * real  # a few percent of padding
    assert padded_tokens(False) - real > 0.5 * real  # random batches pad a lot on this spread of lengths


def test_grouped_batches_are_still_shuffled() -> None:
    sampler = LengthGroupedBatches(lengths(4096), 32, seed=0)
    firsts = [b[0] for b in sampler]
    maxima = [int(lengths(4096)[b].max()) for b in sampler]
    assert firsts != sorted(firsts)
    assert maxima != sorted(maxima, reverse=True)  # batch order is not longest-first


def test_unshuffled_is_longest_first_and_stable() -> None:
    lens = np.array([3, 9, 9, 1, 5])
    sampler = LengthGroupedBatches(lens, 2, seed=0, shuffle=False)
    assert sampler.batches() == [[1, 2], [4, 0], [3]]
    plain = LengthGroupedBatches(lens, 2, seed=0, shuffle=False, group_by_length=False)
    assert plain.batches() == [[0, 1], [2, 3], [4]]


# --- padding and loaders -----------------------------------------------------------------------

def test_collator_pads_to_the_longest_text_of_the_batch() -> None:
    encoded = EncodedTexts(input_ids=[[5, 6, 7], [8], [9, 10]], labels=np.array([1, 0, 1]))
    batch = PaddingCollator(encoded, pad_token_id=0)([2, 1])
    assert batch["input_ids"].tolist() == [[9, 10], [8, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1], [1, 0]]
    assert batch["labels"].tolist() == [1, 0]
    assert batch["index"].tolist() == [2, 1]


def test_collator_rounds_width_up_to_a_multiple() -> None:
    encoded = EncodedTexts(input_ids=[[5, 6, 7], [8], [1] * 9])
    assert PaddingCollator(encoded, 0, pad_to_multiple_of=8)([0, 1])["input_ids"].shape == (2, 8)
    batch = PaddingCollator(encoded, 0, pad_to_multiple_of=8)([2, 1])
    assert batch["input_ids"].shape == (2, 16)
    assert batch["attention_mask"].sum(dim=1).tolist() == [9, 1]  # the extra columns are masked padding


def test_training_loader_pads_to_the_training_multiple_and_eval_loader_to_the_longest_text() -> None:
    encoded = EncodedTexts(input_ids=[[1] * (i % 13 + 1) for i in range(40)], labels=np.zeros(40, dtype=np.int64))
    for shuffle, multiple in ((True, TRAIN_PAD_MULTIPLE), (False, 1)):
        for batch in make_loader(encoded, 0, 4, seed=0, shuffle=shuffle):
            longest = int(batch["attention_mask"].sum(dim=1).max())
            assert batch["input_ids"].shape[1] == -(-longest // multiple) * multiple


def test_collator_without_labels() -> None:
    batch = PaddingCollator(EncodedTexts(input_ids=[[1, 2]]), pad_token_id=0)([0])
    assert "labels" not in batch


def test_loader_covers_everything_and_does_not_touch_the_global_rng() -> None:
    encoded = EncodedTexts(input_ids=[[1] * (i % 7 + 1) for i in range(50)], labels=np.zeros(50, dtype=np.int64))
    loader = make_loader(encoded, pad_token_id=0, batch_size=8, seed=0, shuffle=True)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    seen = sorted(int(i) for batch in loader for i in batch["index"])
    assert seen == list(range(50))
    assert torch.equal(before, torch.get_rng_state())  # dropout's random stream is the same with or without resume


def test_class_weights_inverse_frequency() -> None:
    weights = class_weights(np.array([0, 0, 0, 1]), num_labels=3)
    # n / (k * count): the absent class gets the weight of a class seen once instead of infinity.
    assert weights.tolist() == pytest.approx([4 / 9, 4 / 3, 4 / 3])


# --- the server's dynamic batcher: one request's failure stays its own --------------------------

POISON = "<poison>"


class Recorder(BatchObserver):
    def __init__(self) -> None:
        self.isolated: list[tuple[str, int, int]] = []

    def batch_isolated(self, op: str, requests: int, failed: int) -> None:
        self.isolated.append((op, requests, failed))


def shout(texts: list[str]) -> list[str]:
    """A deterministic 'model' that, like a tokenizer, fails the whole call on one bad text."""
    if POISON in texts:
        raise TypeError("TextEncodeInput must be Union[TextInputSequence, ...]")
    return [t.upper() for t in texts]


def run_alone(coroutine: Any) -> Any:
    """Run a coroutine on a fresh event loop in its own thread.

    Playwright's sync API (the e2e tests) keeps an event loop running in the main
    thread for the whole session, so asyncio.run() there would refuse to start.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def submit_together(batcher: DynamicBatcher, requests: list[list[str]]) -> list[Any]:
    """Queue every request before the collector wakes, so they all land in one coalesced batch."""
    await batcher.start()
    try:
        return await asyncio.gather(*(batcher.submit("shout", texts) for texts in requests), return_exceptions=True)
    finally:
        await batcher.stop()


def test_a_failing_coalesced_batch_fails_only_the_offending_request() -> None:
    calls: list[list[str]] = []

    def op(texts: list[str]) -> list[str]:
        calls.append(list(texts))
        return shout(texts)

    observer = Recorder()
    batcher = DynamicBatcher({"shout": op}, max_batch_size=64, max_wait_ms=50, observer=observer)
    requests = [["a", "b"], ["c"], ["d", POISON], ["e"], ["f", "g", "h"]]
    results = run_alone(submit_together(batcher, requests))
    assert calls[0] == [t for r in requests for t in r]  # they did share one forward pass first
    assert isinstance(results[2], TypeError) and "TextEncodeInput" in str(results[2])
    for texts, result in zip(requests, results, strict=True):
        if POISON not in texts:
            assert result == shout(texts)  # in order, and what the request gets alone
    assert calls[1:] == requests  # then each request alone, in arrival order
    assert observer.isolated == [("shout", 5, 1)]
    assert batcher.forward_passes == 6


def test_a_request_that_fails_alone_is_not_retried() -> None:
    observer = Recorder()
    batcher = DynamicBatcher({"shout": shout}, max_wait_ms=50, observer=observer)
    [result] = run_alone(submit_together(batcher, [[POISON]]))
    assert isinstance(result, TypeError)
    assert observer.isolated == [] and batcher.forward_passes == 1


def test_an_operation_returning_the_wrong_number_of_results_fails_instead_of_misassigning() -> None:
    batcher = DynamicBatcher({"shout": lambda texts: shout(texts)[:-1]}, max_wait_ms=50)
    results = run_alone(submit_together(batcher, [["a"], ["b", "c"]]))
    assert all(isinstance(r, RuntimeError) and "returned" in str(r) for r in results)
