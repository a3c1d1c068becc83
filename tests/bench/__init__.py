"""
Tests of the benchmark harness in C{bench/}.
"""
