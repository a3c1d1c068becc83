"""
Tests of L{twsgi.lifecycle}.
"""
