"""Several monitor workers on one database: which files each follows, and one worker following several files.

Start N workers (processes, on one machine or several) with the same files and `--partition K/N`, K = 0..N-1:
each file belongs to exactly one worker, chosen by a hash of its name, so the split stays the same when new
files appear and no worker needs to talk to another. Every file is its own stream with its own stored offset:
a worker killed at any point resumes its files where their last transaction left them, and the others go on.
"""

from __future__ import annotations

import glob
import sys
import threading
import zlib
from pathlib import Path
from typing import Any

from fmkit.errors import ConfigError, DataError


def parse_partition(text: str | None) -> tuple[int, int] | None:
    """'K/N' -> (K, N) with 0 <= K < N."""
    if text is None:
        return None
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ConfigError(f"--partition {text}: give K/N, e.g. 0/2 and 1/2 for two workers.") from None
    if n < 1 or not 0 <= k < n:
        raise ConfigError(f"--partition {text}: K must be 0..N-1 (e.g. 0/2 and 1/2 for two workers).")
    return k, n


def partition_of(path: str, n: int) -> int:
    """The worker (0..n-1) that follows `path`: a hash of the file's name, the same on every machine."""
    return zlib.crc32(Path(path).name.encode("utf-8")) % n


def select_inputs(inputs: list[str], partition: tuple[int, int] | None) -> list[str]:
    """Expand globs, drop duplicates, keep this worker's share. '-' (stdin) stands alone."""
    if "-" in inputs:
        if len(inputs) > 1 or partition is not None:
            raise ConfigError("'-' (standard input) cannot be combined with files or --partition.")
        return inputs
    paths: list[str] = []
    for text in inputs:
        matches = sorted(glob.glob(text)) if glob.has_magic(text) else [text]
        if not matches:
            raise DataError(f"{text}: no file matches this pattern.")
        paths.extend(str(Path(m).resolve()) for m in matches)
    paths = list(dict.fromkeys(paths))
    if partition is not None:
        k, n = partition
        paths = [p for p in paths if partition_of(p, n) == k]
    return paths


def run_streams(monitor: Any, sources: list[str], follow: bool = True, log: Any = sys.stderr) -> dict[str, Any]:
    """Follow every source in its own thread (scoring and storing take turns on the monitor's lock).

    Returns the summed counts; the first error (a lost database, a file taken by another worker) stops the
    worker: the other threads are daemons, and their unstored batches are re-read on restart.
    """
    from fmkit.apps.monitor import run_stream

    if len(sources) == 1:
        return run_stream(monitor, sources[0], follow=follow, log=log)
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    finished = threading.Condition()

    def follow_one(source: str) -> None:
        try:
            result = run_stream(monitor, source, follow=follow, log=log)
        except BaseException as exc:  # handed to the main thread, which re-raises it
            with finished:
                errors.append(exc)
                finished.notify()
            return
        with finished:
            results.append(result)
            finished.notify()

    for source in sources:
        threading.Thread(target=follow_one, args=(source,), daemon=True, name=f"monitor:{Path(source).name}").start()
    with finished:
        finished.wait_for(lambda: bool(errors) or len(results) == len(sources))
    if errors:
        raise errors[0]
    seconds = max(r["seconds"] for r in results)
    items = sum(r["items"] for r in results)
    return {"items": items, "files": len(sources), "seconds": seconds,
            "items_per_second": round(items / seconds, 1) if seconds else None,
            "scoring_seconds": round(monitor.scoring_seconds, 2), "storing_seconds": round(monitor.storing_seconds, 2)}
