"""`fmkit pretrain`: continued masked-LM pretraining on unlabelled text -> a backbone folder."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_pretrain(args: argparse.Namespace) -> int:
    from fmkit.config import load_command_config
    from fmkit.workflows.pretrain import pretrain

    overrides: dict[str, Any] = {
        "data.train": args.data, "data.text_column": args.text_column, "data.max_length": args.max_length,
        "model.name": args.model, "train.epochs": args.epochs, "train.seed": args.seed,
        "train.batch_size": args.batch_size, "train.learning_rate": args.learning_rate, "output": args.output,
        "pretrain.mlm_probability": args.mlm_probability, "task.type": "pretrain",
    }
    cfg = load_command_config(args.config, overrides, args.set, quiet=args.quiet)
    print_result(pretrain(cfg, overwrite=args.overwrite))
    return 0


def print_result(result: Any) -> None:
    m = result.metrics
    print(f"run: {result.run_dir}")
    print(f"held-out perplexity {m['perplexity_before']:.2f} -> {m['perplexity']:.2f} on {m['held_out_texts']} texts "
          f"({m['train_seconds']:.0f}s)")
    print(f"backbone saved to {result.run_dir / 'model'}: use it with `fmkit train --model {result.run_dir / 'model'}`")


def register(sub: Any) -> None:
    p = sub.add_parser("pretrain", help="continue masked-LM pretraining on unlabelled text (a domain backbone)")
    p.add_argument("--data", required=True, help="unlabelled texts: .txt one per line, or CSV/TSV/JSONL/Parquet")
    p.add_argument("--text-column", help="column with the text (auto-detected if omitted)")
    p.add_argument("--output", help="run directory (default: runs/<timestamp>)")
    p.add_argument("--model", help="backbone to continue from (default: all-MiniLM-L6-v2)")
    p.add_argument("--epochs", type=float, default=1.0, help="passes over the texts (default %(default)s)")
    p.add_argument("--learning-rate", "--lr", type=float, dest="learning_rate", default=5e-5, help="peak learning rate")
    p.add_argument("--batch-size", type=int, help="texts per training step (default 32)")
    p.add_argument("--max-length", type=int, help="longer texts are truncated to this many tokens (default 128)")
    p.add_argument("--seed", type=int, help="random seed for masking and shuffling (default 42)")
    p.add_argument("--mlm-probability", type=float, help="share of tokens masked (default 0.15)")
    p.add_argument("--config", help="YAML config (see `fmkit init-config`)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="any config key, e.g. train.warmup_ratio=0.1")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in --output")
    p.add_argument("--quiet", action="store_true", help="no progress bar (for logs)")
    p.set_defaults(func=cmd_pretrain)
