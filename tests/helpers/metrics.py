"""
Reading Prometheus metrics in tests, and a reactor that records spawned
processes.
"""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.testing import MemoryReactorClock, StringTransport

from twsgi.metrics.prometheus import Metrics


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """
    The samples of a Prometheus text exposition, by name and labels.
    """
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client import generate_latest

    return samples(generate_latest(metrics.registry).decode())


class SpawningReactor(MemoryReactorClock):
    """
    A memory reactor that records the processes it is asked to spawn.
    """

    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[dict[str, Any]] = []

    def listenTCP(self, *args: Any, **kwargs: Any) -> Any:
        port = super().listenTCP(*args, **kwargs)
        port.stopReading = lambda: None
        port.fileno = lambda: 99
        return port

    def spawnProcess(self, protocol: Any, executable: str, args: Any, **kw: Any) -> Any:
        self.spawned.append(kw)
        transport = StringTransport()
        transport.pid = 1000 + len(self.spawned)  # type: ignore[attr-defined]
        protocol.makeConnection(transport)
        return transport
