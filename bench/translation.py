"""Translation zh<->en (issue 19): Gemma 3 270M before and after `fmkit train --task translation` (LoRA), on Tatoeba.

    flock /tmp/fmkit/heavy.lock python bench/translation.py --train-pairs 3000 --test-pairs 200

Data: ../shared/data/tatoeba_zh_en (train/dev/test split by sentence groups, so no test sentence occurs in
train). A seeded sample of `--train-pairs` training pairs is trained in both directions; 200 dev pairs pick the
checkpoint; a seeded sample of `--test-pairs` test pairs is translated in each direction by
  - the base model, shown `--shots` short training pairs before each sentence (a pretrained LM needs the pattern),
  - the tuned model, zero-shot, with the same template,
greedy decoding with the KV cache, stopping at the end of the line. BLEU (sacrebleu, 'zh' tokenisation for
Chinese targets) and chrF per direction; samples side by side in OUT/translation_test_samples.jsonl.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "tatoeba_zh_en"


def read_pairs(path: Path) -> list[tuple[str, str]]:
    with open(path, encoding="utf-8") as fh:
        return [(p[0], p[1]) for p in (line.rstrip("\n").split("\t")[:2] for line in fh) if len(p) == 2]


def write_jsonl(path: Path, pairs: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"en": e, "zh": z}, ensure_ascii=False) + "\n" for e, z in pairs),
                    encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-pairs", type=int, default=3000)
    parser.add_argument("--dev-pairs", type=int, default=200)
    parser.add_argument("--test-pairs", type=int, default=200, help="per direction")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--shots", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-translation"))
    parser.add_argument("--skip-train", action="store_true", help="reuse OUT/run (scores only)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from fmkit.config.translation import TranslationConfig
    from fmkit.data.tasks.translation import TranslationPair, read_translation_pairs
    from fmkit.evaluation.translation import translation_scores
    from fmkit.models.causal_lm import load_causal_lm, load_lm_tokenizer, resolve_causal_lm
    from fmkit.models.translation_lm import newline_token_ids
    from fmkit.workflows.translation import few_shot_examples, translate_pairs

    rng = random.Random(0)
    train = read_pairs(DATA / "train.tsv")
    rng.shuffle(train)
    dev = read_pairs(DATA / "dev.tsv")
    rng.shuffle(dev)
    test = read_pairs(DATA / "test.tsv")
    rng.shuffle(test)  # the files are sorted by English length: a prefix would be the shortest sentences
    args.out.mkdir(parents=True, exist_ok=True)
    train_file = write_jsonl(args.out / "train.jsonl", train[: args.train_pairs])
    dev_file = write_jsonl(args.out / "dev.jsonl", dev[: args.dev_pairs])
    test_file = write_jsonl(args.out / "test.jsonl", test[: args.test_pairs])
    run_dir = args.out / "run"

    train_seconds = None
    if not args.skip_train:
        command = [sys.executable, "-m", "fmkit", "train", "--task", "translation", "--model", "gemma-3-270m",
                   "--data", str(train_file), "--eval", str(dev_file), "--output", str(run_dir), "--overwrite",
                   "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                   "--tracking", "none", "--quiet",
                   "--set", f"train.threads={args.threads}", "--set", f"strategy.lora.r={args.lora_r}",
                   "--set", f"strategy.lora.alpha={2 * args.lora_r}",
                   "--set", f"strategy.lora.learning_rate={args.learning_rate}",
                   "--set", "translation.eval_sentences=10", "--set", f"translation.base_few_shot={args.shots}"]
        print(" ".join(command), file=sys.stderr)
        started = time.perf_counter()
        subprocess.run(command, check=True)
        train_seconds = round(time.perf_counter() - started, 1)

    settings = TranslationConfig(base_few_shot=args.shots)
    train_pairs = read_translation_pairs(train_file, settings)
    test_pairs = read_translation_pairs(test_file, settings)
    directions = list(dict.fromkeys(p.direction for p in test_pairs))
    results: dict[str, dict[str, float]] = {}
    outputs: dict[str, dict[str, list[str]]] = {}
    for name, path, shots in (("base", resolve_causal_lm("gemma-3-270m"), args.shots), ("tuned", run_dir / "model", 0)):
        tokenizer = load_lm_tokenizer(path)
        lm = load_causal_lm(path)
        newline_ids = newline_token_ids(tokenizer)
        outputs[name] = {}
        for d in directions:
            pairs: list[TranslationPair] = [p for p in test_pairs if p.direction == d]
            examples = few_shot_examples(train_pairs, d, shots, seed=42) if shots else []
            started = time.perf_counter()
            hyps = translate_pairs(lm, tokenizer, pairs, settings, examples, newline_ids)
            seconds = time.perf_counter() - started
            outputs[name][d.name] = hyps
            scores = translation_scores(hyps, [p.target for p in pairs], d.target)
            results[f"{name} {d.name}"] = {**scores, "sentences": len(pairs), "seconds": round(seconds, 1)}
            print(f"{name:5s} {d.name}: chrF {scores['chrf']:.2f} BLEU {scores['bleu']:.2f} "
                  f"({len(pairs)} sentences, {seconds:.0f}s)", file=sys.stderr)
        del lm

    with open(args.out / "translation_test_samples.jsonl", "w", encoding="utf-8") as fh:
        for d in directions:
            pairs = [p for p in test_pairs if p.direction == d]
            for i, p in enumerate(pairs):
                fh.write(json.dumps({"direction": d.name, "source": p.source, "reference": p.target,
                                     "base_model": outputs["base"][d.name][i], "tuned_model": outputs["tuned"][d.name][i]},
                                    ensure_ascii=False) + "\n")
    run_metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    summary = {"results": results, "train_pairs": args.train_pairs, "train_examples": run_metrics["train_examples"],
               "train_seconds_loop": run_metrics["train_seconds"], "train_command_seconds": train_seconds,
               "steps": run_metrics["steps"], "trainable_parameters": run_metrics["trainable_parameters"],
               "dev_perplexity": run_metrics["perplexity"], "base_dev_perplexity": run_metrics.get("base_perplexity")}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print("| direction | model | chrF | BLEU | sentences | decode s |\n|---|---|---|---|---|---|")
    for d in directions:
        for name in ("base", "tuned"):
            r = results[f"{name} {d.name}"]
            label = f"Gemma 3 270M base, {args.shots}-shot" if name == "base" else "Gemma 3 270M + fmkit LoRA"
            print(f"| {d.name} | {label} | {r['chrf']:.2f} | {r['bleu']:.2f} | {r['sentences']} | {r['seconds']} |")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
