# -*- test-case-name: tests.wsgi.test_bridge -*-
"""
The bridge between a connection (the I/O thread) and WSGI (a thread pool).

A connection hands the bridge one L{Exchange} per request
(L{WSGIResource.dispatch}); the bridge runs the application in a thread pool
and carries its response out through that exchange.  The decisions are made
by pure code: L{twsgi.wsgi.environ.buildEnviron} builds the environ,
L{twsgi.wsgi.response.ResponseState} checks what the application does.  Here
they are carried out.  L{WSGIResource} is also a C{twisted.web} resource:
mounted in any L{Site<twisted.web.server.Site>}, it serves each request
through a L{twsgi.wsgi.webrequest.RequestExchange}.

How the body travels (no blocking round trip per chunk):

  - a list or tuple body goes to the I/O thread with the head and the finish
    in one hop, and the WSGI thread is free at once;
  - a streamed body is queued; the I/O thread is woken once per batch and
    writes the batch in one call.  The WSGI thread waits only while more than
    the exchange's C{highWater} (L{twsgi.wsgi.exchange.HIGH_WATER}) bytes are
    queued, or while the transport has paused us (we are its
    L{IPushProducer}): memory per client stays bounded;
  - a L{FileWrapper} around a real file is handed to the I/O thread, which
    streams it (L{_FileProducer}) while the WSGI thread goes back to the pool.
"""

from __future__ import annotations

import io
import os
import stat
import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from typing import Any, Protocol, cast

from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from twisted.web.http import datetimeToString
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

from twsgi.http.h2head import HTTP2
from twsgi.logs.accesslog import escapeBytes
from twsgi.logs.clock import Clock
from twsgi.wsgi.environ import ClientDisconnected, buildEnviron
from twsgi.wsgi.exchange import HIGH_WATER, Exchange, SendsFromThread
from twsgi.wsgi.overload import OverloadLog, backlog, refuseOverloaded
from twsgi.wsgi.pool import CallsFromThread, PoolStats, poolStats
from twsgi.wsgi.response import (
    BodyTooLong,
    ExcInfo,
    ResponseError,
    ResponseHead,
    ResponseState,
)
from twsgi.wsgi.turns import TurnProducer
from twsgi.wsgi.watchdog import RequestWatchdog
from twsgi.wsgi.webrequest import RequestExchange

LOW_WATER = 64 * 1024
"""
A WSGI thread that waits goes on once no more than this many bytes are
queued (or than its exchange's C{highWater}, if that is less).
"""

INTERNAL_ERROR = b"Internal Server Error\n"
"""
The body of a 500 that shows no traceback.
"""


SPLIT_SIZE = 256 * 1024
"""
A whole body of at least this many bytes is written a turn of the reactor
after its head, so that the transport never copies it.
"""

WHOLE_FILE_SIZE = 64 * 1024
"""
A C{wsgi.file_wrapper} around a regular file of at most this many bytes is
read by the WSGI thread and sent as a whole body; a larger one is streamed
by the I/O thread.
"""

THREAD_SEND_SIZE = 64 * 1024
"""
The largest whole body a WSGI thread sends itself, when the reactor is idle
(see L{twsgi.wsgi.exchange.SendsFromThread}); a larger one goes to the
reactor, which spreads it over its turns.
"""

FLUSH_SIZE = 64 * 1024
"""
The I/O thread writes queued body bytes to the transport in pieces of about
this size, so that a transport that pauses us stops the next piece.
"""

FILE_CHUNK_SIZE = 64 * 1024
"""
The bytes read from a streamed C{wsgi.file_wrapper} file at a time.
"""

FILE_CHUNKS_PER_TURN = 16
"""
Chunks of a streamed file written in one turn of the reactor while the
transport does not pause the file: other connections get their turn in
between.
"""

SERVER_HEADER = b"twsgi"

_log = Logger(namespace="twsgi")


class BridgeReactor(Clock, CallsFromThread, Protocol):
    """
    What the bridge needs of its reactor: the clock, C{callLater} and
    C{callFromThread}.
    """


class BridgeThreadPool(Protocol):
    """
    What the bridge needs of its thread pool.  It also uses C{backlog()},
    C{stats()}, C{setAside()} and C{takenAside()} when the pool has them
    (see L{twsgi.wsgi.pool.WorkerPool}).
    """

    def callInThread(self, f: Callable[..., object], *args: Any, **kw: Any) -> None: ...


