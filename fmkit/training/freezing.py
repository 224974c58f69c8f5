"""Which weights stay fixed during training for speed, whatever the strategy: the word-embedding matrix of
large-vocabulary models (see TrainConfig.freeze_word_embeddings)."""

from __future__ import annotations

from torch import nn

from fmkit.config.schema import LARGE_VOCABULARY


def word_embeddings(model: nn.Module) -> nn.Embedding | None:
    """The model's word-embedding table: its largest nn.Embedding (positions and token types are small)."""
    tables = [m for m in model.modules() if isinstance(m, nn.Embedding)]
    return max(tables, key=lambda m: m.num_embeddings, default=None)


def freeze_word_embeddings(model: nn.Module, setting: bool | None) -> str | None:
    """Apply the setting; return a note for the run record when the matrix was frozen, else None.

    A matrix tied to an output layer (a causal LM's head) is never frozen by default: it is that model's
    output too, not just its input lookup."""
    table = word_embeddings(model)
    if table is None or setting is False or not table.weight.requires_grad:
        return None
    if setting is None:
        tied = sum(p is table.weight for _, p in model.named_parameters(remove_duplicate=False)) > 1
        if table.num_embeddings < LARGE_VOCABULARY or tied:
            return None
    table.weight.requires_grad_(False)
    return (f"word embeddings frozen ({table.num_embeddings:,} x {table.embedding_dim}"
            f"{'' if setting else f': a vocabulary of {LARGE_VOCABULARY:,}+ tokens'})")
