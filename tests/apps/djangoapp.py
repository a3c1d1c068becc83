"""
A Django project in one module, configured in code, for the framework tests.
"""

from __future__ import annotations

import hashlib

from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="twsgi-tests-only",
        ALLOWED_HOSTS=["127.0.0.1", "localhost", "[::1]"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
        INSTALLED_APPS=[],
        DATABASES={},
        USE_TZ=True,
    )

import django  # noqa: E402
from django.http import HttpRequest, HttpResponse, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402

django.setup()


def hello(request: HttpRequest, name: str) -> HttpResponse:
    return HttpResponse(f"hello {name} from django", content_type="text/plain")


@csrf_exempt
def upload(request: HttpRequest) -> JsonResponse:
    body = request.body
    return JsonResponse(
        {
            "method": request.method,
            "length": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
            "contentType": request.content_type,
        }
    )


urlpatterns = [
    path("hello/<str:name>", hello),
    path("upload", upload),
]

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