class FileWrapper:
    """
    C{wsgi.file_wrapper}: an iterable over a file-like object, in blocks.

    When the application returns one of these around a real file, the bridge
    sends the file from the I/O thread instead of iterating it in the WSGI
    thread (PEP 3333, "Optional Platform-Specific File Handling").
    """

    left: int | None = None
    """
    How much more of the file is read, if not to its end: the rest of the
    response's C{Content-Length} (PEP 3333: a file is sent "until the end
    is reached, or until Content-Length bytes have been written").
    """

    def __init__(self, filelike: Any, blksize: int = 64 * 1024) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> FileWrapper:
        return self

    def __next__(self) -> bytes:
        left = self.left
        if left is None:
            data = self.filelike.read(self.blksize)
        else:
            data = self.filelike.read(min(self.blksize, left)) if left > 0 else b""
            self.left = left - len(data)
        if data:
            return data  # type: ignore[no-any-return]
        raise StopIteration

    def regularFileSize(self) -> int | None:
        """
        The bytes left to send if the wrapped object is a regular file, else
        C{None} (then it is iterated like any other body).  A file opened
        in text mode is no body of bytes: iterating it gets the
        application its error.
        """
        if isinstance(self.filelike, io.TextIOBase):
            return None
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


ERRORS_LINE_SIZE = 64 * 1024
"""
The most text of an unended line that C{wsgi.errors} holds back; more is
logged as it is.
"""


class _ErrorsStream:
    """
    C{wsgi.errors} of one request: text written here goes to the server's
    log, a line at a time.  A write that ends no line is held until one does
    (C{print("a", "b", file=errors)} writes four pieces, and logs one line
    C{a b}), until C{flush()}, or until the request is done.
    """

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = ""

    def write(self, text: str) -> None:
        text = self._pending + text
        complete, newline, self._pending = text.rpartition("\n")
        if newline:
            self._log(complete)
        elif len(text) > ERRORS_LINE_SIZE:
            self.flush()

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        text, self._pending = self._pending, ""
        self._log(text)

    @staticmethod
    def _log(text: str) -> None:
        text = text.rstrip("\n")
        if text:
            _log.error("{text}", text=text)


class _DateCache:
    """
    The C{Date} header value, formatted at most once a second.  Called in any
    thread.
    """

    def __init__(self, clock: BridgeReactor) -> None:
        self._clock = clock
        self._last = (-1, b"")

    def now(self) -> bytes:
        second = int(self._clock.seconds())
        last = self._last
        if second != last[0]:
            last = self._last = (second, datetimeToString(second))
        return last[1]


