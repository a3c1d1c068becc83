"""
URLs of the test Django project.
"""

import hashlib

from django.contrib import admin
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from lateread import readLate


@csrf_exempt
def upload(request):  # type: ignore[no-untyped-def]
    f = request.FILES["f"]
    data = f.read()
    return HttpResponse(
        f"{f.name} {len(data)} {hashlib.sha256(data).hexdigest()} "
        f"{request.POST.get('note', '')}",
        content_type="text/plain",
    )


@csrf_exempt
def lateRead(request):  # type: ignore[no-untyped-def]
    # The test makes the client leave, then creates the X-Release file.
    readLate(request.headers["X-Release"], lambda: request.body)
    return HttpResponse("read", content_type="text/plain")


urlpatterns = [
    path("admin/", admin.site.urls),
    path("upload", upload),
    path("late-read", lateRead),
]
