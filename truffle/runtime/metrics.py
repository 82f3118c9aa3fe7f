"""Prometheus metrics: ours, the Temporal SDK's own, and gauges read from the database.

Names follow Prometheus conventions (`truffle_` prefix, `_total` counters, `_seconds`
durations). Labels are small closed sets (a kind, an outcome, an HTTP status, a route
template): never an id, a name, an address or a secret.

The Temporal SDK records its runtime metrics (task latencies, schedule-to-start, slots, polls)
into a `MetricBuffer`; `TemporalSdkMetrics` drains it into this process's registry, so one
`/metrics` answer holds both.
"""

import asyncio
import bisect
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from threading import Lock, Thread

import sqlalchemy as sa
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlmodel import Session, col, func, select
from temporalio.common import MetricAttributes
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_HISTOGRAM,
    MetricBuffer,
    MetricBufferDurationFormat,
    Runtime,
    TelemetryConfig,
)

from truffle.ashby.connection_health import Health, assess, snapshot_of
from truffle.runtime.logs import temporal_core_logging
from truffle.storage.tables import AshbyConnection, ConnectionState, Screening

logger = logging.getLogger("truffle.runtime.metrics")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
SDK_BUFFER_SIZE = 100_000
SDK_DRAIN_SECONDS = 1.0
# Attribute sets whose labels are kept (the SDK's are a few dozen; more, and they start again).
LABEL_SETS_KEPT = 10_000
GAUGE_MAX_AGE_SECONDS = 10.0

