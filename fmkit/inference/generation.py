"""`GenerationPredictor`: a saved (or any local) causal LM; prompts in, answers out, optionally streamed."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from fmkit.data.tasks.generation import prompt_text
from fmkit.errors import ModelError
from fmkit.models.causal_lm import (
    generate_texts,
    load_causal_lm,
    load_lm_tokenizer,
    read_generation_meta,
    resolve_causal_lm,
)

Record = dict[str, Any]


class GenerationPredictor:
    task = "generation"

    def __init__(self, lm: Any, tokenizer: Any, batch_size: int = 8, max_new_tokens: int = 64,
                 temperature: float = 0.0, path: Path | None = None) -> None:
        self.lm = lm.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.path = path
        # One generation at a time: the tokenizer's padding side and the model are shared state (server threads).
        self.lock = threading.Lock()

    @classmethod
    def load(cls, path: Path | str, batch_size: int = 8) -> GenerationPredictor:
        """A model folder saved by `fmkit train --task generation`, its run directory, any causal-LM folder,
        or 'SmolLM2-135M-Instruct' (the bundled base model)."""
        text = str(path)
        folder = Path(text).expanduser()
        if (folder / "model").is_dir() and not (folder / "config.json").is_file():
            folder = folder / "model"
        folder = resolve_causal_lm(str(folder) if folder.exists() else text)
        meta = read_generation_meta(folder)
        return cls(load_causal_lm(folder), load_lm_tokenizer(folder), batch_size=min(batch_size, 8),
                   max_new_tokens=int(meta.get("max_new_tokens", 64)), temperature=float(meta.get("temperature", 0.0)),
                   path=folder)

    def template(self, prompt: str, system: str | None = None) -> str:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        return prompt_text(self.tokenizer, messages)

    def generate(self, prompts: Sequence[str], max_new_tokens: int | None = None,
                 temperature: float | None = None) -> list[str]:
        with self.lock:
            return generate_texts(self.lm, self.tokenizer, [self.template(p) for p in prompts],
                                  max_new_tokens or self.max_new_tokens,
                                  self.temperature if temperature is None else temperature, self.batch_size)

    def stream(self, prompt: str, max_new_tokens: int | None = None, temperature: float | None = None,
               system: str | None = None) -> Iterator[str]:
        """Text pieces as the model produces them (TextIteratorStreamer; generation runs in a thread)."""
        from transformers import TextIteratorStreamer

        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with self.lock:
                    generate_texts(self.lm, self.tokenizer, [self.template(prompt, system)],
                                   max_new_tokens or self.max_new_tokens,
                                   self.temperature if temperature is None else temperature, 1, streamer=streamer)
            except BaseException as exc:  # surfaced in the caller's thread below
                errors.append(exc)
                streamer.end()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        yield from streamer
        thread.join()
        if errors:
            raise ModelError(f"generation failed: {errors[0]}")

    # The same record interface as the other predictors (`fmkit predict`, the server).
    def predict(self, prompts: Sequence[str]) -> list[Record]:
        return [{"prompt": p, "generated": g} for p, g in zip(prompts, self.generate(prompts), strict=True)]

    def predict_stream(self, prompts: Iterable[str], chunk_size: int = 64) -> Iterator[Record]:
        iterator = iter(prompts)
        while chunk := list(itertools.islice(iterator, chunk_size)):
            yield from self.predict(chunk)
