``twsgi.ServerConfig`` is now a plain frozen class generated from the settings table, so type checkers see every setting with its type.
