"""A BERT encoder for prediction only, loaded from a model folder without importing transformers.

Building the Hugging Face BertModel imports transformers' model machinery, which pulls in torch._dynamo,
torch.distributed.tensor and scipy: about 2 s of a `fmkit predict --backend torch` start-up on a fast CPU,
more on an AVX2 laptop (BENCHMARKS.md, "Start-up"). The network itself is a few dozen lines: this module runs
the same operations in the same order (embeddings, then per layer q/k/v, scaled-dot-product attention with
the padding mask, output dense + residual LayerNorm, GELU feed-forward + residual LayerNorm), reads the
folder's model.safetensors by the Hugging Face parameter names, and gives the same last hidden states
(tests/unit/test_bert_inference.py compares it with BertModel, fp32 and bf16).

It covers only configs it reproduces exactly (`light_bert_config`); for anything else, and for training or
export (which trace the Hugging Face model), fmkit loads the encoder with AutoModel as before. Layers are
nn.Linear so the bf16 prediction path (models/precision.py) swaps their weights as it does for BertModel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional

WEIGHTS_FILE = "model.safetensors"

# config.json keys besides the shape that never change an encoder-only forward pass in eval mode (dropout,
# initialisation, generation and bookkeeping fields), or do only at values checked in _REQUIRED_VALUES. Any other
# key sends the folder to AutoModel: a key this module does not know may change the math.
_NEUTRAL_KEYS = frozenset({
    "_name_or_path", "architectures", "attention_probs_dropout_prob", "hidden_dropout_prob", "classifier_dropout",
    "initializer_range", "gradient_checkpointing", "use_cache", "transformers_version", "id2label", "label2id",
    "bos_token_id", "eos_token_id", "pad_token_id", "sep_token_id", "decoder_start_token_id", "tie_word_embeddings",
    "problem_type", "output_attentions", "output_hidden_states", "return_dict", "use_return_dict", "torchscript",
    "chunk_size_feed_forward", "finetuning_task", "tokenizer_class", "prefix", "task_specific_params",
    "model_type", "dtype", "torch_dtype", "is_decoder", "add_cross_attention", "position_embedding_type",
    "hidden_act", "pruned_heads", "is_encoder_decoder", "tie_encoder_decoder",
})
# The values under which BertModel's forward pass is the one implemented here (a missing key: the default).
_REQUIRED_VALUES: dict[str, tuple[Any, ...]] = {
    "model_type": ("bert",),
    "hidden_act": ("gelu",),  # transformers' "gelu" is the exact (erf) GELU, torch's default
    "position_embedding_type": ("absolute",),
    "is_decoder": (False,),
    "add_cross_attention": (False,),
    "is_encoder_decoder": (False,),
    "pruned_heads": ({},),
    "dtype": ("float32", None),  # transformers loads the recorded dtype; fp32 weights are what this module runs
    "torch_dtype": ("float32", None),
}
_SHAPE_KEYS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size",
               "max_position_embeddings", "type_vocab_size", "layer_norm_eps")


@dataclass
class LightBertConfig:
    """The shape of the network; the rest of config.json is kept in `raw`."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float
    raw: dict[str, Any] = field(default_factory=dict)


def light_bert_config(raw: dict[str, Any]) -> LightBertConfig | None:
    """The config when this module reproduces BertModel for it exactly, else None (use AutoModel)."""
    if raw.get("model_type") != "bert":
        return None
    for key, value in raw.items():
        if key in _SHAPE_KEYS:
            continue
        if key not in _NEUTRAL_KEYS:
            return None
        if key in _REQUIRED_VALUES and value not in _REQUIRED_VALUES[key]:
            return None
    try:
        shape = {key: raw[key] for key in _SHAPE_KEYS}
    except KeyError:  # BertConfig's defaults are not repeated here: a folder that relies on them goes to AutoModel
        return None
    if not all(isinstance(shape[key], int) and not isinstance(shape[key], bool) and shape[key] > 0
               for key in _SHAPE_KEYS[:-1]) or not isinstance(shape["layer_norm_eps"], int | float):
        return None
    if shape["hidden_size"] % shape["num_attention_heads"]:
        return None
    return LightBertConfig(**{**shape, "layer_norm_eps": float(shape["layer_norm_eps"])}, raw=raw)


class EncoderOutput(NamedTuple):
    last_hidden_state: torch.Tensor


def _embedding(rows: int, width: int) -> nn.Embedding:
    # An uninitialised weight (the file provides it): nn.Embedding's own random init on the meta device goes
    # through a Python decomposition that imports torch._dynamo, 1.5 s of start-up.
    return nn.Embedding(rows, width, _weight=torch.empty(rows, width))


