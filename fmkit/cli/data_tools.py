"""`fmkit audit | suggest`: suspect labels in a training file, and which unlabelled texts to label next."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fmkit.errors import ConfigError


def write_records(path: Path | None, records: Iterable[dict[str, object]]) -> None:
    """JSON lines (or CSV for a .csv path) to `path`, atomically; to stdout without one."""
    from fmkit.utils.io import atomic_write_bytes

    rows = list(records)
    if path is not None and path.suffix.lower() == ".csv":
        buffer = io.StringIO()
        if rows:
            writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        text = buffer.getvalue()
    else:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if path is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        atomic_write_bytes(path, text.encode("utf-8"))


def check_output_suffix(path: str | None, flag: str) -> Path | None:
    if path is None:
        return None
    if Path(path).suffix.lower() not in (".csv", ".jsonl", ".json"):
        raise ConfigError(f"{flag} {path}: write suspects to a .csv or .jsonl file.")
    return Path(path)


def cmd_audit(args: argparse.Namespace) -> int:
    from fmkit.config import load_command_config
    from fmkit.workflows.audit import audit, print_summary

    if args.relabel and not args.drop_suspects:
        raise ConfigError("--relabel needs --drop-suspects OUT: the file the corrected, cleaned data is written to.")
    output = check_output_suffix(args.output, "--output")
    overrides: dict[str, Any] = {"data.train": args.data, "data.text_column": args.text_column,
                                 "data.label_column": args.label_column, "model.name": args.model,
                                 "data.max_length": args.max_length, "train.seed": args.seed}
    cfg = load_command_config(args.config, overrides, args.set, quiet=args.quiet)
    result = audit(cfg, folds=args.folds, id_column=args.id_column,
                   relabel=Path(args.relabel) if args.relabel else None, duplicate_cosine=args.duplicate_cosine)
    if args.drop_suspects:
        from fmkit.data.table_writer import write_rows_like

        kept = result.kept_rows()
        write_rows_like(Path(args.data), Path(args.drop_suspects), kept, result.label_column, result.corrected)
    # Suspects go to stdout when no file is named, so the summary goes to stderr then.
    print_summary(result, sys.stdout if output is not None else sys.stderr)
    write_records(output, (s.record() for s in result.suspects))
    if output is not None:
        print(f"suspects written to {output}, most suspect first")
    if args.drop_suspects:
        dropped = len(result.data) - len(result.kept_rows())
        print(f"cleaned copy without the {dropped} doubted rows written to {args.drop_suspects}",
              file=sys.stdout if output is not None else sys.stderr)
    return 0


def cmd_suggest(args: argparse.Namespace) -> int:
    from fmkit.workflows.suggest import print_summary, suggest

    output = Path(args.output) if args.output else None
    if output is not None and output.suffix.lower() not in (".csv", ".jsonl", ".json"):
        raise ConfigError(f"--output {output}: write suggestions to a .jsonl or .csv file.")
    result = suggest(args.model, args.pool, args.n, args.strategy, args.uncertainty, args.text_column,
                     args.id_column, Path(args.labelled) if args.labelled else None, args.batch_size)
    write_records(output, (s.record() for s in result.suggestions))
    print_summary(result, args.strategy)
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("audit", help="find labels that look wrong (confident learning on k-fold probes), "
                                     "conflicting near-duplicates and outliers")
    p.add_argument("--data", required=True, help="labelled file to audit: CSV, TSV, JSONL or Parquet")
    p.add_argument("--text-column", help="column with the text (auto-detected if omitted)")
    p.add_argument("--label-column", help="column with the label (auto-detected if omitted)")
    p.add_argument("--id-column", help="column naming each row in the output (default: an `id` column, else the "
                                       "1-based row number)")
    p.add_argument("--model", help="encoder whose frozen vectors the probes read (default: all-MiniLM-L6-v2)")
    p.add_argument("--max-length", type=int, help="longer texts are truncated to this many tokens (default 128)")
    p.add_argument("--folds", type=int, default=5, help="k of the k-fold probes (default %(default)s)")
    p.add_argument("--seed", type=int, help="random seed of the folds (default 42)")
    p.add_argument("--duplicate-cosine", type=float, default=0.95,
                   help="cosine from which two texts count as near-duplicates (default %(default)s)")
    p.add_argument("--output", help="suspects.csv or suspects.jsonl, most suspect first (default: JSON lines on "
                                    "stdout)")
    p.add_argument("--drop-suspects", metavar="OUT_FILE",
                   help="write a copy of --data (same format) without the rows whose label is doubted; outliers "
                        "are listed, never dropped")
    p.add_argument("--relabel", metavar="FILE",
                   help="corrections to apply first: a table with id and label columns (rows corrected are "
                        "trusted); needs --drop-suspects")
    p.add_argument("--config", help="YAML config (see `fmkit init-config`)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="any config key, e.g. strategy.probe.c=0.5")
    p.add_argument("--quiet", action="store_true", help="no progress bar (for logs)")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("suggest", help="rank unlabelled texts for labelling: the ones a classifier would learn "
                                       "most from")
    p.add_argument("model", help="saved classifier folder or the run directory holding it")
    p.add_argument("--pool", required=True, help="unlabelled texts: txt (one per line), CSV/TSV/JSONL/Parquet "
                                                 "with a text column, or -")
    p.add_argument("-n", type=int, default=200, help="how many texts to suggest (default %(default)s)")
    p.add_argument("--strategy", choices=["uncertainty", "diversity", "mix"], default="mix",
                   help="uncertainty: least sure first; diversity: k-center cover of the pool; mix (default): "
                        "k-center among the most uncertain")
    p.add_argument("--uncertainty", choices=["margin", "entropy"], default="margin",
                   help="margin between the top two labels (default) or entropy of all")
    p.add_argument("--labelled", metavar="FILE", help="texts already labelled, counted as covered by diversity "
                                                      "(default: the training file of the model's run)")
    p.add_argument("--text-column", help="column with the text in a table pool (auto-detected if omitted)")
    p.add_argument("--id-column", help="column naming each text (default: an `id` column, else the 0-based line)")
    p.add_argument("--output", help="next.jsonl or next.csv, in labelling order (default: JSON lines on stdout)")
    p.add_argument("--batch-size", type=int, default=64, help="texts per forward pass (default %(default)s)")
    p.set_defaults(func=cmd_suggest)
