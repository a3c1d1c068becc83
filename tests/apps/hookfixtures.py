"""
Hooks loaded by name (C{module:attr}) in the hook tests.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import task

calls: list[Any] = []


def record(accessRecord: Any) -> None:
    """
    An access-log observer.
    """
    calls.append(("record", accessRecord))


def started(service: Any) -> None:
    """
    An C{--on-start} hook.
    """
    calls.append(("start", service))


def draining(service: Any) -> Any:
    """
    An C{--on-drain} hook that takes a second of the service's clock.
    """
    calls.append(("drain", service))
    return task.deferLater(service.reactor, 1.0, calls.append, ("drained", service))


def stopped(service: Any) -> None:
    """
    An C{--on-stop} hook.
    """
    calls.append(("stop", service))


notCallable = 42


def failing(service: Any) -> None:
    """
    An C{--on-start} hook that raises.
    """
    raise RuntimeError("the hook failed on purpose")
