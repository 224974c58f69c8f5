"""A sentence encoder: pretrained encoder + pooling (+ L2 normalisation) -> one vector per text.

Saved layout (a normal Hugging Face folder plus fmkit.json):
  config.json, model.safetensors, tokenizer files   -> AutoModel.from_pretrained(dir) loads the body
  fmkit.json   {"task": "embedding", "pooling", "normalize", "max_length"}
  sentence_bert_config.json + 1_Pooling/config.json  so sentence-transformers can load the folder too
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fmkit.models.backbone import load_encoder
from fmkit.models.heads import pool

EMBEDDING_TASK = "embedding"


class SentenceEncoder(nn.Module):
    encoder: Any  # a transformers PreTrainedModel

    def __init__(self, encoder: Any, pooling: str = "mean", normalize: bool = True, max_length: int = 256) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.normalize = normalize
        self.max_length = max_length

    @property
    def dim(self) -> int:
        return int(self.encoder.config.hidden_size)

    @classmethod
    def from_backbone(cls, path: Path, pooling: str | None = None, normalize: bool = True,
                      max_length: int | None = None, trust_remote_code: bool = False) -> SentenceEncoder:
        """Load any encoder folder; pooling and length default to what the folder itself declares."""
        declared_pooling, declared_length = declared_settings(path)
        return cls(load_encoder(path, trust_remote_code), pooling or declared_pooling, normalize,
                   max_length or declared_length)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_: Any) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        vectors = pool(hidden, attention_mask, self.pooling)
        if self.normalize:
            vectors = nn.functional.normalize(vectors, p=2, dim=-1)
        return vectors

    def save_pretrained(self, directory: Path, tokenizer: Any | None = None) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(str(directory), safe_serialization=True)
        meta = {"task": EMBEDDING_TASK, "pooling": self.pooling, "normalize": self.normalize,
                "max_length": self.max_length}
        (directory / "fmkit.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        # sentence-transformers' own description, so `SentenceTransformer(dir)` works on our output
        (directory / "sentence_bert_config.json").write_text(
            json.dumps({"max_seq_length": self.max_length, "do_lower_case": False}, indent=2) + "\n", encoding="utf-8")
        (directory / "1_Pooling").mkdir(exist_ok=True)
        (directory / "1_Pooling" / "config.json").write_text(json.dumps({
            "word_embedding_dimension": self.dim,
            "pooling_mode_cls_token": self.pooling == "cls",
            "pooling_mode_mean_tokens": self.pooling == "mean",
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        }, indent=2) + "\n", encoding="utf-8")
        modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
        if self.normalize:
            modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        (directory / "modules.json").write_text(json.dumps(modules, indent=2) + "\n", encoding="utf-8")
        if tokenizer is not None:
            tokenizer.save_pretrained(str(directory))


def declared_settings(path: Path) -> tuple[str, int]:
    """(pooling, max_length) a folder declares: fmkit.json first, then sentence-transformers files.

    Falls back to mean pooling and 256 tokens (all-MiniLM-L6-v2's training length) when silent.
    """
    pooling, max_length = "mean", 256
    st_cfg = path / "sentence_bert_config.json"
    if st_cfg.is_file():
        max_length = int(_read_json(st_cfg).get("max_seq_length", max_length))
    pool_cfg = path / "1_Pooling" / "config.json"
    if pool_cfg.is_file() and _read_json(pool_cfg).get("pooling_mode_cls_token"):
        pooling = "cls"
    meta_path = path / "fmkit.json"
    if meta_path.is_file():
        meta = _read_json(meta_path)
        pooling = str(meta.get("pooling", pooling))
        max_length = int(meta.get("max_length", max_length))
    return pooling, max_length


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}  # a broken optional description falls back to defaults; weights are checked elsewhere
    return data if isinstance(data, dict) else {}
