``--static /url=dir`` serves files from the reactor beside the application, with ranges, ETag and If-Modified-Since, and no directory listings.
