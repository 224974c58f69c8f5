"""Masked-language-model batches: BERT's 15% masking (80% [MASK], 10% random token, 10% unchanged)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fmkit.data.tasks.classification import IndexDataset, LengthGroupedBatches, PaddingCollator
from fmkit.data.tokenized import EncodedTexts

IGNORE_INDEX = -100


class MaskingCollator:
    """Pads like PaddingCollator, then masks. The masks depend only on (seed, the batch's indices), so a
    resumed run and the held-out perplexity see the same masks every time."""

    def __init__(self, encoded: EncodedTexts, tokenizer: Any, probability: float, seed: int) -> None:
        if tokenizer.mask_token_id is None:
            from fmkit.errors import ModelError

            raise ModelError("This tokenizer has no [MASK] token, so the model cannot be pretrained with masked LM.")
        self.padding = PaddingCollator(encoded, int(tokenizer.pad_token_id or 0))
        self.mask_id = int(tokenizer.mask_token_id)
        self.vocab_size = len(tokenizer)
        self.special = np.asarray(sorted(set(tokenizer.all_special_ids)), dtype=np.int64)
        self.probability = probability
        self.seed = seed

    def __call__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        batch = self.padding(indices)
        ids = batch["input_ids"].numpy().copy()
        rng = np.random.default_rng([self.seed, len(indices), *indices[:4]])
        candidates = (batch["attention_mask"].numpy() == 1) & ~np.isin(ids, self.special)
        chosen = candidates & (rng.random(ids.shape) < self.probability)
        labels = np.where(chosen, ids, IGNORE_INDEX)
        roll = rng.random(ids.shape)
        ids[chosen & (roll < 0.8)] = self.mask_id
        random_tokens = chosen & (roll >= 0.8) & (roll < 0.9)
        ids[random_tokens] = rng.integers(0, self.vocab_size, size=int(random_tokens.sum()))
        batch["input_ids"] = torch.from_numpy(ids)
        batch["labels"] = torch.from_numpy(labels)
        # Where the model must predict: it can skip the vocabulary projection everywhere else.
        batch["predict_mask"] = torch.from_numpy(chosen)
        return batch


def make_mlm_loader(encoded: EncodedTexts, tokenizer: Any, batch_size: int, seed: int, shuffle: bool,
                    probability: float = 0.15) -> torch.utils.data.DataLoader[int]:
    sampler = LengthGroupedBatches(encoded.lengths, batch_size, seed, shuffle=shuffle)
    return torch.utils.data.DataLoader(IndexDataset(len(encoded)), batch_sampler=sampler,
                                       collate_fn=MaskingCollator(encoded, tokenizer, probability, seed))


__all__ = ["IGNORE_INDEX", "MaskingCollator", "make_mlm_loader"]
