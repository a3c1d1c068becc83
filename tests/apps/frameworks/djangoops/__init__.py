"""
A Django project for the framework tests: the admin, static files served by
twsgi's C{--static}, and a file upload.
"""
