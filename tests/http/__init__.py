"""
Tests of L{twsgi.http}.
"""
