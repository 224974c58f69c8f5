"""Translation runs (`fmkit train --task translation`): a causal LM (Gemma 3 270M by default) tuned with LoRA on
sentence pairs, through the one loop.

Why a task of its own rather than `--task generation` with source/target columns: translation needs what a
generic prompt->completion run does not know: which languages and which way (`translation.direction`, both
ways from one file), a prompt that names them, BLEU/chrF per direction instead of ROUGE, a base model scored
fairly (a pretrained LM is shown a few worked examples; the tuned one is not), decoding that stops at the end
of the line, and `fmkit translate` / `/v1/translate` that pick the direction from the text's script. It is
built from the generation task's pieces (encoded rows, loader, LoRA, checkpoints, the saved LM folder).

Evaluation each epoch: mean log-likelihood of the held-out target tokens (picks the best checkpoint). At the
end: greedy translations of up to `translation.eval_sentences` held-out sentences per direction by the base
model (few-shot) and the tuned model, BLEU and chrF of both, and RUN_DIR/translation_samples.jsonl side by side.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmkit.config import RunConfig
from fmkit.config.translation import TranslationConfig
from fmkit.data.tasks.translation import (
    Direction,
    TranslationPair,
    build_prompt,
    encode_translation,
    read_translation_pairs,
    split_pairs,
)
from fmkit.errors import DataError
from fmkit.evaluation.generation import perplexity
from fmkit.evaluation.translation import translation_scores
from fmkit.models.causal_lm import load_causal_lm, load_lm_tokenizer, resolve_causal_lm, save_generator
from fmkit.models.gemma import GEMMA_NAME
from fmkit.models.lora import ADAPTERS_DIR, add_lora, merge_lora
from fmkit.models.precision import resolve_inference_precision
from fmkit.models.translation_lm import (
    TranslationLMForTraining,
    make_target_loader,
    newline_token_ids,
    target_loss,
    target_nll,
    translate_prompts,
)
from fmkit.training import Checkpoints, make_accelerator, train_loop
from fmkit.utils.io import atomic_directory, atomic_write_text
from fmkit.workflows.generation import resolve_causal_lm_defaults
from fmkit.workflows.rundir import RunResult
from fmkit.workflows.strategy_runs import strategy_train_config
from fmkit.workflows.task_run import TaskRun

PRIMARY = "mean_log_likelihood"
SAMPLES_FILE = "translation_samples.jsonl"
MAX_SHOT_CHARS = 60  # worked examples for the base model: short ones, so the prompt stays small


def load_pairs(cfg: RunConfig) -> tuple[list[TranslationPair], list[TranslationPair]]:
    if cfg.data.train is None:
        raise DataError("No training data: pass --data FILE with source/target (or language-named, e.g. zh/en) columns.")
    train = read_translation_pairs(cfg.data.train, cfg.translation)
    if cfg.data.eval is not None:
        return train, read_translation_pairs(cfg.data.eval, cfg.translation)
    return split_pairs(train, cfg.data.eval_fraction, cfg.train.seed)


def directions_of(pairs: list[TranslationPair]) -> list[Direction]:
    return list(dict.fromkeys(p.direction for p in pairs))


def few_shot_examples(train: list[TranslationPair], direction: Direction, count: int, seed: int) -> list[TranslationPair]:
    """`count` short training pairs of `direction`, drawn with the run's seed: the base model's worked examples."""
    candidates = [p for p in train if p.direction == direction and len(p.source) <= MAX_SHOT_CHARS
                  and len(p.target) <= MAX_SHOT_CHARS]
    order = np.random.default_rng(seed).permutation(len(candidates))
    return [candidates[i] for i in order[:count].tolist()]


def eval_sample(eval_pairs: list[TranslationPair], direction: Direction, limit: int) -> list[TranslationPair]:
    """The first `limit` held-out pairs of `direction` (file order: reproducible, the same for base and tuned)."""
    return [p for p in eval_pairs if p.direction == direction][:limit]


def translate_pairs(lm: Any, tokenizer: Any, pairs: list[TranslationPair], settings: TranslationConfig,
                    shots: list[TranslationPair], newline_ids: torch.Tensor) -> list[str]:
    prompts = [build_prompt(tokenizer, settings.prompt_template, p.direction, p.source, shots) for p in pairs]
    return translate_prompts(lm, tokenizer, prompts, settings.max_new_tokens, newline_ids=newline_ids,
                             precision=resolve_inference_precision("auto"))


def train(cfg: RunConfig, *, resume_dir: Path | None = None, overwrite: bool = False) -> RunResult:
    cfg = resolve_causal_lm_defaults(cfg, GEMMA_NAME, "translation")  # Gemma 3 270M by default
    settings = cfg.translation
    train_pairs, eval_pairs = load_pairs(cfg)
    directions = directions_of(train_pairs)
    model_path = resolve_causal_lm(cfg.model.name)
    tokenizer = load_lm_tokenizer(model_path)
    newline_ids = newline_token_ids(tokenizer)
    train_enc = encode_translation(tokenizer, train_pairs, settings.prompt_template, settings.max_length)
    eval_enc = encode_translation(tokenizer, eval_pairs, settings.prompt_template, settings.max_length)
    data_info = {
        "train": {"source": str(cfg.data.train), "examples": len(train_pairs),
                  "target_tokens": train_enc.completion_tokens()},
        "eval": {"source": str(cfg.data.eval or f"{cfg.data.train} (held-out split)"), "examples": len(eval_pairs),
                 "target_tokens": eval_enc.completion_tokens()},
        "directions": [d.name for d in directions], "max_length": settings.max_length,
    }
    samples = {d: eval_sample(eval_pairs, d, settings.eval_sentences) for d in directions}
    with TaskRun(cfg, data_info, model_path, resume_dir, overwrite) as run:
        from accelerate.utils import set_seed

        set_seed(cfg.train.seed)
        lm = load_causal_lm(model_path)
        pad_id = int(tokenizer.pad_token_id)
        eval_loader = make_target_loader(eval_enc, pad_id, cfg.eval.batch_size, cfg.train.seed, shuffle=False)
        base: dict[Direction, list[str]] = {}
        base_metrics: dict[str, Any] = {}
        if not run.resume:  # the base model's numbers, for the before/after comparison
            nll, tokens = target_nll(TranslationLMForTraining(lm), eval_loader)
            base_metrics["base_perplexity"] = perplexity(nll, tokens)
            started = time.perf_counter()
            for d in directions:
                shots = few_shot_examples(train_pairs, d, settings.base_few_shot, cfg.train.seed)
                base[d] = translate_pairs(lm, tokenizer, samples[d], settings, shots, newline_ids)
            base_metrics["base_translate_seconds"] = round(time.perf_counter() - started, 2)

        lora = cfg.strategy.name == "lora"
        train_cfg = cfg.train
        if lora:
            lm = add_lora(lm, cfg.strategy.lora, task_type="CAUSAL_LM")
            train_cfg = strategy_train_config(cfg, "lora")
        model = TranslationLMForTraining(lm, trainable_only=lora)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        train_loader = make_target_loader(train_enc, pad_id, train_cfg.batch_size, train_cfg.seed, shuffle=True,
                                          group_by_length=train_cfg.group_by_length)

        def evaluate(current: torch.nn.Module) -> dict[str, Any]:
            nll, tokens = target_nll(current, eval_loader)
            return {PRIMARY: -nll / max(1, tokens), "perplexity": perplexity(nll, tokens), "eval_tokens": tokens}

        accelerator = make_accelerator(train_cfg)
        result = train_loop(
            model, train_loader, cfg=train_cfg, loss_fn=target_loss, evaluate=evaluate, primary_metric=PRIMARY,
            checkpoints=Checkpoints(run.dir / "checkpoints"), tracker=run.tracker, accelerator=accelerator,
            resume=run.resume,
        )
        if not run.main:
            return RunResult(run_dir=run.dir, metrics={}, warnings=[])
        model = accelerator.unwrap_model(model)
        final = evaluate(model)
        started = time.perf_counter()
        tuned = {d: translate_pairs(model.lm, tokenizer, samples[d], settings, [], newline_ids) for d in directions}
        translate_seconds = round(time.perf_counter() - started, 2)
        metrics: dict[str, Any] = {
            "perplexity": final["perplexity"], PRIMARY: final[PRIMARY], "eval_tokens": final["eval_tokens"],
            "num_examples": len(eval_pairs), "train_examples": len(train_pairs),
            "directions": [d.name for d in directions], "strategy": cfg.strategy.name,
            "trainable_parameters": int(trainable), "best_step": result.best_step, "steps": result.steps,
            "epochs_completed": result.epochs_completed, "stopped_early": result.stopped_early,
            "train_seconds": round(result.train_seconds, 2),
            "train_examples_per_second": round(result.examples_per_second, 2),
            "translate_seconds": translate_seconds, "base_few_shot": settings.base_few_shot,
            **direction_metrics(samples, tuned, base), **base_metrics,
        }
        write_samples(run.dir, samples, tuned, base)
        final_lm = merge_lora(model.lm, run.dir / ADAPTERS_DIR if lora else None)
        with atomic_directory(run.dir / "model") as tmp:
            save_generator(final_lm, tokenizer, tmp, {
                "task": "translation", "base_model": cfg.model.name, "strategy": cfg.strategy.name,
                "directions": [d.name for d in directions], "prompt_template": settings.prompt_template,
                "max_new_tokens": settings.max_new_tokens,
            })
        run.finish(metrics, {k: v for k, v in metrics.items() if isinstance(v, (int, float))})
    return RunResult(run_dir=run.dir, metrics=metrics, warnings=[])


def direction_metrics(samples: dict[Direction, list[TranslationPair]], tuned: dict[Direction, list[str]],
                      base: dict[Direction, list[str]]) -> dict[str, Any]:
    """bleu_zh-en, chrf_zh-en (and base_...) per direction, and their means over the directions as bleu/chrf."""
    out: dict[str, Any] = {}
    for prefix, outputs in (("", tuned), ("base_", base)):
        if not outputs:
            continue
        per = {d: translation_scores(outputs[d], [p.target for p in samples[d]], d.target) for d in outputs}
        for d, scores in per.items():
            out[f"{prefix}bleu_{d.name}"] = scores["bleu"]
            out[f"{prefix}chrf_{d.name}"] = scores["chrf"]
        for name in ("bleu", "chrf"):
            out[f"{prefix}{name}"] = round(float(np.mean([s[name] for s in per.values()])), 2) if per else 0.0
    out["translated_sentences"] = {d.name: len(v) for d, v in samples.items()}
    return out


def write_samples(run_dir: Path, samples: dict[Direction, list[TranslationPair]], tuned: dict[Direction, list[str]],
                  base: dict[Direction, list[str]]) -> None:
    """translation_samples.jsonl: per held-out sentence its reference, the base model's and the tuned model's."""
    lines = []
    for d, pairs in samples.items():
        for i, pair in enumerate(pairs):
            record = {"direction": d.name, "source": pair.source, "reference": pair.target,
                      "base_model": base[d][i] if d in base else None, "tuned_model": tuned[d][i]}
            lines.append(json.dumps(record, ensure_ascii=False))
    atomic_write_text(run_dir / SAMPLES_FILE, "\n".join(lines) + ("\n" if lines else ""))


def describe(metrics: dict[str, Any]) -> str:
    """One line for the terminal: chrF and BLEU per direction, the base model's in brackets."""
    parts = []
    for name in metrics.get("directions", []):
        if f"chrf_{name}" not in metrics:
            continue
        base = (f" (base {metrics[f'base_chrf_{name}']:.1f} / {metrics[f'base_bleu_{name}']:.1f})"
                if f"base_chrf_{name}" in metrics else "")
        parts.append(f"{name}: chrF {metrics[f'chrf_{name}']:.1f} BLEU {metrics[f'bleu_{name}']:.1f}{base}")
    return "  ".join(parts) + f"  ({metrics['train_seconds']:.0f}s training)"


