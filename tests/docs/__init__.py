"""
Tests of the documentation: every example runs, the settings page is current.
"""
