"""`fmkit app support | monitor | recommend ...`: the three applications (see fmkit/apps/)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fmkit.errors import FmkitError


def _print(obj: Any) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


# --- support -------------------------------------------------------------------------------------------

def cmd_support_build(args: argparse.Namespace) -> int:
    from fmkit.apps.support import build_support

    result = build_support(args.faq, args.output, model=args.model, intents=args.intents, calibration=args.calibration,
                           holdout=args.holdout, seed=args.seed, intent_epochs=args.intent_epochs, overwrite=args.overwrite)
    cal = result.calibration
    print(f"support app: {result.app_dir}  ({result.entries} answers, {result.phrasings} phrasings, "
          f"intent classifier: {'yes' if result.intent_model else 'no'})")
    print(f"hand-off threshold {cal['threshold']:.4f} calibrated on {cal['queries']} held-out queries "
          f"(macro F1 {cal['macro_f1']}, top-1 accuracy in scope {cal.get('top1_accuracy_in_scope')})")
    if "fusion_note" in cal:
        print(f"fusion weights: bm25 {cal['bm25_weight']}, answer text {cal['answer_weight']}, intent "
              f"{cal['intent_weight']} ({cal['fusion_note']})")
    if cal.get("note"):
        print(f"note: {cal['note']}")
    return 0


def _show(reply: Any) -> str:
    if reply.handoff:
        why = "out of scope" if reply.reason == "out_of_scope" else "not sure"
        return f"[needs a human: {why}, confidence {reply.confidence:.2f}]"
    return f"{reply.answer}\n  (confidence {reply.confidence:.2f})"


def cmd_support_chat(args: argparse.Namespace) -> int:
    from fmkit.apps.support import SupportAssistant, Transcript

    assistant = SupportAssistant.load(args.app_dir)
    transcript = Transcript(args.log or Path(args.app_dir) / "transcripts.jsonl")
    interactive = sys.stdin.isatty()
    if interactive:
        print("Ask a question (empty line or Ctrl-D to quit).")
    while True:
        if interactive:
            print("> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line or (interactive and not line.strip()):
            break
        if not line.strip():
            continue
        reply = assistant.answer(line.strip())
        transcript.log(reply, session=args.session)
        print(json.dumps(reply.to_dict(), ensure_ascii=False) if args.json else _show(reply), flush=True)
    return 0


def cmd_support_ask(args: argparse.Namespace) -> int:
    from fmkit.apps.support import SupportAssistant, Transcript

    assistant = SupportAssistant.load(args.app_dir)
    replies = assistant.answer_many(args.query)
    transcript = Transcript(args.log or Path(args.app_dir) / "transcripts.jsonl")
    for reply in replies:
        transcript.log(reply, session="ask")
        print(json.dumps(reply.to_dict(), ensure_ascii=False) if args.json else _show(reply))
    return 0


def _serve_app(args: argparse.Namespace, create_app: Callable[..., Any]) -> int:
    """Serve an app folder over HTTP: the key check comes first (before loading anything), then the host guard."""
    import uvicorn

    from fmkit.config.schema import ServeConfig
    from fmkit.inference.http_guard import install_host_guard, resolve_key

    api_key = resolve_key(args.host, args.api_key, kind="api")
    app = create_app(args.app_dir, ServeConfig(host=args.host, port=args.port), api_key=api_key)
    install_host_guard(app, _allowed_hosts(args))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def cmd_support_serve(args: argparse.Namespace) -> int:
    from fmkit.apps.support_http import create_support_app

    return _serve_app(args, create_support_app)


def cmd_support_eval(args: argparse.Namespace) -> int:
    from fmkit.apps.support_eval import eval_clinc, eval_stackfaq

    if not args.stackfaq and not args.clinc:
        raise FmkitError("give --stackfaq FILE.xml and/or --clinc FILE.json")
    results: dict[str, Any] = {}
    if args.stackfaq:
        results["stackfaq"] = eval_stackfaq(args.stackfaq, model=args.model, seed=args.seed)
    if args.clinc:
        results["clinc150"] = eval_clinc(args.clinc, model=args.model, per_intent=args.per_intent,
                                         test_per_intent=args.test_per_intent, intent_epochs=args.intent_epochs,
                                         seed=args.seed)
    _print(results)
    return 0


# --- monitor -------------------------------------------------------------------------------------------

def cmd_monitor_init(args: argparse.Namespace) -> int:
    from fmkit.apps.monitor import init_monitor, open_engine

    if args.db:  # a database that cannot be reached fails here (exit 2), before monitor.json is written
        open_engine(args.db).dispose()
    settings = init_monitor(args.app_dir, args.model, db=args.db, overwrite=args.overwrite, topic_model=args.topic_model,
                            negative_label=args.negative_label, positive_label=args.positive_label,
                            window_seconds=args.window, min_count=args.min_count, neg_share_jump=args.neg_share_jump,
                            neg_share_z=args.neg_share_z, volume_z=args.volume_z, webhook=args.webhook,
                            batch_size=args.batch_size, db_retry_seconds=args.db_retry_seconds, backend=args.backend)
    from fmkit.apps.monitor_store import shown_url

    print(f"monitor: {args.app_dir}  negative label '{settings.negative_label}', positive '{settings.positive_label}', "
          f"windows of {settings.window_seconds}s, database {shown_url(settings.db)}")
    return 0


def cmd_monitor_run(args: argparse.Namespace) -> int:
    from fmkit.apps.monitor import Monitor
    from fmkit.apps.monitor_workers import parse_partition, run_streams, select_inputs

    sources = select_inputs(args.input, parse_partition(args.partition))
    if not sources:
        print(f"monitor: no input file falls in partition {args.partition}; nothing to do.", file=sys.stderr)
        return 0
    monitor = Monitor.load(args.app_dir)
    result = run_streams(monitor, sources, follow=not args.once)
    print(json.dumps({**result, **monitor.stats(), "backend": monitor.scoring_backend}), file=sys.stderr)
    return 0


def cmd_monitor_serve(args: argparse.Namespace) -> int:
    import threading

    import uvicorn

    from fmkit.apps.monitor import Monitor, run_stream
    from fmkit.apps.monitor_web import create_monitor_app
    from fmkit.inference.http_guard import resolve_key, server_url

    # A dashboard a person opens: beyond localhost without --api-key a key is generated and printed in the URL.
    api_key = resolve_key(args.host, args.api_key, kind="browser")
    monitor = Monitor.load(args.app_dir)
    if args.follow:
        threading.Thread(target=run_stream, args=(monitor, args.follow), daemon=True).start()
    auth = "; send 'Authorization: Bearer KEY' with the key in the URL" if api_key else ""
    print(f"dashboard on {server_url(args.host, args.port, api_key)}  (POST items to /v1/items{auth})",
          file=sys.stderr, flush=True)
    app = create_monitor_app(monitor, api_key=api_key, allowed_hosts=_allowed_hosts(args))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def cmd_monitor_status(args: argparse.Namespace) -> int:
    from fmkit.apps.monitor import Monitor

    monitor = Monitor.load(args.app_dir)
    _print({**monitor.stats(), "windows": monitor.window_series(args.scope)[-args.windows:], "alerts": monitor.alerts(20)})
    return 0


# --- shared by the app servers --------------------------------------------------------------------------

def _allowed_hosts(args: argparse.Namespace) -> Any:
    from fmkit.inference.http_guard import AllowedHosts, parse_host_list

    return AllowedHosts.for_bind(args.host, parse_host_list(args.allowed_hosts))


def _server_flags(p: argparse.ArgumentParser, port: int, key_help: str) -> None:
    """--host, --port, --api-key and --allowed-hosts: the same for every app server (fmkit.inference.http_guard)."""
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=port, help="port (default %(default)s)")
    p.add_argument("--api-key", help=key_help + " (or set FMKIT_API_KEY)")
    p.add_argument("--allowed-hosts", metavar="NAME,NAME", help="also answer to these Host names (e.g. a DNS name; "
                   "'*' turns the check off behind a proxy). Default: the --host value and localhost")


# --- recommend -----------------------------------------------------------------------------------------

def cmd_recommend_build(args: argparse.Namespace) -> int:
    from fmkit.apps.recommend import build_recommender

    _print(build_recommender(args.items, args.output, args.ratings, model=args.model, overwrite=args.overwrite,
                             half_life_days=args.half_life_days, popularity_weight=args.popularity_weight,
                             finetune_epochs=args.finetune_epochs, text_only=args.text_only))
    return 0


def cmd_recommend_for(args: argparse.Namespace) -> int:
    from fmkit.apps.recommend import Recommender

    rec = Recommender.load(args.app_dir)
    if bool(args.user) == bool(args.liked):
        raise FmkitError("give either --user ID (a known user) or --liked ITEM_ID ... (a new user)")
    records = rec.recommend_for_user(args.user, args.k) if args.user else rec.recommend_for_items(args.liked, args.k)
    for r in records:
        print(json.dumps(r, ensure_ascii=False) if args.json else f"{r['score']:.3f}  {r['id']:>8}  {r['title']}")
    return 0


def cmd_recommend_serve(args: argparse.Namespace) -> int:
    from fmkit.apps.recommend_http import create_recommend_app

    return _serve_app(args, create_recommend_app)


def cmd_recommend_eval(args: argparse.Namespace) -> int:
    from fmkit.apps.recommend_eval import evaluate_recommender

    _print(evaluate_recommender(args.items, args.ratings, model=args.model, k=args.k, max_users=args.max_users,
                                popularity_weights=args.popularity_weights, half_life_days=args.half_life_days,
                                finetune_epochs=args.finetune_epochs, finetune_pairs=args.finetune_pairs,
                                cold_share=args.cold_share))
    return 0


# --- registration --------------------------------------------------------------------------------------

def register(sub: Any) -> None:
    app = sub.add_parser("app", help="applications: support assistant, news sentiment monitor, recommender")
    apps = app.add_subparsers(dest="app", required=True, metavar="APP")

    support = apps.add_parser("support", help="customer-service assistant over an FAQ").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = support.add_parser("build", help="index an FAQ, train the optional intent model, calibrate the hand-off")
    p.add_argument("--faq", required=True, help="CSV/TSV/JSONL/Parquet with question, answer (+ intent, id)")
    p.add_argument("--output", required=True, help="app folder to write")
    p.add_argument("--intents", help="intent-labelled utterances (text, label) to fine-tune the re-ranker")
    p.add_argument("--calibration", help="held-out queries (query, expected answer/id/intent or 'oos')")
    p.add_argument("--holdout", type=float, default=0.2, help="share of phrasings held out when no --calibration")
    p.add_argument("--model", default="all-MiniLM-L6-v2", help="sentence encoder to embed the FAQ with (default %(default)s)")
    p.add_argument("--intent-epochs", type=float, default=3, help="epochs of the --intents classifier")
    p.add_argument("--seed", type=int, default=0, help="random seed for the hold-out split and training (default %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing app folder in --output")
    p.set_defaults(func=cmd_support_build)
    p = support.add_parser("chat", help="answer questions typed (or piped) on standard input")
    p.add_argument("app_dir", help="app folder written by `fmkit app support build`")
    p.add_argument("--log", help="transcript JSONL (default APP_DIR/transcripts.jsonl)")
    p.add_argument("--session", default="cli", help="session name written to the transcript (default %(default)s)")
    p.add_argument("--json", action="store_true", help="one JSON reply per line")
    p.set_defaults(func=cmd_support_chat)
    p = support.add_parser("ask", help="answer the queries given on the command line")
    p.add_argument("app_dir", help="app folder written by `fmkit app support build`")
    p.add_argument("query", nargs="+", help="one or more questions to answer")
    p.add_argument("--log", help="transcript JSONL (default APP_DIR/transcripts.jsonl)")
    p.add_argument("--json", action="store_true", help="one JSON reply per line")
    p.set_defaults(func=cmd_support_ask)
    p = support.add_parser("serve", help="HTTP: POST /v1/support/answer on the fmkit server")
    p.add_argument("app_dir", help="app folder written by `fmkit app support build`")
    _server_flags(p, 8000, "require this key on every route but /health; required when --host is not local")
    p.set_defaults(func=cmd_support_serve)
    p = support.add_parser("eval", help="accuracy@1/recall@5 on StackFAQ, intent accuracy and OOS P/R on CLINC150")
    p.add_argument("--stackfaq", help="stackExchange-FAQ.xml")
    p.add_argument("--clinc", help="clinc150 data_full.json")
    p.add_argument("--model", default="all-MiniLM-L6-v2", help="sentence encoder to evaluate (default %(default)s)")
    p.add_argument("--per-intent", type=int, help="CLINC training utterances per intent (default: all 100)")
    p.add_argument("--test-per-intent", type=int, help="CLINC val/test utterances per intent (default: all)")
    p.add_argument("--intent-epochs", type=float, default=0, help="> 0 also fine-tunes the intent re-ranker")
    p.add_argument("--seed", type=int, default=0, help="random seed for sampling and training (default %(default)s)")
    p.set_defaults(func=cmd_support_eval)

    monitor = apps.add_parser("monitor", help="financial news sentiment monitor").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = monitor.add_parser("init", help="create a monitor folder for a trained sentiment model")
    p.add_argument("app_dir", help="monitor folder to create")
    p.add_argument("--model", required=True, help="a model trained with `fmkit train` (folder or run directory)")
    p.add_argument("--topic-model", help="optional topic classifier")
    p.add_argument("--db", help="SQLAlchemy URL (default: sqlite:///APP_DIR/monitor.db)")
    p.add_argument("--negative-label", help="the model's label for negative news (default: guessed from the label names)")
    p.add_argument("--positive-label", help="the model's label for positive news (default: guessed from the label names)")
    p.add_argument("--window", type=int, help="aggregation window in seconds (default 3600)")
    p.add_argument("--min-count", type=int, help="fewest items in a window for an alert (default 10)")
    p.add_argument("--neg-share-jump", type=float, help="alert when the negative share rises this much (default 0.25)")
    p.add_argument("--neg-share-z", type=float, help="... or by this z-score against the baseline (default 3)")
    p.add_argument("--volume-z", type=float, help="volume alert z-score (default 4)")
    p.add_argument("--webhook", help="URL that receives each alert as a JSON POST")
    p.add_argument("--batch-size", type=int, help="items scored per forward pass")
    p.add_argument("--backend", choices=["auto", "torch", "int8"],
                   help="auto (default): the model's int8 ONNX export when one sits beside it (`fmkit export MODEL "
                        "--quantize int8 --output DIR`), else the model itself")
    p.add_argument("--db-retry-seconds", type=float, help="how long a lost database connection is retried before a "
                   "worker stops with exit 2 (default 60)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing monitor folder")
    p.set_defaults(func=cmd_monitor_init)
    p = monitor.add_parser("run", help="score JSON-lines streams: growing files (tail -f) or - for stdin")
    p.add_argument("app_dir", help="monitor folder written by `fmkit app monitor init`")
    p.add_argument("input", nargs="+", help="JSON-lines files of items ({text, time, ticker, source}; quoted globs "
                   "allowed), each followed as its own stream, or - for standard input")
    p.add_argument("--partition", metavar="K/N", help="follow only this worker's share of the files (K = 0..N-1): "
                   "start N workers on one database with the same inputs")
    p.add_argument("--once", action="store_true", help="stop at the end of the files instead of following them")
    p.set_defaults(func=cmd_monitor_run)
    p = monitor.add_parser("serve", help="dashboard + POST /v1/items (optionally also follow a file)")
    p.add_argument("app_dir", help="monitor folder written by `fmkit app monitor init`")
    p.add_argument("--follow", help="also tail this JSON-lines file")
    _server_flags(p, 8050, "require this key on every route but /health; generated and printed when --host is "
                  "not local")
    p.set_defaults(func=cmd_monitor_serve)
    p = monitor.add_parser("status", help="stored items, recent windows and alerts as JSON")
    p.add_argument("app_dir", help="monitor folder written by `fmkit app monitor init`")
    p.add_argument("--scope", default="*", help="a ticker, or * for all")
    p.add_argument("--windows", type=int, default=24, help="how many recent windows to show (default %(default)s)")
    p.set_defaults(func=cmd_monitor_status)

    rec = apps.add_parser("recommend", help="recommender from behaviour and item text").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = rec.add_parser("build", help="embed the items, fit the behaviour + text model on the ratings, save the app")
    p.add_argument("--items", required=True, help="id, title, genres CSV (header optional)")
    p.add_argument("--ratings", help="user, item, rating, timestamp CSV (header optional)")
    p.add_argument("--output", required=True, help="app folder to write")
    p.add_argument("--model", default="all-MiniLM-L6-v2", help="sentence encoder for the item texts (default %(default)s)")
    p.add_argument("--half-life-days", type=float, default=365.0, help="rating recency half-life")
    p.add_argument("--popularity-weight", type=float, default=0.3, help="popularity share of the score, 0-1")
    p.add_argument("--finetune-epochs", type=float, default=0,
                   help="> 0: first fine-tune the item encoder on items users liked one after the other")
    p.add_argument("--text-only", action="store_true",
                   help="only the text recommender (rating-weighted text profile + popularity), no behaviour model")
    p.add_argument("--overwrite", action="store_true", help="replace an existing app folder in --output")
    p.set_defaults(func=cmd_recommend_build)
    p = rec.add_parser("for", help="top-k items for a known user or for a few liked items")
    p.add_argument("app_dir", help="app folder written by `fmkit app recommend build`")
    p.add_argument("--user", help="id of a user in the ratings file")
    p.add_argument("--liked", nargs="+", help="item ids a new user likes")
    p.add_argument("-k", type=int, default=10, help="number of recommendations (default %(default)s)")
    p.add_argument("--json", action="store_true", help="one JSON line per recommended item")
    p.set_defaults(func=cmd_recommend_for)
    p = rec.add_parser("serve", help="HTTP: POST /v1/recommend on the fmkit server")
    p.add_argument("app_dir", help="app folder written by `fmkit app recommend build`")
    _server_flags(p, 8000, "require this key on every route but /health; required when --host is not local")
    p.set_defaults(func=cmd_recommend_serve)
    p = rec.add_parser("eval", help="leave-last-out recall@k, nDCG@k, coverage vs popularity, item-kNN and EASE")
    p.add_argument("--items", required=True, help="id, title, genres CSV (header optional)")
    p.add_argument("--ratings", required=True, help="user, item, rating, timestamp CSV (header optional)")
    p.add_argument("--model", default="all-MiniLM-L6-v2", help="sentence encoder for the item texts (default %(default)s)")
    p.add_argument("-k", type=int, default=10, help="cut-off of recall@k and nDCG@k (default %(default)s)")
    p.add_argument("--max-users", type=int, help="evaluate on at most this many users (default: all)")
    p.add_argument("--half-life-days", type=float, default=365.0, help="rating recency half-life")
    p.add_argument("--popularity-weights", type=float, nargs="+", default=[0.0, 0.3], help="popularity weights to compare")
    p.add_argument("--finetune-epochs", type=float, default=0, help="> 0: also evaluate a fine-tuned item encoder")
    p.add_argument("--finetune-pairs", type=int, default=4000, help="co-liked pairs to fine-tune on at most")
    p.add_argument("--cold-share", type=float, default=0.1,
                   help="share of items also held out of every history to measure cold items (0: skip)")
    p.set_defaults(func=cmd_recommend_eval)
