"""Generative fine-tuning runs (`fmkit train --task generation`): LoRA (default) or full, through the one loop.

Evaluation each epoch: perplexity of the held-out answers (the loop keeps the best by mean
log-likelihood, which is -log perplexity). At the end: greedy generations for up to
`generation.eval_generations` held-out prompts, exact match and ROUGE-L against their references,
and RUN_DIR/samples.jsonl with the base model's answer beside the fine-tuned one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from fmkit.config import RunConfig
from fmkit.config.schema import DEFAULT_MODEL, ENCODER_LORA_TARGETS
from fmkit.data.tasks.generation import (
    GenerationExample,
    encode_generation,
    make_lm_loader,
    pack,
    prompt_text,
    read_generation_jsonl,
    split_examples,
)
from fmkit.errors import ConfigError, DataError
from fmkit.evaluation.generation import exact_match, mean_rouge_l, perplexity
from fmkit.models.causal_lm import (
    SMOLLM_NAME,
    LMForTraining,
    causal_lm_loss,
    completion_nll,
    generate_texts,
    load_causal_lm,
    load_lm_tokenizer,
    resolve_causal_lm,
    save_generator,
)
from fmkit.models.lora import ADAPTERS_DIR, add_lora, merge_lora
from fmkit.training import Checkpoints, make_accelerator, train_loop
from fmkit.utils.io import atomic_directory, atomic_write_text
from fmkit.workflows.rundir import RunResult
from fmkit.workflows.strategy_runs import strategy_train_config
from fmkit.workflows.task_run import TaskRun, capped_max_length

PRIMARY = "mean_log_likelihood"  # higher is better, as the loop expects; perplexity = exp(-this)
CAUSAL_LM_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


def resolve_causal_lm_defaults(cfg: RunConfig, default_model: str, task: str) -> RunConfig:
    """Text-classifier defaults mean nothing to a causal-LM task: its own default model, LoRA, attention-projection targets.

    Shared by generation and translation; resolved before config.yaml is written, so a resumed run makes the same
    choices."""
    update: dict[str, Any] = {}
    if cfg.model.name == DEFAULT_MODEL:
        update["model"] = cfg.model.model_copy(update={"name": default_model})
    strategy = cfg.strategy
    if strategy.name == "auto":
        strategy = strategy.model_copy(update={"name": "lora"})
    if strategy.name not in ("lora", "full"):
        raise ConfigError(f"strategy '{strategy.name}' is not available for {task}; use 'lora' or 'full'.")
    if ("target_modules" not in strategy.lora.model_fields_set
            and strategy.lora.target_modules == list(ENCODER_LORA_TARGETS)):
        lora = strategy.lora.model_copy(update={"target_modules": list(CAUSAL_LM_LORA_TARGETS)})
        strategy = strategy.model_copy(update={"lora": lora})
    update["strategy"] = strategy
    return cfg.model_copy(update=update)


def load_generation_data(cfg: RunConfig) -> tuple[list[GenerationExample], list[GenerationExample]]:
    if cfg.data.train is None:
        raise DataError("No training data: pass --data FILE.jsonl with prompt/completion (or messages) per line.")
    train = read_generation_jsonl(cfg.data.train)
    if cfg.data.eval is not None:
        return train, read_generation_jsonl(cfg.data.eval)
    return split_examples(train, cfg.data.eval_fraction, cfg.train.seed)


def train(cfg: RunConfig, *, resume_dir: Path | None = None, overwrite: bool = False) -> RunResult:
    cfg = resolve_causal_lm_defaults(cfg, SMOLLM_NAME, "generation")
    gen = cfg.generation
    train_examples, eval_examples = load_generation_data(cfg)
    model_path = resolve_causal_lm(cfg.model.name)
    tokenizer = load_lm_tokenizer(model_path)
    max_length = capped_max_length(gen.max_length, tokenizer, model_path, "generation.max_length")
    train_enc = encode_generation(tokenizer, train_examples, max_length)
    eval_enc = encode_generation(tokenizer, eval_examples, max_length)
    train_rows = pack(train_enc, max_length) if gen.packing else train_enc

    data_info = {
        "train": {"source": str(cfg.data.train), "examples": len(train_examples), "rows": len(train_rows),
                  "completion_tokens": train_enc.completion_tokens()},
        "eval": {"source": str(cfg.data.eval or f"{cfg.data.train} (held-out split)"), "examples": len(eval_examples),
                 "completion_tokens": eval_enc.completion_tokens()},
        "max_length": max_length, "packing": gen.packing,
    }
    with TaskRun(cfg, data_info, model_path, resume_dir, overwrite) as run:
        from accelerate.utils import set_seed

        set_seed(cfg.train.seed)
        lm = load_causal_lm(model_path)
        pad_id = int(tokenizer.pad_token_id)
        eval_loader = make_lm_loader(eval_enc, pad_id, cfg.eval.batch_size, cfg.train.seed, shuffle=False)
        sample = eval_examples[: gen.eval_generations]
        prompts = [prompt_text(tokenizer, e.messages) for e in sample]
        references = [e.completion or "" for e in sample]
        base: dict[str, Any] = {}
        before: list[str] = []
        if not run.resume:  # the base model's numbers, for the before/after comparison
            base_nll, base_tokens = completion_nll(LMForTraining(lm), eval_loader)
            base["base_perplexity"] = perplexity(base_nll, base_tokens)
            before = generate_texts(lm, tokenizer, prompts, gen.max_new_tokens, gen.temperature) if prompts else []

        lora = cfg.strategy.name == "lora"
        train_cfg = cfg.train
        if lora:
            lm = add_lora(lm, cfg.strategy.lora, task_type="CAUSAL_LM")
            train_cfg = strategy_train_config(cfg, "lora")
        model = LMForTraining(lm, trainable_only=lora)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        train_loader = make_lm_loader(train_rows, pad_id, train_cfg.batch_size, train_cfg.seed, shuffle=True,
                                      group_by_length=train_cfg.group_by_length)

        def evaluate(current: torch.nn.Module) -> dict[str, Any]:
            nll, tokens = completion_nll(current, eval_loader)
            return {PRIMARY: -nll / max(1, tokens), "perplexity": perplexity(nll, tokens), "eval_tokens": tokens}

        accelerator = make_accelerator(train_cfg)
        result = train_loop(
            model, train_loader, cfg=train_cfg, loss_fn=causal_lm_loss, evaluate=evaluate, primary_metric=PRIMARY,
            checkpoints=Checkpoints(run.dir / "checkpoints"), tracker=run.tracker, accelerator=accelerator,
            resume=run.resume,
        )
        if not run.main:  # another process of a data-parallel run: the main one evaluates and writes
            return RunResult(run_dir=run.dir, metrics={}, warnings=[])
        model = accelerator.unwrap_model(model)
        final = evaluate(model)
        after = generate_texts(model.lm, tokenizer, prompts, gen.max_new_tokens, gen.temperature) if prompts else []
        metrics = {
            "perplexity": final["perplexity"], PRIMARY: final[PRIMARY], "eval_tokens": final["eval_tokens"],
            "num_examples": len(eval_examples), "train_examples": len(train_examples),
            "strategy": cfg.strategy.name, "trainable_parameters": int(trainable),
            "best_step": result.best_step, "steps": result.steps, "epochs_completed": result.epochs_completed,
            "stopped_early": result.stopped_early, "train_seconds": round(result.train_seconds, 2),
            "train_examples_per_second": round(result.examples_per_second, 2),
            **sample_metrics(after, before, references), **base,
        }
        write_samples(run.dir, prompts, references, before, after)
        final_lm = merge_lora(model.lm, run.dir / ADAPTERS_DIR if lora else None)
        with atomic_directory(run.dir / "model") as tmp:
            save_generator(final_lm, tokenizer, tmp, {
                "base_model": cfg.model.name, "strategy": cfg.strategy.name,
                "max_new_tokens": gen.max_new_tokens, "temperature": gen.temperature,
            })
        run.finish(metrics, {k: v for k, v in metrics.items() if isinstance(v, (int, float))})
    return RunResult(run_dir=run.dir, metrics=metrics, warnings=[])


def sample_metrics(after: list[str], before: list[str], references: list[str]) -> dict[str, Any]:
    """Exact match and ROUGE-L of the generated eval samples, and of the base model's when it was sampled."""
    metrics: dict[str, Any] = {"generated_examples": len(after),
                               "exact_match": exact_match(after, references) if after else None,
                               "rouge_l": mean_rouge_l(after, references) if after else None}
    if before:
        metrics["base_exact_match"] = exact_match(before, references)
        metrics["base_rouge_l"] = mean_rouge_l(before, references)
    return metrics


