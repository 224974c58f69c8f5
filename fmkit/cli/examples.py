"""Copy-pasteable examples shown at the end of every command's --help, in one table.

Kept here rather than in each command module so the examples read as one consistent set (same file
names from command to command) and a new command cannot ship without one: tests/unit/test_cli_help.py
walks the parser and fails on any command missing from EXAMPLES, and parses every example.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

# Command path (sub-command names after `fmkit`) -> one or two command lines.
EXAMPLES: dict[tuple[str, ...], tuple[str, ...]] = {
    (): (
        "fmkit train --data train.csv --eval dev.csv --output runs/sentiment",
        "fmkit predict runs/sentiment/model new.txt --output predictions.jsonl",
    ),
    ("train",): (
        "fmkit train --data train.csv --eval dev.csv --output runs/sentiment",
        "fmkit train --data train.csv --strategy lora --time-budget 10m --set train.warmup_ratio=0.1",
    ),
    ("eval",): (
        "fmkit eval runs/sentiment/model --data test.csv",
        "fmkit eval runs/sentiment/model --data test.csv --unknown-labels wrong --json > metrics.json",
    ),
    ("predict",): (
        "fmkit predict runs/sentiment/model new.txt --output predictions.jsonl",
        "cat new.txt | fmkit predict runs/sentiment/model -",
    ),
    ("doctor",): (
        "fmkit doctor --data train.csv",
        "fmkit doctor --data train.csv --eval dev.csv --text-column review --label-column stars --json",
    ),
    ("init-config",): ("fmkit init-config > run.yaml",),
    ("runs",): ("fmkit runs ls", "fmkit runs compare RUN_A RUN_B"),
    ("runs", "ls"): ("fmkit runs ls", "fmkit runs ls --runs runs --status finished --json"),
    ("runs", "show"): ("fmkit runs show RUN", "fmkit runs show RUN --json"),
    ("runs", "compare"): ("fmkit runs compare RUN_A RUN_B",),
    ("runs", "rm"): ("fmkit runs rm RUN", "fmkit runs rm RUN --files"),
    ("report",): ("fmkit report runs/sentiment",),
    ("ui",): ("fmkit ui", "fmkit ui --runs runs --port 8765"),
    ("export",): (
        "fmkit export runs/sentiment/model --output runs/sentiment/onnx",
        "fmkit export runs/sentiment/model --quantize int8 --verify dev.csv --output runs/sentiment/int8",
    ),
    ("serve",): (
        "fmkit serve runs/sentiment/model --port 8000",
        'fmkit serve runs/sentiment/int8 --host 0.0.0.0 --api-key "$KEY"',
    ),
    ("pretrain",): (
        "fmkit pretrain --data corpus.txt --output runs/domain",
        "fmkit pretrain --data corpus.csv --text-column body --epochs 2 --output runs/domain",
    ),
    ("translate",): (
        'fmkit translate runs/zh_en/model "我们明天见。"',
        "cat sentences.txt | fmkit translate runs/zh_en/model - --direction en-zh --json",
    ),
    ("generate",): (
        'fmkit generate runs/support/model "Can I return an item?"',
        "echo 'Write a haiku about CPUs' | fmkit generate SmolLM2-135M-Instruct - --max-new-tokens 40",
    ),
    ("transcribe",): ("fmkit transcribe call.wav", "fmkit transcribe calls/ --json"),
    ("embed",): (
        "fmkit embed all-MiniLM-L6-v2 docs.jsonl --output vectors.parquet",
        "fmkit embed runs/emb/model docs.csv --text-column body --output vectors.npy",
    ),
    ("index",): (
        "fmkit index build all-MiniLM-L6-v2 docs.jsonl --output faq.index",
        "fmkit index info faq.index",
    ),
    ("index", "build"): (
        "fmkit index build all-MiniLM-L6-v2 docs.jsonl --output faq.index",
        "fmkit index build all-MiniLM-L6-v2 docs.csv --id-column doc_id --backend hnsw --output big.index",
    ),
    ("index", "add"): ("fmkit index add faq.index more.jsonl",),
    ("index", "delete"): ("fmkit index delete faq.index 17 42",),
    ("index", "info"): ("fmkit index info faq.index",),
    ("index", "eval"): ("fmkit index eval faq.index queries.jsonl", "fmkit index eval faq.index queries.csv --json"),
    ("search",): (
        'fmkit search faq.index "how do I delete my account" -k 5',
        'fmkit search faq.index "reset password" --json',
    ),
    ("audit",): (
        "fmkit audit --data train.csv --output suspects.csv",
        "fmkit audit --data train.csv --relabel fixes.csv --drop-suspects cleaned.csv",
    ),
    ("suggest",): (
        "fmkit suggest runs/sentiment/model --pool unlabelled.txt -n 200 --output next.jsonl",
        "fmkit suggest runs/sentiment/model --pool pool.csv --strategy uncertainty --uncertainty entropy -n 50",
    ),
    ("app",): (
        "fmkit app support build --faq faq.csv --output support/",
        "fmkit app monitor init mon/ --model runs/sentiment/model",
    ),
    ("app", "support"): (
        "fmkit app support build --faq faq.csv --output support/",
        'fmkit app support ask support/ "I forgot my password"',
    ),
    ("app", "support", "build"): (
        "fmkit app support build --faq faq.csv --output support/",
        "fmkit app support build --faq faq.csv --intents utterances.csv --calibration held_out.csv --output support/",
    ),
    ("app", "support", "chat"): ("fmkit app support chat support/", "cat questions.txt | fmkit app support chat support/ --json"),
    ("app", "support", "ask"): ('fmkit app support ask support/ "I forgot my password" --json',),
    ("app", "support", "serve"): ("fmkit app support serve support/ --port 8000",),
    ("app", "support", "eval"): (
        "fmkit app support eval --stackfaq stackExchange-FAQ.xml",
        "fmkit app support eval --clinc data_full.json --per-intent 20",
    ),
    ("app", "monitor"): (
        "fmkit app monitor init mon/ --model runs/sentiment/model",
        "fmkit app monitor run mon/ news.jsonl --once",
    ),
    ("app", "monitor", "init"): (
        "fmkit app monitor init mon/ --model runs/sentiment/model",
        "fmkit app monitor init mon/ --model runs/sentiment/model --window 3600 --webhook http://localhost:9000/alerts",
    ),
    ("app", "monitor", "run"): ("fmkit app monitor run mon/ news.jsonl", "cat items.jsonl | fmkit app monitor run mon/ -"),
    ("app", "monitor", "serve"): ("fmkit app monitor serve mon/ --port 8050", "fmkit app monitor serve mon/ --follow news.jsonl"),
    ("app", "monitor", "status"): ("fmkit app monitor status mon/", "fmkit app monitor status mon/ --scope AAPL"),
    ("app", "recommend"): (
        "fmkit app recommend build --items movies.csv --ratings ratings.csv --output rec/",
        "fmkit app recommend for rec/ --user 15",
    ),
    ("app", "recommend", "build"): (
        "fmkit app recommend build --items movies.csv --ratings ratings.csv --output rec/",
        "fmkit app recommend build --items movies.csv --ratings ratings.csv --output rec/ --finetune-epochs 1",
    ),
    ("app", "recommend", "for"): ("fmkit app recommend for rec/ --user 15", "fmkit app recommend for rec/ --liked 1 2355 -k 10"),
    ("app", "recommend", "serve"): ("fmkit app recommend serve rec/", "fmkit app recommend serve rec/ --port 8001"),
    ("app", "recommend", "eval"): (
        "fmkit app recommend eval --items movies.csv --ratings ratings.csv",
        "fmkit app recommend eval --items movies.csv --ratings ratings.csv --popularity-weights 0 0.3",
    ),
}


def iter_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
                 ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, str | None]]:
    """Every (command path, parser, one-line help) in the tree, the root first."""
    yield path, parser, parser.description
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, child in action.choices.items():
                for child_path, grandchild, text in iter_parsers(child, (*path, name)):
                    yield child_path, grandchild, helps.get(name) if grandchild is child else text


def add_examples(parser: argparse.ArgumentParser) -> None:
    """Give every command an examples epilog (kept verbatim) and its one-line help as a description."""
    for path, command, summary in iter_parsers(parser):
        examples = EXAMPLES.get(path)
        if command.description is None and summary:
            command.description = summary
        if examples:
            command.epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples)
            command.formatter_class = argparse.RawDescriptionHelpFormatter