# Submodules carry Hugging Face's attribute names, so `state_dict()` keys are the checkpoint's parameter names.
class _Embeddings(nn.Module):
    def __init__(self, config: LightBertConfig) -> None:
        super().__init__()
        self.word_embeddings = _embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = _embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = _embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None) -> torch.Tensor:
        seq_len = input_ids.shape[1]
        if seq_len > self.position_embeddings.num_embeddings:
            raise ValueError(f"{seq_len} tokens: this model reads at most {self.position_embeddings.num_embeddings}")
        # BertModel's order of additions (word + token type, then + position), so the sums round alike.
        # Without token types every token is segment 0, and positions are 0..seq_len-1 in every row.
        types = (self.token_type_embeddings.weight[0] if token_type_ids is None
                 else self.token_type_embeddings(token_type_ids))
        embeddings = self.word_embeddings(input_ids) + types
        embeddings = embeddings + self.position_embeddings.weight[:seq_len]
        return self.LayerNorm(embeddings)


class _QueryKeyValue(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)


class _DenseAddNorm(nn.Module):
    """dense(x) + residual, then LayerNorm: the output block of attention and of the feed-forward."""

    def __init__(self, inputs: int, hidden: int, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(inputs, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class _Attention(nn.Module):
    def __init__(self, config: LightBertConfig) -> None:
        super().__init__()
        self.self = _QueryKeyValue(config.hidden_size)
        self.output = _DenseAddNorm(config.hidden_size, config.hidden_size, config.layer_norm_eps)


class _Intermediate(nn.Module):
    def __init__(self, config: LightBertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)


class _Layer(nn.Module):
    def __init__(self, config: LightBertConfig) -> None:
        super().__init__()
        self.heads = config.num_attention_heads
        self.head_size = config.hidden_size // config.num_attention_heads
        self.scale = self.head_size ** -0.5
        self.attention = _Attention(config)
        self.intermediate = _Intermediate(config)
        self.output = _DenseAddNorm(config.intermediate_size, config.hidden_size, config.layer_norm_eps)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        batch, seq_len, _ = hidden.shape
        qkv = self.attention.self
        split = (batch, seq_len, self.heads, self.head_size)
        query = qkv.query(hidden).view(split).transpose(1, 2)
        key = qkv.key(hidden).view(split).transpose(1, 2)
        value = qkv.value(hidden).view(split).transpose(1, 2)
        context = functional.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=self.scale)
        context = context.transpose(1, 2).reshape(batch, seq_len, -1)
        attended: torch.Tensor = self.attention.output(context, hidden)
        inner = functional.gelu(self.intermediate.dense(attended))
        return self.output(inner, attended)


class _Encoder(nn.Module):
    def __init__(self, config: LightBertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer(config) for _ in range(config.num_hidden_layers))


class LightBertEncoder(nn.Module):
    """BertModel's encoder for prediction: `forward(input_ids, attention_mask, token_type_ids)` ->
    `.last_hidden_state`, as BertModel's. No pooler (fmkit pools the hidden states itself), no dropout."""

    def __init__(self, config: LightBertConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = _Embeddings(config)
        self.encoder = _Encoder(config)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> EncoderOutput:
        hidden = self.embeddings(input_ids, token_type_ids)
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            # BertModel's SDPA mask: boolean, True where a key may be attended, one row per query.
            batch, seq_len = input_ids.shape
            mask = attention_mask.bool()[:, None, None, :].expand(batch, 1, seq_len, seq_len)
        for layer in self.encoder.layer:
            hidden = layer(hidden, mask)
        return EncoderOutput(hidden)

    def train(self, mode: bool = True) -> LightBertEncoder:
        if mode:  # it has no dropout: training it would quietly differ from training BertModel
            raise _prediction_only()
        return super().train(False)

    def save_pretrained(self, *_: Any, **__: Any) -> None:
        raise _prediction_only()


def refuse_saving(encoder: Any) -> None:
    """Raise before a model folder is written when `encoder` is this prediction-only one (nothing half-written)."""
    if isinstance(encoder, LightBertEncoder):
        raise _prediction_only()


def _prediction_only() -> Exception:
    from fmkit.errors import ModelError

    return ModelError("this encoder was loaded for prediction only; load the folder with "
                      "TextClassifier.from_pretrained(dir) to train or save it.")


def load_light_bert(folder: Path) -> LightBertEncoder | None:
    """The folder's encoder as a LightBertEncoder, or None where it would not reproduce BertModel exactly
    (another architecture or option, sharded or non-fp32 weights, names it does not know): load it with AutoModel."""
    folder = Path(folder)
    try:
        raw = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    config = light_bert_config(raw) if isinstance(raw, dict) else None
    if config is None or not (folder / WEIGHTS_FILE).is_file():
        return None
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    with torch.device("meta"):  # no random initialisation: every tensor comes from the file
        model = LightBertEncoder(config)
    try:
        tensors = load_file(str(folder / WEIGHTS_FILE))
    except (OSError, SafetensorError):
        return None
    if "embeddings.word_embeddings.weight" not in tensors:  # a task model's file: the encoder under "bert."
        tensors = {name.removeprefix("bert."): value for name, value in tensors.items()}
    state: dict[str, torch.Tensor] = {}
    for name, param in model.state_dict().items():
        tensor = tensors.get(name)
        if tensor is None or tensor.shape != param.shape or tensor.dtype != torch.float32:
            return None
        state[name] = tensor
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()
