"""
Tests of L{twsgi.config}.
"""
