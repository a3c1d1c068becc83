# -*- test-case-name: tests.cli.test_main -*-
"""
C{python -m twsgi}: the same options as C{twistd -n twsgi}.
"""

from twsgi.cli.main import main

main()
