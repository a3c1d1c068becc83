"""
Logs: access records and their formats, log files shared by processes, and
the server log.
"""