class WSGIResource(Resource):
    """
    A C{twisted.web} resource that runs a WSGI application in a thread pool.

    It can be the root of a L{twisted.web.server.Site} or a child of any
    resource; below a path prefix, that prefix is C{SCRIPT_NAME}.  It uses
    only the public API of C{twisted.web}'s L{Request<twisted.web.server.Request>}
    (see L{RequestExchange}).  twsgi's own connections skip C{twisted.web}
    and hand it an L{Exchange} per request (L{dispatch}).

    @ivar maxPending: answer 503 to a request that arrives while this many
        requests already wait for a thread; 0 for no bound.
    @ivar waitingElsewhere: while requests wait for a thread, how many more
        wait for one in the listen backlog (a worker's, which accepts only
        while it has a thread free: see
        L{twsgi.server.ports.ConnectionGate}); they count toward
        L{maxPending}.  C{None} outside a worker.
    @ivar overloadLog: says in the server log that requests are refused for
        L{maxPending} (a L{twsgi.wsgi.overload.OverloadLog}).
    @ivar watchdog: a L{twsgi.wsgi.watchdog.RequestWatchdog} that tracks
        each run, or C{None}.
    @ivar multiprocess: C{wsgi.multiprocess}: whether other processes run
        the same application at once (the workers of a supervisor).
    @ivar idle: C{True} while the response of the run that started last was
        sent by its WSGI thread (see L{twsgi.wsgi.exchange.SendsFromThread}):
        the reactor had nothing else to do.
    """

    isLeaf = True

    def __init__(
        self,
        reactor: BridgeReactor,
        threadpool: BridgeThreadPool,
        application: Callable[..., Any],
        exposeTracebacks: bool = False,
        appName: str | None = None,
    ) -> None:
        """
        The arguments come in the order of L{twisted.web.wsgi.WSGIResource}.

        @param reactor: the reactor, for C{callFromThread} and the clock.
        @param threadpool: runs the application; anything with
            C{callInThread}.
        @param application: the WSGI application.
        @param exposeTracebacks: put tracebacks of application errors in the
            500 response (for development).
        @param appName: how the application is named in the log.
        @raise TypeError: if C{application} is not callable, as when the
            reactor comes last (twsgi's order before 0.1).
        """
        if not callable(application):
            raise TypeError(
                f"WSGIResource(reactor, threadpool, application) takes the "
                f"application last (the order of twisted.web.wsgi.WSGIResource), "
                f"not {application!r}"
            )
        Resource.__init__(self)
        self.application = application
        self.threadpool = threadpool
        self.reactor = reactor
        self.exposeTracebacks = exposeTracebacks
        self.appName = appName or repr(application)
        self.dates = _DateCache(reactor)
        self.maxPending = 0
        self.waitingElsewhere: Callable[[], int] | None = None
        # Read at the first refusal: a reactor without a clock (a test's
        # MemoryReactor) serves as long as nothing is refused.
        self.overloadLog = OverloadLog(lambda: reactor.seconds())
        self.multiprocess = False
        self._poolWarned = False
        self.watchdog: RequestWatchdog | None = None
        self.calls = _ReactorCalls(reactor)
        # While idle, the next request gets a thread woken early
        # (exchangeTarget) and its environ built in the I/O thread
        # (dispatch) while that thread wakes.
        self.idle = False
        # WorkerPool.prewake, or None for another pool: see exchangeTarget.
        self._prewake: Callable[[], None] | None = getattr(threadpool, "prewake", None)
        # WorkerPool.othersIdle, or None for another pool: see _Run._sendList.
        self.othersIdle: Callable[[], bool] | None = getattr(
            threadpool, "othersIdle", None
        )
        # WorkerPool.answered, or None for another pool: see _Run._sendList.
        self.answered: Callable[[], None] | None = getattr(threadpool, "answered", None)

    def poolStats(self) -> PoolStats | None:
        """
        A L{PoolStats} snapshot of the thread pool (busy and
        idle threads, queued requests): twsgi's own pool, or Twisted's
        L{ThreadPool<twisted.python.threadpool.ThreadPool>} (such as
        C{reactor.getThreadPool()}, which a resource mounted in a site of
        its own is usually given); C{None} for another pool, which cannot
        tell.  Called in any thread.
        """
        if not hasattr(self.threadpool, "stats") and not hasattr(self.threadpool, "q"):
            return None
        return poolStats(self.threadpool)

    def render(self, request: Any) -> int:
        """
        Serve a C{twisted.web} request (see L{dispatch}).  Called in the I/O
        thread.  A thread pool that was never started (one of the user's
        own) holds the request until it is: that is warned of, once.
        """
        started = getattr(self.threadpool, "started", True)
        if started is False and not self._poolWarned:
            self._poolWarned = True
            _log.warn(
                "WSGIResource of {app}: its thread pool is not started, so "
                "requests wait for it; start it (reactor.callWhenRunning("
                "pool.start)) or pass reactor.getThreadPool()",
                app=self.appName,
            )
        self.dispatch(RequestExchange(request))
        return NOT_DONE_YET

    def dispatch(self, exchange: Exchange) -> None:
        """
        Start the application for C{exchange} in the thread pool, or answer
        503 when L{maxPending} requests already wait for a thread (unless
        the client is gone already: nothing is written to a lost exchange).
        Called in the I/O thread.
        """
        if self.maxPending:
            waiting = backlog(self.threadpool)
            if waiting and self.waitingElsewhere is not None:
                waiting += self.waitingElsewhere()
            if waiting >= self.maxPending:
                self.overloadLog.refusing(waiting, self.maxPending)
                exchange.body.close()
                if not exchange.lost:
                    refuseOverloaded(exchange, self.defaultHeaders(()))
                return
        run = _Run(self, exchange)
        if self.idle:
            # Built while the WSGI thread wakes, rather than after.
            run.environ = run.buildEnviron()
        exchange.whenLost(run.clientLost)
        if self.watchdog is None:
            self.threadpool.callInThread(run.work)
        else:
            self.threadpool.callInThread(self.watchdog.track, run.work, run.facts)

    def exchangeTarget(self, path: bytes) -> Callable[[Exchange], None]:
        """
        What serves a request for C{path} on twsgi's own HTTP/1.1 hot path,
        without a C{twisted.web} request: L{dispatch} (see
        L{twsgi.server.routes.exchangeTarget}).  Called in the I/O thread
        once the head of a request arrived.  When the reactor was idle (the
        last response was sent by its WSGI thread), a pool with no thread
        awake then wakes one (C{prewake}): waking a thread that sleeps on
        an idle CPU takes about as long as the rest of the request takes
        the I/O thread, so the thread is awake when the request is handed
        over.  (Under load a thread woken early waits for the GIL the I/O
        thread holds, and costs more than it saves.)
        """
        if self.idle and self._prewake is not None:
            self._prewake()
        return self.dispatch

    def defaultHeaders(
        self, headers: Sequence[tuple[bytes, bytes]]
    ) -> list[tuple[bytes, bytes]]:
        """
        C{headers} and then the C{Date} and C{Server} headers, each unless
        C{headers} has one already.  Called in any thread.
        """
        result = list(headers)
        seen = {name.lower() for name, _ in result}
        if b"date" not in seen:
            result.append((b"Date", self.dates.now()))
        if b"server" not in seen:
            result.append((b"Server", SERVER_HEADER))
        return result

    def getChildWithDefault(self, name: bytes, request: Any) -> Resource:
        return self


