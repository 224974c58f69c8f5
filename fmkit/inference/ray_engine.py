"""`fmkit predict|embed --engine ray`: the same model and command, scored by a pool of Ray actors.

    fmkit predict runs/sentiment news/*.parquet --engine ray --num-workers 8 --output scored/
    fmkit predict runs/sentiment news/ --engine ray --address head-node:6379 --output /shared/scored/

Ray Data runs the job: one item per slice of the input (batch_jobs.py), `map_batches` over a fixed pool of
actors, each of which loads the model once (any backend: torch, ONNX, int8) and, per slice, reads its rows,
scores them and writes its Parquet shard atomically. Ray restarts an actor that dies (`max_restarts`) and
re-runs its slice (`max_task_retries`); the rewrite lands on the same shard name, so no row is lost or doubled.
On a multi-node cluster INPUT and OUT must be on storage every node sees (NFS or the like).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from fmkit.errors import ConfigError, DataError, FmkitError
from fmkit.inference.batch_jobs import (
    Slice,
    count_rows,
    expand_input,
    job_key,
    plan_slices,
    prepare_output,
    read_slice,
    remove_leftovers,
    write_manifest,
    write_shard_atomically,
)

Kind = Literal["predict", "embed"]
INSTALL_HINT = "pip install 'fmkit[ray]'"
CONNECT_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class RayJob:
    kind: Kind
    model: str
    source: str
    out_dir: Path
    text_column: str | None = None
    id_column: str | None = None
    address: str | None = None
    num_workers: int = 1
    cpus_per_worker: int = 1
    batch_size: int | None = 64  # None (predict): the predictor's own default for its backend
    rows_per_shard: int = 10_000
    backend: str = "auto"
    precision: str | None = None
    overwrite: bool = False


@dataclass(frozen=True)
class JobResult:
    rows: int
    blank: int
    shards: int
    skipped_shards: int
    seconds: float


def require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--engine ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def check_address(address: str) -> None:
    """A cluster that does not answer fails in seconds (ray.init would wait for a GCS that never comes)."""
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--address {address}: give HOST:PORT of the Ray head node (the port of `ray start --head`).")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise FmkitError(f"--address {address}: no Ray cluster answers there ({exc.strerror or exc}); start one with "
                         f"`ray start --head --port {port}` or check the address.") from None


def connect(ray: Any, job: RayJob) -> bool:
    """Join the cluster at --address, or start a local instance sized for the workers; True if fmkit started it."""
    quiet = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False,
             "configure_logging": True}
    if job.address:
        check_address(job.address)
        try:
            ray.init(address=job.address, **quiet)
        except (ConnectionError, RuntimeError) as exc:
            raise FmkitError(join_failure(job.address, exc)) from None
    else:
        ray.init(num_cpus=job.num_workers * job.cpus_per_worker, object_store_memory=256 * 1024**2, **quiet)
    return not job.address


def user_error(exc: BaseException) -> FmkitError | None:
    """A problem with the input an actor ran into (Ray wraps it in its own exceptions): the user's to fix."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, FmkitError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def join_failure(address: str, exc: BaseException) -> str:
    """Why ray.init could not join a cluster that answers, in one line (Ray's own message is a long traceback)."""
    reason = " ".join(str(exc.__cause__ or exc).split())
    if "Authentication" in reason or "auth" in reason.lower():
        return (f"--address {address}: the Ray cluster wants its authentication token (clusters started by `ray "
                f"start` do by default): set RAY_AUTH_MODE=token with the cluster's token in ~/.ray/auth_token or "
                f"RAY_AUTH_TOKEN, or start the cluster with RAY_AUTH_MODE=disabled on a trusted network.")
    return f"--address {address}: could not join the Ray cluster there ({reason[:300]})."


class SliceScorer:
    """One Ray actor: loads the model once, then scores one slice per call and writes its shard."""

    def __init__(self, job: RayJob) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.job = job
        try:
            import torch

            torch.set_num_threads(job.cpus_per_worker)
        except ImportError:  # an ONNX-only install
            pass
        if job.kind == "embed":
            from fmkit.inference.embedder import Embedder

            self.model: Any = Embedder.load(job.model, batch_size=job.batch_size or 64)
        else:
            from fmkit.inference import load_predictor

            self.model = load_predictor(Path(job.model), batch_size=job.batch_size, backend=job.backend,
                                        precision=job.precision)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        done: dict[str, list[Any]] = {"shard": [], "rows": [], "blank": []}
        for index in range(len(batch["path"])):
            piece = Slice(int(batch["file_index"][index]), str(batch["path"][index]), int(batch["start"][index]),
                          int(batch["stop"][index]), int(batch["first_row"][index]))
            rows, blank = self.score(piece)
            done["shard"].append(piece.shard_name)
            done["rows"].append(rows)
            done["blank"].append(blank)
        return done

    def score(self, piece: Slice) -> tuple[int, int]:
        import pyarrow as pa

        rows = list(read_slice(piece, self.job.text_column, self.job.id_column))
        if self.job.kind == "embed":  # like `fmkit embed`: every row, the id column or else the row number
            ids = [item_id if item_id is not None else str(row) for row, item_id, _ in rows]
            vectors = self.model.embed([text for _, _, text in rows])
            table = pa.table({"id": pa.array(ids, type=pa.string()),
                              "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)),
                                                                          self.model.dim)})
            blank = 0
        else:  # like `fmkit predict`: blank texts are skipped (and counted), never predicted
            kept = [(row, item_id, text) for row, item_id, text in rows if str(text).strip()]
            blank = len(rows) - len(kept)
            records = self.model.predict([text for _, _, text in kept]) if kept else []
            front: dict[str, Any] = {"row": pa.array([r for r, _, _ in kept], type=pa.int64())}
            if self.job.id_column:
                front["id"] = pa.array([i for _, i, _ in kept], type=pa.string())
            body = pa.Table.from_pylist(records) if records else pa.table({})
            table = pa.table({**front, **{name: body.column(name) for name in body.column_names}})
        write_shard_atomically(self.job.out_dir, piece.shard_name, table)
        return len(rows), blank


