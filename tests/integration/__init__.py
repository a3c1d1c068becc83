"""
Tests with real peers: HAProxy, nginx, Flask, Django and Falcon, and a real
service in the real reactor.
"""