class _ReactorCalls:
    """
    Calls handed from WSGI threads to the I/O thread, in batches: the first
    call queued wakes the reactor (one C{callFromThread}), and every call
    queued until the reactor gets to them runs in that same wakeup.  Under
    load this is one reactor wakeup for many responses.
    """

    def __init__(self, reactor: BridgeReactor) -> None:
        self._reactor = reactor
        self._lock = threading.Lock()
        self._calls: list[tuple[Callable[..., object], tuple[object, ...]]] = []

    def call(self, f: Callable[..., object], *args: object) -> None:
        """
        Run C{f(*args)} in the I/O thread soon.  Called in any thread.
        """
        with self._lock:
            calls = self._calls
            calls.append((f, args))
            if len(calls) > 1:
                return
        self._reactor.callFromThread(self._run)

    @property
    def idle(self) -> bool:
        """
        Whether no call waits for the I/O thread.  Called in any thread.
        """
        return not self._calls

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

    @ivar environ: the WSGI environ, if the I/O thread built it (see
        L{WSGIResource.dispatch}); else the WSGI thread builds it.
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
    _wrote = False
    _taken = False
    _aside = False
    _left = False
    _file: _FileProducer | None = None
    environ: MutableMapping[str, Any] | None = None

    def __init__(self, resource: WSGIResource, exchange: Exchange) -> None:
        self.resource = resource
        self.exchange = exchange
        self.facts = facts = exchange.facts
        self.state = ResponseState(facts.method)
        self._lock = threading.Lock()
        self._queue: deque[bytes] = deque()
        # An exchange may hold less (see H2Exchange.highWater), even less
        # than LOW_WATER.
        self._highWater = exchange.highWater
        self._lowWater = min(LOW_WATER, exchange.highWater)
        # The run owns the request body (see Exchange.body): it arrived
        # whole before the request was handed on, so it stays readable after
        # the client left; work() closes it once the application is done.
        self.body = exchange.body
        self.errors = _ErrorsStream()

    def buildEnviron(self) -> dict[str, Any]:
        """
        The request's WSGI environ.  Called in either thread, once.
        """
        return buildEnviron(
            self.facts, self.body, self.errors, FileWrapper, self.resource.multiprocess
        )

    # -- the WSGI thread ---------------------------------------------------

    def startResponse(
        self, status: object, headers: object, exc_info: ExcInfo | None = None
    ) -> Callable[[bytes], None]:
        """
        PEP 3333's C{start_response}.  Called in a WSGI thread.

        With C{exc_info}, a head the I/O thread has not taken yet is taken
        back, with the body queued after it (see L{_takeBack}): none of it
        was sent, so the application's error response replaces it.  A head
        the I/O thread took is sent, and C{exc_info} is re-raised (PEP
        3333).
        """
        if exc_info is not None and self.state.committed:
            with self._lock:
                self._takeBack()
        self.state.startResponse(status, headers, exc_info)
        return self.write

    def write(self, data: bytes) -> None:
        """
        PEP 3333's C{write()} callable.  Called in a WSGI thread; returns once
        the data is queued, and waits only for backpressure.
        """
        accepted = self.state.accept(data)
        if accepted:
            self._push(accepted)
        elif data:
            # HEAD, or a status without content: a GET's body is streamed
            # from here on, so none of its length is known.
            self._wrote = True

    def work(self) -> None:
        """
        Run the application and hand its response to the I/O thread, unless
        the client went away while the request waited for this thread; then
        close the request body, and log the line C{wsgi.errors} holds back.
        Called in a WSGI thread.
        """
        try:
            self._work()
        finally:
            self.body.close()
            self.errors.flush()

    def _work(self) -> None:
        resource = self.resource
        resource.idle = False
        with self._lock:
            self._taken = True
            aside = self._aside
        if aside:
            # A pool that sets tasks aside is told when one is taken.
            takenAside = getattr(resource.threadpool, "takenAside", None)
            if takenAside is not None:
                takenAside()
        # Set by the I/O thread when the exchange is lost (the client went
        # away, or the drain deadline aborted it) while the request waited
        # for a thread.  Only ever set then: a stale False runs the request
        # as before, and a client still there is never skipped.
        if self._left:
            self._sayGone(
                "client disconnected before a WSGI thread took its request: "
                "{method} {target}; the application is not called"
            )
            return
        environ = self.environ
        if environ is None:
            environ = self.buildEnviron()
        # For the access log's {variable}e atoms, read in the I/O thread
        # once the response is done (see Exchange.environ).
        self.exchange.environ = environ
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
        if type(result) in _NOT_BODIES:
            raise ResponseError(
                f"the application returned {_NOT_BODIES[type(result)]}, not an "
                "iterable of bytes (such as [body])"
            )
        if not state.committed:
            if (type(result) is list or type(result) is tuple) and not self._wrote:
                try:
                    self._sendList(result)
                except BodyTooLong:
                    # Nothing was committed or counted as sent (no write()
                    # was), so the list is sent again, cut at the length.
                    state.sent = 0
                    self._sendList(self._cut(result))
                return
            if state.head is not None and not state.bodyAllowed:
                # HEAD, 204, 304: the body would be dropped; do not compute
                # it.  A HEAD gets the length a GET would have (RFC 9110
                # 9.3.2) where it is known without reading: a file's.
                size = None
                if type(result) is FileWrapper and not self._wrote:
                    size = result.regularFileSize()
                self._end(size)
                return
            if type(result) is FileWrapper and state.head is not None:
                size = result.regularFileSize()
                declared = state.head.contentLength
                # PEP 3333: a file is sent from where it stands to its end,
                # or until its Content-Length is sent (a range of it).  A
                # file shorter than that is iterated instead, where the
                # length is enforced.
                if size is not None and (declared is None or declared <= size):
                    length = size if declared is None else declared
                    if length <= WHOLE_FILE_SIZE:
                        # Read at once (from the page cache, as a rule) and
                        # sent as a whole body: far cheaper than streaming
                        # it from the I/O thread.
                        self._sendList([result.filelike.read(length)])
                        return
                    self._closeHandedOff = True
                    self._callFromThread(self._sendFile, state.commit(length), result)
                    return
        if type(result) is FileWrapper and state.head is not None:
            declared = state.head.contentLength
            if declared is not None:
                result.left = declared - state.sent
        for chunk in result:
            try:
                data = state.accept(chunk)
            except BodyTooLong as tooLong:
                # PEP 3333: no more than the length is sent, and the
                # iteration stops there.
                self._tooLong()
                data = state.accept(tooLong.fits)
                if data:
                    self._push(data)
                break
            if data:
                self._push(data)
            elif self._gone:
                raise _ClientGone()
        self._end()

    def _cut(self, body: list[bytes] | tuple[bytes, ...]) -> list[bytes]:
        """
        The items of a list body up to its C{Content-Length}: those within
        it, and the part of the next one that fits.
        """
        state = self.state
        cut = []
        try:
            for chunk in body:
                cut.append(state.accept(chunk))
        except BodyTooLong as tooLong:
            cut.append(tooLong.fits)
        state.sent = 0
        self._tooLong()
        return cut

    def _tooLong(self) -> None:
        """
        Log that the body goes past its C{Content-Length}, and is cut there
        (as gunicorn and waitress cut it): the response stays framed as its
        head says, so the connection is kept.
        """
        head = self.state.head
        assert head is not None
        _log.warn(
            "WSGI application {app} sent a body longer than its Content-Length "
            "({length}) for {method} {target}; sending only {length} bytes",
            app=self.resource.appName,
            length=head.contentLength,
            method=escapeBytes(self.facts.method),
            target=escapeBytes(self.facts.target),
        )

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
        # HEAD gets the length a GET would have (RFC 9110 9.3.2): that of
        # the bytes, not of the items of a memoryview.
        head = state.commit(
            sum(map(len, chunks))
            if state.bodyAllowed
            else sum(memoryview(chunk).nbytes for chunk in result)
        )
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        resource = self.resource
        sendNow: SendsFromThread | None
        if (
            resource.calls.idle
            and len(body) <= THREAD_SEND_SIZE
            and resource.othersIdle is not None
            and resource.othersIdle()
            and (sendNow := _sendsFromThread(self.exchange)) is not None
        ):
            # Nothing else is being answered: the I/O thread is waiting for
            # the network, and this thread sends (one wake-up fewer before
            # the client has its response).  Under load the I/O thread sends
            # every response of its turn itself (a WSGI thread that sent
            # too would fight it for the GIL).
            sent = sendNow.sendWholeFromThread(
                head.code,
                head.reason,
                resource.defaultHeaders(head.headers),
                head.close,
                body,
            )
            if sent is not None:
                if resource.answered is not None:
                    resource.answered()
                resource.idle = True
                resource.calls.call(self._sentWhole, sent)
                return
        resource.calls.call(self._sendWhole, head, body)

    def _push(self, data: bytes) -> None:
        """
        Queue body bytes for the I/O thread, committing the head with the
        first of them.  Wait only once more than the exchange's
        C{highWater} bytes are queued (which happens when the transport
        paused us, since the I/O thread then stops taking from the queue, or
        when the I/O thread is slower than the application), until no more
        than L{LOW_WATER} (or that C{highWater}, if less) are.

        @raise _ClientGone: if the client went away.
        """
        lock = self._lock
        with lock:
            if self._gone:
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
        if self._queued > self._highWater:
            with lock:
                if self._queued > self._highWater:
                    wake = self._wake
                    if wake is None:
                        wake = self._wake = threading.Condition(lock)
                    while self._queued > self._lowWater and not self._gone:
                        wake.wait()
                if self._gone:
                    raise _ClientGone()

    def _end(self, length: int | None = None) -> None:
        """
        The body is complete: ask the I/O thread to finish the response.

        @param length: the length of the whole body, if known and the head
            is not committed yet (see L{ResponseState.commit}).
        """
        state = self.state
        with self._lock:
            if self._gone:
                return
            short = state.shortfall()
            if short and (not state.committed or self._takeBack()):
                # Nothing was sent: answered 500 (as a short list body is)
                # rather than with a head the connection is cut under.
                raise ResponseError(
                    f"the body is {short} bytes shorter than its Content-Length"
                )
            if not state.committed:
                self._head = state.commit(length)
            self._ended = True
            schedule = not self._scheduled and not self._paused
            if schedule:
                self._scheduled = True
        if schedule:
            self._callFromThread(self._flush)

    def _takeBack(self) -> bool:
        """
        Take the head and the queued body back from the I/O thread, if it
        has not taken the head yet: then nothing of the response was sent,
        and it can still be a 500, or the application's own error response.
        Once the I/O thread took the head, it is sent: if the response is
        aborted, the head goes out before the abort (see L{_flush}).
        Called in a WSGI thread, with C{_lock} held.

        @return: whether they were taken back.
        """
        if self._head is None:
            return False
        self._head = None
        self._queue.clear()
        self._queued = 0
        self.state.takeBack()
        return True

    def clientLost(self) -> None:
        """
        The exchange was lost (the client went away, or the server cut the
        connection off): stop the response, and wake the WSGI thread if it
        waits.  If no thread took the request yet, a pool that can tell
        stops counting it in its backlog (for C{--max-pending} and
        readiness), since it will do nothing.  Called in the I/O thread.
        """
        setAside = getattr(self.resource.threadpool, "setAside", None)
        with self._lock:
            self._left = True
            aside = setAside is not None and not (self._taken or self._aside)
            if aside:
                self._aside = True
        self._stop()
        if self._file is not None:
            self._file.stopProducing()
        if setAside is not None and aside:
            setAside()

    def _sayGone(self, text: str) -> None:
        """
        Log that the client went away, for HTTP/1.1 only: resetting an
        HTTP/2 stream costs a client one frame, and would buy it a server
        log line each time.  Either way the request's access record (a 499)
        says it.  Called in a WSGI thread.
        """
        if self.facts.version != HTTP2:
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
        if not self._left:
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
        answer 500, or abort the connection if the I/O thread took the head
        already.
        Called in a WSGI thread, within an C{except} block.
        """
        excType, excValue, tb = sys.exc_info()
        abort = schedule = False
        if self.state.committed:
            # Before logging, which may let the I/O thread take the head.
            with self._lock:
                if self._gone:
                    abort = True
                elif not self._takeBack():
                    # The I/O thread took the head: cut the response off.
                    abort = self._abort = True
                    schedule = not self._scheduled
                    self._scheduled = True
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
        if abort:
            if schedule:
                self._callFromThread(self._flush)
            return
        if self.resource.exposeTracebacks:
            body = "".join(traceback.format_exception(excType, excValue, tb)).encode(
                "utf-8", "replace"
            )
        else:
            body = INTERNAL_ERROR
        self.state.committed = True
        self._callFromThread(self._sendWhole, _internalError(body), body)

    def _callFromThread(self, f: Callable[..., object], *args: object) -> None:
        self.resource.calls.call(f, *args)

    # -- the I/O thread ----------------------------------------------------

    def _stop(self) -> None:
        """
        The response goes no further: drop what is queued, and wake the
        WSGI thread if it waits.  Called in the I/O thread.
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
        self._stop()

    def _lost(self) -> bool:
        """
        Whether the response goes no further: the client went away (the
        exchange told L{clientLost}), or the run cut it off.  Called in the
        I/O thread.
        """
        return self._gone

    def _writeHead(self, head: ResponseHead) -> None:
        """
        Write C{head}, with its own headers and the bridge's defaults.
        Called in the I/O thread.
        """
        headers = self.resource.defaultHeaders(head.headers)
        self.exchange.writeHead(head.code, head.reason, headers, head.close)

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
        exchange = self.exchange
        if len(body) >= SPLIT_SIZE:
            exchange.write(b"")
            self._callFromThread(self._sendBody, body)
            return
        if body:
            exchange.write(body)
            if self._gone:
                return
        exchange.finish()

    def _sentWhole(self, sent: Callable[[], None]) -> None:
        """
        The WSGI thread sent a whole response: end the exchange (see
        L{SendsFromThread}).  Called in the I/O thread.
        """
        if not self._lost():
            sent()

    def _sendBody(self, body: bytes) -> None:
        """
        Send the body of a whole response whose head was sent.  Called in
        the I/O thread.
        """
        if self._lost():
            return
        self.exchange.write(body)
        if not self._gone:
            self.exchange.finish()

    def _sendFile(self, head: ResponseHead, wrapper: FileWrapper) -> None:
        """
        Stream a real file from the I/O thread, its head with its first
        chunk: a file whose first read fails (or finds it cut to nothing
        since its size was taken) is answered 500, not a connection cut off
        before a byte was sent.  Called in the I/O thread.
        """
        if self._lost():
            _closeFile(wrapper)
            return
        assert head.contentLength is not None
        producer = _FileProducer(self, wrapper, head.contentLength)
        if not producer.readFirst():
            _closeFile(wrapper)
            self._sendWhole(_internalError(INTERNAL_ERROR), INTERNAL_ERROR)
            return
        self._writeHead(head)
        self._file = producer
        producer.start()

    def fileEnded(self, failed: bool) -> None:
        """
        The file given to L{_FileProducer} is sent: finish the response; or
        reading it failed: cut the response off.  Called in the I/O thread.
        """
        self._gone = True
        if failed:
            self.exchange.abort()
        else:
            self.exchange.finish()

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
        exchange = self.exchange
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
                exchange.registerProducer(self)
                self._producing = True
        while True:
            with lock:
                abort = self._abort
                if abort:
                    # What the application yielded before it failed is
                    # sent, paused or not (it is held in memory either way):
                    # PEP 3333 has a yielded block transmitted even while
                    # the next one is produced.
                    batch = list(queue)
                    queue.clear()
                    self._queued = 0
                    break
                if self._paused or not queue:
                    ended = self._ended and not queue
                    if self._wake is not None and self._queued <= self._lowWater:
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
            exchange.write(b"".join(batch))
            if self._gone:
                return
        if abort:
            # The WSGI thread failed once this thread took the head (see
            # _failed): the head goes out first, with the body still queued
            # (an empty write sends a head that no body bytes took out
            # yet), so that the client never has a reset for a response.
            exchange.write(b"".join(batch))
            if self._gone:
                return
            self._gone = True
            if self._producing:
                exchange.unregisterProducer()
            exchange.abort()
            return
        if ended:
            if self._producing:
                self._producing = False
                exchange.unregisterProducer()
            if self.state.shortfall():
                _log.error(
                    "WSGI application {app} sent {short} bytes fewer than its "
                    "Content-Length for {target}; closing the connection",
                    app=self.resource.appName,
                    short=self.state.shortfall(),
                    target=escapeBytes(self.facts.target),
                )
                self._gone = True
                exchange.abort()
                return
            self._done = True
            exchange.finish()


