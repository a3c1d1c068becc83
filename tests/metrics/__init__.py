"""
Tests of L{twsgi.metrics}.
"""