def print_result(result: Any) -> None:
    print(f"run: {result.run_dir}")
    print(describe(result.metrics))
    print(f"side by side: {result.run_dir / SAMPLES_FILE}")
    print(f"model saved to {result.run_dir / 'model'}  (try: fmkit translate {result.run_dir / 'model'} \"...\")")


def evaluate_saved(model_dir: Path, data: Path, text_column: str | None = None, label_column: str | None = None,
                   batch_size: int = 16, precision: str | None = None) -> dict[str, Any]:
    """`fmkit eval MODEL FILE`: BLEU and chrF of a saved translator on every pair of FILE, per direction the
    model knows (the file's columns are read as at training; --text-column/--label-column name source/target)."""
    from fmkit.models.causal_lm import FMKIT_META

    meta = json.loads((Path(model_dir) / FMKIT_META).read_text(encoding="utf-8"))
    known = [Direction.parse(d) for d in meta.get("directions", [])]
    settings = TranslationConfig(prompt_template=meta.get("prompt_template", TranslationConfig().prompt_template),
                                 max_new_tokens=int(meta.get("max_new_tokens", 64)), source_column=text_column,
                                 target_column=label_column,
                                 direction=known[0].name if len(known) == 1 else "both")
    pairs = [p for p in read_translation_pairs(data, settings) if p.direction in known]
    if not pairs:
        raise DataError(f"{data}: no pairs in the model's directions ({', '.join(d.name for d in known)}).")
    tokenizer = load_lm_tokenizer(Path(model_dir))
    lm = load_causal_lm(Path(model_dir))
    newline_ids = newline_token_ids(tokenizer)
    by_direction = {d: [p for p in pairs if p.direction == d] for d in known}
    outputs = {d: translate_pairs(lm, tokenizer, ps, settings, [], newline_ids) for d, ps in by_direction.items() if ps}
    print(f"translated {len(pairs)} sentences", file=sys.stderr)
    return direction_metrics({d: by_direction[d] for d in outputs}, outputs, {})


def print_eval(metrics: dict[str, Any]) -> None:
    """`fmkit eval`'s lines: chrF and BLEU per direction."""
    for name, count in metrics.get("translated_sentences", {}).items():
        print(f"{name}: chrF {metrics[f'chrf_{name}']:.2f}  BLEU {metrics[f'bleu_{name}']:.2f}  ({count} sentences)")
