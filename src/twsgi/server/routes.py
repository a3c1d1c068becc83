# -*- test-case-name: tests.server.test_health -*-
"""
The dispatcher: the root resource of every listener.

It answers on the I/O thread what must never wait for a WSGI thread: the
health paths, C{/metrics}, and static files mounted with
C{--static /url=dir}; everything else goes to the WSGI bridge (on an
application listener) or is a 404 (on an admin listener).

It is a leaf, so that C{twisted.web} does not move path segments into
C{prepath} before the application sees them: C{SCRIPT_NAME} stays C{""} for
the application at the root.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import attrs
from twisted.logger import Logger
from twisted.web import http
from twisted.web.pages import errorPage, forbidden, notFound
from twisted.web.resource import Resource, getChildForRequest
from twisted.web.server import Request
from twisted.web.static import File

from twsgi.http.shortage import retryAfterFields, statusForOSError
from twsgi.logs.accesslog import escapeBytes
from twsgi.server.exchange import HotExchange
from twsgi.server.health import isPathPrefix

_log = Logger(namespace="twsgi")


class StaticFile(File):
    """
    L{twisted.web.static.File} with an C{ETag} (from modification time and
    size, as nginx makes it) and no directory listings.  A single range and
    C{If-Modified-Since} come from L{File}.

    A C{Range} of several ranges is ignored, and the whole file sent once,
    as RFC 9110 section 14.2 allows: L{File}'s multipart producer asks its
    file for a negative length, and raises, once the part headers it writes
    overrun its buffer (many small ranges, or a part that ends just short of
    it), which left the response unfinished; and the same range many times
    over had an 8 KiB header ask for a file thousands of times.
    """

    childNotFound = notFound()
    forbidden = forbidden()

    def directoryListing(self) -> Resource:
        return notFound()

    def getChild(self, path: bytes, request: Request) -> Resource:
        """
        A path segment with a NUL byte names no file (the operating system
        refuses it): 404, where L{File} would raise.  Called in the I/O thread.
        """
        if b"\x00" in path:
            return self.childNotFound
        return File.getChild(self, path, request)

    def render_GET(self, request: Request) -> object:
        self.restat(False)
        if self.exists() and not self.isdir():
            etag = b'"%x-%x"' % (int(self.getModificationTime()), self.getsize())
            if request.setETag(etag) is http.CACHED:
                return b""
            ranges = request.getHeader(b"range")
            if ranges is not None and b"," in ranges:
                request.requestHeaders.removeHeader(b"range")
        try:
            return File.render_GET(self, request)
        except OSError as error:
            if request.startedWriting:
                raise
            return self._notOpened(request, error)

    def _notOpened(self, request: Any, error: OSError) -> object:
        """
        The file could not be opened for another reason than its
        permissions (L{File} answers those 403): no file descriptor is left,
        an I/O error.  Answer by L{statusForOSError} (503 with
        C{Retry-After} while descriptors or memory are short, where nginx
        answers 500; 500 for an I/O error), and say why in one error line of
        the server log (L{File} raised: a traceback for each such request).

        (C{request} is typed C{Any}: the error page renders an C{IRequest},
        a zope interface that mypy does not match a L{Request} against.)
        """
        _log.error(
            "twsgi: {method} {target}: static file {path} could not be opened: {error}",
            method=escapeBytes(request.method),
            target=escapeBytes(request.uri),
            path=self.path,
            error=error.strerror or error,
        )
        request.etag = None
        request.responseHeaders.removeHeader(b"accept-ranges")
        status = statusForOSError(error)
        for name, value in retryAfterFields(status):
            request.setHeader(name, value)
        return errorPage(
            status,
            http.RESPONSES[status].decode("ascii"),
            "The file could not be read.",
        ).render(request)

    render_HEAD = render_GET


def parseStatic(value: str) -> tuple[str, str]:
    """
    Parse C{--static /url=dir}: a URL prefix and a directory.

    @raise ValueError: if the text is not of that form.
    """
    prefix, sep, directory = value.partition("=")
    prefix = prefix.strip()
    if not sep or not directory or not isPathPrefix(prefix):
        raise ValueError(
            f"{value!r} is not /url=directory (for example /static=./static)"
        )
    prefix = prefix.rstrip("/")
    if not prefix:
        raise ValueError(f"{value!r}: mount static files below /, not at /")
    return (prefix, directory)


def checkStaticDirectory(directory: str) -> str:
    """
    The absolute path of a static directory.

    @raise ValueError: if it is not a directory.
    """
    path = os.path.abspath(directory)
    if not os.path.isdir(path):
        raise ValueError(f"{directory!r} is not a directory")
    return path


ExchangeTarget = Callable[[HotExchange], None]
"""
What serves a request on twsgi's own HTTP/1.1 hot path: a callable that takes
an L{Exchange<twsgi.wsgi.exchange.Exchange>}, such as
L{WSGIResource.dispatch<twsgi.wsgi.bridge.WSGIResource.dispatch>}.
"""


def exchangeTarget(resource: Resource, path: bytes) -> ExchangeTarget | None:
    """
    What serves a request for C{path} (without its query) on the hot path,
    if C{resource} (the root of a listener) sends it to a WSGI application;
    C{None} if it goes through C{twisted.web} (health, metrics, static
    files, any other resource).  A resource on the hot path says so with an
    C{exchangeTarget(path)} method of its own.  Called in the I/O thread.
    """
    target = getattr(resource, "exchangeTarget", None)
    if target is None:
        return None
    found: ExchangeTarget | None = target(path)
    return found


class Dispatcher(Resource):
    """
    Route a request to a resource answered on the I/O thread, or to the
    fallback (the WSGI resource, or a 404).

    @ivar routes: exact paths (without the query) to leaf resources.
    @ivar mounts: C{(prefix, resource)} pairs; a path equal to or below the
        prefix goes to the resource, with the prefix's segments in
        C{prepath}.
    @ivar fallback: the resource for everything else.
    """

    isLeaf = True

    def __init__(
        self,
        fallback: Resource,
        routes: Mapping[bytes, Resource] | None = None,
        mounts: Sequence[tuple[bytes, Resource]] = (),
    ) -> None:
        Resource.__init__(self)
        self.fallback = fallback
        self.routes = dict(routes or {})
        self.mounts = sorted(mounts, key=lambda m: len(m[0]), reverse=True)

    def render(self, request: Request) -> bytes | int:
        """
        Called in the I/O thread.
        """
        path = request.path
        route = self.routes.get(path)
        if route is not None:
            return route.render(request)
        for prefix, resource in self.mounts:
            if path == prefix or path.startswith(prefix + b"/"):
                return self._renderMount(request, prefix, resource)
        return self.fallback.render(request)

    def exchangeTarget(self, path: bytes) -> ExchangeTarget | None:
        """
        The fallback's hot path, for a path that no route or mount takes (see
        L{twsgi.server.routes.exchangeTarget}).  Called in the I/O thread.
        """
        if path in self.routes:
            return None
        for prefix, _ in self.mounts:
            if path == prefix or path.startswith(prefix + b"/"):
                return None
        return exchangeTarget(self.fallback, path)

    def _renderMount(
        self, request: Request, prefix: bytes, resource: Resource
    ) -> bytes | int:
        segments = prefix[1:].split(b"/")
        postpath = request.postpath
        # Set by the traversal that rendered this resource.
        assert postpath is not None
        request.prepath = list(segments)
        request.postpath = postpath[len(segments) :]
        return getChildForRequest(resource, request).render(request)


class Counts(Protocol):
    """
    What the service counts in its metrics (a
    L{twsgi.metrics.prometheus.Metrics}, a layer beside this one).
    """

    def streamReset(self, byClient: bool, code: int) -> None: ...

    def requestStuck(self) -> None: ...

    def acceptBackedOff(self) -> None: ...

    def acceptPaused(self) -> None: ...

    def requestRefused(self) -> None: ...


@attrs.frozen
class Routes:
    """
    What a service's listeners answer on the I/O thread.

    @ivar app: paths answered on application listeners before the
        application (health, when asked for there).
    @ivar admin: paths answered on every admin listener (health).
    @ivar metricsAdmin: paths answered on metrics listeners only
        (C{--metrics-endpoint}: C{/metrics}), beside L{admin}.
    @ivar mounts: static mounts on application listeners.
    @ivar wrapApp: wraps the root of application listeners (the metrics
        count requests in flight there), or C{None}.
    @ivar metrics: the service's L{twsgi.metrics.prometheus.Metrics}, or C{None}.
    """

    app: Mapping[bytes, Resource] = attrs.field(factory=dict)
    admin: Mapping[bytes, Resource] = attrs.field(factory=dict)
    metricsAdmin: Mapping[bytes, Resource] = attrs.field(factory=dict)
    mounts: Sequence[tuple[bytes, Resource]] = ()
    wrapApp: Callable[[Resource], Resource] | None = None
    metrics: Counts | None = None

    def appRoot(self, application: Resource) -> Resource:
        """
        The root resource of an application listener.
        """
        root = application
        if self.app or self.mounts:
            root = Dispatcher(application, self.app, self.mounts)
        return self.wrapApp(root) if self.wrapApp is not None else root

    def adminRoot(self, metrics: bool = False) -> Resource:
        """
        The root resource of an admin listener: a health listener
        (C{--health-endpoint}) answers L{admin} only, a metrics listener
        (C{metrics}) L{metricsAdmin} too.
        """
        return Dispatcher(
            notFound(), {**self.admin, **self.metricsAdmin} if metrics else self.admin
        )


def staticMounts(specs: Sequence[tuple[str, str]]) -> list[tuple[bytes, Resource]]:
    """
    The mounts for C{--static} settings.

    @raise ValueError: if a directory does not exist.
    """
    return [
        (prefix.encode("ascii"), StaticFile(checkStaticDirectory(directory)))
        for prefix, directory in specs
    ]


__all__ = [
    "Dispatcher",
    "ExchangeTarget",
    "Routes",
    "StaticFile",
    "checkStaticDirectory",
    "exchangeTarget",
    "parseStatic",
    "staticMounts",
]
