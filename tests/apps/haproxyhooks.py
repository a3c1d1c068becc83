"""
An C{--on-stop} hook for the HAProxy test: append the final Prometheus
figures of this server's life to C{$TWSGI_TEST_METRICS_FILE}.
"""

from __future__ import annotations

import os
from typing import Any


def saveMetrics(service: Any) -> None:
    """
    Append C{twsgi_requests_total} of this process's life, one line
    per status class (C{CLASS COUNT}).
    """
    metrics = service.routes.metrics
    counts: dict[str, int] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "twsgi_requests_total":
                # Summed over the protocols.
                cls = sample.labels["status_class"]
                counts[cls] = counts.get(cls, 0) + int(sample.value)
    with open(os.environ["TWSGI_TEST_METRICS_FILE"], "a") as f:
        f.writelines(f"{cls} {count}\n" for cls, count in counts.items())
