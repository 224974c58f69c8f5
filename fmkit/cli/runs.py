"""`fmkit runs ls | show | compare | rm`, `fmkit report RUN_DIR` and `fmkit ui`: look at what was run."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from fmkit.errors import FmkitError
from fmkit.evaluation.display import format_duration, format_metric, strategies, strategy_text

DEFAULT_RUNS = "runs"
_TABLE_METRICS = ("accuracy", "macro_f1", "f1", "micro_f1", "recall@10", "mrr@10", "ndcg@10", "perplexity")


def _registry(args: argparse.Namespace) -> Any:
    from fmkit.tracking import Registry

    root = Path(args.runs)
    registry = Registry(root)
    if not registry.exists():
        raise FmkitError(f"{root}: no run registry here ({root / 'registry.db'} is missing). Train a run with "
                         f"--output {root}/NAME, or point --runs at the folder holding your runs.")
    return registry


def _get(registry: Any, run_id: str) -> Any:
    record = registry.get(run_id)
    if record is None:
        ids = [r.id for r in registry.runs()]
        import difflib

        close = difflib.get_close_matches(run_id, ids, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else f" Known runs: {', '.join(ids[:10]) or 'none'}."
        raise FmkitError(f"no run '{run_id}' in {registry.path}.{hint}")
    return record


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def _scalars(record: Any) -> dict[str, int | float]:
    """The scalar final metrics with their own types, so counts print as `30` and scores as `0.9123`."""
    return {k: v for k, v in (record.final_metrics or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def format_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def _metric_columns(records: list[Any]) -> list[str]:
    present = {k for r in records for k in r.headline()}
    return [m for m in _TABLE_METRICS if m in present][:3]


def cmd_ls(args: argparse.Namespace) -> int:
    registry = _registry(args)
    records = registry.runs(status=args.status, task=args.task, search=args.filter)
    if args.json:
        print(json.dumps([r.to_json() for r in records], indent=2, default=str))
        return 0
    if not records:
        print(f"no runs in {registry.path}")
        return 0
    metrics = _metric_columns(records)
    rows = []
    for r in records:
        h = _scalars(r)
        # What ran (`auto → lora`), not only what was asked for; durations as `3m 22s`, like the dashboard.
        strategy = strategy_text(*strategies(r.strategy, r.final_metrics, r.path))
        rows.append([r.id, r.command, r.status, r.task or "-", (r.model or "-")[-28:], strategy,
                     _when(r.started), format_duration(r.duration),
                     *[format_metric(m, h[m]) if m in h else "-" for m in metrics]])
    print(format_table(["run", "cmd", "status", "task", "model", "strategy", "started", "time", *metrics], rows))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    registry = _registry(args)
    record = _get(registry, args.run)
    curves = registry.curves(record.id)
    if args.json:
        print(json.dumps({**record.to_json(), "curves": curves}, indent=2, default=str))
        return 0
    print(f"run       {record.id}  ({record.command}, {record.status})")
    print(f"path      {record.path or '-'}")
    strategy = strategy_text(*strategies(record.strategy, record.final_metrics, record.path))
    print(f"task      {record.task or '-'}   model {record.model or '-'}   strategy {strategy}")
    print(f"started   {_when(record.started)}   ended {_when(record.ended)}   took {format_duration(record.duration)}")
    print(f"host      {record.host}  pid {record.pid}")
    if record.parent:
        print(f"evaluates {record.parent}")
    if record.error:
        print(f"error     {record.error}")
    for split in ("train", "eval"):
        info = (record.data or {}).get(split) or {}
        if info:
            print(f"{split:<9} {info.get('source', '?')}  {info.get('rows', '?')} rows  sha256 "
                  f"{str(info.get('content_sha256', '-'))[:12]}")
    versions = (record.env or {}).get("versions") or {}
    if versions:
        print("versions  " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    headline = _scalars(record)
    if headline:
        print("final metrics:")
        for key, value in headline.items():
            print(f"  {key:<28} {format_metric(key, value)}")
    if curves:
        print("curves: " + ", ".join(f"{name} ({len(points)} points)" for name, points in curves.items()))
    if record.artifacts:
        print("artifacts: " + ", ".join(a["path"] for a in record.artifacts))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    registry = _registry(args)
    records = [_get(registry, run_id) for run_id in args.runs_to_compare]
    keys = list(dict.fromkeys(k for r in records for k in r.headline()))
    config_diff = _config_differences([r.config or {} for r in records])
    if args.json:
        print(json.dumps({"runs": [r.id for r in records],
                          "metrics": {k: [r.headline().get(k) for r in records] for k in keys},
                          "config_differences": config_diff}, indent=2, default=str))
        return 0
    rows = [["status", *[r.status for r in records]], ["model", *[(r.model or "-")[-28:] for r in records]],
            ["strategy", *[strategy_text(*strategies(r.strategy, r.final_metrics, r.path)) for r in records]]]
    for k in keys:
        values = [_scalars(r).get(k) for r in records]
        present = [v for v in values if v is not None]
        best = None
        if len(present) > 1 and k not in _NOT_SCORES:
            best = min(present) if k in _LOWER_IS_BETTER else max(present)
        cells = []
        for v in values:
            text = "-" if v is None else format_metric(k, v)
            cells.append(text + (" *" if best is not None and v == best else ""))
        rows.append([k, *cells])
    print(format_table(["", *[r.id for r in records]], rows))
    if config_diff:
        print("\nconfig differences:")
        print(format_table(["key", *[r.id for r in records]], [[k, *[str(v) for v in vals]] for k, vals in config_diff.items()]))
    return 0


_LOWER_IS_BETTER = {"perplexity", "train_seconds", "peak_memory_mb", "wall_seconds", "loss"}
_NOT_SCORES = {"num_examples", "train_examples", "best_step", "steps", "epochs_completed", "num_entities",
               "num_predicted", "num_sentences"}


def _config_differences(configs: list[dict[str, Any]]) -> dict[str, list[Any]]:
    from fmkit.tracking.trackers import flatten

    flat = [flatten(c) for c in configs]
    keys = sorted({k for f in flat for k in f})
    return {k: [f.get(k) for f in flat] for k in keys if len({f.get(k) for f in flat}) > 1 and k != "output"}


def cmd_rm(args: argparse.Namespace) -> int:
    registry = _registry(args)
    for run_id in args.runs_to_remove:
        record = _get(registry, run_id)
        if record.status == "running" and not args.force:
            raise FmkitError(f"run '{run_id}' is still running (pid {record.pid}); stop it first or pass --force.")
        registry.remove(record.id)
        removed_files = _remove_files(Path(record.path)) if args.files and record.path else ""
        print(f"removed {record.id} from the registry{removed_files}")
    return 0


def _remove_files(run_dir: Path) -> str:
    """Delete only what fmkit wrote in `run_dir`; say what it left there and why."""
    from fmkit.workflows.rundir import is_fmkit_run, remove_run_files

    if not run_dir.is_dir():
        return ""
    if not is_fmkit_run(run_dir):
        return f"; kept {run_dir}: it was not created by fmkit, so nothing in it was deleted"
    kept = remove_run_files(run_dir)
    if not kept:
        return f" and deleted {run_dir}"
    shown = ", ".join(kept[:10]) + (f", ... ({len(kept) - 10} more)" if len(kept) > 10 else "")
    noun = "file" if len(kept) == 1 else "files"
    return f" and deleted fmkit's files in {run_dir}; kept {len(kept)} {noun} not written by fmkit: {shown}"


def cmd_report(args: argparse.Namespace) -> int:
    from fmkit.evaluation.report import write_report

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise FmkitError(f"{run_dir}: no such run directory.")
    html, card = write_report(run_dir)
    print(f"wrote {html}\nwrote {card}")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from fmkit.inference.http_guard import parse_host_list
    from fmkit.ui.app import serve

    serve(Path(args.runs), host=args.host, port=args.port, token=args.token,
          allowed_hosts=parse_host_list(args.allowed_hosts))
    return 0


def register(sub: Any) -> None:
    def runs_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument("--runs", default=DEFAULT_RUNS, help="folder holding registry.db (default: runs)")

    runs = sub.add_parser("runs", help="list, show, compare and remove recorded runs")
    runs_sub = runs.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    p = runs_sub.add_parser("ls", help="table of runs, newest first")
    runs_flag(p)
    p.add_argument("--status", choices=["running", "finished", "failed", "interrupted"], help="only runs with this status")
    p.add_argument("--task", help="only runs of this task, e.g. classification, ner, embedding")
    p.add_argument("--filter", help="substring of the run id, model or command")
    p.add_argument("--json", action="store_true", help="print the runs as JSON")
    p.set_defaults(func=cmd_ls)
    p = runs_sub.add_parser("show", help="everything recorded about one run")
    runs_flag(p)
    p.add_argument("run", help="run id (as in `fmkit runs ls`)")
    p.add_argument("--json", action="store_true", help="also prints every metric curve")
    p.set_defaults(func=cmd_show)
    p = runs_sub.add_parser("compare", help="final metrics and config differences of runs side by side")
    runs_flag(p)
    p.add_argument("runs_to_compare", nargs="+", metavar="RUN", help="two or more run ids")
    p.add_argument("--json", action="store_true", help="print metrics and config differences as JSON")
    p.set_defaults(func=cmd_compare)
    p = runs_sub.add_parser("rm", help="remove runs from the registry (and their folders with --files)")
    runs_flag(p)
    p.add_argument("runs_to_remove", nargs="+", metavar="RUN", help="run ids to remove")
    p.add_argument("--files", action="store_true", help="also delete what fmkit wrote in the run folder (other files stay)")
    p.add_argument("--force", action="store_true", help="remove even if it is marked running")
    p.set_defaults(func=cmd_rm)

    p = sub.add_parser("report", help="(re)write RUN_DIR/report.html and RUN_DIR/MODEL_CARD.md")
    p.add_argument("run_dir", help="run directory written by `fmkit train`")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("ui", help="web dashboard: compare runs, watch training, try models")
    runs_flag(p)
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8765, help="port (default %(default)s)")
    p.add_argument("--token", help="access token (required, or generated and printed, when --host is not local)")
    p.add_argument("--allowed-hosts", metavar="NAME,NAME", help="also answer to these Host names (e.g. a DNS name or a "
                   "reverse proxy's; '*' turns the check off). Default: the --host value and localhost")
    p.set_defaults(func=cmd_ui)


__all__ = ["register"]
