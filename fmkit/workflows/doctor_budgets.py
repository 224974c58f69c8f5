"""`fmkit doctor --budgets`: what `--strategy auto` would train within 2, 5, 10 and 20 minutes, on this data
and this machine, before committing to a run.

It does what the start of an auto run does (read, validate and tokenize the data, time a few real training
and inference batches of the backbone) and then asks the same pure rule (`auto.decide`) for each budget, so
the doctor's table and the run's strategy.json `by_budget` agree by construction. It costs the seconds of
loading the model and timing those batches, which is why it is a flag and not part of every doctor call.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from fmkit.config import RunConfig
from fmkit.data.tasks.classification import LabelMap
from fmkit.data.tokenized import encode_texts
from fmkit.errors import ConfigError
from fmkit.workflows.auto import (
    DataStats,
    budget_table,
    estimate_seconds,
    few_shot,
    full_cost,
    measure_throughput,
)
from fmkit.workflows.classification import load_datasets
from fmkit.workflows.strategy_runs import FitContext
from fmkit.workflows.task_run import cache_texts, load_backbone


def budget_estimates(cfg: RunConfig) -> dict[str, Any]:
    """{"rows": budget_table rows, "estimates_s": per strategy, "measured_s": what measuring took}."""
    if cfg.task.type != "classification":
        raise ConfigError("fmkit doctor --budgets prices --strategy auto for classification; other tasks train "
                          "one strategy (see `fmkit train --help`).")
    started = time.perf_counter()
    train_data, eval_data, _ = load_datasets(cfg)
    model_path, tokenizer, max_length = load_backbone(cfg)
    labels = LabelMap.from_labels(train_data.labels)
    train_enc = encode_texts(tokenizer, train_data.texts, max_length, labels.encode(train_data.labels, train_data.source),
                             pairs=train_data.pairs)
    eval_enc = encode_texts(tokenizer, eval_data.texts, max_length, labels.encode(eval_data.labels, eval_data.source),
                            pairs=eval_data.pairs)
    with tempfile.TemporaryDirectory(prefix="fmkit-doctor-") as scratch:
        ctx = FitContext(cfg=cfg, model_path=model_path, tokenizer=tokenizer, labels=labels,
                         train_texts=cache_texts(train_data.texts, train_data.pairs),
                         eval_texts=cache_texts(eval_data.texts, eval_data.pairs), train_enc=train_enc,
                         eval_enc=eval_enc, max_length=max_length, run_dir=Path(scratch), tracker=None,
                         pair_sep_id=tokenizer.sep_token_id if train_data.pairs is not None else None)
        assert train_enc.labels is not None
        data = DataStats.of(train_enc.labels, len(labels))
        rate = measure_throughput(ctx, lora=not few_shot(data))
        full = full_cost(ctx, rate)
        estimates = estimate_seconds(ctx, rate, full)
    measured = time.perf_counter() - started
    # A real run spends about what this took (reading, loading, timing) before it trains.
    rows = budget_table(data, estimates, full if cfg.strategy.probe.init else None, cfg.train.epochs, measured)
    return {"data": data.describe(), "rows": rows, "estimates_s": estimates, "measured_s": round(measured, 1)}
