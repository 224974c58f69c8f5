"""Prometheus text-format metrics for the server, written by hand (no extra dependency).

fmkit_requests_total{route,status}          counter
fmkit_request_seconds{route}                histogram of whole-request latency
fmkit_batch_size                            histogram of texts per forward pass
fmkit_batch_requests                        histogram of requests coalesced per forward pass
fmkit_forward_seconds                       histogram of forward-pass time
fmkit_batch_isolations_total{op}            counter: coalesced passes that raised and were retried request by request
fmkit_isolated_failures_total{op}           counter: requests that still failed on their own (the offenders)
fmkit_queue_depth                           gauge: requests waiting for a forward pass
fmkit_inflight_requests                     gauge
fmkit_worker_info{pid}                      gauge, always 1: which server process answered

Under `fmkit serve --workers N` every worker process keeps its own metrics: a scrape of the shared port gets
one worker's numbers (the one the kernel handed the connection to), told apart by fmkit_worker_info's pid.
Sum them per pid, or run one worker per container behind the load balancer and scrape each.
"""

from __future__ import annotations

import bisect
import os
import threading
from collections.abc import Callable, Sequence

from fmkit.inference.batching import BatchObserver

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Histogram:
    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)  # last: +Inf
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.n += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        sep = "," if labels else ""
        out, running = [], 0
        for bound, count in zip((*self.buckets, float("inf")), self.counts, strict=True):
            running += count
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            out.append(f'{name}_bucket{{{labels}{sep}le="{le}"}} {running}')
        tag = f"{{{labels}}}" if labels else ""
        out.append(f"{name}_sum{tag} {self.total:.6f}")
        out.append(f"{name}_count{tag} {self.n}")
        return out


class ServerMetrics(BatchObserver):
    def __init__(self, queue_depth: Callable[[], int]) -> None:
        self._lock = threading.Lock()
        self.queue_depth = queue_depth
        self.requests: dict[tuple[str, int], int] = {}
        self.latency: dict[str, Histogram] = {}
        self.batch_size = Histogram(SIZE_BUCKETS)
        self.batch_requests = Histogram(SIZE_BUCKETS)
        self.forward_seconds = Histogram(LATENCY_BUCKETS)
        self.isolations: dict[str, int] = {}
        self.isolated_failures: dict[str, int] = {}
        self.inflight = 0

    def request_done(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(route, status)] = self.requests.get((route, status), 0) + 1
            self.latency.setdefault(route, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def batch_done(self, op: str, texts: int, requests: int, seconds: float) -> None:
        with self._lock:
            self.batch_size.observe(texts)
            self.batch_requests.observe(requests)
            self.forward_seconds.observe(seconds)

    def batch_isolated(self, op: str, requests: int, failed: int) -> None:
        with self._lock:
            self.isolations[op] = self.isolations.get(op, 0) + 1
            self.isolated_failures[op] = self.isolated_failures.get(op, 0) + failed

    def render(self) -> str:
        with self._lock:
            out = ["# HELP fmkit_requests_total Requests answered, by route and HTTP status.",
                   "# TYPE fmkit_requests_total counter"]
            for (route, status), count in sorted(self.requests.items()):
                out.append(f'fmkit_requests_total{{route="{route}",status="{status}"}} {count}')
            out += ["# HELP fmkit_request_seconds Request latency in seconds.", "# TYPE fmkit_request_seconds histogram"]
            for route, hist in sorted(self.latency.items()):
                out += hist.lines("fmkit_request_seconds", f'route="{route}"')
            for name, hist, text in (("fmkit_batch_size", self.batch_size, "Texts per forward pass."),
                                     ("fmkit_batch_requests", self.batch_requests, "Requests coalesced per forward pass."),
                                     ("fmkit_forward_seconds", self.forward_seconds, "Forward-pass time in seconds.")):
                out += [f"# HELP {name} {text}", f"# TYPE {name} histogram", *hist.lines(name)]
            for name, counts, text in (
                    ("fmkit_batch_isolations_total", self.isolations,
                     "Coalesced forward passes that raised and were retried request by request."),
                    ("fmkit_isolated_failures_total", self.isolated_failures,
                     "Requests that failed on their own when a failed batch was retried request by request.")):
                out += [f"# HELP {name} {text}", f"# TYPE {name} counter"]
                out += [f'{name}{{op="{op}"}} {count}' for op, count in sorted(counts.items())]
            out += ["# HELP fmkit_queue_depth Requests waiting for a forward pass.", "# TYPE fmkit_queue_depth gauge",
                    f"fmkit_queue_depth {self.queue_depth()}",
                    "# HELP fmkit_inflight_requests Requests being handled.", "# TYPE fmkit_inflight_requests gauge",
                    f"fmkit_inflight_requests {self.inflight}",
                    "# HELP fmkit_worker_info The server process that answered this scrape (one per --workers).",
                    "# TYPE fmkit_worker_info gauge", f'fmkit_worker_info{{pid="{os.getpid()}"}} 1']
        return "\n".join(out) + "\n"
