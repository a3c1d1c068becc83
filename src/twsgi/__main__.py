# -*- test-case-name: tests.cli.test_launch -*-
"""
C{python -m twsgi}: the same options as C{twistd -n twsgi}.
"""

from twsgi.cli.launch import main

main()