def run_job(job: RayJob) -> JobResult:
    """Plan, check OUT, connect, score every pending slice, and mark the job complete."""
    ray = require_ray()
    if job.num_workers < 1 or job.cpus_per_worker < 1:
        raise ConfigError("--num-workers and --cpus-per-worker: give positive numbers.")
    started = time.perf_counter()
    if job.address:  # before anything is written: an unreachable cluster leaves OUT as it was
        check_address(job.address)
    # Absolute paths: the actors run in other working directories (and on other machines).
    files = [p.resolve() for p in expand_input(job.source)]
    job = replace(job, out_dir=job.out_dir.resolve(),
                  model=str(Path(job.model).resolve()) if Path(job.model).exists() else job.model)
    counts = [(p, count_rows(p, job.text_column)) for p in files]
    if job.id_column:  # every file needs it (the CLI checked the first): fail here, not in an actor mid-job
        for path, rows in counts:
            if count_rows(path, job.id_column) != rows:
                raise DataError(f"{path}: its id column '{job.id_column}' and text column have different lengths.")
    slices = plan_slices(counts, job.rows_per_shard)
    options = {"text_column": job.text_column, "id_column": job.id_column, "rows_per_shard": job.rows_per_shard,
               "backend": job.backend, "precision": job.precision}
    key = job_key(job.kind, job.model, files, options)
    done = prepare_output(job.out_dir, key, slices, job.overwrite)
    info = {"kind": job.kind, "model": job.model, "input": job.source, "files": [str(p) for p in files]}
    write_manifest(job.out_dir, key, info, slices, complete=False)
    pending = [s for s in slices if s.shard_name not in done]
    total_rows = sum(s.stop - s.start for s in slices)
    scored, blank = _execute(ray, job, pending) if pending else (0, 0)
    expected = sum(s.stop - s.start for s in pending)
    if scored != expected:  # every slice reports the rows it wrote: a shortfall is a bug, never a silent loss
        raise FmkitError(f"the Ray job wrote {scored} of {expected} rows; run the same command again to finish it.")
    remove_leftovers(job.out_dir)
    write_manifest(job.out_dir, key, info, slices, complete=True, rows=total_rows)
    return JobResult(total_rows, blank, len(slices), len(slices) - len(pending), time.perf_counter() - started)


def _execute(ray: Any, job: RayJob, pending: list[Slice]) -> tuple[int, int]:
    started_here = connect(ray, job)
    try:
        import ray.data

        for name in ("ray", "ray.data"):  # Ray's INFO/WARNING lines would bury the job's own progress lines
            logging.getLogger(name).setLevel(logging.ERROR)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        # One item per slice, one slice per call: the actor pool pulls the next slice as soon as it is free.
        items = ray.data.from_items([s.to_dict() for s in pending], override_num_blocks=len(pending))
        # One slice in flight per actor: a free actor takes the next slice instead of queueing behind a busy one.
        # Ray Data recreates a dead actor and re-runs its slice (max_restarts and max_task_retries default to -1,
        # unbounded, for actor pools); the re-run rewrites the same shard name.
        pool = ray.data.ActorPoolStrategy(size=job.num_workers, max_tasks_in_flight_per_actor=1)
        results = items.map_batches(SliceScorer, fn_constructor_args=(job,), batch_size=1, compute=pool,
                                    num_cpus=job.cpus_per_worker)
        scored = blank = 0
        try:
            for row in results.iter_rows():
                scored += int(row["rows"])
                blank += int(row["blank"])
                print(f"{job.kind}: shard {row['shard']} done ({scored:,} rows so far)", file=sys.stderr)
        except Exception as exc:
            cause = user_error(exc)
            if cause is None:
                raise
            raise cause from None
        return scored, blank
    finally:
        if started_here:
            ray.shutdown()
