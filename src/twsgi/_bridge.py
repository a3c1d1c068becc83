# -*- test-case-name: tests.test_bridge -*-
"""
The bridge between C{twisted.web} (the I/O thread) and WSGI (a thread pool).

This is the only module that touches both a C{twisted.web} request and
threads.  The decisions are made by pure code: L{twsgi._environ.buildEnviron}
builds the environ, L{twsgi._response.ResponseState} checks what the
application does.  Here they are carried out.

How the body travels (no blocking round trip per chunk):

  - a list or tuple body goes to the I/O thread with the head and the finish
    in one hop, and the WSGI thread is free at once;
  - a streamed body is queued; the I/O thread is woken once per batch and
    writes the batch in one call.  The WSGI thread waits only while more than
    L{HIGH_WATER} bytes are queued, or while the transport has paused us
    (we are its L{IPushProducer}): memory per client stays bounded;
  - a L{FileWrapper} around a real file is handed to the I/O thread, which
    streams it with L{FileSender} while the WSGI thread goes back to the pool.
"""

from __future__ import annotations

import io
import os
import stat
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.protocols.basic import FileSender
from twisted.python.failure import Failure
from twisted.web.http import datetimeToString
from twisted.web.http_headers import Headers
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

from ._environ import RequestFacts, buildEnviron
from ._overload import backlog, refuseOverloaded
from ._response import ResponseError, ResponseHead, ResponseState

HIGH_WATER = 256 * 1024
"""
Queued body bytes above which a WSGI thread waits for the I/O thread.
"""

SERVER_HEADER = b"twsgi"

_log = Logger(namespace="twsgi")


class FileWrapper:
    """
    C{wsgi.file_wrapper}: an iterable over a file-like object, in blocks.

    When the application returns one of these around a real file, the bridge
    sends the file from the I/O thread instead of iterating it in the WSGI
    thread (PEP 3333, "Optional Platform-Specific File Handling").
    """

    def __init__(self, filelike: Any, blksize: int = 64 * 1024) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> FileWrapper:
        return self

    def __next__(self) -> bytes:
        data = self.filelike.read(self.blksize)
        if data:
            return data  # type: ignore[no-any-return]
        raise StopIteration

    def regularFileSize(self) -> int | None:
        """
        The bytes left to send if the wrapped object is a regular file, else
        C{None} (then it is iterated like any other body).
        """
        try:
            info = os.fstat(self.filelike.fileno())
            if not stat.S_ISREG(info.st_mode):
                return None
            return max(0, info.st_size - self.filelike.tell())
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return None


class _ClientGone(Exception):
    """
    The client went away or the server aborted the response: stop
    iterating the application's body.
    """


