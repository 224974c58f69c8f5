"""A token classifier (NER) is an encoder plus a per-token head: dropout -> linear over tags.

Saved layout, like TextClassifier's: config.json (id2label/label2id), model.safetensors (the
encoder: AutoModel loads it), head.safetensors, fmkit.json {"task": "ner", labels, max_length,
stride}, tokenizer files. `TokenClassifier.from_pretrained(dir)` loads it whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from fmkit.errors import ModelError
from fmkit.models.backbone import load_encoder
from fmkit.models.heads import ClassificationHead
from fmkit.models.meta import FMKIT_META, HEAD_FILE, read_meta

NER_TASK = "ner"


class TokenClassifier(nn.Module):
    encoder: Any  # a transformers PreTrainedModel (or a peft wrapper of one while LoRA trains)

    def __init__(self, encoder: Any, labels: list[str], dropout: float = 0.1, max_length: int = 128,
                 stride: int | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.labels = list(labels)
        self.max_length = max_length
        self.stride = stride if stride is not None else max_length // 4
        # The same dropout + linear as a text head, applied to every token vector.
        self.head = ClassificationHead(int(encoder.config.hidden_size), len(labels), dropout)

    @classmethod
    def from_backbone(cls, path: Path, labels: list[str], dropout: float = 0.1, max_length: int = 128,
                      stride: int | None = None, trust_remote_code: bool = False) -> TokenClassifier:
        return cls(load_encoder(path, trust_remote_code), labels, dropout, max_length, stride)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_: Any) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(hidden)  # (batch, tokens, labels)

    def save_pretrained(self, directory: Path, tokenizer: Any | None = None) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = self.encoder.config
        config.id2label = dict(enumerate(self.labels))
        config.label2id = {label: i for i, label in enumerate(self.labels)}
        self.encoder.save_pretrained(str(directory), safe_serialization=True)
        save_file({k: v.detach().contiguous().cpu() for k, v in self.head.state_dict().items()},
                  str(directory / HEAD_FILE))
        meta = {"task": NER_TASK, "labels": self.labels, "max_length": self.max_length, "stride": self.stride,
                "dropout": float(self.head.dropout.p), "scheme": "IOB2"}
        (directory / FMKIT_META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        if tokenizer is not None:
            tokenizer.save_pretrained(str(directory))

    @classmethod
    def from_pretrained(cls, directory: Path | str) -> TokenClassifier:
        directory = Path(directory)
        meta = read_meta(directory)
        if meta.get("task") != NER_TASK:
            raise ModelError(f"{directory}: holds a '{meta.get('task')}' model, not an NER model.")
        model = cls.from_backbone(directory, meta["labels"], meta.get("dropout", 0.1), meta.get("max_length", 128),
                                  meta.get("stride"))
        model.head.load_state_dict(load_file(str(directory / HEAD_FILE)))
        model.eval()
        return model


def token_classification_loss(logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy over labelled positions (first sub-token of each word); -100 is ignored."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), batch["labels"].reshape(-1),
                           ignore_index=-100)


@torch.inference_mode()
def predict_window_probs(model: TokenClassifier, loader: Any, num_windows: int) -> list[Any]:
    """Softmax probabilities per window (numpy, unpadded), in window order whatever the batch order."""
    was_training = model.training
    model.eval()
    out: list[Any] = [None] * num_windows
    for batch in loader:
        probs = torch.softmax(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).float(), -1)
        lengths = batch["attention_mask"].sum(1)
        for row, index in enumerate(batch["index"].tolist()):
            out[index] = probs[row, : int(lengths[row])].numpy()
    model.train(was_training)
    return out
