"""What a process builds once and shares between its roles."""

from __future__ import annotations

from dataclasses import dataclass

from eventtrigger.bus import Publisher
from eventtrigger.clock import Clock
from eventtrigger.config import Settings
from eventtrigger.observability.health import Health
from eventtrigger.observability.metrics import Metrics
from eventtrigger.observability.stats import StatsKeeper
from eventtrigger.store.db import Database


@dataclass
class Resources:
    settings: Settings
    clock: Clock
    db: Database
    health: Health
    metrics: Metrics
    stats: StatsKeeper
    publisher: Publisher | None = None  # processes whose roles publish jobs

    @property
    def jobs(self) -> Publisher:
        assert self.publisher is not None, "this process has no Kafka publisher"
        return self.publisher
