``-h`` works like ``--help``, and ``--help`` shows each option with the form of its value (``--threads MIN:MAX``, ``--static URL=DIR``), grouped by section as in the settings reference.
