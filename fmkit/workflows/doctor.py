"""`fmkit doctor`: everything a training run would check, without training, for any text task.

The task's registry entry names how its data is read (`TaskSpec.doctor`: counts per class or label, or the
target's spread, plus the warnings training would print); this module adds what every text task shares: the
model's files for offline use, the token lengths against the max_length the run would really use, and
how much of the text the model's vocabulary can read.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from fmkit.config import RunConfig
from fmkit.config.tasks import TASKS, resolve, task_spec
from fmkit.data.coverage import vocabulary_check
from fmkit.data.long_text import Framing, recommend_policy
from fmkit.data.tasks.classification import untruncated_lengths
from fmkit.data.token_limits import max_length_note, resolve_max_length
from fmkit.errors import ConfigError
from fmkit.models.backbone import check_model_files, load_tokenizer, resolve_model_path

LENGTH_EDGES = (0, 16, 32, 64, 128, 256, 512, 1024)


def doctor(cfg: RunConfig) -> dict[str, Any]:
    """The facts `fmkit doctor` prints (and --json returns). Raises on what training would refuse."""
    spec = task_spec(cfg.task.type)
    if spec.doctor is None:
        checked = ", ".join(name for name, s in TASKS.items() if s.doctor)
        raise ConfigError(f"fmkit doctor checks the data of {checked}; for --task {spec.name}, run `fmkit train` "
                          "(it checks the same things first).")
    facts: dict[str, Any] = resolve(spec.doctor)(cfg)
    texts, pairs = facts.pop("texts"), facts.pop("pairs", None)
    model_path = resolve_model_path(cfg.model.name)
    missing = check_model_files(model_path)
    facts["task"] = spec.name
    facts["model"] = {"name": cfg.model.name, "path": str(model_path), "offline_ready": not missing,
                      "missing_files": missing}
    if not missing:
        tokenizer = load_tokenizer(model_path, cfg.model.trust_remote_code)
        joined = texts if pairs is None else [f"{a} {tokenizer.sep_token or ''} {b}" for a, b in zip(texts, pairs, strict=True)]
        # The length training would use, so the histogram and the truncated share are the run's.
        max_length = resolve_max_length(cfg.data.max_length, tokenizer, model_path)
        note = max_length_note(cfg.data.max_length, tokenizer, model_path)
        if note is not None:
            facts["warnings"].append(note)
        lengths = untruncated_lengths(tokenizer, joined)
        facts["tokens"] = length_facts(lengths, max_length)
        if spec.name == "classification" and pairs is None:  # data.long_text's tasks
            facts["long_text"] = recommend_policy(lengths, max_length, Framing.of(tokenizer), cfg.data.long_text,
                                                  cfg.data.chunk_stride)
            if "advice" in facts["long_text"] and facts["long_text"]["recommended"] != cfg.data.long_text:
                facts["warnings"].append(facts["long_text"]["advice"])
        # The check training makes before it starts, on the same texts (both of a pair).
        coverage, warning = vocabulary_check(tokenizer, [*texts, *(pairs or [])], cfg.model.name)
        facts["vocabulary"] = {**coverage.as_dict(), "summary": coverage.summary()}
        if warning is not None:
            facts["warnings"].append(warning)
    return facts


def length_facts(lengths: np.ndarray, max_length: int) -> dict[str, Any]:
    edges = sorted({*(e for e in LENGTH_EDGES if e < max_length), max_length})
    histogram = [{"range": f"{low + 1}-{high}", "count": int(((lengths > low) & (lengths <= high)).sum())}
                 for low, high in itertools.pairwise(edges)]
    histogram.append({"range": f">{max_length} (truncated)", "count": int((lengths > max_length).sum())})
    return {"max_length": max_length, "mean": float(lengths.mean()), "p50": float(np.percentile(lengths, 50)),
            "p95": float(np.percentile(lengths, 95)), "max": int(lengths.max()),
            "truncated_share": float((lengths > max_length).mean()), "histogram": histogram}
