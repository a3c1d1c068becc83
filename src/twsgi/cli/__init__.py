"""
The command line: the options built from the settings table, the C{twistd}
plugin's service maker and twsgi's own runner.
"""
