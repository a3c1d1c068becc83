"""
Code shared by the tests: clients, servers, certificates and doubles.
Nothing here is a test.
"""
