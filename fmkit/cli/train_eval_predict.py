"""`fmkit train | eval | predict | doctor | init-config`: the run commands of every task.

What each task does (its workflow, predictor, evaluation, result line) comes from the task registry, config/tasks.py."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from fmkit.errors import FmkitError

EXIT_USAGE = 2


# --- commands -----------------------------------------------------------------------------------

def cmd_train(args: argparse.Namespace) -> int:
    from fmkit.config import load_command_config
    from fmkit.config.tasks import resolve, task_spec
    from fmkit.workflows import train_for_task
    from fmkit.workflows.rundir import resume_config

    if args.resume:
        cfg = resume_config(Path(args.resume))
        result = train_for_task(cfg, resume_dir=Path(args.resume))
    else:
        overrides: dict[str, Any] = {
            "data.train": args.data, "data.eval": args.eval, "data.text_column": args.text_column,
            "data.label_column": args.label_column, "data.max_length": args.max_length,
            "model.name": args.model, "train.epochs": args.epochs, "train.seed": args.seed,
            "train.batch_size": args.batch_size, "train.learning_rate": args.learning_rate,
            "task.class_weights": args.class_weights, "output": args.output, "task.type": args.task,
            "strategy.name": args.strategy, "strategy.time_budget": args.time_budget,
            "strategy.zeroshot.label_descriptions": args.label_descriptions,
            "track.backend": args.tracking, "track.tracking_uri": args.tracking_uri,
            "eval.target_precision": args.target_precision,
        }
        cfg = load_command_config(args.config, overrides, args.set, quiet=args.quiet)
        result = train_for_task(cfg, overwrite=args.overwrite)
    printer = task_spec(cfg.task.type).result_printer
    if result.metrics and printer:  # empty on the other processes of a distributed run
        resolve(printer)(result)
    return 0


def print_result(result: Any) -> None:
    """What `fmkit train` prints after a classification (text or image) run."""
    m = result.metrics
    print(f"run: {result.run_dir}")
    print(f"accuracy {m['accuracy']:.4f}  macro_f1 {m['macro_f1']:.4f}  on {m['num_examples']} eval examples "
          f"({m['train_seconds']:.0f}s, {m['train_examples_per_second']:.0f} examples/s)")
    print(f"model saved to {result.run_dir / 'model'}")


def cmd_eval(args: argparse.Namespace) -> int:
    """Metrics of a saved model on a labelled file, by the evaluation its task's registry entry names."""
    from fmkit.config.tasks import resolve, task_spec
    from fmkit.models.meta import saved_model_dir
    from fmkit.tracking import record_eval

    runs = Path(args.runs) if args.runs else None
    model_dir = saved_model_dir(Path(args.model_dir))
    spec = task_spec(model_task(model_dir) or "classification")
    if spec.evaluate is None:
        raise FmkitError(f"{args.model_dir}: `fmkit eval` does not evaluate '{spec.name}' models.")
    extra: dict[str, Any] = {}
    if args.unknown_labels is not None:
        if spec.name != "classification":
            raise FmkitError(f"--unknown-labels applies to text classifiers; {args.model_dir} is a '{spec.name}' model.")
        extra["unknown_labels"] = args.unknown_labels
    metrics = resolve(spec.evaluate)(model_dir, Path(args.data), args.text_column, args.label_column,
                                     args.batch_size, precision=args.precision, **extra)
    record_eval(Path(args.model_dir), Path(args.data), metrics, runs)
    if args.json:
        print(json.dumps(metrics, indent=2))
    elif spec.eval_printer:
        resolve(spec.eval_printer)(metrics)
    else:
        print_scalars(metrics)
    return 0


