"""
Sphinx configuration for the twsgi docs.

Build with C{tox -e docs}.  The settings reference and the changelog are
generated at every build by the extensions in C{docs/_ext/}.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

from twsgi import __version__  # noqa: E402

project = "twsgi"
author = "the twsgi developers"
copyright = "the twsgi developers"
release = __version__
version = release

extensions = [
    "twsgi_settings",
    "twsgi_news",
    "twsgi_security",
]

exclude_patterns = ["_build", "examples"]
nitpicky = True
# There is no API reference page (yet): references to twsgi's and Twisted's
# Python objects render as code.  Every other broken reference is an error.
nitpick_ignore_regex = [(r"py:.*", r"(twsgi|twisted)(\..*)?")]

html_theme = "furo"

html_title = f"twsgi {release}"
