"""The run-directory frame every task's workflow shares.

    with TaskRun(cfg, data_info, model_path, resume_dir, overwrite) as run:
        ... train through the loop with run.tracker, write run.dir / "model" ...
        run.finish(metrics)

writes config.yaml, data.json, env.json, run.json (running -> finished | failed | interrupted),
history.jsonl and the registry row, exactly as a classification run does.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from fmkit.config import RunConfig, write_config
from fmkit.data.coverage import vocabulary_check
from fmkit.data.token_limits import max_length_note, resolve_max_length
from fmkit.utils.env import host_info, library_versions
from fmkit.utils.io import atomic_write_json
from fmkit.workflows.rundir import RunStatus, default_run_dir, prepare_run_dir, run_trackers

# Joins the two texts of a pair into one key for the vector cache (a character no text holds).
PAIR_KEY_SEPARATOR = "\u241e"


def cache_texts(texts: list[str], pairs: list[str] | None) -> list[str]:
    """What identifies each example in the vector cache: its text, or both texts of a pair."""
    if pairs is None:
        return texts
    return [f"{a}{PAIR_KEY_SEPARATOR}{b}" for a, b in zip(texts, pairs, strict=True)]


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def capped_max_length(requested: int, tokenizer: Any, model_dir: Path, setting: str = "data.max_length") -> int:
    """The token length a run uses: `requested`, capped at the model's limit, with a warning when capped."""
    note = max_length_note(requested, tokenizer, model_dir, setting)
    if note is not None:
        warn(note)
    return resolve_max_length(requested, tokenizer, model_dir)


def load_backbone(cfg: RunConfig, text_prompt: bool = True, *, texts: Sequence[str] = (),
                  warnings: list[str] | None = None) -> tuple[Path, Any, int]:
    """The backbone's folder, its tokenizer, and the token length the run uses (data.max_length capped at the
    model's limit, with a warning when capped): the same for every task, and what `doctor` reports.
    Word-level tasks pass text_prompt=False (see `load_tokenizer`).

    Given the training `texts`, it also warns (and adds the warning to `warnings`, the run's list) when the
    tokenizer cannot read much of them: every task that trains on text comes through here, so it is said once."""
    from fmkit.models.backbone import load_tokenizer, resolve_model_path

    model_path = resolve_model_path(cfg.model.name)
    tokenizer = load_tokenizer(model_path, cfg.model.trust_remote_code, text_prompt)
    max_length = capped_max_length(cfg.data.max_length, tokenizer, model_path)
    if texts:
        warn_unreadable_texts(tokenizer, texts, cfg.model.name, warnings)
    return model_path, tokenizer, max_length


def warn_unreadable_texts(tokenizer: Any, texts: Sequence[str], model_name: str,
                          warnings: list[str] | None = None) -> None:
    """Say, before any training, that the model's vocabulary turns much of the data into unknown tokens."""
    _, message = vocabulary_check(tokenizer, texts, model_name)
    if message is None:
        return
    warn(message)
    if warnings is not None:
        warnings.append(message)


class TaskRun:
    """The run frame. Under data parallel (torchrun, `accelerate launch`) every process trains, but only the main
    one writes: the run directory, its records, trackers and status (`run.main` tells the workflow whether to
    write its model and artifacts too); the others get a tracker that records nothing."""

    def __init__(self, cfg: RunConfig, data_info: dict[str, Any], model_path: Path, resume_dir: Path | None,
                 overwrite: bool, started: float | None = None, command: str = "train") -> None:
        from fmkit.training import configure_threads, make_accelerator

        self.started = time.perf_counter() if started is None else started  # wall_seconds counts from here
        self.resume = resume_dir is not None
        self.dir = Path(resume_dir or cfg.output or default_run_dir())
        accelerator = make_accelerator(cfg.train)
        self.main = bool(accelerator.is_main_process)
        self.num_processes = int(accelerator.num_processes)
        configure_threads(cfg.train.threads, self.num_processes)  # data-parallel processes share the cores
        if self.main and not self.resume:
            prepare_run_dir(self.dir, overwrite)
            cfg = cfg.model_copy(update={"output": self.dir})
            write_config(cfg, self.dir / "config.yaml")
            atomic_write_json(self.dir / "data.json", data_info)
            atomic_write_json(self.dir / "env.json", {"versions": library_versions(), "host": host_info(),
                                                      "model_path": str(model_path),
                                                      "num_processes": self.num_processes})
        accelerator.wait_for_everyone()  # the others start once the run directory exists
        self.cfg = cfg
        self.status = RunStatus(self.dir, command) if self.main else None
        self.tracker: Any = None

    def __enter__(self) -> TaskRun:
        from fmkit.training import Trackers

        try:
            self.tracker = run_trackers(self.dir, self.cfg) if self.main else Trackers()
        except BaseException as exc:
            if self.status is not None:
                self.status.end("failed", error=f"{type(exc).__name__}: {exc}")
            raise
        return self

    def finish(self, metrics: dict[str, Any], headline: dict[str, Any]) -> None:
        metrics["wall_seconds"] = round(time.perf_counter() - self.started, 2)
        self.tracker.close("finished")
        if self.status is None:
            return
        atomic_write_json(self.dir / "metrics.json", metrics)
        self.status.end("finished", metrics=headline)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None or self.status is None:
            return
        state = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        self.status.end(state, error=None if state == "interrupted" else f"{type(exc).__name__}: {exc}")
