twsgi ships a ``py.typed`` marker: type checkers now read its annotations.
