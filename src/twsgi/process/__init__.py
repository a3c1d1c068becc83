"""
Processes: the supervisor, its workers, and the reloader.
"""
