"""`--engine ray` of `fmkit predict` and `fmkit embed`: the flags, and the job run on a Ray cluster (or a local one)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fmkit.errors import ConfigError


def engine_flags(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("distributed batch scoring (--engine ray; pip install 'fmkit[ray]')")
    group.add_argument("--engine", choices=["local", "ray"], default="local",
                       help="local (default): this process; ray: a pool of Ray actors, each loading the model once; "
                            "INPUT may then be a file, a folder or a glob of shards and --output is a folder of "
                            "Parquet shards")
    group.add_argument("--address", metavar="HOST:PORT",
                       help="Ray cluster to run on (the head's `ray start --head --port`); default: a local Ray "
                            "instance started for this job")
    group.add_argument("--num-workers", type=int, default=1, metavar="N",
                       help="Ray actors scoring in parallel (default %(default)s)")
    group.add_argument("--cpus-per-worker", type=int, default=1, metavar="N",
                       help="CPUs each actor reserves and its torch threads (default %(default)s)")
    group.add_argument("--rows-per-shard", type=int, default=10_000, metavar="N",
                       help="input rows per output shard, the unit of work and of a re-run (default %(default)s)")
    group.add_argument("--overwrite", action="store_true",
                       help="start over: remove the shards of the job already in --output (only the files it "
                            "wrote) instead of refusing another job's folder or resuming the same job")


def run_ray_job(args: argparse.Namespace, kind: str) -> int:
    from fmkit.cli.predict_output import id_column
    from fmkit.inference.batch_jobs import expand_input
    from fmkit.inference.ray_engine import RayJob, require_ray, run_job

    require_ray()  # before anything else: the one thing a user must install
    if not args.output:
        raise ConfigError("--engine ray writes Parquet shards: give the folder with --output DIR.")
    unsupported = [flag for flag, value in (("--audio", getattr(args, "audio", False)),
                                            ("--fields", getattr(args, "fields", None)),
                                            ("--format", getattr(args, "format", None))) if value]
    if unsupported:
        raise ConfigError(f"{', '.join(unsupported)}: not available with --engine ray (it writes every field to "
                          f"Parquet shards).")
    if args.input == "-":
        raise ConfigError("--engine ray reads files (a file, a folder or a glob), not stdin.")
    files = expand_input(args.input)
    model = getattr(args, "model_dir", None) or args.model
    job = RayJob(
        kind="embed" if kind == "embed" else "predict", model=str(model), source=args.input, out_dir=Path(args.output),
        text_column=args.text_column, id_column=id_column(str(files[0]), args.id_column),
        address=args.address, num_workers=args.num_workers, cpus_per_worker=args.cpus_per_worker,
        batch_size=args.batch_size, rows_per_shard=args.rows_per_shard, backend=getattr(args, "backend", "auto"),
        precision=_precision(args), overwrite=args.overwrite)
    if kind == "predict":
        _check_text_model(Path(str(model)))
    result = run_job(job)
    rate = result.rows / result.seconds if result.seconds > 0 else 0.0
    kept = f", {result.skipped_shards} kept from an earlier run" if result.skipped_shards else ""
    blank = f", skipped {result.blank} blank rows" if result.blank else ""
    print(f"{result.rows:,} rows in {result.shards} shards ({result.shards - result.skipped_shards} written{kept}) "
          f"in {args.output}{blank}; {result.seconds:.1f}s, {rate:,.0f} rows/s", file=sys.stderr)
    return 0


def _precision(args: Any) -> str | None:
    precision = getattr(args, "precision", None)
    return None if precision in (None, "model") else str(precision)


def _check_text_model(model_dir: Path) -> None:
    """Fail here, not in every actor, for a model the Ray engine cannot feed (text pairs, images)."""
    from fmkit.models.meta import read_meta, saved_model_dir

    meta = read_meta(saved_model_dir(model_dir))
    if meta.get("pair_input") or meta.get("task") == "image":
        raise ConfigError(f"{model_dir}: --engine ray scores single texts; this model reads "
                          f"{'text pairs' if meta.get('pair_input') else meta.get('task')}: use --engine local.")
