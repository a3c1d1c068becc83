"""
Tests of L{twsgi.wsgi}.
"""
