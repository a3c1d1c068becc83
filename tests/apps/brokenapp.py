"""
A module that raises while it is imported.
"""

raise RuntimeError("brokenapp cannot be imported")
