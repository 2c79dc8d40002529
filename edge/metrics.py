"""Prometheus metrics that add up across the node's worker processes.

``edge run`` serves ``GET /metrics`` from the supervisor, which reads what every worker
wrote: prometheus_client's multiprocess mode, one mmap file per process and metric
kind under ``<state_dir>/metrics`` (the ``PROMETHEUS_MULTIPROC_DIR``). The supervisor
wipes that directory at start, so a restart never resurrects old counts, and calls
``mark_dead(pid)`` when a worker exits, so ``live*`` gauges forget it. Counters and
histograms of a dead worker stay, so totals never go backwards.

Defining a metric (at import time of your module, or lazily; both are fine)::

    from edge import metrics

    REQUESTS = metrics.counter("edge_http_requests_total", "Requests served", ["route"])
    INFLIGHT = metrics.gauge("edge_http_current_connections", "Open connections",
                             ["state"], mode="livesum")
    LATENCY = metrics.histogram("edge_http_latency", "Latency (ms)", ["type"],
                                buckets=(1, 5, 10, 50, 100, 500, 1000))

    REQUESTS.labels(route="r1").inc()

- ``counter(name, documentation, labelnames=())``: names are used as given; pass
  ``edge_x_total`` or ``edge_x`` (prometheus_client adds ``_total`` to a counter's sample).
- ``gauge(..., mode=...)``: how the per-process values combine. ``livesum`` (default:
  the sum over processes that are alive, e.g. open connections), ``liveall`` (one series
  per live pid), ``max``/``min``/``sum``/``mostrecent`` and their ``live`` forms.
- ``histogram(..., buckets=...)``; ``summary`` is not offered: multiprocess mode cannot
  combine quantiles.
- Defining the same name again with the same kind and labels returns the first metric
  (a WASM VM that is recreated may define its metrics again); a different kind or label
  set raises ``ValueError``.
- Labels must stay bounded: never a raw path, client address or header value.

Outside ``edge run`` (``edge validate``, unit tests) nothing is shared: metrics live in
this process and ``render()`` shows them.

Buffered metrics: a multiprocess value write is an mmap write with a lock (~4 us), too
much for several per request. A hot path may instead count in plain per-process Python
structures and register a flusher with ``on_flush(fn)``; ``fn(state)`` moves what was
counted into the metrics. Workers run ``flush_periodically(worker_state)`` (every
``FLUSH_INTERVAL`` seconds and once more when the worker stops), and ``render()`` flushes
first, so ``/metrics`` lags a worker's traffic by at most ``FLUSH_INTERVAL``. Flushers
run on the worker's trio thread (``state`` is its ``WorkerState``) or, from ``render()``
in a single process, with ``state=None``; the hot paths they read are not locked, so a
flusher must tolerate a concurrent increment landing in the next flush.

Hot path: ``metric.labels(...)`` does a dict lookup and, the first time, creates the
child; keep the child (``child = REQUESTS.labels(route=id)``) in compiled objects when the
label values are known at compile time.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as _values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

log = logging.getLogger("edge.metrics")

ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
GAUGE_MODES = (
    "all",
    "liveall",
    "min",
    "livemin",
    "max",
    "livemax",
    "sum",
    "livesum",
    "mostrecent",
    "livemostrecent",
)

# seconds between two flushes of buffered metrics in a worker (the /metrics lag)
FLUSH_INTERVAL = 0.5

# this process's metrics, rendered directly when no multiprocess directory is set
REGISTRY = CollectorRegistry(auto_describe=True)
_defined: dict[str, tuple[str, tuple[str, ...], Any]] = {}
_lock = threading.Lock()
_flushers: list[Callable[[Any], None]] = []
_flush_lock = threading.Lock()


def multiprocess_dir() -> str | None:
    return os.environ.get(ENV) or None


def enable_multiprocess(directory: str | os.PathLike[str], *, wipe: bool) -> None:
    """Make this process (and the processes it starts) write metrics under ``directory``.

    The supervisor calls it with ``wipe=True`` before it starts workers; workers inherit
    the environment variable. Metrics whose values were created before this call (an
    unlabelled metric defined at import) stay private to this process.
    """
    path = Path(directory)
    if wipe and path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    os.environ[ENV] = str(path)
    # prometheus_client picks the value class when it is imported; switch it for metric
    # values created from now on, in case it was imported before the directory was known
    _values.ValueClass = _values.MultiProcessValue()


def mark_dead(pid: int) -> None:
    """Forget a dead process's live gauges (its counters keep counting in the total)."""
    path = multiprocess_dir()
    if path:
        mark_process_dead(pid, path)


def render() -> bytes:
    """The exposition text: every process's metrics summed in multiprocess mode.

    Reads files; call it from a thread in async code.
    """
    flush()
    path = multiprocess_dir()
    if not path:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)
    return generate_latest(registry)


def on_flush(fn: Callable[[Any], None]) -> None:
    """Call ``fn(state)`` on every ``flush`` (once per function, however often added)."""
    with _flush_lock:
        if fn not in _flushers:
            _flushers.append(fn)


def flush(state: Any = None) -> None:
    """Move buffered per-process counts into the metrics (see the module docstring)."""
    with _flush_lock:
        for fn in _flushers:
            try:
                fn(state)
            except Exception:  # metrics must never take a worker down
                log.exception("metrics flusher %r failed", fn)


async def flush_periodically(state: Any, interval: float = FLUSH_INTERVAL) -> None:
    """A worker's flush task: every ``interval`` seconds until cancelled, then a last
    flush so a draining or stopping worker loses no counts."""
    import trio  # the supervisor and `edge validate` never run this

    try:
        while True:
            await trio.sleep(interval)
            flush(state)
    finally:
        flush(state)


def counter(name: str, documentation: str, labelnames: Sequence[str] = ()) -> Counter:
    return _define("counter", name, documentation, labelnames, Counter, {})


def gauge(
    name: str, documentation: str, labelnames: Sequence[str] = (), *, mode: str = "livesum"
) -> Gauge:
    if mode not in GAUGE_MODES:
        raise ValueError(f"gauge {name}: mode must be one of {', '.join(GAUGE_MODES)}")
    return _define("gauge", name, documentation, labelnames, Gauge, {"multiprocess_mode": mode})


def histogram(
    name: str,
    documentation: str,
    labelnames: Sequence[str] = (),
    *,
    buckets: Iterable[float] = Histogram.DEFAULT_BUCKETS,
) -> Histogram:
    return _define(
        "histogram", name, documentation, labelnames, Histogram, {"buckets": tuple(buckets)}
    )


def _define(
    kind: str,
    name: str,
    documentation: str,
    labelnames: Sequence[str],
    cls: Any,
    kwargs: dict[str, Any],
) -> Any:
    labels = tuple(labelnames)
    # prometheus_client names a counter without its _total suffix
    key = name.removesuffix("_total") if kind == "counter" else name
    with _lock:
        known = _defined.get(key)
        if known is not None:
            if known[0] != kind or known[1] != labels:
                raise ValueError(
                    f"metric {name} already defined as {known[0]} with labels {list(known[1])}"
                )
            return known[2]
        metric = cls(name, documentation, labels, registry=REGISTRY, **kwargs)
        _defined[key] = (kind, labels, metric)
        return metric


def files() -> list[str]:
    """The multiprocess files currently present (for tests and /status)."""
    path = multiprocess_dir()
    return sorted(glob.glob(os.path.join(path, "*.db"))) if path else []
