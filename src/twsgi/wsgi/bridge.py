# -*- test-case-name: tests.wsgi.test_bridge -*-
"""
The bridge between C{twisted.web} (the I/O thread) and WSGI (a thread pool).

This is the only module that touches both a C{twisted.web} request and
threads.  The decisions are made by pure code: L{twsgi.wsgi.environ.buildEnviron}
builds the environ, L{twsgi.wsgi.response.ResponseState} checks what the
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
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.abstract import FileDescriptor
from twisted.internet.error import ConnectionAborted
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger, LogLevel
from twisted.protocols.basic import FileSender
from twisted.python.failure import Failure
from twisted.web.http import datetimeToString
from twisted.web.http_headers import Headers
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

from twsgi.logs.accesslog import escapeBytes
from twsgi.wsgi.environ import ClientDisconnected, RequestFacts, buildEnviron
from twsgi.wsgi.overload import backlog, refuseOverloaded
from twsgi.wsgi.pool import PoolStats
from twsgi.wsgi.response import ResponseError, ResponseHead, ResponseState

HIGH_WATER = 256 * 1024
"""
Queued body bytes above which a WSGI thread waits for the I/O thread.
"""

LOW_WATER = 64 * 1024
"""
A WSGI thread that waits goes on once no more than this many bytes are
queued.
"""

SPLIT_SIZE = 256 * 1024
"""
A whole body of at least this many bytes is written a turn of the reactor
after its head, so that the transport never copies it.
"""

BIG_SEND_LIMIT = 1024 * 1024
"""
The most bytes a socket transport sends at once on a connection that has
sent a large body.
"""

WHOLE_FILE_SIZE = 64 * 1024
"""
A C{wsgi.file_wrapper} around a regular file of at most this many bytes is
read by the WSGI thread and sent as a whole body; a larger one is streamed
by the I/O thread.
"""

FLUSH_SIZE = 64 * 1024
"""
The I/O thread writes queued body bytes to the transport in pieces of about
this size, so that a transport that pauses us stops the next piece.
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


def _isSecure(request: Any) -> bool:
    """
    L{twisted.web.http.Request.isSecure}, with the channel's answer (an
    interface adaptation, slow when the answer is no) remembered for the
    next request on the same connection, on the channel.  A trusted proxy's scheme
    (see L{twsgi.server.forwarded.applyForwarding}) wins, either way.  Called in the
    I/O thread.
    """
    forwarded = getattr(request, "forwardedScheme", None)
    if forwarded is not None:
        return bool(forwarded == "https")
    channel = getattr(request, "channel", None)
    if channel is None or getattr(request, "_forceSSL", False):
        return bool(request.isSecure())
    secure: bool | None = getattr(channel, "_twsgiSecure", None)
    if secure is None:
        secure = channel._twsgiSecure = bool(request.isSecure())
    return secure


def _abortConnection(request: Any) -> None:
    """
    Cut a response off because the application failed: abort the
    connection of an HTTP/1.1 request, or reset the stream of an HTTP/2 one
    (whose channel has no transport of its own).  Either way the request
    hears C{connectionLost}, which makes its access record (with
    C{cutOff="error"}).  Called in the I/O thread.
    """
    request.cutOff = "error"
    channel = request.channel
    transport = getattr(channel, "transport", None)
    if transport is not None:
        transport.abortConnection()
    elif channel is not None:
        channel.abortConnection()
        if not request._disconnected:
            # The stream is forgotten by its connection, which will not
            # tell the request.
            request.connectionLost(Failure(ConnectionAborted("stream reset")))


