"""A minimal single-file Django project: settings.configure, URLconf and views in one module."""

import hashlib
import json
import time

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="test-only-not-secret",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
    INSTALLED_APPS=[],
    DATABASES={},
    USE_TZ=True,
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402 (after settings)
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse  # noqa: E402
from django.shortcuts import redirect  # noqa: E402
from django.urls import path  # noqa: E402


def index(request):
    return HttpResponse("Hello from Django", content_type="text/plain")


def echo_json(request):
    data = json.loads(request.body)
    return JsonResponse({"received": data, "total": sum(data["numbers"])})


def upload(request):
    upload = request.FILES["file"]
    content = upload.read()
    return JsonResponse(
        {
            "filename": upload.name,
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
            "note": request.POST.get("note"),
        }
    )


def set_cookie(request):
    resp = HttpResponse("cookie set", content_type="text/plain")
    resp.set_cookie("flavour", "oatmeal")
    resp.set_cookie("session", "abc123", httponly=True)
    return resp


def read_cookie(request):
    return JsonResponse(dict(request.COOKIES))


def old(request):
    return redirect("/new")


def new(request):
    return HttpResponse("arrived at new", content_type="text/plain")


def stream(request):
    def generate():
        for i in range(5):
            yield f"line {i}\n"
            time.sleep(0.3)

    return StreamingHttpResponse(generate(), content_type="text/plain")


urlpatterns = [
    path("", index),
    path("json", echo_json),
    path("upload", upload),
    path("set-cookie", set_cookie),
    path("read-cookie", read_cookie),
    path("old", old),
    path("new", new),
    path("stream", stream),
]

application = get_wsgi_application()
