"""
Processes: the supervisor, its workers, and the reloader; and the one place
where the config becomes the objects of a process (L{twsgi.process.build}).
"""