def requestFacts(request: Any, scheme: str | None = None) -> RequestFacts:
    """
    Take the facts of a C{twisted.web} request.  Called in the I/O thread.
    """
    content = request.content
    length = content.seek(0, 2)
    content.seek(0)
    client = request.getClientAddress()
    host = request.getHost()
    headers = tuple(
        [
            (name, value)
            for name, values in request.requestHeaders.getAllRawHeaders()
            for value in values
        ]
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
        scheme=scheme or ("https" if _isSecure(request) else "http"),
        scriptName=(b"/" + b"/".join(prepath)).decode("latin-1") if prepath else "",
        contentLength=length,
        extra=dict(getattr(request, "environExtra", None) or {}),
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
        self.watchdog: Any = None
        self.calls = _ReactorCalls(reactor)

    def poolStats(self) -> PoolStats | None:
        """
        A L{PoolStats} snapshot of the thread pool (busy and
        idle threads, queued requests), or C{None} if the pool cannot tell.
        Called in any thread.
        """
        stats = getattr(self.threadpool, "stats", None)
        return stats() if stats is not None else None  # type: ignore[no-any-return]

    def render(self, request: Any) -> Any:
        """
        Start the application for C{request}, or answer 503 when more than
        L{maxPending} requests already wait for a thread.  Called in the I/O
        thread.
        """
        if self.maxPending and backlog(self.threadpool) >= self.maxPending:
            return refuseOverloaded(request)
        # No notifyFinish(): a lost client is noticed by the I/O thread when
        # it next writes (see _Run._lost), and by stopProducing() once the
        # run is the request's producer, which it is whenever the WSGI thread
        # may wait.
        run = _Run(self, request, requestFacts(request))
        if getattr(self.threadpool, "setAside", None) is not None:
            request.queuedRun = run
        if self.watchdog is None:
            self.threadpool.callInThread(run.work)
        else:
            self.threadpool.callInThread(self.watchdog.track, run.work, run.facts)
        return NOT_DONE_YET

    def getChildWithDefault(self, name: bytes, request: Any) -> Resource:
        return self


class _ReactorCalls:
    """
    Calls handed from WSGI threads to the I/O thread, in batches: the first
    call queued wakes the reactor (one C{callFromThread}), and every call
    queued until the reactor gets to them runs in that same wakeup.  Under
    load this is one reactor wakeup for many responses.
    """

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor
        self._lock = threading.Lock()
        self._calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    def call(self, f: Callable[..., Any], *args: Any) -> None:
        """
        Run C{f(*args)} in the I/O thread soon.  Called in any thread.
        """
        with self._lock:
            calls = self._calls
            calls.append((f, args))
            if len(calls) > 1:
                return
        self._reactor.callFromThread(self._run)

    def _run(self) -> None:
        """
        Run every queued call.  Called in the I/O thread.
        """
        with self._lock:
            calls, self._calls = self._calls, []
        for f, args in calls:
            try:
                f(*args)
            except BaseException:
                _log.failure("twsgi: a call in the I/O thread raised")


@implementer(IPushProducer)
class _Run:
    """
    One request's run of the application.

    The WSGI thread and the I/O thread share only the queue and the flags
    below, under C{_lock}.  C{_wake}, a condition on that lock, is made the
    first time the WSGI thread has to wait, which most responses never do.
    """

    _wake: threading.Condition | None = None
    _head: ResponseHead | None = None
    _queued = 0
    _scheduled = False
    _ended = False
    _abort = False
    _paused = False
    _gone = False
    _done = False
    _producing = False
    _closeHandedOff = False
    _taken = False
    _aside = False

    def __init__(
        self, resource: WSGIResource, request: Any, facts: RequestFacts
    ) -> None:
        self.resource = resource
        self.request = request
        self.facts = facts
        self.state = ResponseState(facts.method)
        self._lock = threading.Lock()
        self._queue: deque[bytes] = deque()
        # The run owns the request body from now on: C{twisted.web} closes
        # a request's body when its connection is lost (or its response
        # finishes), under a WSGI thread that may still be reading it.  The
        # body arrived whole before the request was handed on, so it stays
        # readable after the client left; work() closes it once the
        # application is done.
        self.body = request.content
        request.content = None

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
        Run the application and hand its response to the I/O thread, unless
        the client went away while the request waited for this thread; then
        close the request body.  Called in a WSGI thread.
        """
        try:
            self._work()
        finally:
            self.body.close()

    def _work(self) -> None:
        resource = self.resource
        with self._lock:
            self._taken = True
            aside = self._aside
        if aside:
            resource.threadpool.takenAside()
        # No reference cycle left behind (an atomic dict operation).
        self.request.__dict__.pop("queuedRun", None)
        # Set by the I/O thread when the connection is lost (the client went
        # away, or the drain deadline aborted it) while the request waited
        # for a thread.  Only ever set then: a stale False runs the request
        # as before, and a client still there is never skipped.
        if self.request._disconnected:
            self._sayGone(
                "client disconnected before a WSGI thread took its request: "
                "{method} {target}; the application is not called"
            )
            return
        environ = buildEnviron(self.facts, self.body, _errors, FileWrapper)
        # For the access log's {variable}e atoms, read in the I/O thread
        # once the response is done (see twsgi.server.site.accessRecord).
        self.request.wsgiEnviron = environ
        try:
            result = resource.application(environ, self.startResponse)
        except _ClientGone:
            # write() found the client gone: not the application's error.
            return
        except BaseException as error:
            if not self._readAfterGone(error):
                self._failed("calling the application")
            return
        try:
            self._send(result)
        except _ClientGone:
            pass
        except BaseException as error:
            if not self._readAfterGone(error):
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
                        level=LogLevel.error,
                        app=resource.appName,
                        method=escapeBytes(self.facts.method),
                        target=escapeBytes(self.facts.target),
                    )

    def _send(self, result: Any) -> None:
        state = self.state
        if not state.committed:
            if type(result) is list or type(result) is tuple:
                self._sendList(result)
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
                    if size <= WHOLE_FILE_SIZE:
                        # Read at once (from the page cache, as a rule) and
                        # sent as a whole body: far cheaper than streaming
                        # it from the I/O thread.
                        self._sendList([result.filelike.read(size)])
                        return
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

    def _sendList(self, result: list[bytes] | tuple[bytes, ...]) -> None:
        """
        Hand a whole body, with its head and its end, to the I/O thread in
        one hop.
        """
        state = self.state
        chunks = [state.accept(chunk) for chunk in result]
        if state.shortfall():
            # Nothing is sent yet: a 500 beats a response the client would
            # wait on forever.
            raise ResponseError(
                f"the body is {state.shortfall()} bytes shorter than its Content-Length"
            )
        # HEAD gets the length a GET would have (RFC 9110 9.3.2).
        head = state.commit(sum(map(len, result)))
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.resource.calls.call(self._sendWhole, head, body)

    def _push(self, data: bytes) -> None:
        """
        Queue body bytes for the I/O thread, committing the head with the
        first of them.  Wait only once more than L{HIGH_WATER} bytes are
        queued (which happens when the transport paused us, since the I/O
        thread then stops taking from the queue, or when the I/O thread is
        slower than the application), until no more than L{LOW_WATER} are.

        @raise _ClientGone: if the client went away.
        """
        lock = self._lock
        with lock:
            # _disconnected is set by the I/O thread when the connection is
            # lost; reading a stale False only delays noticing by a chunk.
            if self._gone or self.request._disconnected:
                self._gone = True
                raise _ClientGone()
            if not self.state.committed:
                self._head = self.state.commit()
            self._queue.append(data)
            self._queued += len(data)
            schedule = not self._scheduled and not self._paused
            if schedule:
                self._scheduled = True
        if schedule:
            self._callFromThread(self._flush)
            if self._gone:
                # The I/O thread ran the flush at once and found the client
                # gone.
                raise _ClientGone()
        if self._queued > HIGH_WATER:
            with lock:
                if self._queued > HIGH_WATER:
                    wake = self._wake
                    if wake is None:
                        wake = self._wake = threading.Condition(lock)
                    while self._queued > LOW_WATER and not self._gone:
                        wake.wait()
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
            schedule = not self._scheduled and not self._paused
            if schedule:
                self._scheduled = True
        if schedule:
            self._callFromThread(self._flush)

    def lostWhileQueued(self) -> None:
        """
        The request's client went away: if no thread took the request yet,
        the thread pool stops counting it in its backlog (for
        C{--max-pending} and readiness), since it will do nothing.  Called
        in the I/O thread.
        """
        with self._lock:
            if self._taken or self._aside:
                return
            self._aside = True
        self.resource.threadpool.setAside()

    def _sayGone(self, text: str) -> None:
        """
        Log that the client went away, for HTTP/1.1 only: resetting an
        HTTP/2 stream costs a client one frame, and would buy it a server
        log line each time.  Either way the request's access record (a 499)
        says it.  Called in a WSGI thread.
        """
        if self.facts.version != b"HTTP/2":
            _log.info(
                text,
                method=escapeBytes(self.facts.method),
                target=escapeBytes(self.facts.target),
            )

    def _readAfterGone(self, error: BaseException) -> bool:
        """
        Whether C{error} is (or was caused by) a read of C{wsgi.input} after
        the client went away; if so, log one line.  Nothing is sent: nobody
        is there (the request's access record, a 499, was made when its
        connection ended).  Called in a WSGI thread.
        """
        if not getattr(self.request, "_disconnected", False):
            # wsgi.input closed by the application itself: its own error.
            return False
        seen = 0
        cause: BaseException | None = error
        while cause is not None and seen < 16:
            if isinstance(cause, ClientDisconnected):
                with self._lock:
                    self._gone = True
                self._sayGone(
                    "client disconnected while the app read the body: {method} {target}"
                )
                return True
            cause = cause.__cause__ or cause.__context__
            seen += 1
        return False

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
                method=escapeBytes(self.facts.method),
                target=escapeBytes(self.facts.target),
                error=str(excValue),
            )
        else:
            _log.failure(
                "WSGI application {app} raised while {doing} for {method} {target}",
                Failure(excValue, excType, tb),
                LogLevel.error,
                app=appName,
                doing=doing,
                method=escapeBytes(self.facts.method),
                target=escapeBytes(self.facts.target),
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
        self.resource.calls.call(f, *args)

    # -- the I/O thread ----------------------------------------------------

    def connectionLost(self, reason: Failure) -> None:
        """
        The client went away before the response was finished.  Called in
        the I/O thread.
        """
        with self._lock:
            self._gone = True
            self._queue.clear()
            self._queued = 0
            if self._wake is not None:
                self._wake.notify_all()

    def pauseProducing(self) -> None:
        """
        The transport's buffer is full: stop taking from the queue.  Called
        in the I/O thread.
        """
        with self._lock:
            self._paused = True

    def resumeProducing(self) -> None:
        """
        The transport's buffer drained: write what is queued.  Called in the
        I/O thread.
        """
        with self._lock:
            self._paused = False
        self._flush()

    def stopProducing(self) -> None:
        """
        The connection is gone.  Called in the I/O thread.
        """
        self.connectionLost(Failure(_ClientGone()))

    def _lost(self) -> bool:
        """
        Whether the client went away (and if so, tell the WSGI thread).
        Called in the I/O thread.
        """
        if not self._gone and getattr(self.request, "_disconnected", False):
            self.connectionLost(Failure(_ClientGone()))
        return self._gone

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

        A large body waits for the next turn of the reactor, once the
        transport has sent the head: the transport joins everything written
        in one turn into one buffer, which would copy the body.
        """
        if self._lost():
            return
        self._writeHead(head)
        request = self.request
        if len(body) >= SPLIT_SIZE:
            request.write(b"")
            self._callFromThread(self._sendBody, body)
            return
        if body:
            request.write(body)
        request.finish()

    def _sendBody(self, body: bytes) -> None:
        """
        Send the body of a whole response whose head was sent.  Called in
        the I/O thread.
        """
        if self._lost():
            return
        transport = self.request.channel.transport
        if isinstance(transport, FileDescriptor):
            # A socket transport sends at most SEND_LIMIT (128 KiB) bytes a
            # turn of the reactor; large bodies go out in fewer turns.
            transport.SEND_LIMIT = max(transport.SEND_LIMIT, BIG_SEND_LIMIT)
        self.request.write(body)
        self.request.finish()

    def _sendFile(self, head: ResponseHead, wrapper: FileWrapper) -> None:
        """
        Stream a real file from the I/O thread.  Called in the I/O thread.
        """
        if self._lost():
            self._closeFile(wrapper)
            return
        self._writeHead(head)
        d = _FileSender().beginFileTransfer(wrapper.filelike, self.request)

        def done(result: Any) -> None:
            self._closeFile(wrapper)
            if not self._lost():
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
                _log.failure(
                    "close() of a wsgi.file_wrapper raised", level=LogLevel.error
                )

    def _flush(self) -> None:
        """
        Write what the WSGI thread queued, in writes of up to L{FLUSH_SIZE}
        bytes, until the queue is empty or the transport pauses us; then
        wake the WSGI thread if it waits and the queue is below
        L{LOW_WATER}; then finish or abort the response if the WSGI thread
        asked to.  Called in the I/O thread.
        """
        lock = self._lock
        queue = self._queue
        request = self.request
        with lock:
            self._scheduled = False
            head, self._head = self._head, None
            if self._done:
                return
        if self._lost():
            return
        if head is not None:
            self._writeHead(head)
            if not (self._ended and self._queued <= FLUSH_SIZE):
                # More is to come: let the transport pause us.
                request.registerProducer(self, True)
                self._producing = True
                if getattr(request.channel, "_waitingForTransport", False):
                    # Already full: the transport will not tell us again.
                    self.pauseProducing()
        while True:
            with lock:
                if self._paused or not queue or self._abort:
                    ended = self._ended and not queue
                    abort = self._abort
                    if self._wake is not None and self._queued <= LOW_WATER:
                        self._wake.notify_all()
                    break
                if self._queued <= FLUSH_SIZE:
                    batch = list(queue)
                    queue.clear()
                    self._queued = 0
                else:
                    batch = []
                    size = 0
                    while queue and size < FLUSH_SIZE:
                        chunk = queue.popleft()
                        batch.append(chunk)
                        size += len(chunk)
                    self._queued -= size
            request.write(batch[0] if len(batch) == 1 else b"".join(batch))
            if self._gone:
                return
        if abort:
            self._gone = True
            if self._producing:
                request.unregisterProducer()
            _abortConnection(request)
            return
        if ended:
            if self._producing:
                self._producing = False
                request.unregisterProducer()
            if self.state.shortfall():
                _log.error(
                    "WSGI application {app} sent {short} bytes fewer than its "
                    "Content-Length for {target}; closing the connection",
                    app=self.resource.appName,
                    short=self.state.shortfall(),
                    target=escapeBytes(self.facts.target),
                )
                _abortConnection(request)
                return
            self._done = True
            request.finish()


class _FileSender(FileSender):
    """
    L{FileSender} with larger reads: each read is one turn of the reactor.
    """

    CHUNK_SIZE = 2**16


__all__ = ["FileWrapper", "WSGIResource", "requestFacts"]
