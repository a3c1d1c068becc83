"""
C{python -m twsgi}: the same options as C{twistd -n twsgi}.
"""

from ._main import main

main()
