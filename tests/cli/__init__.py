"""
Tests of L{twsgi.cli}.
"""
