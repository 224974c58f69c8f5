"""Word embeddings of large-vocabulary models stay fixed by default (training/freezing.py)."""

from __future__ import annotations

import pytest
from transformers import BertConfig, BertForMaskedLM, BertModel

from fmkit.config.schema import LARGE_VOCABULARY, TrainConfig
from fmkit.training.freezing import freeze_word_embeddings, word_embeddings
from fmkit.training.state import build_optimizer


def tiny_bert(vocab: int) -> BertModel:
    return BertModel(BertConfig(vocab_size=vocab, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=16, max_position_embeddings=16))


@pytest.mark.parametrize(("vocab", "setting", "frozen"), [
    (LARGE_VOCABULARY, None, True), (LARGE_VOCABULARY - 1, None, False),
    (100, True, True), (LARGE_VOCABULARY, False, False)])
def test_the_setting_and_the_vocabulary_size_decide(vocab: int, setting: bool | None, frozen: bool) -> None:
    model = tiny_bert(vocab)
    note = freeze_word_embeddings(model, setting)
    assert model.embeddings.word_embeddings.weight.requires_grad is not frozen
    assert (note is not None) is frozen
    assert model.embeddings.position_embeddings.weight.requires_grad  # only the word table
    assert word_embeddings(model) is model.embeddings.word_embeddings


def test_a_frozen_matrix_gets_no_optimizer_state() -> None:
    model = tiny_bert(LARGE_VOCABULARY)
    freeze_word_embeddings(model, None)
    optimizer = build_optimizer(model, TrainConfig())
    trained = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert id(model.embeddings.word_embeddings.weight) not in trained
    assert id(model.encoder.layer[0].output.dense.weight) in trained


def test_a_matrix_tied_to_the_output_layer_trains_by_default() -> None:
    config = BertConfig(vocab_size=LARGE_VOCABULARY, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=16, tie_word_embeddings=True)
    model = BertForMaskedLM(config)
    assert freeze_word_embeddings(model, None) is None
    assert model.bert.embeddings.word_embeddings.weight.requires_grad
