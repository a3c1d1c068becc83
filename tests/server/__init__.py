"""
Tests of L{twsgi.server}.
"""
