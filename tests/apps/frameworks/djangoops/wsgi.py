"""
The WSGI application of the test Django project.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djangoops.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
