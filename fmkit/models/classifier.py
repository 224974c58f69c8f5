"""A text classifier is a body (pretrained encoder) plus a head (pooling + linear).

Saved layout (a normal Hugging Face folder plus two small files):
  config.json          encoder config with id2label / label2id
  model.safetensors    encoder weights  -> AutoModel.from_pretrained(dir) loads the body
  head.safetensors     the classification head
  fmkit.json           task, pooling, labels, max_length, precision: what fmkit.load() needs
  tokenizer files
`TextClassifier.from_pretrained(dir)` and `fmkit.load(dir)` load the whole model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from fmkit.errors import ModelError
from fmkit.models.backbone import load_encoder, load_tokenizer
from fmkit.models.heads import ClassificationHead, pool
from fmkit.models.meta import FMKIT_META, HEAD_FILE, read_meta, recorded_precision
from fmkit.models.precision import ResolvedPrecision, bf16_linear_weights, inference_autocast


class TextClassifier(nn.Module):
    """`task` "regression": `labels` is the target's name and the one output a standardised value; `info`
    holds what fmkit.json must carry besides (the target scaling, the text columns)."""

    encoder: Any  # a transformers PreTrainedModel (for prediction, maybe bert_inference.LightBertEncoder)

    def __init__(self, encoder: Any, labels: list[str], pooling: str = "mean", dropout: float = 0.1,
                 max_length: int = 128, precision: str = "fp32", task: str = "classification") -> None:
        super().__init__()
        self.task = task
        self.info: dict[str, Any] = {}
        # Text-pair models: the separator's id. Tokens after the first one get segment (token type) 1, as BERT
        # was pretrained on pairs; computed from the ids here, so no pipeline (collators, ONNX) carries them.
        self.pair_sep_id: int | None = None
        self.encoder = encoder
        self.labels = list(labels)
        self.pooling = pooling
        self.max_length = max_length
        # The precision its reported metrics were computed in (auto|fp32|bf16), what predict uses by default.
        self.precision = precision
        hidden = int(encoder.config.hidden_size)
        self.head = ClassificationHead(hidden, len(labels), dropout)

    @classmethod
    def from_backbone(cls, path: Path, labels: list[str], pooling: str = "mean", dropout: float = 0.1,
                      max_length: int = 128, trust_remote_code: bool = False,
                      task: str = "classification") -> TextClassifier:
        return cls(load_encoder(path, trust_remote_code), labels, pooling, dropout, max_length, task=task)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Pooled text vectors (before the head)."""
        # A batch without padding needs no mask: attention then takes its faster unmasked kernel.
        encoder_mask = None if bool(attention_mask.all()) else attention_mask
        extra: dict[str, torch.Tensor] = {}
        if self.pair_sep_id is not None:
            is_sep = (input_ids == self.pair_sep_id).long()
            extra["token_type_ids"] = (is_sep.cumsum(1) - is_sep).clamp(max=1)  # the first [SEP] ends segment 0
        hidden = self.encoder(input_ids=input_ids, attention_mask=encoder_mask, **extra).last_hidden_state
        return pool(hidden, attention_mask, self.pooling)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_: Any) -> torch.Tensor:
        return self.head(self.embed(input_ids, attention_mask))

    # -- persistence ---------------------------------------------------------------------------
    def save_pretrained(self, directory: Path, tokenizer: Any | None = None) -> None:
        from fmkit.models.bert_inference import refuse_saving

        refuse_saving(self.encoder)  # a prediction-only body: refused before the folder exists
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = self.encoder.config
        config.id2label = dict(enumerate(self.labels))
        config.label2id = {label: i for i, label in enumerate(self.labels)}
        self.encoder.save_pretrained(str(directory), safe_serialization=True)
        head_state = {k: v.detach().contiguous().cpu() for k, v in self.head.state_dict().items()}
        save_file(head_state, str(directory / HEAD_FILE))
        meta = {
            **self.info,
            **({"pair_sep_id": self.pair_sep_id} if self.pair_sep_id is not None else {}),
            "task": self.task,
            "pooling": self.pooling,
            "labels": self.labels,
            "max_length": self.max_length,
            "dropout": float(self.head.dropout.p),
            "precision": self.precision,
        }
        (directory / FMKIT_META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        if tokenizer is not None:
            tokenizer.save_pretrained(str(directory))

    @classmethod
    def from_pretrained(cls, directory: Path | str, trust_remote_code: bool = False, *,
                        for_inference: bool = False) -> TextClassifier:
        """`for_inference`: a BERT body as fmkit's own light encoder where it reproduces BertModel exactly
        (models/bert_inference.py), which loads without importing transformers; prediction only (it cannot
        train or be saved, and export traces the Hugging Face model): the torch prediction backend uses it."""
        directory = Path(directory)
        meta = read_meta(directory)
        from fmkit.config.tasks import TASKS

        task = meta.get("task")
        spec = TASKS.get(str(task))
        if spec is None or not spec.head_model:  # the tasks whose model is this body + linear head
            raise ModelError(f"{directory}: holds a '{task}' model, not a text classifier or regressor.")
        encoder = None
        if for_inference and not trust_remote_code:
            from fmkit.models.bert_inference import load_light_bert

            encoder = load_light_bert(directory)
        if encoder is None:
            encoder = load_encoder(directory, trust_remote_code)
        model = cls(encoder, meta["labels"], meta.get("pooling", "mean"), meta.get("dropout", 0.1),
                    meta.get("max_length", 128), task=str(task))
        model.info = {k: v for k, v in meta.items() if k not in CORE_META}
        model.pair_sep_id = meta.get("pair_sep_id")
        model.head.load_state_dict(load_file(str(directory / HEAD_FILE)))
        model.precision = recorded_precision(meta)
        model.eval()
        return model


CORE_META = ("task", "pooling", "labels", "max_length", "dropout", "precision", "pair_sep_id")


def load_classifier_and_tokenizer(directory: Path | str) -> tuple[TextClassifier, Any]:
    directory = Path(directory)
    return TextClassifier.from_pretrained(directory), load_tokenizer(directory)


@torch.inference_mode()
def predict_logits(model: TextClassifier, loader: Any, num_examples: int,
                   precision: ResolvedPrecision = "fp32") -> torch.Tensor:
    """Logits for every example in input order, whatever order the loader's batches come in."""
    was_training = model.training
    model.eval()
    out = torch.empty(num_examples, len(model.labels))
    device_type = next(model.parameters()).device.type
    with bf16_linear_weights(model, enabled=precision == "bf16"):
        for batch in loader:
            with inference_autocast(precision, device_type):
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            out[batch["index"]] = logits.float().cpu()
    model.train(was_training)
    return out
