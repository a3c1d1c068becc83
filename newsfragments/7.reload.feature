``--reload`` restarts the server when a source file of the application changes (with the ``reload`` extra, using hupper).
