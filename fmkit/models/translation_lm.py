"""A causal LM as a translator: the training wrapper (logits only where the loss looks) and line-wise decoding.

Why a wrapper of its own: in a translation example most tokens are prompt (template + source), and a
multilingual LM's output layer is huge (Gemma 3 270M: 640 x 262,144, more multiply-adds per token than all
its transformer layers together). Computing logits only at the positions that predict a target token skips
that layer for the prompt: about half the forward and backward cost of a LoRA step, same loss.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from fmkit.data.tasks.generation import IGNORE_INDEX, EncodedGeneration, LMCollator
from fmkit.models.causal_lm import LMForTraining
from fmkit.models.precision import ResolvedPrecision, inference_autocast


class TargetCollator(LMCollator):
    """LMCollator's batch plus `predict_mask`: True at positions whose next token is a labelled target token."""

    def __call__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        batch = super().__call__(indices)
        labels = batch["labels"]
        mask = torch.zeros_like(labels, dtype=torch.bool)
        mask[:, :-1] = labels[:, 1:] != IGNORE_INDEX
        batch["predict_mask"] = mask
        return batch


def make_target_loader(encoded: EncodedGeneration, pad_token_id: int, batch_size: int, seed: int, shuffle: bool,
                       group_by_length: bool = True) -> torch.utils.data.DataLoader[int]:
    from fmkit.data.tasks.classification import IndexDataset, LengthGroupedBatches

    sampler = LengthGroupedBatches(encoded.lengths, batch_size, seed, shuffle=shuffle, group_by_length=group_by_length)
    return torch.utils.data.DataLoader(IndexDataset(len(encoded)), batch_sampler=sampler,
                                       collate_fn=TargetCollator(encoded, pad_token_id))


def _parts(lm: Any) -> tuple[Any, Any, float | None]:
    """(transformer body, output layer, final logit soft-cap) of a causal LM, LoRA-wrapped or not."""
    base = lm.get_base_model() if hasattr(lm, "get_base_model") else lm
    body = base.get_decoder() if hasattr(base, "get_decoder") else base.model
    cap = getattr(base.config, "final_logit_softcapping", None)
    return body, base.get_output_embeddings(), cap


class TranslationLMForTraining(LMForTraining):
    """forward -> logits [N, vocab] of the N positions `predict_mask` marks (row-major), nothing else."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                predict_mask: torch.Tensor | None = None, **_: Any) -> torch.Tensor:
        if predict_mask is None:
            return super().forward(input_ids, attention_mask)
        body, head, cap = _parts(self.lm)
        hidden = body(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
        logits: torch.Tensor = head(hidden[predict_mask])
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return logits


def target_loss(logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy of the target tokens (the logits are those of the masked positions, in order)."""
    labels = batch["labels"][:, 1:]
    targets = labels[labels != IGNORE_INDEX]
    return F.cross_entropy(logits.float(), targets)


@torch.inference_mode()
def target_nll(model: torch.nn.Module, loader: Any) -> tuple[float, int]:
    """Summed negative log-likelihood of the target tokens over `loader`, and how many there were."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in loader:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       predict_mask=batch["predict_mask"])
        labels = batch["labels"][:, 1:]
        targets = labels[labels != IGNORE_INDEX]
        total += float(F.cross_entropy(logits.float(), targets, reduction="sum"))
        count += int(targets.numel())
    model.train(was_training)
    return total, count


class _StopAtNewline:
    """Stops each sequence at its first newline token (a translation is one line; a base model given examples
    goes on to invent the next one). transformers' StoppingCriteria protocol: a bool per sequence."""

    def __init__(self, newline_ids: torch.Tensor) -> None:
        self.newline_ids = newline_ids

    def __call__(self, input_ids: torch.Tensor, scores: Any, **_: Any) -> torch.Tensor:
        return torch.isin(input_ids[:, -1], self.newline_ids)


def newline_token_ids(tokenizer: Any) -> torch.Tensor:
    """Ids of every vocabulary piece that contains a line break (byte-level 'Ċ' and sentencepiece '<0x0A>' too)."""
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    ids = [i for i, p in enumerate(pieces) if isinstance(p, str) and ("\n" in p or "Ċ" in p or p == "<0x0A>")]
    return torch.tensor(ids, dtype=torch.long)


@torch.inference_mode()
def translate_prompts(lm: Any, tokenizer: Any, prompts: list[str], max_new_tokens: int = 64, batch_size: int = 16,
                      newline_ids: torch.Tensor | None = None, precision: ResolvedPrecision = "fp32") -> list[str]:
    """Greedy decoding with the KV cache, each prompt's continuation up to its first line break; `precision`
    bf16 runs it under bf16 autocast (AMX CPUs: faster, same greedy choices on almost every token)."""
    from transformers import StoppingCriteriaList

    was_training = lm.training
    lm.eval()
    stop = StoppingCriteriaList([_StopAtNewline(newline_ids if newline_ids is not None else newline_token_ids(tokenizer))])
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # generation appends on the right, so pads sit on the left
    outputs: list[str] = []
    try:
        # Similar lengths together: less padding per batch; results go back in the caller's order.
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        by_index: dict[int, str] = {}
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            enc = tokenizer([prompts[i] for i in chunk], return_tensors="pt", padding=True, add_special_tokens=False)
            with inference_autocast(precision):
                generated = lm.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, use_cache=True,
                                        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                                        stopping_criteria=stop, top_p=None, top_k=None, temperature=None)
            texts = tokenizer.batch_decode(generated[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            for i, text in zip(chunk, texts, strict=True):
                by_index[i] = text.strip().split("\n", 1)[0].strip()
        outputs = [by_index[i] for i in range(len(prompts))]
    finally:
        tokenizer.padding_side = side
        lm.train(was_training)
    return outputs
