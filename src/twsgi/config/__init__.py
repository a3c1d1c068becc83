"""
Configuration: the settings table (the single definition of every setting),
TOML files, environment variables and loading the application.
"""
