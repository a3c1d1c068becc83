"""
Tests of L{twsgi.logs}.
"""
