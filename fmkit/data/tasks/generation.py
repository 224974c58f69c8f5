"""Instruction data for causal LMs: JSONL -> chat-templated token ids with loss only on the completion.

Accepted lines (JSONL, one object per line):
  {"prompt": "...", "completion": "..."}                      (also "input"/"output", "instruction"/"response")
  {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}
    -> the last assistant message is the completion; everything before it is the prompt.
The tokenizer's chat template (when it has one) turns the prompt into what the model saw in
instruction tuning; labels are -100 on prompt tokens and padding, so only the answer is learned.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmkit.data.readers import check_text_file
from fmkit.data.tasks.classification import IndexDataset, LengthGroupedBatches
from fmkit.errors import DataError

IGNORE_INDEX = -100
PROMPT_KEYS = ("prompt", "input", "instruction", "question", "source")
COMPLETION_KEYS = ("completion", "output", "response", "answer", "target")

Message = dict[str, str]


@dataclass
class GenerationExample:
    messages: list[Message]       # the prompt as chat messages (a plain prompt is one user message)
    completion: str | None        # the reference answer; None when only prompting


def _first(record: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = record.get(key)
        if isinstance(value, str):
            return value
    return None


def parse_record(record: Any, where: str, need_completion: bool) -> GenerationExample:
    if not isinstance(record, dict):
        raise DataError(f"{where}: each line must be a JSON object with prompt/completion or messages.")
    if "messages" in record:
        messages = record["messages"]
        if (not isinstance(messages, list) or not messages
                or not all(isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                           for m in messages)):
            raise DataError(f"{where}: 'messages' must be a list of {{\"role\": ..., \"content\": ...}} objects.")
        msgs = [{"role": m["role"], "content": m["content"]} for m in messages]
        if msgs[-1]["role"] == "assistant":
            return GenerationExample(msgs[:-1], msgs[-1]["content"])
        if need_completion:
            raise DataError(f"{where}: the last message must be the assistant's answer (role 'assistant') to train on.")
        return GenerationExample(msgs, None)
    prompt = _first(record, PROMPT_KEYS)
    if prompt is None:
        raise DataError(f"{where}: no prompt: give a 'prompt' (and 'completion') field or a 'messages' list. "
                        f"Keys here: {', '.join(record) or 'none'}.")
    completion = _first(record, COMPLETION_KEYS)
    if completion is None and need_completion:
        raise DataError(f"{where}: no 'completion' for this prompt; training needs the answer to learn.")
    if need_completion and not (completion or "").strip():
        raise DataError(f"{where}: empty completion; fill it or remove the line.")
    return GenerationExample([{"role": "user", "content": prompt}], completion)


def read_generation_jsonl(path: Path, need_completion: bool = True) -> list[GenerationExample]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found.")
    if path.suffix.lower() not in (".jsonl", ".json", ".ndjson"):
        raise DataError(f"{path}: generation data must be JSONL (one JSON object per line with prompt/completion).")
    check_text_file(path)
    examples = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}, line {number}: not valid JSON ({exc.msg}).") from None
            examples.append(parse_record(record, f"{path}, line {number}", need_completion))
    if not examples:
        raise DataError(f"{path}: no examples.")
    return examples


def bos_prefix(tokenizer: Any) -> str:
    """The BOS text the tokenizer would add itself (Gemma needs it; its outputs degrade badly without it).
    Prompts are encoded without special tokens, so the same text works for training and `generate`."""
    bos = getattr(tokenizer, "bos_token", None)
    if not bos:
        return ""
    ids = tokenizer("a")["input_ids"]
    return bos if ids and ids[0] == tokenizer.bos_token_id else ""


def prompt_text(tokenizer: Any, messages: list[Message]) -> str:
    """What the model is given before it answers: the chat template with the assistant turn opened."""
    if getattr(tokenizer, "chat_template", None):
        # A template writes the BOS itself where its model wants one (Gemma's, Llama's).
        text: str = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return text
    # No template (a base model such as gemma-3-270m): a plain layout the model can still learn, after the BOS its
    # tokenizer would add (prompts are encoded without special tokens).
    return bos_prefix(tokenizer) + "".join(f"{m['content']}\n" for m in messages)


@dataclass
class EncodedGeneration:
    input_ids: list[list[int]]
    labels: list[list[int]]

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def __len__(self) -> int:
        return len(self.input_ids)

    def completion_tokens(self) -> int:
        return sum(sum(1 for t in row if t != IGNORE_INDEX) for row in self.labels)


def encode_example(tokenizer: Any, example: GenerationExample, max_length: int) -> tuple[list[int], list[int]]:
    """Prompt ids (label -100) + completion ids ending in EOS (labelled); the prompt's start is cut first."""
    prompt_ids: list[int] = tokenizer(prompt_text(tokenizer, example.messages), add_special_tokens=False)["input_ids"]
    answer = (example.completion or "") + (tokenizer.eos_token or "")
    answer_ids: list[int] = tokenizer(answer, add_special_tokens=False)["input_ids"]
    answer_ids = answer_ids[: max(1, max_length // 2)] if len(prompt_ids) + len(answer_ids) > max_length else answer_ids
    room = max_length - len(answer_ids)
    if len(prompt_ids) > room:
        # Keep the end (the question sits next to the answer), and a leading BOS: the model was trained after one.
        bos = getattr(tokenizer, "bos_token_id", None)
        keep = 1 if bos is not None and prompt_ids[:1] == [bos] and room > 1 else 0
        prompt_ids = prompt_ids[:keep] + prompt_ids[len(prompt_ids) - room + keep:]
    return prompt_ids + answer_ids, [IGNORE_INDEX] * len(prompt_ids) + answer_ids


def encode_generation(tokenizer: Any, examples: list[GenerationExample], max_length: int) -> EncodedGeneration:
    ids, labels = [], []
    for example in examples:
        i, lab = encode_example(tokenizer, example, max_length)
        ids.append(i)
        labels.append(lab)
    return EncodedGeneration(ids, labels)


def pack(encoded: EncodedGeneration, max_length: int) -> EncodedGeneration:
    """Concatenate whole examples into rows of at most max_length tokens (greedy, order kept).

    Fewer, fuller rows: less padding and fewer forward passes for short examples. Examples in one row
    can attend to earlier ones (no block mask on CPU attention); the loss still covers answers only.
    """
    rows_ids: list[list[int]] = []
    rows_labels: list[list[int]] = []
    cur_ids: list[int] = []
    cur_labels: list[int] = []
    for ids, labels in zip(encoded.input_ids, encoded.labels, strict=True):
        if cur_ids and len(cur_ids) + len(ids) > max_length:
            rows_ids.append(cur_ids)
            rows_labels.append(cur_labels)
            cur_ids, cur_labels = [], []
        cur_ids = cur_ids + ids
        cur_labels = cur_labels + labels
    if cur_ids:
        rows_ids.append(cur_ids)
        rows_labels.append(cur_labels)
    return EncodedGeneration(rows_ids, rows_labels)


class LMCollator:
    """Indices -> right-padded input_ids, attention_mask and labels (-100 on padding)."""

    def __init__(self, encoded: EncodedGeneration, pad_token_id: int) -> None:
        self.encoded = encoded
        self.pad_token_id = pad_token_id

    def __call__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        width = max(len(self.encoded.input_ids[i]) for i in indices)
        ids = np.full((len(indices), width), self.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(indices), width), dtype=np.int64)
        labels = np.full((len(indices), width), IGNORE_INDEX, dtype=np.int64)
        for row, i in enumerate(indices):
            seq = self.encoded.input_ids[i]
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
            labels[row, : len(seq)] = self.encoded.labels[i]
        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask),
                "labels": torch.from_numpy(labels), "index": torch.as_tensor(indices, dtype=torch.long)}


def make_lm_loader(encoded: EncodedGeneration, pad_token_id: int, batch_size: int, seed: int, shuffle: bool,
                   group_by_length: bool = True) -> torch.utils.data.DataLoader[int]:
    sampler = LengthGroupedBatches(encoded.lengths, batch_size, seed, shuffle=shuffle, group_by_length=group_by_length)
    return torch.utils.data.DataLoader(IndexDataset(len(encoded)), batch_sampler=sampler,
                                       collate_fn=LMCollator(encoded, pad_token_id))


def split_examples(examples: list[GenerationExample], fraction: float, seed: int
                   ) -> tuple[list[GenerationExample], list[GenerationExample]]:
    """Random hold-out with the run's seed (at least one example each side)."""
    if len(examples) < 2:
        raise DataError("Need at least two examples to hold one out for evaluation (or pass --eval).")
    order = np.random.default_rng(seed).permutation(len(examples))
    n_eval = min(len(examples) - 1, max(1, round(len(examples) * fraction)))
    held = set(order[:n_eval].tolist())
    return ([e for i, e in enumerate(examples) if i not in held], [e for i, e in enumerate(examples) if i in held])
