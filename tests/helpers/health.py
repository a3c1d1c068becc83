"""
Doubles of a service and its thread pool, for health and metrics tests.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import attrs


@attrs.define
class FakeService:
    """
    What the health routes read of a service.
    """

    threadpool: Any
    draining: bool = False


@attrs.define
class FakePool:
    max: int = 4
    busy: int = 0
    idle: int = 0
    backlog: int = 0

    @property
    def working(self) -> list[None]:
        return [None] * self.busy

    @property
    def waiters(self) -> list[None]:
        return [None] * self.idle

    @property
    def q(self) -> Any:
        return SimpleNamespace(qsize=lambda: self.backlog)