def write_samples(run_dir: Path, prompts: list[str], references: list[str], before: list[str], after: list[str]) -> None:
    """samples.jsonl (every generated eval example) and samples.txt (readable before/after)."""
    import json

    lines, text = [], []
    for i, (prompt, ref) in enumerate(zip(prompts, references, strict=True)):
        record = {"prompt": prompt, "reference": ref, "generated": after[i] if i < len(after) else None}
        if before:
            record["base_model"] = before[i]
        lines.append(json.dumps(record, ensure_ascii=False))
        text.append(f"--- example {i + 1}\nprompt:    {prompt.strip()[-300:]}\nreference: {ref}\n"
                    + (f"before:    {before[i]}\n" if before else "") + f"after:     {record['generated']}\n")
    atomic_write_text(run_dir / "samples.jsonl", "\n".join(lines) + ("\n" if lines else ""))
    atomic_write_text(run_dir / "samples.txt", "\n".join(text))


def describe(metrics: dict[str, Any]) -> str:
    """One line for the terminal."""
    parts = [f"perplexity {metrics['perplexity']:.3f}"
             + (f" (base {metrics['base_perplexity']:.3f})" if "base_perplexity" in metrics else "")]
    if metrics.get("rouge_l") is not None:
        base = f" (base {metrics['base_rouge_l']:.3f})" if "base_rouge_l" in metrics else ""
        parts.append(f"ROUGE-L {metrics['rouge_l']:.3f}{base}")
        base = f" (base {metrics['base_exact_match']:.3f})" if "base_exact_match" in metrics else ""
        parts.append(f"exact match {metrics['exact_match']:.3f}{base}")
    return "  ".join(parts) + f"  ({metrics['train_seconds']:.0f}s)"

