# -*- test-case-name: tests.config.test_resolve -*-
"""
The one table of twsgi's settings.

Each L{Setting} is defined once here.  The command-line options of
C{twistd twsgi}, C{twist twsgi} and C{python -m twsgi}, the C{TWSGI_*}
environment variables, the settings reference page in C{docs/} and the typed
L{twsgi.config.model.ServerConfig} (written by C{scripts/gen-config}) are all
generated from L{SETTINGS}.

A setting's C{convert} callable turns the text an operator typed into a value,
or raises L{ValueError} with a message that says what is wrong; it never
imports an application or touches the network.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Literal

import attrs

from twsgi.http.limits import Limits, parseSize
from twsgi.logs.files import parseRotate
from twsgi.logs.formats import parseAccessLogFormat
from twsgi.logs.serverlog import parseLogFormat
from twsgi.server.connections import IDLE_GRACE
from twsgi.server.endpoints import bindEndpoint
from twsgi.server.forwarded import DEFAULT_ALLOW_IPS, parseAllowIps
from twsgi.server.health import FOLLOW_MAX_PENDING, QueueLimit, parsePathPrefix
from twsgi.server.routes import parseStatic
from twsgi.server.tls import PROFILES, checkCiphers

_LIMITS = Limits()


@attrs.frozen
class Setting:
    """
    One server setting.

    @ivar name: the Python name, as used in L{twsgi.ServerConfig}.
    @ivar flag: the long command-line flag without its leading dashes.
    @ivar convert: turns one text value into the setting's value; raises
        L{ValueError} with a message for the operator.  Its return annotation
        types the setting's field of L{twsgi.ServerConfig}.
    @ivar default: the value when the setting is not given anywhere.
    @ivar help: one sentence for C{--help} and the docs.
    @ivar metavar: the placeholder shown in C{--help}.
    @ivar multiple: C{True} if the option may be repeated; the value is then a
        tuple of converted values.  In the environment, repeated values are
        separated by whitespace.
    @ivar switch: C{True} for an on/off flag that takes no value.
    @ivar section: the heading this setting is listed under in the docs.
    @ivar command: C{True} for a setting of the process that the twsgi
        command runs (C{twsgi}, C{python -m twsgi}, C{twistd twsgi}),
        applied there and not by a L{twsgi.TwsgiService} made elsewhere.
    """

    name: str
    flag: str
    convert: Callable[[str], object]
    default: Any
    help: str
    metavar: str = "VALUE"
    multiple: bool = False
    switch: bool = False
    section: str = "Server"
    command: bool = False

    @property
    def envvar(self) -> str:
        """
        The environment variable that sets this setting.
        """
        return "TWSGI_" + self.name.upper()

    @property
    def defaultText(self) -> str | None:
        """
        The default as an operator would type it (C{4:32}, not C{(4, 32)}),
        or C{None} when the setting is unset, empty or off by default.
        """
        default = self.default
        if default is None or default is False or default in ((), ""):
            return None
        if self.multiple:
            return " ".join(str(value) for value in default)
        if isinstance(default, tuple):
            return ":".join(str(value) for value in default)
        return str(default)


def _text(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


def _positiveFloat(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number of seconds")
    if not number >= 0 or number == float("inf"):
        raise ValueError(f"{value!r} must be a finite number >= 0")
    return number


def _rate(value: str) -> float:
    try:
        return _positiveFloat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a finite number >= 0 (a rate a second)")


def _allowIps(value: str) -> str:
    parseAllowIps(value)
    return value.strip()


def _count(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a whole number")
    if number < 0:
        raise ValueError(f"{value!r} must be 0 (no bound) or more")
    return number


def _positiveInt(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a whole number")
    if number < 1:
        raise ValueError(f"{value!r} must be at least 1")
    return number


def _nonNegativeInt(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a whole number")
    if number < 0:
        raise ValueError(f"{value!r} must be 0 or more")
    return number


def _tlsProfile(value: str) -> str:
    PROFILES["intermediate"].given(profile=value)
    return value


def _tlsCurve(value: str) -> str:
    PROFILES["intermediate"].given(curve=value)
    return value


def _tlsMinimum(value: str) -> str:
    PROFILES["intermediate"].given(minimum=value)
    return value


def _requestTimeoutAction(value: str) -> str:
    if value not in ("log", "recycle"):
        raise ValueError(f"{value!r} is not 'log' or 'recycle'")
    return value


def _threadPlacement(value: str) -> Literal["near", "kernel"]:
    value = value.strip()
    if value == "near":
        return "near"
    if value == "kernel":
        return "kernel"
    raise ValueError(f"{value!r} is not 'near' or 'kernel'")


def cpuList(value: str) -> tuple[int, ...]:
    """
    The CPU numbers of a list such as C{0-3,6}, in the order given, each
    once.

    @raise ValueError: if it is not such a list.
    """
    cpus: list[int] = []
    for part in value.split(","):
        first, dash, last = part.strip().partition("-")
        try:
            low = int(first)
            high = int(last) if dash else low
        except ValueError:
            raise ValueError(f"{value!r} is not 'auto' or a list of CPUs such as 0-3,6")
        if low < 0 or high < low:
            where = "" if part.strip() == value.strip() else f" in {value!r}"
            raise ValueError(f"{part.strip()!r}{where} is not a range of CPUs")
        cpus.extend(cpu for cpu in range(low, high + 1) if cpu not in cpus)
    return tuple(cpus)


def _cpuAffinity(value: str) -> str:
    value = value.strip()
    if value != "auto":
        cpuList(value)
    return value


def _boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{value!r} is not one of 1/0, true/false, yes/no, on/off")


_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def _reference(value: str) -> str:
    """
    Check the shape of a C{module:attr} reference; it is loaded later.
    """
    if not _REFERENCE.match(value.strip()):
        raise ValueError(f"{value!r} is not module:attr (for example myhooks:ready)")
    return value.strip()


def _bindAddress(value: str) -> str:
    """
    Check a C{--bind} address; it stays as written (so that
    C{--print-config} writes it back), and becomes an endpoint string in
    L{twsgi.lifecycle.build.appEndpoints}.
    """
    bindEndpoint(value)
    return value.strip()


_THREADS = re.compile(r"^\s*(\d+)\s*(?::\s*(\d+)\s*)?$")


def parseThreads(value: str) -> tuple[int, int]:
    """
    Parse C{MIN:MAX} (or a single C{N}, meaning C{N:N}) for the thread pool.

    @raise ValueError: if the text is not of that form, or C{MIN > MAX}, or
        C{MAX} is 0.
    """
    match = _THREADS.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not MIN:MAX or N (for example 4:32)")
    low = int(match.group(1))
    high = int(match.group(2)) if match.group(2) is not None else low
    if high < 1:
        raise ValueError(f"{value!r}: the maximum must be at least 1")
    if low > high:
        raise ValueError(f"{value!r}: the minimum is larger than the maximum")
    return (low, high)


SETTINGS: Sequence[Setting] = (
    Setting(
        name="app",
        flag="app",
        convert=_text,
        default=None,
        metavar="MODULE:ATTR",
        help=(
            "The WSGI application: 'module:attr', 'package.module:attr' or "
            "'module:factory(literal, args)' (only literal arguments)."
        ),
        section="Application",
    ),
    Setting(
        name="endpoint",
        flag="endpoint",
        convert=_text,
        default=("tcp:8000:interface=127.0.0.1",),
        multiple=True,
        metavar="ENDPOINT",
        help=(
            "A Twisted server endpoint string to listen on (tcp:, tcp6:, ssl:, "
            "unix:, systemd:, haproxy:...); may be repeated.  The default "
            "applies when neither --endpoint nor --bind is given."
        ),
    ),
    Setting(
        name="bind",
        flag="bind",
        convert=_bindAddress,
        default=(),
        multiple=True,
        metavar="ADDRESS",
        help=(
            "An address to listen on, written as for gunicorn: HOST:PORT, "
            "[IPV6]:PORT, :PORT (every IPv4 address), HOST (port 8000) or "
            "unix:PATH.  It becomes an endpoint string (127.0.0.1:8000 is "
            "'tcp:8000:interface=127.0.0.1'); may be repeated, and mixed "
            "with --endpoint."
        ),
    ),
    Setting(
        name="threads",
        flag="threads",
        convert=parseThreads,
        default=(4, 32),
        metavar="MIN:MAX",
        help=(
            "The size of the WSGI thread pool, as MIN:MAX or a single N; with "
            "--workers, each worker's."
        ),
    ),
    Setting(
        name="thread_placement",
        flag="thread-placement",
        convert=_threadPlacement,
        default="near",
        metavar="near|kernel",
        help=(
            "Where a WSGI thread woken for an otherwise idle pool runs: "
            "'near', on the CPU of the I/O thread that wakes it (Linux, "
            "more than one CPU; it takes back every CPU once the pool is "
            "busy, or before its request starts a process), or 'kernel', "
            "wherever the kernel puts it."
        ),
    ),
    Setting(
        name="access_log",
        flag="access-log",
        convert=_text,
        default="-",
        metavar="PATH|-|none",
        help=(
            "Where the access log goes (Combined Log Format plus the duration "
            "in microseconds): a file path, '-' for standard output, or 'none'."
        ),
        section="Logging",
    ),
    Setting(
        name="access_log_format",
        flag="access-log-format",
        convert=parseAccessLogFormat,
        default="combined",
        metavar="combined|json|TEMPLATE",
        help=(
            "The access log's format: 'combined', 'json' (one object per line), "
            'or a gunicorn-style template such as \'%(h)s "%(r)s" %(s)s '
            "%(D)s %({x-request-id}i)s'."
        ),
        section="Logging",
    ),
    Setting(
        name="access_log_rotate",
        flag="access-log-rotate",
        convert=parseRotate,
        default=None,
        metavar="SIZE|daily|none",
        help=(
            "Rotate the access log file at a size (e.g. 100M) or daily; "
            "SIGUSR1 reopens it in any case."
        ),
        section="Logging",
    ),
    Setting(
        name="log_format",
        flag="log-format",
        convert=parseLogFormat,
        default="text",
        metavar="text|json",
        help="The format of the server's own log: 'text' or 'json' (one object per line).",
        section="Logging",
        command=True,
    ),
    Setting(
        name="chdir",
        flag="chdir",
        convert=_text,
        default=None,
        metavar="DIR",
        help=(
            "Change to this directory before loading the application and "
            "listening: relative paths (of --pythonpath, unix: sockets, "
            "certificates, the access log) are read from there, with --workers "
            "too."
        ),
        section="Application",
        command=True,
    ),
    Setting(
        name="pythonpath",
        flag="pythonpath",
        convert=_text,
        default=(),
        multiple=True,
        metavar="DIR",
        help="Add this directory to the front of sys.path; may be repeated.",
        section="Application",
        command=True,
    ),
    Setting(
        name="expose_tracebacks",
        flag="expose-tracebacks",
        convert=_boolean,
        default=False,
        switch=True,
        help=(
            "Put the traceback of an application error in the 500 response. "
            "For development only."
        ),
        section="Application",
    ),
    Setting(
        name="limit_request_line",
        flag="limit-request-line",
        convert=parseSize,
        default=_LIMITS.maxRequestLine,
        metavar="BYTES",
        help="The longest request line accepted; a longer one gets 414.",
        section="Limits",
    ),
    Setting(
        name="limit_request_field_size",
        flag="limit-request-field-size",
        convert=parseSize,
        default=_LIMITS.maxHeaderField,
        metavar="BYTES",
        help="The longest header field line accepted; a longer one gets 431.",
        section="Limits",
    ),
    Setting(
        name="limit_request_fields",
        flag="limit-request-fields",
        convert=_positiveInt,
        default=_LIMITS.maxHeaderCount,
        metavar="N",
        help="The most header fields in one request; more get 431.",
        section="Limits",
    ),
    Setting(
        name="limit_request_headers",
        flag="limit-request-headers",
        convert=parseSize,
        default=_LIMITS.maxHeaderBytes,
        metavar="BYTES",
        help="The largest header section accepted in total; a larger one gets 431.",
        section="Limits",
    ),
    Setting(
        name="max_body_size",
        flag="max-body-size",
        convert=parseSize,
        default=_LIMITS.maxBody,
        metavar="BYTES",
        help=(
            "The largest request body accepted (K, M, G suffixes allowed); a "
            "larger one gets 413, decided from Content-Length before the body "
            "is read, or as chunks arrive.  Also the request-body bytes one "
            "HTTP/2 connection holds across its streams beyond which the "
            "uploads but the oldest wait (flow control) until bytes are "
            "given back."
        ),
        section="Limits",
    ),
    Setting(
        name="http2_max_streams",
        flag="http2-max-streams",
        convert=_positiveInt,
        default=_LIMITS.maxStreams,
        metavar="N",
        help=(
            "HTTP/2 streams one connection may have open at once (advertised "
            "as SETTINGS_MAX_CONCURRENT_STREAMS; more are refused): each may "
            "hold a WSGI thread and an upload file."
        ),
        section="Limits",
    ),
    Setting(
        name="http2_max_refused_streams",
        flag="http2-max-refused-streams",
        convert=_positiveInt,
        default=_LIMITS.maxRefusedStreams,
        metavar="N",
        help=(
            "HTTP/2 streams of one connection the server may answer itself "
            "(400, 408, 413, 414, 431) before it closes the connection with "
            "GOAWAY ENHANCE_YOUR_CALM."
        ),
        section="Limits",
    ),
    Setting(
        name="http2_reset_burst",
        flag="http2-reset-burst",
        convert=_positiveInt,
        default=_LIMITS.resetBurst,
        metavar="N",
        help=(
            "HTTP/2 stream resets a client may send at once; beyond it and "
            "--http2-reset-rate, the connection is closed with GOAWAY "
            "ENHANCE_YOUR_CALM (Rapid Reset, CVE-2023-44487)."
        ),
        section="Limits",
    ),
    Setting(
        name="http2_reset_rate",
        flag="http2-reset-rate",
        convert=_rate,
        default=_LIMITS.resetRate,
        metavar="N",
        help="HTTP/2 stream resets a client may send a second, beyond the burst.",
        section="Limits",
    ),
    Setting(
        name="http2_control_frames",
        flag="http2-control-frames",
        convert=_positiveInt,
        default=_LIMITS.controlFrames,
        metavar="N",
        help=(
            "HTTP/2 PING and SETTINGS frames a client may send at once, and a "
            "tenth of it more a second; beyond it the connection is closed "
            "with GOAWAY ENHANCE_YOUR_CALM (CVE-2019-9512, CVE-2019-9515)."
        ),
        section="Limits",
    ),
    Setting(
        name="http2_empty_frames",
        flag="http2-empty-frames",
        convert=_positiveInt,
        default=_LIMITS.emptyFrames,
        metavar="N",
        help=(
            "Empty HTTP/2 DATA and CONTINUATION frames a client may send at "
            "once, and a tenth of it more a second; beyond it the connection "
            "is closed with GOAWAY ENHANCE_YOUR_CALM (CVE-2019-9518)."
        ),
        section="Limits",
    ),
    Setting(
        name="header_timeout",
        flag="header-timeout",
        convert=_positiveFloat,
        default=_LIMITS.headerTimeout,
        metavar="SECONDS",
        help=(
            "Seconds from a request's first byte to the end of its headers; "
            "slower clients get 408 (0 disables)."
        ),
        section="Timeouts",
    ),
    Setting(
        name="keepalive_timeout",
        flag="keepalive-timeout",
        convert=_positiveFloat,
        default=_LIMITS.keepAliveTimeout,
        metavar="SECONDS",
        help=(
            "Seconds an idle connection is kept open, before its first request "
            "and between requests (0 disables)."
        ),
        section="Timeouts",
    ),
    Setting(
        name="body_timeout",
        flag="body-timeout",
        convert=_positiveFloat,
        default=_LIMITS.bodyTimeout,
        metavar="SECONDS",
        help=(
            "Seconds a request body may go without a byte arriving; then 408 "
            "and the connection is closed (0 disables)."
        ),
        section="Timeouts",
    ),
    Setting(
        name="send_timeout",
        flag="send-timeout",
        convert=_positiveFloat,
        default=_LIMITS.sendTimeout,
        metavar="SECONDS",
        help=(
            "Seconds a response may wait for a client that reads none of it: "
            "then an HTTP/1.1 connection whose send buffer stayed full is "
            "aborted, and an HTTP/2 stream without flow-control window (or on "
            "a full connection) is reset with CANCEL, freeing its thread "
            "(0 disables)."
        ),
        section="Timeouts",
    ),
)

SETTINGS = (
    *SETTINGS,
    Setting(
        name="reload",
        flag="reload",
        convert=_boolean,
        default=False,
        switch=True,
        help=(
            "Restart the server when a source file of the application changes "
            "(needs the 'reload' extra).  For development only."
        ),
        section="Development",
        command=True,
    ),
    Setting(
        name="max_connections",
        flag="max-connections",
        convert=_count,
        default=0,
        metavar="N",
        help=(
            "Stop accepting while this many connections are open on the "
            "application listeners; new ones wait in the kernel's listen "
            "backlog (0: no bound).  With --workers, each worker counts its "
            "own."
        ),
        section="Limits",
    ),
    Setting(
        name="max_pending",
        flag="max-pending",
        convert=_count,
        default=1024,
        metavar="N",
        help=(
            "Answer 503 with Retry-After while this many requests already wait "
            "for a WSGI thread (0: no bound).  With --workers, a worker whose "
            "threads are all busy accepts no new connection: new connections "
            "wait in the listen backlog, and count too (TCP listeners, "
            "Linux); a worker takes those beyond N and answers them 503."
        ),
        section="Limits",
    ),
    Setting(
        name="forwarded_allow_ips",
        flag="forwarded-allow-ips",
        convert=_allowIps,
        default=DEFAULT_ALLOW_IPS,
        metavar="ADDRESSES",
        help=(
            "Peers (addresses and CIDR networks, comma-separated, or '*') whose "
            "X-Forwarded-For/-Proto/-Host/-Port and Forwarded headers are "
            "believed; from any other peer they are removed.  A listener may "
            "override it: --endpoint 'tcp:8000;forwarded-allow-ips=10.0.0.0/8'."
        ),
        section="Proxies",
    ),
)


def _queueLimit(value: str) -> QueueLimit:
    text = value.strip().lower()
    if text in ("none", ""):
        return None
    if text == FOLLOW_MAX_PENDING:
        return FOLLOW_MAX_PENDING
    if not text.lstrip("-").isdigit():
        raise ValueError(
            f"{value!r} is not a whole number, 'none' or '{FOLLOW_MAX_PENDING}'"
        )
    return _nonNegativeInt(value)


SETTINGS = (
    *SETTINGS,
    Setting(
        name="health_endpoint",
        flag="health-endpoint",
        convert=_text,
        default=(),
        multiple=True,
        metavar="ENDPOINT",
        help=(
            "An admin listener answering only the health paths (livez, "
            "readyz) on the I/O thread, never the application; may be repeated."
        ),
        section="Health and metrics",
    ),
    Setting(
        name="metrics_endpoint",
        flag="metrics-endpoint",
        convert=_text,
        default=(),
        multiple=True,
        metavar="ENDPOINT",
        help=(
            "An admin listener answering /metrics (Prometheus, needs the "
            "'metrics' extra) and the health paths on the I/O thread; may be "
            "repeated."
        ),
        section="Health and metrics",
    ),
    Setting(
        name="health_path_prefix",
        flag="health-path-prefix",
        convert=parsePathPrefix,
        default="",
        metavar="PATH",
        help=(
            "Serve the health paths as PATH/livez and PATH/readyz (e.g. "
            "/_twsgi) instead of /livez and /readyz."
        ),
        section="Health and metrics",
    ),
    Setting(
        name="health_on_app",
        flag="health-on-app",
        convert=_boolean,
        default=False,
        switch=True,
        help=(
            "Also answer the health paths on the application listeners, before "
            "the application (pick a --health-path-prefix the application does "
            "not use).  With --workers, such a check waits in the listen "
            "backlog while every thread of every worker is busy; an admin "
            "listener's does not."
        ),
        section="Health and metrics",
    ),
    Setting(
        name="ready_queue_limit",
        flag="ready-queue-limit",
        convert=_queueLimit,
        default=FOLLOW_MAX_PENDING,
        metavar="N|none|max-pending",
        help=(
            "When readiness reports 503 for requests waiting for a WSGI "
            "thread: with 'max-pending', while --max-pending refuses new "
            "requests; with N, while more than N wait; with 'none', never.  "
            "It always does while draining."
        ),
        section="Health and metrics",
    ),
    Setting(
        name="static",
        flag="static",
        convert=parseStatic,
        default=(),
        multiple=True,
        metavar="URL=DIR",
        help=(
            "Serve the files of DIR below the path URL (for example "
            "/static=./static) from the I/O thread (ranges, ETag, "
            "If-Modified-Since), beside the application; may be repeated."
        ),
        section="Application",
    ),
    Setting(
        name="workers",
        flag="workers",
        convert=_positiveInt,
        default=1,
        metavar="N",
        help=(
            "How many worker processes serve requests.  Given at all (even "
            "as 1), a supervisor binds the endpoints, the workers inherit "
            "them, and SIGHUP replaces the workers; not given, one process "
            "serves by itself."
        ),
        section="Worker processes",
        command=True,
    ),
    Setting(
        name="cpu_affinity",
        flag="cpu-affinity",
        convert=_cpuAffinity,
        default=None,
        metavar="auto|CPUS",
        help=(
            "Keep each worker process on one CPU (Linux only), taken in turn "
            "from CPUS, a list such as 0-3,6, or with 'auto' from the CPUs "
            "twsgi may run on; without --workers, the one process runs on "
            "the first of them.  Its threads then hand requests to each "
            "other on that CPU.  Not given, the kernel moves them."
        ),
        section="Worker processes",
        command=True,
    ),
    Setting(
        name="max_requests",
        flag="max-requests",
        convert=_nonNegativeInt,
        default=0,
        metavar="N",
        help="Replace a worker after about N requests (0: never).",
        section="Worker processes",
        command=True,
    ),
    Setting(
        name="max_requests_jitter",
        flag="max-requests-jitter",
        convert=_nonNegativeInt,
        default=0,
        metavar="N",
        help=(
            "Add a random 0..N to each worker's --max-requests, so that "
            "workers are not all replaced at once."
        ),
        section="Worker processes",
        command=True,
    ),
    Setting(
        name="max_worker_memory",
        flag="max-worker-memory",
        convert=_nonNegativeInt,
        default=0,
        metavar="MB",
        help="Replace a worker whose resident memory passes MB megabytes (0: never).",
        section="Worker processes",
        command=True,
    ),
    Setting(
        name="worker_lifetime",
        flag="worker-lifetime",
        convert=_positiveFloat,
        default=0.0,
        metavar="SECONDS",
        help="Replace a worker after it has run this long (0: never).",
        section="Worker processes",
        command=True,
    ),
    Setting(
        name="request_timeout",
        flag="request-timeout",
        convert=_positiveFloat,
        default=0.0,
        metavar="SECONDS",
        help=(
            "A request whose application call runs longer is counted and the "
            "stack of its thread is logged (0: no deadline)."
        ),
        section="Worker processes",
    ),
    Setting(
        name="request_timeout_action",
        flag="request-timeout-action",
        convert=_requestTimeoutAction,
        default="log",
        metavar="log|recycle",
        help=(
            "What else to do about a request past --request-timeout: 'log' "
            "only, or 'recycle' its worker gracefully (with --workers)."
        ),
        section="Worker processes",
        command=True,
    ),
)

SETTINGS = (
    *SETTINGS,
    Setting(
        name="config",
        flag="config",
        convert=_text,
        default=None,
        metavar="PATH",
        help=(
            "Read settings from this TOML file (keys are setting names or "
            "flags); the command line and TWSGI_* variables override it."
        ),
        section="Configuration",
        # Not command=True: resolveConfig reads it, for a .tac file too.
    ),
    Setting(
        name="check_config",
        flag="check-config",
        convert=_boolean,
        default=False,
        switch=True,
        help=(
            "Check the settings, load the application and parse the endpoints, "
            "then exit: 0 if all is well, 1 with the error otherwise."
        ),
        section="Configuration",
        command=True,
    ),
    Setting(
        name="print_config",
        flag="print-config",
        convert=_boolean,
        default=False,
        switch=True,
        help=(
            "Print the resolved settings as a TOML config file, each with its "
            "source, and exit."
        ),
        section="Configuration",
        command=True,
    ),
)

SETTINGS = (
    *SETTINGS,
    Setting(
        name="access_log_observer",
        flag="access-log-observer",
        convert=_reference,
        default=(),
        multiple=True,
        metavar="MODULE:ATTR",
        help=(
            "A callable that receives the AccessRecord of every finished "
            "request, beside the access log; may be repeated."
        ),
        section="Logging",
    ),
    Setting(
        name="drain_delay",
        flag="drain-delay",
        convert=_positiveFloat,
        default=0.0,
        metavar="SECONDS",
        help=(
            "On stop, keep accepting new requests for this long while "
            "readiness reports 503, so that load balancers notice first."
        ),
        section="Stopping",
    ),
    Setting(
        name="graceful_timeout",
        flag="graceful-timeout",
        convert=_positiveFloat,
        default=30.0,
        metavar="SECONDS",
        help=(
            "On stop, wait this long for requests in flight once the listeners "
            "closed, then abort them (a second SIGTERM or SIGINT skips the wait)."
        ),
        section="Stopping",
    ),
    Setting(
        name="keepalive_grace",
        flag="keepalive-grace",
        convert=_positiveFloat,
        default=IDLE_GRACE,
        metavar="SECONDS",
        help=(
            "On stop, and when a worker is replaced, an idle keep-alive "
            "connection may still send one request for this long (it is "
            "answered with Connection: close) before it is closed; at most "
            "--graceful-timeout."
        ),
        section="Stopping",
    ),
    Setting(
        name="on_start",
        flag="on-start",
        convert=_reference,
        default=(),
        multiple=True,
        metavar="MODULE:ATTR",
        help=(
            "A callable run with the service once it listens; may return a "
            "Deferred; may be repeated (run in order)."
        ),
        section="Stopping",
    ),
    Setting(
        name="on_drain",
        flag="on-drain",
        convert=_reference,
        default=(),
        multiple=True,
        metavar="MODULE:ATTR",
        help=(
            "A callable run with the service when a stop begins; may return a "
            "Deferred; may be repeated (run in order)."
        ),
        section="Stopping",
    ),
    Setting(
        name="on_stop",
        flag="on-stop",
        convert=_reference,
        default=(),
        multiple=True,
        metavar="MODULE:ATTR",
        help=(
            "A callable run with the service once the stop is complete; may "
            "return a Deferred; may be repeated (run in order)."
        ),
        section="Stopping",
    ),
)

SETTINGS = (
    *SETTINGS,
    Setting(
        name="no_http2",
        flag="no-http2",
        convert=_boolean,
        default=False,
        switch=True,
        help=(
            "Serve TLS listeners over HTTP/1.1 only.  By default they offer "
            "HTTP/2 through ALPN when the 'http2' extra is installed."
        ),
        section="TLS and HTTP/2",
    ),
    Setting(
        name="tls_profile",
        flag="tls-profile",
        convert=_tlsProfile,
        default="intermediate",
        metavar="intermediate|modern",
        help=(
            "The TLS profile of ssl: and tls: listeners, as Mozilla names them: "
            "'intermediate' (TLS 1.2 and 1.3, forward-secret AEAD ciphers "
            "only) or 'modern' (TLS 1.3 only).  A listener may name its own: "
            "--endpoint 'ssl:8443:privateKey=k.pem:profile=modern'."
        ),
        section="TLS and HTTP/2",
    ),
    Setting(
        name="tls_ciphers",
        flag="tls-ciphers",
        convert=checkCiphers,
        default=None,
        metavar="CIPHERS",
        help=(
            "The TLS 1.2 ciphers of ssl: and tls: listeners, as an OpenSSL cipher list "
            "(words separated by ':' or ','), instead of the profile's; a "
            "listener may name its own with ciphers= (separated by ',')."
        ),
        section="TLS and HTTP/2",
    ),
    Setting(
        name="tls_curve",
        flag="tls-curve",
        convert=_tlsCurve,
        default=None,
        metavar="prime256v1|secp384r1|openssl",
        help=(
            "The key-exchange curve of ssl: and tls: listeners instead of the "
            "profile's prime256v1; 'openssl' offers OpenSSL's own list "
            "(X25519 first, X448 and P-521 too); a listener may name its "
            "own with curve=."
        ),
        section="TLS and HTTP/2",
    ),
    Setting(
        name="tls_minimum",
        flag="tls-minimum",
        convert=_tlsMinimum,
        default=None,
        metavar="TLSv1.2|TLSv1.3",
        help=(
            "The lowest TLS version of ssl: and tls: listeners instead of the "
            "profile's; a listener may name its own with minimum=."
        ),
        section="TLS and HTTP/2",
    ),
)

SETTINGS_BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}

__all__ = ["SETTINGS", "SETTINGS_BY_NAME", "Setting", "cpuList", "parseThreads"]
