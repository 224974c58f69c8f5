"""`TranslationPredictor`: a model saved by `fmkit train --task translation`; sentences in, translations out.

The saved fmkit.json names the directions the model learned and its prompt template. A text is translated in
the direction the caller names, else in the model's only direction, else (a model trained both ways) in the
direction whose source language matches the text's script.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from fmkit.data.tasks.translation import Direction, build_prompt, guess_language
from fmkit.errors import DataError, ModelError
from fmkit.models.causal_lm import FMKIT_META, load_causal_lm, load_lm_tokenizer
from fmkit.models.precision import resolve_inference_precision
from fmkit.models.translation_lm import newline_token_ids, translate_prompts

Record = dict[str, Any]


class TranslationPredictor:
    task = "translation"

    def __init__(self, lm: Any, tokenizer: Any, directions: list[Direction], prompt_template: str,
                 max_new_tokens: int = 64, batch_size: int = 16, path: Path | None = None) -> None:
        if not directions:
            raise ModelError(f"{path}: the model records no translation direction.")
        self.lm = lm.eval()
        self.tokenizer = tokenizer
        self.directions = directions
        self.prompt_template = prompt_template
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.path = path
        self.newline_ids = newline_token_ids(tokenizer)
        self.precision = resolve_inference_precision("auto")
        self.lock = threading.Lock()  # one generation at a time: the tokenizer's padding side is shared state

    @classmethod
    def load(cls, path: Path | str, batch_size: int = 16) -> TranslationPredictor:
        folder = Path(path).expanduser()
        if (folder / "model").is_dir() and not (folder / "config.json").is_file():
            folder = folder / "model"
        meta_file = folder / FMKIT_META
        if not meta_file.is_file():
            raise ModelError(f"{path}: not a translation model (no {FMKIT_META}); train one with "
                             "`fmkit train --task translation`.")
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if meta.get("task") != "translation":
            raise ModelError(f"{path}: holds a '{meta.get('task')}' model, not a translator.")
        return cls(load_causal_lm(folder), load_lm_tokenizer(folder),
                   [Direction.parse(d) for d in meta.get("directions", [])], str(meta["prompt_template"]),
                   max_new_tokens=int(meta.get("max_new_tokens", 64)), batch_size=min(batch_size, 16), path=folder)

    def direction_for(self, text: str, requested: str | None = None) -> Direction:
        """The named direction (it must be one the model learned), else the model's only one, else by script."""
        if requested:
            wanted = Direction.parse(requested)
            if wanted not in self.directions:
                raise DataError(f"direction '{requested}': this model translates "
                                f"{', '.join(d.name for d in self.directions)}.")
            return wanted
        if len(self.directions) == 1:
            return self.directions[0]
        language = guess_language([text])
        matches = [d for d in self.directions if d.source == language]
        return matches[0] if matches else self.directions[0]

    def translate(self, texts: Sequence[str], direction: str | None = None,
                  max_new_tokens: int | None = None) -> list[str]:
        prompts = [build_prompt(self.tokenizer, self.prompt_template, self.direction_for(t, direction), t)
                   for t in texts]
        with self.lock:
            return translate_prompts(self.lm, self.tokenizer, prompts, max_new_tokens or self.max_new_tokens,
                                     self.batch_size, self.newline_ids, self.precision)

    # The same record interface as the other predictors (`fmkit predict`, the server).
    def predict(self, texts: Sequence[str]) -> list[Record]:
        directions = [self.direction_for(t).name for t in texts]
        return [{"direction": d, "translation": out}
                for d, out in zip(directions, self.translate(texts), strict=True)]

    def predict_stream(self, texts: Iterable[str], chunk_size: int = 64) -> Iterator[Record]:
        iterator = iter(texts)
        while chunk := list(itertools.islice(iterator, chunk_size)):
            yield from self.predict(chunk)
