"""Prometheus exposition: fleet and ingest numbers read fresh at every scrape.

Each app gets its own ``CollectorRegistry`` (no process-global state, so tests
can run several apps). The numbers come from a ``snapshot`` callable the
composition root wires to the database and the ingest counters; a scrape costs
a handful of indexed ``COUNT`` queries plus a timed ``SELECT 1``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class FleetSnapshot:
    """What one scrape reports."""

    devices_total: int
    devices_online: int
    messages_stored_total: int
    confirmations_total: int = 0
    dead_letters_by_reason: dict[str, int] = field(default_factory=dict)
    db_latency_s: float = 0.0
    models_total: int = 0
    ingest_healthy: bool | None = None
    """None when this process runs no ingest."""
    ingest_takeovers: int = 0
    ingest_connection_losses: int = 0


class FleetCollector(Collector):
    """Turns a :class:`FleetSnapshot` into metric families at scrape time."""

    def __init__(self, snapshot: Callable[[], FleetSnapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        """Produce the metric families (called by the registry on each scrape)."""
        snap = self._snapshot()
        yield CounterMetricFamily(
            "edgefleet_ingest_messages_stored",
            "Agent messages stored by ingest (rate() of this is the ingest rate).",
            value=snap.messages_stored_total,
        )
        yield CounterMetricFamily(
            "edgefleet_ingest_confirmations",
            "'stored' notices sent to devices (end-to-end acks: their outboxes may then forget).",
            value=snap.confirmations_total,
        )
        dead = CounterMetricFamily(
            "edgefleet_dead_letters",
            "Rejected MQTT messages kept as dead letters, by reason.",
            labels=["reason"],
        )
        for reason, count in sorted(snap.dead_letters_by_reason.items()):
            dead.add_metric([reason], count)
        yield dead
        yield GaugeMetricFamily(
            "edgefleet_devices_online", "Devices whose last state is online.", snap.devices_online
        )
        yield GaugeMetricFamily(
            "edgefleet_devices", "Devices known to the registry.", snap.devices_total
        )
        yield GaugeMetricFamily("edgefleet_models", "Models in the registry.", snap.models_total)
        yield GaugeMetricFamily(
            "edgefleet_db_latency_seconds",
            "Round-trip time of a trivial database query at scrape time.",
            snap.db_latency_s,
        )
        if snap.ingest_healthy is not None:
            yield GaugeMetricFamily(
                "edgefleet_ingest_healthy",
                "1 while ingest is connected, owns its session and receives (see /healthz).",
                1.0 if snap.ingest_healthy else 0.0,
            )
            yield CounterMetricFamily(
                "edgefleet_ingest_session_takeovers",
                "Times the broker said another client took the controller's session.",
                value=snap.ingest_takeovers,
            )
            yield CounterMetricFamily(
                "edgefleet_ingest_connection_losses",
                "Times the broker dropped ingest's connection (a burst: its client id is in use).",
                value=snap.ingest_connection_losses,
            )


def build_registry(snapshot: Callable[[], FleetSnapshot]) -> CollectorRegistry:
    """A registry holding only this app's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(snapshot))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition format of ``registry``."""
    return generate_latest(registry)
