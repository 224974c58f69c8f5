"""`fmkit embed | index build/add/delete/info/eval | search`: sentence vectors and semantic search."""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _record_blocks(args: argparse.Namespace, chunk: int, group_key: str | None = None) -> Iterator[list[Any]]:
    from fmkit.data.records import iter_records

    if group_key is not None:  # an FAQ: questions sharing answer ids, plus each answer's text (faq_records.py)
        from fmkit.data.faq_records import grouped_records

        records = grouped_records(args.input, group_key, args.text_column, args.id_column, args.answer_column,
                                  answers=not args.no_answers)
    else:
        records = iter_records(args.input, args.text_column, args.id_column)
    while block := list(itertools.islice(records, chunk)):
        yield block


def cmd_embed(args: argparse.Namespace) -> int:
    from fmkit.inference.embedder import Embedder
    from fmkit.inference.vector_files import write_vectors
    from fmkit.utils.progress import Progress

    if args.engine == "ray":
        from fmkit.cli.ray_jobs import run_ray_job

        return run_ray_job(args, "embed")
    embedder = Embedder.load(args.model, batch_size=args.batch_size)
    # The input is streamed, so there is no total: the line says how many texts so far and how fast.
    with Progress("embed", unit="texts") as progress:
        blocks = ((([r.id for r in block]), embedder.embed([r.text for r in block], progress))
                  for block in _record_blocks(args, args.chunk))
        count = write_vectors(Path(args.output), blocks)
    print(f"{count} vectors of dimension {embedder.dim} written to {args.output}", file=sys.stderr)
    return 0


def _add_from_file(search: Any, args: argparse.Namespace) -> int:
    from fmkit.utils.progress import Progress

    added = 0
    with Progress("index: embed", unit="texts") as progress:
        for block in _record_blocks(args, args.chunk, search.index.group_key):
            search.add_texts([r.id for r in block], [r.text for r in block], [r.metadata for r in block],
                             chunk=args.chunk, progress=progress)
            added += len(block)
    return added


def cmd_index_build(args: argparse.Namespace) -> int:
    from fmkit.data.faq_records import detect_group_column
    from fmkit.inference.search import SemanticSearch

    search = SemanticSearch.build(args.model, [], [], backend=args.backend, exact_threshold=args.exact_threshold)
    search.embedder.batch_size = args.batch_size
    search.index.group_key = args.group_column or detect_group_column(args.input, args.text_column, args.id_column)
    # An output that cannot be created fails now, not after minutes of embedding.
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    added = _add_from_file(search, args)
    search.save(args.output)
    grouped = f", one hit per '{search.index.group_key}'" if search.index.group_key else ""
    print(f"index of {added} items ({search.index.active_backend} search{grouped}) saved to {args.output}",
          file=sys.stderr)
    return 0


def cmd_index_add(args: argparse.Namespace) -> int:
    from fmkit.inference.search import SemanticSearch

    search = SemanticSearch.load(args.index, batch_size=args.batch_size)
    added = _add_from_file(search, args)
    search.save(args.index)
    print(f"added or replaced {added} items; the index now holds {len(search.index)}", file=sys.stderr)
    return 0


def cmd_index_delete(args: argparse.Namespace) -> int:
    from fmkit.inference.index import VectorIndex

    index = VectorIndex.load(args.index)
    removed = index.delete(args.ids)
    index.save(args.index)
    print(f"deleted {removed} of {len(args.ids)} ids; the index now holds {len(index)}", file=sys.stderr)
    return 0


def cmd_index_info(args: argparse.Namespace) -> int:
    from fmkit.inference.index import VectorIndex

    index = VectorIndex.load(args.index)
    print(json.dumps({"items": len(index), "dim": index.dim, "model": index.model, "backend": index.active_backend},
                     indent=2))
    return 0


