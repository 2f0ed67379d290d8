"""What a process builds once and shares between its roles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from eventtrigger.bus import Publisher
from eventtrigger.clock import Clock
from eventtrigger.config import Settings
from eventtrigger.observability.health import Health
from eventtrigger.observability.metrics import Metrics
from eventtrigger.observability.stats import StatsKeeper
from eventtrigger.store.db import Database

if TYPE_CHECKING:  # imported only when tracing is on (runner), so off costs no import
    from eventtrigger.observability.tracing import Tracing


@dataclass
class Resources:
    settings: Settings
    clock: Clock
    db: Database
    health: Health
    metrics: Metrics
    stats: StatsKeeper
    publisher: Publisher | None = None  # processes whose roles publish jobs
    tracing: Tracing | None = None  # None unless OTEL_EXPORTER_OTLP_ENDPOINT is set

    @property
    def jobs(self) -> Publisher:
        assert self.publisher is not None, "this process has no Kafka publisher"
        return self.publisher
