"""
Metrics: the Prometheus collectors and the directory workers share.
"""