def cmd_index_eval(args: argparse.Namespace) -> int:
    from fmkit.data.records import read_relevance
    from fmkit.evaluation.retrieval import retrieval_metrics
    from fmkit.inference.search import SemanticSearch

    queries = read_relevance(args.queries, args.query_column, args.relevant_column)
    search = SemanticSearch.load(args.index, model=args.model, batch_size=args.batch_size)
    hits = search.search_many([q.query for q in queries], k=max(10, args.k))
    metrics = retrieval_metrics([[h.id for h in row] for row in hits], [q.relevant for q in queries])
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        print("  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()))
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from fmkit.inference.search import SemanticSearch

    search = SemanticSearch.load(args.index, model=args.model)
    hits = search.search(args.query, k=args.k)
    for rank, hit in enumerate(hits, start=1):
        if args.json:
            print(json.dumps({"rank": rank, **hit.to_dict()}, ensure_ascii=False))
        else:
            text = str(hit.metadata.get("text", ""))[:100]
            print(f"{rank:>3}  {hit.score:.4f}  {hit.id}  {text}")
    return 0


def register(sub: Any) -> None:
    def input_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("input", help="documents: txt (one per line), CSV/TSV/JSONL/Parquet with a text column, or -")
        p.add_argument("--text-column", help="column with the text (auto-detected if omitted)")
        p.add_argument("--id-column", help="column with the id (default: an `id` column, else the row number)")
        p.add_argument("--batch-size", type=int, default=64, help="texts per forward pass")
        p.add_argument("--chunk", type=int, default=4096, help="texts read and embedded at a time (memory bound)")

    def faq_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--answer-column", help="in a grouped index, the answer text indexed once per answer as one "
                       "more field (default: a column named answer/response/reply)")
        p.add_argument("--no-answers", action="store_true", help="in a grouped index, index the questions only")

    p = sub.add_parser("embed", help="turn texts into normalised sentence vectors (.parquet or .npy)")
    p.add_argument("model", help="bundled name, local folder, fmkit model or run directory")
    input_flags(p)
    p.add_argument("--output", required=True, help="vectors.parquet (id + vector) or vectors.npy (+ .ids.jsonl); "
                   "with --engine ray a folder of Parquet shards (id + vector)")
    from fmkit.cli.ray_jobs import engine_flags

    engine_flags(p)
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("index", help="build and maintain a persistent vector index")
    isub = p.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    b = isub.add_parser("build", help="embed a file of documents into a new index")
    b.add_argument("model", help="bundled name, local folder, fmkit model or run directory")
    input_flags(b)
    b.add_argument("--output", required=True, help="index folder to write")
    b.add_argument("--backend", choices=["auto", "exact", "hnsw"], default="auto",
                   help="auto: exact search below --exact-threshold items, HNSW above")
    b.add_argument("--exact-threshold", type=int, default=50_000, help="items from which auto uses HNSW")
    b.add_argument("--group-column", help="answer-id column shared by several rows (an FAQ's questions): one hit per "
                   "answer, scored by its best row (default: a column named answer_id/faq_id/group_id/group; give "
                   "the id column itself when it repeats)")
    faq_flags(b)
    b.set_defaults(func=cmd_index_build)
    a = isub.add_parser("add", help="embed more documents into an index (same id: replaced)")
    a.add_argument("index", help="index folder written by `fmkit index build`")
    input_flags(a)
    faq_flags(a)
    a.set_defaults(func=cmd_index_add)
    d = isub.add_parser("delete", help="remove documents by id")
    d.add_argument("index", help="index folder written by `fmkit index build`")
    d.add_argument("ids", nargs="+", help="ids of the documents to remove")
    d.set_defaults(func=cmd_index_delete)
    i = isub.add_parser("info", help="size, dimension, model and backend of an index")
    i.add_argument("index", help="index folder written by `fmkit index build`")
    i.set_defaults(func=cmd_index_info)
    e = isub.add_parser("eval", help="recall@1/5/10, MRR, nDCG@10 on a (query, relevant ids) file")
    e.add_argument("index", help="index folder written by `fmkit index build`")
    e.add_argument("queries", help="JSONL {query, relevant: [ids]} or CSV query,relevant (ids split by |)")
    e.add_argument("--model", help="embed queries with this model instead of the one that built the index")
    e.add_argument("--query-column", help="column with the query (auto-detected if omitted)")
    e.add_argument("--relevant-column", help="column with the relevant ids (auto-detected if omitted)")
    e.add_argument("-k", type=int, default=10, help="hits retrieved per query (default %(default)s; at least 10 are scored)")
    e.add_argument("--batch-size", type=int, default=64, help="queries per forward pass (default %(default)s)")
    e.add_argument("--json", action="store_true", help="print the metrics as JSON")
    e.set_defaults(func=cmd_index_eval)

    s = sub.add_parser("search", help="the k nearest documents of an index to a query")
    s.add_argument("index", help="index folder written by `fmkit index build`")
    s.add_argument("query", help="the text to search for")
    s.add_argument("-k", type=int, default=10, help="number of hits (default %(default)s)")
    s.add_argument("--model", help="embed the query with this model instead of the one that built the index")
    s.add_argument("--json", action="store_true", help="one JSON hit per line (id, score, metadata)")
    s.set_defaults(func=cmd_search)


__all__ = ["register"]


def print_task_result(result: Any) -> None:
    """What `fmkit train` prints after an NER or embedding run."""
    m = result.metrics
    print(f"run: {result.run_dir}")
    if "per_type" in m:
        print(f"entity f1 {m['f1']:.4f}  precision {m['precision']:.4f}  recall {m['recall']:.4f}  "
              f"token accuracy {m['token_accuracy']:.4f}  on {m['num_sentences']} eval sentences "
              f"({m['train_seconds']:.0f}s, {m['train_examples_per_second']:.1f} windows/s)")
    else:
        base = m.get("baseline", {})
        print(f"mrr {m['mrr']:.4f} (before training {base.get('mrr', float('nan')):.4f})  "
              f"recall@1 {m['recall@1']:.4f}  recall@10 {m['recall@10']:.4f}  ndcg@10 {m['ndcg@10']:.4f}  "
              f"on {m['num_queries']} eval queries ({m['train_seconds']:.0f}s)")
    print(f"model saved to {result.run_dir / 'model'}")