SCREENINGS_STARTED = Counter(
    "truffle_screenings_started", "Screenings Ashby started that Truffle accepted"
)
SCREENINGS_CLOSED = Counter(
    "truffle_screenings_closed",
    "Screenings whose workflow finished, by final status",
    ["status"],
)
EMAILS = Counter(
    "truffle_emails",
    "Candidate emails by kind and outcome (sent, skipped, deferred, undeliverable)",
    ["kind", "outcome"],
)
ASHBY_DELIVERIES = Counter(
    "truffle_ashby_deliveries",
    "Attempts to post a screening update to Ashby, by outcome and HTTP status",
    ["kind", "outcome", "http_status"],
)
ASHBY_THROTTLED = Counter(
    "truffle_ashby_throttled",
    "Posts to Ashby put off before sending, by scope (workspace: our own limit; "
    "partner: Ashby throttled all of Truffle's traffic)",
    ["scope"],
)
RECONCILER_REPAIRS = Counter(
    "truffle_reconciler_repairs",
    "What the reconciler repaired, by action "
    "(restarted, settled, webhook_handed_over, keys_destroyed)",
    ["action"],
)
HTTP_REQUESTS = Counter(
    "truffle_http_requests",
    "HTTP requests answered, by route template",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "truffle_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)


@dataclass
class _Histogram:
    buckets: list[float] = field(default_factory=lambda: [0.0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0
    count: float = 0.0

    def observe(self, value: float) -> None:
        # The first bucket whose bound is at least the value; past the last one, +Inf's.
        self.buckets[bisect.bisect_left(LATENCY_BUCKETS, value)] += 1
        self.total += value
        self.count += 1


@dataclass
class _Family:
    name: str
    documentation: str
    kind: str  # counter | gauge | histogram
    values: dict[tuple[tuple[str, str], ...], float] = field(default_factory=dict)
    histograms: dict[tuple[tuple[str, str], ...], _Histogram] = field(default_factory=dict)


class TemporalSdkMetrics(Collector):
    """The Temporal SDK's runtime metrics, in this registry. Create it before the first client:
    `runtime` is the Temporal runtime to connect with. Its core logs through ours at
    `log_level`, provided it is the process's first Temporal runtime (the core sends every
    line to the first one's logging)."""

    def __init__(self, registry: CollectorRegistry, log_level: str) -> None:
        self.buffer = MetricBuffer(SDK_BUFFER_SIZE, MetricBufferDurationFormat.SECONDS)
        self.runtime = Runtime(
            telemetry=TelemetryConfig(metrics=self.buffer, logging=temporal_core_logging(log_level))
        )
        self._families: dict[str, _Family] = {}
        # Each attribute set's labels, by the identity of the SDK's attribute object (the same
        # object for every update of that set), which is kept so that its id is not reused.
        self._labels: dict[int, tuple[MetricAttributes, tuple[tuple[str, str], ...]]] = {}
        self._lock = Lock()
        registry.register(self)

    def drain(self) -> None:
        """Moves what the SDK recorded since the last call into our totals. Call it often
        (`drain_periodically`: the API and the worker do every second), not only at a scrape:
        a full buffer drops updates."""
        with self._lock:
            for update in self.buffer.retrieve_updates():
                metric = update.metric
                family = self._family(metric.name, metric.description, metric.unit, metric.kind)
                labels = self._labels_of(update.attributes)
                if family.kind == "histogram":
                    family.histograms.setdefault(labels, _Histogram()).observe(update.value)
                elif family.kind == "counter":
                    family.values[labels] = family.values.get(labels, 0.0) + update.value
                else:
                    family.values[labels] = float(update.value)

    def _labels_of(self, attributes: MetricAttributes) -> tuple[tuple[str, str], ...]:
        known = self._labels.get(id(attributes))
        if known is None:
            if len(self._labels) >= LABEL_SETS_KEPT:
                self._labels.clear()
            known = (attributes, tuple(sorted((str(k), str(v)) for k, v in attributes.items())))
            self._labels[id(attributes)] = known
        return known[1]

    def _family(self, name: str, description: str | None, unit: str | None, kind: int) -> _Family:
        found = self._families.get(name)
        if found is None:
            exposed = name if name.startswith("temporal_") else f"temporal_{name}"
            if kind == BUFFERED_METRIC_KIND_HISTOGRAM:
                kind_name = "histogram"
                # Durations arrive in seconds (the buffer's format): say so in the name.
                timed = unit in ("duration", "s", "seconds") or exposed.endswith("_latency")
                if timed and not exposed.endswith("_seconds"):
                    exposed += "_seconds"
            elif kind == BUFFERED_METRIC_KIND_COUNTER:
                kind_name = "counter"
            else:
                kind_name = "gauge"
            found = _Family(exposed, description or name, kind_name)
            self._families[name] = found
        return found

    def collect(self) -> Iterator[Metric]:
        self.drain()
        with self._lock:
            for family in self._families.values():
                metric = Metric(family.name, family.documentation, family.kind)
                if family.kind == "counter":
                    for labels, value in family.values.items():
                        metric.add_sample(f"{family.name}_total", dict(labels), value)
                elif family.kind == "gauge":
                    for labels, value in family.values.items():
                        metric.add_sample(family.name, dict(labels), value)
                for labels, histogram in family.histograms.items():
                    cumulative = 0.0
                    for bound, count in zip(
                        (*LATENCY_BUCKETS, math.inf), histogram.buckets, strict=True
                    ):
                        cumulative += count
                        le = "+Inf" if bound == math.inf else repr(float(bound))
                        metric.add_sample(
                            f"{family.name}_bucket", {**dict(labels), "le": le}, cumulative
                        )
                    metric.add_sample(f"{family.name}_sum", dict(labels), histogram.total)
                    metric.add_sample(f"{family.name}_count", dict(labels), histogram.count)
                yield metric


async def drain_periodically(drain: Callable[[], None]) -> None:
    """Calls `drain` every SDK_DRAIN_SECONDS until cancelled."""
    while True:
        await asyncio.sleep(SDK_DRAIN_SECONDS)
        drain()


class DatabaseGauges(Collector):
    """Figures read from the database, the same from every process that serves them (take the
    max, not the sum, across processes). A scrape runs no query: it reports the figures last
    read and, when they are older than GAUGE_MAX_AGE_SECONDS, has them read again on a thread
    of their own, for the next scrape (so the figures lag one scrape at most, and a process
    nobody scrapes reads nothing). `truffle_database_gauges_age_seconds` says how old they
    are: it grows while the database does not answer."""

    def __init__(self, engine: sa.Engine, registry: CollectorRegistry) -> None:
        self.engine = engine
        self._lock = Lock()
        self._reading = False
        self._held: int | None = None
        self._cards: dict[str, int] = {}
        self._read_at: float | None = None
        registry.register(self)

    def read(self) -> None:
        """Reads the figures (blocking)."""
        counts = dict.fromkeys([*(str(h) for h in Health), "not_connected"], 0)
        now = datetime.now(UTC)
        with Session(self.engine) as session:
            held = session.exec(
                select(func.count()).where(col(Screening.delivery_held).is_(True))
            ).one()
            for connection in session.exec(select(AshbyConnection)):
                if connection.state == ConnectionState.live:
                    counts[str(assess(snapshot_of(connection), now).health)] += 1
                else:
                    counts["not_connected"] += 1
        with self._lock:
            self._held, self._cards, self._read_at = held, counts, time.monotonic()

    def _read_in_background(self) -> None:
        try:
            self.read()
        except Exception as error:  # the next scrape tries again; the age gauge shows it
            logger.warning("database gauges not read: %s", type(error).__name__)
        finally:
            with self._lock:
                self._reading = False

    def _read_again_if_old(self) -> None:
        with self._lock:
            fresh = (
                self._read_at is not None
                and time.monotonic() - self._read_at < GAUGE_MAX_AGE_SECONDS
            )
            if fresh or self._reading:
                return
            self._reading = True
        Thread(target=self._read_in_background, name="truffle-gauges", daemon=True).start()

    def describe(self) -> Iterable[Metric]:
        """The families, without reading anything (the registry asks at registration)."""
        return [
            GaugeMetricFamily("truffle_held_updates", ""),
            GaugeMetricFamily("truffle_connections", "", labels=["status"]),
            GaugeMetricFamily("truffle_database_gauges_age_seconds", ""),
        ]

    def collect(self) -> Iterable[Metric]:
        self._read_again_if_old()
        with self._lock:
            held_count, cards_counts, read_at = self._held, dict(self._cards), self._read_at
        if held_count is None or read_at is None:
            return  # not read yet: the first scrape asked for them
        held = GaugeMetricFamily(
            "truffle_held_updates",
            "Screenings with an update held for the Ashby connection (not live, key rejected)",
        )
        held.add_metric([], held_count)
        cards = GaugeMetricFamily(
            "truffle_connections",
            "Ashby connections by what their card shows",
            labels=["status"],
        )
        for status, count in cards_counts.items():
            cards.add_metric([status], count)
        age = GaugeMetricFamily(
            "truffle_database_gauges_age_seconds",
            "Seconds since truffle_held_updates and truffle_connections were read",
        )
        age.add_metric([], time.monotonic() - read_at)
        yield held
        yield cards
        yield age


def exposition(*registries: CollectorRegistry) -> tuple[bytes, str]:
    """The text of this process's metrics (ours, then each registry given) and its type."""
    body = b"".join(generate_latest(registry) for registry in (REGISTRY, *registries))
    return body, CONTENT_TYPE_LATEST