_NOT_BODIES = {bytes: "bytes", bytearray: "bytearray", str: "str", type(None): "None"}
"""
What an application returns by mistake instead of an iterable of bytes (a
string would be iterated item by item), and how the log names it.
"""


def _sendsFromThread(exchange: Exchange) -> SendsFromThread | None:
    """
    C{exchange}, if it can send a whole response from a WSGI thread.
    """
    if hasattr(exchange, "sendWholeFromThread"):
        return cast(SendsFromThread, exchange)
    return None


def _internalError(body: bytes) -> ResponseHead:
    """
    The head of a 500 with C{body}, which closes the connection.
    """
    return ResponseHead(
        500,
        b"Internal Server Error",
        (
            (b"Content-Type", b"text/plain; charset=utf-8"),
            (b"Content-Length", b"%d" % len(body)),
        ),
        len(body),
        close=True,
    )


def _closeFile(wrapper: FileWrapper) -> None:
    """
    Close the file of a L{FileWrapper}, logging what that raises.
    """
    close = getattr(wrapper, "close", None)
    if close is not None:
        try:
            close()
        except BaseException:
            _log.failure("close() of a wsgi.file_wrapper raised", level=LogLevel.error)


class _FileProducer(TurnProducer):
    """
    Stream the regular file of a L{FileWrapper} to a run's exchange from the
    I/O thread: up to L{FILE_CHUNKS_PER_TURN} chunks a turn of the reactor
    while the transport does not pause it, and no more than the response's
    C{Content-Length} (the file may grow or shrink while it is sent).
    Everything here runs in the I/O thread.

    An exchange that holds less than L{HIGH_WATER} (an HTTP/2 stream, one of
    many on a connection, whose writes in a turn are queued until its end)
    gets no more chunks a turn than its C{highWater}: else each of a
    connection's 100 streams queued a megabyte in a turn, whatever the
    client read.
    """

    def __init__(self, run: _Run, wrapper: FileWrapper, length: int) -> None:
        """
        @param length: the C{Content-Length} of the response: no more is
            read, and a file that ends before it cuts the response off.
        """
        highWater = run.exchange.highWater
        perTurn = FILE_CHUNKS_PER_TURN
        if highWater < HIGH_WATER:
            perTurn = max(1, min(perTurn, highWater // FILE_CHUNK_SIZE))
        TurnProducer.__init__(self, run.resource.reactor.callLater, perTurn)
        self._run = run
        self._wrapper = wrapper
        self._left = length
        self._first: bytes | None = None

    def start(self) -> None:
        """
        Register with the exchange and send the first chunks.
        """
        self._run.exchange.registerProducer(self)
        self.turn()

    def readFirst(self) -> bool:
        """
        Read the first chunk, which L{step} sends first.

        @return: whether it could be read.
        """
        self._first = self._read()
        return self._first is not None

    def _read(self) -> bytes | None:
        """
        The next chunk of the file, or C{None} (and a log line) if reading
        it raised or the file ended before its C{Content-Length}.
        """
        target = self._run.facts.target
        try:
            data = self._wrapper.filelike.read(min(FILE_CHUNK_SIZE, self._left))
        except BaseException:
            _log.failure(
                "reading the wsgi.file_wrapper file for {target} raised",
                level=LogLevel.error,
                target=escapeBytes(target),
            )
            return None
        if not data:
            # Cut short since its size was taken: the client would wait for
            # the rest.
            _log.error(
                "the wsgi.file_wrapper file for {target} ended {left} bytes "
                "before its Content-Length",
                target=escapeBytes(target),
                left=self._left,
            )
            return None
        self._left -= len(data)
        return data

    def step(self) -> None:
        """
        Send the next chunk (the first, read already), or end the response:
        cut it off if the file could not be read to its end.
        """
        data, self._first = self._first, None
        if data is None:
            if not self._left:
                self._end(failed=False)
                return
            data = self._read()
            if data is None:
                self._end(failed=True)
                return
        self._run.exchange.write(data)

    def _end(self, failed: bool) -> None:
        """
        The file is sent or failed: unregister and close it, and finish the
        response (or cut it off).
        """
        self.stop()
        self._run.exchange.unregisterProducer()
        _closeFile(self._wrapper)
        self._run.fileEnded(failed)

    def stopProducing(self) -> None:
        """
        The client went away: close the file.
        """
        if not self._stopped:
            self.stop()
            _closeFile(self._wrapper)


__all__ = ["FileWrapper", "WSGIResource"]