class _ErrorsStream:
    """
    C{wsgi.errors}: text written here goes to the server's log.
    """

    def write(self, text: str) -> None:
        text = text.rstrip("\n")
        if text:
            _log.error("{text}", text=text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass


_errors = _ErrorsStream()


class _DateCache:
    """
    The C{Date} header value, formatted at most once a second.  Called in the
    I/O thread.
    """

    def __init__(self, clock: Any) -> None:
        self._clock = clock
        self._second = -1
        self._value = b""

    def now(self) -> bytes:
        second = int(self._clock.seconds())
        if second != self._second:
            self._second = second
            self._value = datetimeToString(second)
        return self._value


def requestFacts(request: Any, scheme: str | None = None) -> RequestFacts:
    """
    Take the facts of a C{twisted.web} request.  Called in the I/O thread.
    """
    content = request.content
    content.seek(0, 2)
    length = content.tell()
    content.seek(0)
    client = request.getClientAddress()
    host = request.getHost()
    headers = tuple(
        (name, value)
        for name, values in request.requestHeaders.getAllRawHeaders()
        for value in values
    )
    prepath = request.prepath
    return RequestFacts(
        method=request.method,
        target=request.uri,
        version=request.clientproto,
        headers=headers,
        remoteAddr=str(getattr(client, "host", "") or ""),
        remotePort=getattr(client, "port", None),
        serverName=str(getattr(host, "host", "") or "localhost"),
        serverPort=getattr(host, "port", None),
        scheme=scheme or ("https" if request.isSecure() else "http"),
        scriptName=(b"/" + b"/".join(prepath)).decode("latin-1") if prepath else "",
        contentLength=length,
    )


class WSGIResource(Resource):
    """
    A C{twisted.web} resource that runs a WSGI application in a thread pool.

    It can be the root of a L{twisted.web.server.Site} or a child of any
    resource; below a path prefix, that prefix is C{SCRIPT_NAME}.
    """

    isLeaf = True

    def __init__(
        self,
        application: Callable[..., Any],
        threadpool: Any,
        reactor: Any,
        exposeTracebacks: bool = False,
        appName: str | None = None,
    ) -> None:
        """
        @param application: the WSGI application.
        @param threadpool: runs the application; anything with
            C{callInThread}.
        @param reactor: the reactor, for C{callFromThread} and the clock.
        @param exposeTracebacks: put tracebacks of application errors in the
            500 response (for development).
        @param appName: how the application is named in the log.
        """
        Resource.__init__(self)
        self.application = application
        self.threadpool = threadpool
        self.reactor = reactor
        self.exposeTracebacks = exposeTracebacks
        self.appName = appName or repr(application)
        self.dates = _DateCache(reactor)
        self.maxPending = 0

    def render(self, request: Any) -> Any:
        """
        Start the application for C{request}, or answer 503 when more than
        L{maxPending} requests already wait for a thread.  Called in the I/O
        thread.
        """
        if self.maxPending and backlog(self.threadpool) >= self.maxPending:
            return refuseOverloaded(request)
        run = _Run(self, request, requestFacts(request))
        request.notifyFinish().addErrback(run.connectionLost)
        self.threadpool.callInThread(run.work)
        return NOT_DONE_YET

    def getChildWithDefault(self, name: bytes, request: Any) -> Resource:
        return self


@implementer(IPushProducer)
class _Run:
    """
    One request's run of the application.

    The WSGI thread and the I/O thread share only the queue and the flags
    below, under C{_lock}.
    """

    def __init__(
        self, resource: WSGIResource, request: Any, facts: RequestFacts
    ) -> None:
        self.resource = resource
        self.request = request
        self.facts = facts
        self.state = ResponseState(facts.method)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: list[bytes] = []
        self._queued = 0
        self._head: ResponseHead | None = None
        self._scheduled = False
        self._ended = False
        self._abort = False
        self._paused = False
        self._gone = False
        self._producing = False
        self._closeHandedOff = False

    # -- the WSGI thread ---------------------------------------------------

    def startResponse(
        self, status: Any, headers: Any, exc_info: Any = None
    ) -> Callable[[bytes], None]:
        """
        PEP 3333's C{start_response}.  Called in a WSGI thread.
        """
        self.state.startResponse(status, headers, exc_info)
        return self.write

    def write(self, data: bytes) -> None:
        """
        PEP 3333's C{write()} callable.  Called in a WSGI thread; returns once
        the data is queued, and waits only for backpressure.
        """
        data = self.state.accept(data)
        if data:
            self._push(data)

    def work(self) -> None:
        """
        Run the application and hand its response to the I/O thread.  Called
        in a WSGI thread.
        """
        resource = self.resource
        environ = buildEnviron(self.facts, self.request.content, _errors, FileWrapper)
        try:
            result = resource.application(environ, self.startResponse)
        except BaseException:
            self._failed("calling the application")
            return
        try:
            self._send(result)
        except _ClientGone:
            pass
        except BaseException:
            self._failed("iterating the response")
        finally:
            close = getattr(result, "close", None)
            if close is not None and not self._closeHandedOff:
                try:
                    close()
                except BaseException:
                    # The response is settled by now (sent, answered with a
                    # 500, or its client gone): only log.
                    _log.failure(
                        "WSGI application {app} raised in close() of its "
                        "response for {method} {target}",
                        app=resource.appName,
                        method=self.facts.method.decode("latin-1"),
                        target=self.facts.target.decode("latin-1"),
                    )

    def _send(self, result: Any) -> None:
        state = self.state
        if not state.committed:
            if type(result) is list or type(result) is tuple:
                chunks = [state.accept(chunk) for chunk in result]
                if state.shortfall():
                    # Nothing is sent yet: a 500 beats a response the
                    # client would wait on forever.
                    raise ResponseError(
                        f"the body is {state.shortfall()} bytes shorter "
                        "than its Content-Length"
                    )
                # HEAD gets the length a GET would have (RFC 9110 9.3.2).
                head = state.commit(sum(len(chunk) for chunk in result))
                body = b"".join(chunks)
                self._callFromThread(self._sendWhole, head, body)
                return
            if state.head is not None and not state.bodyAllowed:
                # HEAD, 204, 304: the body would be dropped; do not compute it.
                self._end()
                return
            if type(result) is FileWrapper and state.head is not None:
                size = result.regularFileSize()
                declared = state.head.contentLength
                # A file of another length than the application declared is
                # iterated instead, where that length is enforced: the I/O
                # thread sends the whole file.
                if size is not None and declared in (None, size):
                    self._closeHandedOff = True
                    self._callFromThread(self._sendFile, state.commit(size), result)
                    return
        for chunk in result:
            data = state.accept(chunk)
            if data:
                self._push(data)
            elif self._gone:
                raise _ClientGone()
        self._end()

    def _push(self, data: bytes) -> None:
        """
        Queue body bytes for the I/O thread, committing the head with the
        first of them; wait while too much is queued or the transport has
        paused us.
        """
        with self._lock:
            if self._gone:
                raise _ClientGone()
            if not self.state.committed:
                self._head = self.state.commit()
            self._queue.append(data)
            self._queued += len(data)
            schedule = not self._scheduled
            self._scheduled = True
        if schedule:
            self._callFromThread(self._flush)
        if self._queued > HIGH_WATER or self._paused:
            with self._lock:
                while (self._queued > HIGH_WATER or self._paused) and not self._gone:
                    self._wake.wait()
                if self._gone:
                    raise _ClientGone()

    def _end(self) -> None:
        """
        The body is complete: ask the I/O thread to finish the response.
        """
        with self._lock:
            if self._gone:
                return
            if not self.state.committed:
                self._head = self.state.commit()
            self._ended = True
            schedule = not self._scheduled
            self._scheduled = True
        if schedule:
            self._callFromThread(self._flush)

    def _failed(self, doing: str) -> None:
        """
        The application raised, or broke a rule of PEP 3333.  Log it and
        answer 500, or abort the connection if the head is gone already.
        Called in a WSGI thread, within an C{except} block.
        """
        excType, excValue, tb = sys.exc_info()
        appName = self.resource.appName
        if isinstance(excValue, ResponseError):
            _log.error(
                "WSGI application {app} broke PEP 3333 while {doing} for "
                "{method} {target}: {error}",
                app=appName,
                doing=doing,
                method=self.facts.method.decode("latin-1"),
                target=self.facts.target.decode("latin-1"),
                error=str(excValue),
            )
        else:
            _log.failure(
                "WSGI application {app} raised while {doing} for {method} {target}",
                Failure(excValue, excType, tb),
                app=appName,
                doing=doing,
                method=self.facts.method.decode("latin-1"),
                target=self.facts.target.decode("latin-1"),
            )
        if self.state.committed:
            with self._lock:
                if self._gone:
                    return
                self._abort = True
                schedule = not self._scheduled
                self._scheduled = True
            if schedule:
                self._callFromThread(self._flush)
            return
        if self.resource.exposeTracebacks:
            body = "".join(traceback.format_exception(excType, excValue, tb)).encode(
                "utf-8", "replace"
            )
        else:
            body = b"Internal Server Error\n"
        head = ResponseHead(
            500,
            b"Internal Server Error",
            (
                (b"Content-Type", b"text/plain; charset=utf-8"),
                (b"Content-Length", b"%d" % len(body)),
            ),
            len(body),
            close=True,
        )
        self.state.committed = True
        self._callFromThread(self._sendWhole, head, body)

    def _callFromThread(self, f: Callable[..., Any], *args: Any) -> None:
        self.resource.reactor.callFromThread(f, *args)

    # -- the I/O thread ----------------------------------------------------

    def connectionLost(self, reason: Failure) -> None:
        """
        The client went away before the response was finished.  Called in
        the I/O thread.
        """
        with self._lock:
            self._gone = True
            self._wake.notify_all()

    def pauseProducing(self) -> None:
        with self._lock:
            self._paused = True

    def resumeProducing(self) -> None:
        with self._lock:
            self._paused = False
            self._wake.notify_all()

    def stopProducing(self) -> None:
        self.connectionLost(Failure(_ClientGone()))

    def _writeHead(self, head: ResponseHead) -> None:
        request = self.request
        request.setResponseCode(head.code, head.reason)
        headers = Headers()
        seen = set()
        for name, value in head.headers:
            headers.addRawHeader(name, value)
            seen.add(name.lower())
        if b"date" not in seen:
            headers.setRawHeaders(b"Date", [self.resource.dates.now()])
        if b"server" not in seen:
            headers.setRawHeaders(b"Server", [SERVER_HEADER])
        if head.close:
            headers.setRawHeaders(b"Connection", [b"close"])
            if request.channel is not None:
                request.channel.persistent = False
        request.responseHeaders = headers

    def _sendWhole(self, head: ResponseHead, body: bytes) -> None:
        """
        Send a whole response in one go.  Called in the I/O thread.
        """
        if self._gone:
            return
        self._writeHead(head)
        request = self.request
        if body:
            request.write(body)
        request.finish()

    def _sendFile(self, head: ResponseHead, wrapper: FileWrapper) -> None:
        """
        Stream a real file from the I/O thread.  Called in the I/O thread.
        """
        if self._gone:
            self._closeFile(wrapper)
            return
        self._writeHead(head)
        d = FileSender().beginFileTransfer(wrapper.filelike, self.request)

        def done(result: Any) -> None:
            self._closeFile(wrapper)
            if not self._gone:
                self.request.finish()

        def lost(reason: Failure) -> None:
            self._closeFile(wrapper)

        d.addCallbacks(done, lost)

    def _closeFile(self, wrapper: FileWrapper) -> None:
        close = getattr(wrapper, "close", None)
        if close is not None:
            try:
                close()
            except BaseException:
                _log.failure("close() of a wsgi.file_wrapper raised")

    def _flush(self) -> None:
        """
        Write what the WSGI thread queued.  Called in the I/O thread.
        """
        with self._lock:
            self._scheduled = False
            chunks = self._queue
            self._queue = []
            self._queued = 0
            head, self._head = self._head, None
            ended = self._ended
            abort = self._abort
            if not self._paused:
                self._wake.notify_all()
        if self._gone:
            return
        request = self.request
        if head is not None:
            self._writeHead(head)
            request.registerProducer(self, True)
            self._producing = True
        if chunks:
            request.write(b"".join(chunks))
        if abort:
            self._gone = True
            if self._producing:
                request.unregisterProducer()
            request.channel.transport.abortConnection()
            return
        if ended:
            if self._producing:
                request.unregisterProducer()
            if self.state.shortfall():
                _log.error(
                    "WSGI application {app} sent {short} bytes fewer than its "
                    "Content-Length for {target}; closing the connection",
                    app=self.resource.appName,
                    short=self.state.shortfall(),
                    target=self.facts.target.decode("latin-1"),
                )
                request.channel.transport.abortConnection()
                return
            request.finish()


__all__ = ["FileWrapper", "WSGIResource", "requestFacts"]
