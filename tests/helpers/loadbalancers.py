"""
Shared settings of the load-balancer integration tests.
"""

from __future__ import annotations

CLIENT = "127.0.0.2"
"""
The load's source address: not the address HAProxy connects from, so the
test can tell the real client from the proxy.
"""
