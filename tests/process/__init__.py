"""
Tests of L{twsgi.process}.
"""