def print_scalars(metrics: dict[str, Any]) -> None:
    from fmkit.evaluation.metrics import headline

    print("  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in headline(metrics).items()))


def print_classification_eval(metrics: dict[str, Any]) -> None:
    """Per-class report, confusion matrix and the headline numbers (text and image classifiers)."""
    from fmkit.evaluation.metrics import format_confusion, format_report, headline

    print(format_report(metrics))
    print()
    print(format_confusion(metrics))
    print()
    print("  ".join(f"{k}={v:.4f}" for k, v in headline(metrics).items() if k != "num_examples"))
    for line in label_mismatch_lines(metrics):
        print(line)


def label_mismatch_lines(metrics: dict[str, Any]) -> list[str]:
    """What --unknown-labels did and what the abstain threshold does on this file (nothing when neither applies)."""
    lines = []
    unknown = metrics.get("unknown_labels")
    if unknown:
        done = ("counted as errors" if unknown["policy"] == "wrong"
                else f"left out: metrics are on {metrics['num_examples']} of {unknown['rows_in_file']} rows")
        lines.append(f"unknown labels: {len(unknown['unknown'])} label(s) the model was never trained on, "
                     f"{unknown['unknown_rows']} row(s) {done} (--unknown-labels {unknown['policy']})")
    abstention = metrics.get("abstention")
    if abstention:
        lines.append(f"abstention (threshold {abstention['threshold']:.4f}): answers {abstention['coverage']:.1%} "
                     f"of rows ({abstention['abstained']} abstained) with accuracy {abstention['accepted_accuracy']:.4f} "
                     f"on them; plain accuracy {abstention['accuracy']:.4f}")
        if unknown and "unknown_label_rows_abstained" in abstention:
            lines.append(f"  of the {unknown['unknown_rows']} rows with unknown labels, "
                         f"{abstention['unknown_label_rows_abstained']} were abstained on")
    return lines


def model_task(model_dir: Path) -> str | None:
    """The task a saved model (or the run directory holding it) records; None when it records none."""
    from fmkit.models.meta import read_meta, saved_model_dir

    model_dir = saved_model_dir(model_dir)
    if not (model_dir / "fmkit.json").is_file():
        return None
    return str(read_meta(model_dir).get("task", "classification"))


def cmd_predict(args: argparse.Namespace) -> int:
    from fmkit.cli.predict_output import SkipCount, id_column, iter_inputs, select_fields, with_inputs, write_records
    from fmkit.inference import load_predictor

    if args.engine == "ray":
        from fmkit.cli.ray_jobs import run_ray_job

        return run_ray_job(args, "predict")
    predictor = load_predictor(Path(args.model_dir), batch_size=args.batch_size, backend=args.backend,
                               precision=args.precision)
    if args.abstain_threshold is not None:
        if getattr(predictor, "TASK", None) != "classification":
            raise FmkitError(f"--abstain-threshold applies to text classifiers; {args.model_dir} is not one.")
        predictor.abstain_threshold = args.abstain_threshold
    if args.input != "-" and not Path(args.input).exists():
        raise FmkitError(f"{args.input}: file not found.")
    skipped = SkipCount()
    if getattr(args, "audio", False):
        from fmkit.cli.media import transcribed_records

        records = transcribed_records(predictor, Path(args.input))  # speech -> text -> this model
    elif getattr(predictor, "pair_input", False):
        from fmkit.cli.predict_output import with_pair_inputs

        records = with_pair_inputs(predictor, args.input, args.text_column, skipped)
    elif hasattr(predictor, "predict_source"):
        records = predictor.predict_source(Path(args.input))  # images: one file or a folder; records carry the path
    else:
        inputs = iter_inputs(args.input, args.text_column, id_column(args.input, args.id_column), skipped)
        records = with_inputs(predictor, inputs)
    records = select_fields(records, args.fields)
    # A person at a terminal gets the table; files and pipes get JSON lines unless asked otherwise.
    table = args.format == "table" or (args.format is None and not args.output and sys.stdout.isatty())
    if args.output:
        _write_atomically(Path(args.output), records, table)
    else:
        write_records(records, sys.stdout, table)
        sys.stdout.flush()
    skipped.report()
    return 0


def _write_atomically(path: Path, records: Any, table: bool) -> None:
    """Stream to a temporary file beside OUT and rename at the end: OUT is whole or untouched."""
    import tempfile

    from fmkit.cli.predict_output import write_records

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            write_records(records, fh, table)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cmd_doctor(args: argparse.Namespace) -> int:
    from fmkit.config import load_config
    from fmkit.workflows.doctor import doctor

    cfg = load_config(args.config, {
        "data.train": args.data, "data.eval": args.eval, "data.text_column": args.text_column,
        "data.label_column": args.label_column, "model.name": args.model, "data.max_length": args.max_length,
        "task.type": args.task,
    })
    facts = doctor(cfg)
    if args.budgets:
        from fmkit.workflows.doctor_budgets import budget_estimates

        facts["budgets"] = budget_estimates(cfg)
    if args.json:
        print(json.dumps(facts, indent=2))
        return 0
    print(f"train: {facts['train']['source']}  {facts['train']['rows']} rows")
    print(f"eval:  {facts['eval']['source']}  {facts['eval']['rows']} rows")
    counts = facts["train"].get("class_counts") or facts["train"].get("label_counts")
    if counts:
        kind = "class" if "class_counts" in facts["train"] else "label"
        print(f"{kind} counts (train):")
        top = max(counts.values())
        for label, count in counts.items():
            print(f"  {label[:30]:<30} {count:>7}  {'#' * max(1, round(30 * count / top))}")
    if "mean_labels_per_text" in facts["train"]:
        print(f"labels per text (train): {facts['train']['mean_labels_per_text']:.2f} on average")
    if "target" in facts["train"]:
        t = facts["train"]["target"]
        print(f"target '{t['name']}' (train): mean {t['mean']:.4g}, std {t['std']:.4g}, range [{t['min']:.4g}, "
              f"{t['max']:.4g}], {t['distinct']} distinct values; text column(s): {', '.join(facts['train']['columns'])}")
    if "tokens" in facts:
        tok = facts["tokens"]
        print(f"token lengths: mean {tok['mean']:.1f}, median {tok['p50']:.0f}, p95 {tok['p95']:.0f}, max {tok['max']}")
        hist_top = max(1, max(h["count"] for h in tok["histogram"]))
        for h in tok["histogram"]:
            print(f"  {h['range']:<22} {h['count']:>7}  {'#' * round(30 * h['count'] / hist_top)}")
        print(f"truncated at max_length={tok['max_length']}: {tok['truncated_share']:.1%} of texts")
        if facts.get("long_text", {}).get("current") == "chunk":
            print(facts["long_text"]["advice"])  # what the policy makes of them (a recommendation is a warning)
    if "vocabulary" in facts:
        print(f"vocabulary: {facts['vocabulary']['summary']}")
    if "label_sets" in facts:
        print_label_sets(facts["label_sets"])
    model = facts["model"]
    state = "all files present for offline use" if model["offline_ready"] else f"MISSING {', '.join(model['missing_files'])}"
    print(f"model: {model['name']} -> {model['path']}: {state}")
    if "budgets" in facts:
        from fmkit.workflows.auto import format_budget_row

        budgets = facts["budgets"]
        print(f"--strategy auto on this machine ({budgets['data']}; measured in {budgets['measured_s']:.0f}s):")
        for row in budgets["rows"]:
            print(f"  --time-budget {format_budget_row(row)}")
    for message in facts["warnings"]:
        print(f"warning: {message}")
    print("ok" if model["offline_ready"] else "not ready")
    return 0 if model["offline_ready"] else EXIT_USAGE


def print_label_sets(label_sets: dict[str, Any]) -> None:
    """doctor --eval: the labels only one of the two files has (eval-only ones are what `fmkit eval` refuses)."""
    from fmkit.data.label_sets import shown_counts

    eval_only, train_only = label_sets["eval_only"], label_sets["train_only"]
    if not eval_only and not train_only:
        print("labels: train and eval have the same label set")
        return
    if eval_only:
        print(f"eval labels absent from training ({len(eval_only)}, on {label_sets['eval_only_rows']} rows): "
              f"{shown_counts(eval_only, limit=20)}")
    if train_only:
        shown = ", ".join(repr(label) for label in train_only[:20]) + (" ..." if len(train_only) > 20 else "")
        print(f"training labels absent from eval ({len(train_only)}, no eval metric for them): {shown}")
    for label, parts in label_sets["combined"].items():
        print(f"  {label!r} combines {' + '.join(repr(p) for p in parts)}")


def cmd_init_config(args: argparse.Namespace) -> int:
    from fmkit.config import documented_default_yaml

    sys.stdout.write(documented_default_yaml())
    return 0


# --- registration -------------------------------------------------------------------------------------

def register(sub: Any) -> None:

    def data_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--text-column", help="column with the text (auto-detected if omitted)")
        p.add_argument("--label-column", help="column with the label (auto-detected if omitted)")

    p = sub.add_parser("train", help="fine-tune a model on a labelled file and write a run directory")
    p.add_argument("--data", help="training file: CSV, TSV, JSONL or Parquet")
    p.add_argument("--eval", help="evaluation file (default: a stratified split of --data)")
    data_flags(p)
    p.add_argument("--model", help="bundled name, local folder or hub id (default: all-MiniLM-L6-v2)")
    p.add_argument("--task", help="what to learn: classification (default), ner (CoNLL or JSONL spans, .gz too), "
                   "embedding (query/positive pairs), ...")
    p.add_argument("--epochs", type=float, help="passes over the training data, fractions allowed (default 3)")
    p.add_argument("--seed", type=int, help="random seed for the split, shuffling and initialisation (default 42)")
    p.add_argument("--batch-size", type=int, help="examples per training step (default 32)")
    p.add_argument("--learning-rate", "--lr", type=float, dest="learning_rate", help="peak learning rate (default 1e-4)")
    p.add_argument("--max-length", type=int, help="longer texts are truncated to this many tokens (default 128)")
    p.add_argument("--class-weights", choices=["none", "auto"], help="auto: weigh classes by inverse frequency")
    p.add_argument("--strategy", choices=["auto", "full", "linear-probe", "fewshot", "lora", "zeroshot"],
                   help="how to adapt the model (default auto: chosen from examples per class and --time-budget)")
    p.add_argument("--time-budget", metavar="DURATION",
                   help="wall time of the whole command, e.g. 90s, 10m, 1h, or none: auto plans what fits (default "
                   "10m for auto, no limit for a named strategy), and any strategy stops training in time "
                   "(strategy.json says what was cut)")
    p.add_argument("--target-precision", type=float, metavar="P",
                   help="classification: tune an abstain threshold on the eval split for this precision (e.g. 0.95) "
                        "and save it with the model; below it predict answers label null, abstained true")
    p.add_argument("--label-descriptions", metavar="FILE",
                   help="zeroshot: JSON {label: description} or CSV/TSV label,description")
    p.add_argument("--output", help="run directory (default: runs/<timestamp>)")
    p.add_argument("--config", help="YAML config (see `fmkit init-config`)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="any config key, e.g. train.warmup_ratio=0.1")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in --output")
    p.add_argument("--quiet", action="store_true", help="no progress bar (for logs)")
    p.add_argument("--tracking", choices=["none", "mlflow"], help="also log to MLflow (besides registry + TensorBoard)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite:///RUNS/mlflow.db, local)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="metrics of a saved model on a labelled file")
    p.add_argument("model_dir", help="saved model folder or the run directory holding it")
    p.add_argument("--data", required=True, help="labelled file to score: CSV, TSV, JSONL or Parquet")
    data_flags(p)
    p.add_argument("--batch-size", type=int, default=64, help="texts per forward pass (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print all metrics as JSON")
    p.add_argument("--runs", help="run registry folder to record this evaluation in (default: the model's runs folder)")
    p.add_argument("--unknown-labels", choices=["error", "wrong", "skip"],
                   help="rows whose label the model was never trained on: error (default) refuses the file, wrong "
                        "counts them as errors (the numbers for the whole file), skip leaves them out")
    precision_flag(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", help="one JSON line per input text: label and scores")
    p.add_argument("model_dir", help="saved model folder or the run directory holding it")
    p.add_argument("input", help="file of texts (txt: one per line; CSV/TSV/JSONL/Parquet: text column) or -")
    p.add_argument("--output", help="write JSON lines here instead of stdout")
    p.add_argument("--text-column", help="column with the text in a CSV/TSV/JSONL/Parquet input (auto-detected if omitted)")
    p.add_argument("--id-column", help="column that names each input (auto-detected: id, doc_id, ...); each output "
                   "line then carries the id instead of the text")
    p.add_argument("--fields", metavar="A,B", help="keep only these output fields (e.g. label,scores), or leave "
                   "some out with -NAME (e.g. --fields=-scores)")
    p.add_argument("--format", choices=["jsonl", "table"], help="jsonl: one JSON line per input (default for a file "
                   "or a pipe); table: label, top score and text per line (default at a terminal)")
    p.add_argument("--batch-size", type=int, help="texts per forward pass (default: 32; 64 for a bf16 torch model)")
    p.add_argument("--backend", choices=["auto", "torch", "onnx"], default="auto",
                   help="inference backend; auto: the fastest measured on this machine (cached beside the model)")
    p.add_argument("--abstain-threshold", type=float, metavar="P",
                   help="classifiers: answer label null (abstained true, top_label kept) when the top probability is "
                        "below P, instead of the threshold saved by --target-precision at training")
    p.add_argument("--audio", action="store_true",
                   help="INPUT is speech (an audio file or folder): transcribe it with Whisper, then predict on the text")
    precision_flag(p)
    from fmkit.cli.ray_jobs import engine_flags

    engine_flags(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("doctor", help="check data and model before training")
    p.add_argument("--data", required=True, help="training file to check: CSV, TSV, JSONL or Parquet")
    p.add_argument("--task", help="how to read the data: classification (default), regression or multilabel")
    p.add_argument("--eval", help="evaluation file to check against the training file")
    data_flags(p)
    p.add_argument("--model", help="model whose tokenizer and files are checked")
    p.add_argument("--max-length", type=int, help="token limit the truncation share is measured against (default 128)")
    p.add_argument("--config", help="YAML config (see `fmkit init-config`)")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.add_argument("--budgets", action="store_true",
                   help="also time the model on this machine (seconds) and say what --strategy auto would train "
                        "within 2, 5, 10 and 20 minutes")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("init-config", help="print a documented default config")
    p.set_defaults(func=cmd_init_config)


def precision_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", choices=["model", "auto", "fp32", "bf16"], default="model",
                   help="text classifiers: precision of the torch forward pass; model (default): what the model's "
                        "metrics were measured in; auto: bf16 where the CPU/GPU runs it natively")
