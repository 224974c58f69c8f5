"""A masked-language model for continued pretraining on unlabelled domain text.

`MaskedLanguageModel.from_backbone(path)` loads any encoder folder as a *ForMaskedLM model.
Sentence-embedding checkpoints such as all-MiniLM-L6-v2 ship the body only: the MLM head's
transform layer (dense + LayerNorm) and output bias are then newly initialised (reported in
`new_weights`), and the output projection is tied to the input word embeddings, as in BERT.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from fmkit.errors import ModelError
from fmkit.models.backbone import quiet_transformers


class MaskedLanguageModel(nn.Module):
    """forward(input_ids, attention_mask) -> vocabulary logits; tied weights are saved once."""

    mlm: Any

    def __init__(self, mlm: Any, new_weights: list[str] | None = None) -> None:
        super().__init__()
        self.mlm = mlm
        self.new_weights = sorted(new_weights or [])
        # Tied parameters (decoder = word embeddings) share storage, which safetensors refuses to write
        # twice: checkpoints keep the first name only and the load hook restores the others from it.
        self._tied: dict[str, str] = {}
        first_name: dict[int, str] = {}
        for name, tensor in self.state_dict(keep_vars=True).items():
            ptr = tensor.data_ptr()
            if ptr in first_name:
                self._tied[name] = first_name[ptr]
            else:
                first_name[ptr] = name
        self._register_state_dict_hook(_drop_tied)
        self._register_load_state_dict_pre_hook(_restore_tied)

    @classmethod
    def from_backbone(cls, path: Path, trust_remote_code: bool = False) -> MaskedLanguageModel:
        from transformers import AutoModelForMaskedLM

        quiet_transformers()
        try:
            mlm, info = AutoModelForMaskedLM.from_pretrained(str(path), use_safetensors=True, output_loading_info=True,
                                                             trust_remote_code=trust_remote_code)
        except ValueError as exc:
            raise ModelError(f"{path}: this model has no masked-language-model form ({exc}).") from None
        mlm.tie_weights()
        return cls(mlm, list(info.get("missing_keys", [])))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, predict_mask: torch.Tensor | None = None,
                **_: Any) -> torch.Tensor:
        """Vocabulary logits: (batch, length, vocab), or (masked positions, vocab) when `predict_mask` is given.

        Only ~15% of the tokens are masked, and the vocabulary projection (30k x hidden, plus a softmax over
        30k per token) is a large share of a small encoder's step: with `predict_mask` it runs on those
        positions alone (the loss then reads the labels at the same positions, in the same order).
        """
        head = self._prediction_head()
        if predict_mask is None or head is None:
            logits: torch.Tensor = self.mlm(input_ids=input_ids, attention_mask=attention_mask).logits
            return logits if predict_mask is None else logits[predict_mask]
        hidden = self.mlm.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        selected: torch.Tensor = head(hidden[predict_mask])
        return selected

    def _prediction_head(self) -> nn.Module | None:
        """The module that maps hidden states to vocabulary logits, where the architecture has one (BERT's
        `cls`, RoBERTa's `lm_head`); others take the full forward and a selection of its logits."""
        for name in ("cls", "lm_head"):
            module = getattr(self.mlm, name, None)
            if isinstance(module, nn.Module):
                return module
        return None

    def save_pretrained(self, directory: Path, tokenizer: Any | None = None) -> None:
        """A Hugging Face folder: AutoModel loads the body (any strategy's --model), AutoModelForMaskedLM all of it."""
        self.mlm.save_pretrained(str(directory), safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(str(directory))


def _drop_tied(module: MaskedLanguageModel, state: dict[str, Any], prefix: str, local_metadata: Any) -> None:
    for name in module._tied:
        state.pop(prefix + name, None)


def _restore_tied(module: nn.Module, state: dict[str, Any], prefix: str, *args: Any) -> None:
    assert isinstance(module, MaskedLanguageModel)
    for name, source in module._tied.items():
        if prefix + name not in state and prefix + source in state:
            state[prefix + name] = state[prefix + source]


__all__ = ["MaskedLanguageModel"]
