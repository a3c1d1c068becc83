# -*- test-case-name: tests.cli.test_options -*-
"""
The C{twistd twsgi} / C{twist twsgi} / C{python -m twsgi} command line.

L{Options} is generated from L{twsgi.config.settings.SETTINGS} and only parses:
everything is checked in L{makeService}, so that every operator mistake
becomes one line on standard error and a non-zero exit status instead of a
usage dump or a traceback.  L{makeService} reads only the command's own
settings (C{--check-config}, C{--print-config}, C{--reload}, C{--workers},
C{--log-format}, C{--access-log} under a daemonizing C{twistd}, C{--app} for
its messages); what the process runs is built in L{twsgi.process.build}.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import gc
import os
import platform
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from typing import Any

import attrs
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure

import twisted
from twsgi import __version__
from twsgi.config.apploader import AppLoadError
from twsgi.config.model import ServerConfig
from twsgi.config.resolve import (
    ConfigError,
    inertSettings,
    resolveSources,
    supervised,
    unknownVariables,
    withSource,
)
from twsgi.config.settings import SETTINGS, SETTINGS_BY_NAME, Setting
from twsgi.config.toml import renderConfig
from twsgi.lifecycle.drain import ExitStatus
from twsgi.lifecycle.service import TwsgiService
from twsgi.lifecycle.signals import Mode, ProcessSignals, ignoredWhileLoading
from twsgi.logs.serverlog import applyLogFormat, jsonLogObserver
from twsgi.process.build import (
    changeDirectory,
    checkApp,
    checkShared,
    cpusFromConfig,
    fromChdir,
    metricsDirectoryFromConfig,
    newAccessLogPath,
    pinFromConfig,
    serviceFromConfig,
    supervisorFromConfig,
    watchRequests,
    workerLinkFromConfig,
)
from twsgi.process.reload import NEEDS_HUPPER
from twsgi.process.workers import (
    WORKER_FDS,
    WORKER_PIPE,
    WORKER_SETTINGS,
    Supervisor,
    WorkerLink,
    ignoreSupervisorSignals,
    workerEnvironment,
)
from twsgi.server.inherit import InheritedEndpoint

_log = Logger(namespace="twsgi")


def _helpText(setting: Setting) -> str:
    text = setting.help
    if setting.defaultText is not None:
        text += f" [default: {setting.defaultText}]"
    return text + f" [env: {setting.envvar}]"


def _multiOption(setting: Setting) -> Any:
    def option(self: Any, value: str) -> None:
        self.given.setdefault(setting.name, []).append(value)

    option.__doc__ = _helpText(setting)
    return option


def versionLine() -> str:
    """
    What C{--version} prints: C{twsgi X.Y.Z (Twisted A.B.C, Python D.E.F)}.
    """
    return (
        f"twsgi {__version__} (Twisted {twisted.__version__}, "
        f"Python {platform.python_version()})"
    )


_HELP_COLUMN = 28
"""
Where the help text of an option starts in C{--help}; an option with a
longer placeholder gets its help on the next line.
"""


def _optionHelp(option: str, text: str, width: int) -> str:
    """
    One option of C{--help}: C{option} (with its placeholder) and its help
    text wrapped to C{width} columns.
    """
    lines = textwrap.wrap(text, max(width - _HELP_COLUMN, 30))
    head = f"  {option}"
    if len(head) + 2 <= _HELP_COLUMN and lines:
        head = head.ljust(_HELP_COLUMN) + lines.pop(0)
    return "\n".join([head, *(" " * _HELP_COLUMN + line for line in lines)]) + "\n"


def _usageHint(error: str) -> str:
    """
    A usage error, with the closest known flag when a flag was mistyped, and
    where to find the others.
    """
    match = re.match(r"option (--?[\w-]+) not recognized", error)
    if match is not None:
        flags = ["--" + s.flag for s in SETTINGS] + ["--help", "--version"]
        close = difflib.get_close_matches(match.group(1), flags, n=1)
        if close:
            return f"{error}; did you mean {close[0]}?"
    if "did you mean" in error:
        return error
    return f"{error} (--help lists the options)"


def _makeOptions() -> type[usage.Options]:
    """
    Generate the L{usage.Options} class from the settings table.
    """
    namespace: dict[str, Any] = {
        "optParameters": [
            [s.flag, None, None, _helpText(s)]
            for s in SETTINGS
            if not s.multiple and not s.switch
        ],
        "optFlags": [[s.flag, None, _helpText(s)] for s in SETTINGS if s.switch],
        "synopsis": "[options] --app MODULE:ATTR",
        # Set by twsgi.cli.main: the program name for the usage line.
        "program": None,
        "longdesc": (
            "Serve a WSGI application on Twisted endpoints.  Every option can "
            "also be set through its TWSGI_* environment variable."
        ),
    }
    for s in SETTINGS:
        if s.multiple:
            namespace["opt_" + s.flag.replace("-", "_")] = _multiOption(s)

    def __init__(self: Any) -> None:
        usage.Options.__init__(self)
        self.given = {}

    def postOptions(self: Any) -> None:
        for s in SETTINGS:
            if s.multiple:
                continue
            value = self[s.flag]
            if s.switch:
                if value:
                    self.given[s.name] = True
            elif value is not None:
                self.given[s.name] = value

    def opt_version(self: Any) -> None:
        """
        Print twsgi's version, with Twisted's and Python's, and exit.
        """
        print(versionLine())
        sys.exit(0)

    def getUsage(self: Any, width: int | None = None) -> str:
        # Twisted's usage.Options prints a valued option as --threads=, with
        # no room for a placeholder: list the settings table's own, section
        # by section as the settings reference does.
        if not width:
            columns = os.environ.get("COLUMNS", "")
            width = int(columns) if columns.isdigit() and int(columns) > 0 else 80
        sections: dict[str, list[str]] = {}
        for s in SETTINGS:
            option = f"--{s.flag}" if s.switch else f"--{s.flag} {s.metavar}"
            sections.setdefault(s.section, []).append(
                _optionHelp(option, _helpText(s), width)
            )
        flags = {s.flag for s in SETTINGS}
        shorts = {long: short for short, long in self.synonyms.items() if short != long}
        sections["Other"] = [
            _optionHelp(
                f"-{shorts[name]}, --{name}" if name in shorts else f"--{name}",
                " ".join(self.docs[name].split()),
                width,
            )
            for name in sorted(self.docs, key=str.lower)
            if len(name) > 1 and name not in flags
        ]
        text = "\n" + "\n".join(textwrap.wrap(self.longdesc, width)) + "\n"
        for section, options in sections.items():
            text += f"\n{section}:\n" + "".join(options)
        return text

    def getSynopsis(self: Any) -> str:
        # Run by python -m twsgi or the twsgi script (see twsgi.cli.main), the
        # runner's "[options] plugin [plugin_options] twsgi" part of the
        # usage line names nothing the user can type.
        if self.program:
            return f"Usage: {self.program} {self.synopsis}"
        return usage.Options.getSynopsis(self)

    def parseOptions(self: Any, options: Any = None) -> None:
        # An unknown or incomplete option is one line, not the whole --help
        # that twistd and twist print with a usage error.
        try:
            usage.Options.parseOptions(self, options)
        except usage.UsageError as e:
            raise SystemExit(f"twsgi: {_usageHint(str(e))}")
        except BrokenPipeError:
            # --help or --version into a reader that left (| head), under
            # any runner: no traceback, and none when Python flushes
            # standard output at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(1)

    def parseArgs(self: Any, *args: str) -> None:
        if args:
            hint = f"; did you mean --app {args[0]}?" if ":" in args[0] else ""
            raise usage.UsageError(
                f"unexpected argument {args[0]!r} (options start with --){hint}"
            )

    namespace["__init__"] = __init__
    namespace["postOptions"] = postOptions
    namespace["parseOptions"] = parseOptions
    namespace["getSynopsis"] = getSynopsis
    namespace["getUsage"] = getUsage
    namespace["opt_version"] = opt_version
    namespace["opt_V"] = opt_version
    namespace["opt_h"] = usage.Options.opt_help
    namespace["parseArgs"] = parseArgs
    namespace["__doc__"] = "The twsgi command line, generated from the settings."
    return type("Options", (usage.Options,), namespace)


Options = _makeOptions()


def _logFileIsStandardError(runner: Mapping[str, Any] | None) -> bool:
    """
    Whether the server log of the runner whose options are C{runner} is
    written to the file that standard error is too: one terminal, or the one
    stream that systemd gives a service for both.
    """
    if runner is None:
        return False
    try:
        if "logFile" in runner:
            # twist, and so twsgi and python -m twsgi.
            logged = os.fstat(runner["logFile"].fileno())
        elif runner.get("nodaemon") and runner.get("logfile") in (None, "", "-"):
            # twistd -n, which logs to standard output.
            logged = os.fstat(1)
        else:
            return False
        stderr = os.fstat(2)
    except (AttributeError, OSError, ValueError):
        return False
    return (logged.st_dev, logged.st_ino) == (stderr.st_dev, stderr.st_ino)


def _sayFailed(runner: Mapping[str, Any] | None, line: str) -> None:
    """
    Write the one line of a start that failed once the log began on
    standard error (under twistd the log is already writing to its log file
    by now), unless the log, which says it too, goes there already.
    """
    stderr = sys.__stderr__
    if stderr is not None and not _logFileIsStandardError(runner):
        stderr.write(f"twsgi: {line}\n")
        stderr.flush()


def _sayListenFailed(runner: Mapping[str, Any] | None) -> Callable[[Failure], None]:
    """
    An errback that says (L{_sayFailed}) why a listener failed.
    """
    return lambda failure: _sayFailed(runner, str(failure.value))


def _supervisor(
    config: ServerConfig,
    given: Mapping[str, Any],
    reactor: Any,
    runner: Mapping[str, Any] | None,
) -> Supervisor:
    """
    The supervisor of C{--workers N}: it binds the endpoints (checked by
    L{checkShared}) and starts the workers.
    """
    status = ExitStatus(reactor)

    def failed(code: int) -> None:
        if supervisor.workersFailed is not None:
            # The log has each worker's error, and the application's
            # traceback.
            _sayFailed(runner, supervisor.workersFailed)
        status.fail(reactor, code)

    supervisor = supervisorFromConfig(
        config,
        reactor,
        given,
        onFailure=failed,
        metricsDirectory=metricsDirectoryFromConfig(config, os.environ),
    )
    # The supervisor binds relative unix: paths where a worker, which
    # applies --chdir itself (it is started from here), finds them.
    changeDirectory(config)
    supervisor.whenListening.addErrback(_sayListenFailed(runner))
    _log.info(
        "twsgi {version} on Twisted {twisted}: supervising {count} workers of {app}",
        version=__version__,
        twisted=twisted.__version__,
        count=supervisor.count,
        app=config.app,
    )
    return supervisor


def _daemonizing(runner: Mapping[str, Any] | None) -> bool:
    """
    Whether the runner whose options are C{runner} is C{twistd} without
    C{-n}: it will daemonize, with standard output on /dev/null.
    """
    return runner is not None and "nodaemon" in runner and not runner["nodaemon"]


def _checkTwistdFiles(runner: Mapping[str, Any] | None, config: ServerConfig) -> None:
    """
    Under C{twistd}, check that the files it writes once the service is
    built can be written: its C{--logfile} (opened next) and C{--pidfile}
    (written as the service starts), read from C{--chdir} as twistd then
    reads them.  Else twistd fails with a traceback in its log, and as a
    daemon with "An error has occurred" too.

    @param runner: the runner's options, or C{None}.
    @raise ConfigError: naming the file and why it cannot be written.
    """
    if runner is None or "nodaemon" not in runner:
        return
    logfile = runner.get("logfile")
    given = {
        "--pidfile": runner.get("pidfile"),
        # As twistd's own logger chooses its file.
        "--logfile": None
        if logfile == "-" or (not logfile and runner["nodaemon"])
        else logfile or "twistd.log",
    }
    base = fromChdir(config)
    for flag, name in given.items():
        if not name:
            continue
        # twistd writes its pid file once it has changed to --rundir.
        rundir = (runner.get("rundir") or "") if flag == "--pidfile" else ""
        path = os.path.join(base, rundir, name)
        if os.path.isdir(path):
            error = errno.EISDIR
        elif not os.path.isdir(os.path.dirname(path)):
            error = errno.ENOENT
        elif not os.access(
            path if os.path.exists(path) else os.path.dirname(path), os.W_OK
        ):
            error = errno.EACCES
        else:
            continue
        raise ConfigError(f"twistd {flag} {name!r}: {os.strerror(error)}")


def commandLine(given: Mapping[str, Any]) -> list[str]:
    """
    The command-line arguments that give the settings C{given} (setting
    name to its raw value, as L{Options} collects them).
    """
    args = []
    for name, value in given.items():
        setting = SETTINGS_BY_NAME[name]
        if setting.switch:
            args += [f"--{setting.flag}"] if value else []
            continue
        for item in value if setting.multiple else [value]:
            args.append(f"--{setting.flag}={item}")
    return args


def _checkBeforeDaemon(given: Mapping[str, Any]) -> None:
    """
    Under a daemonizing C{twistd}, check the application of C{--workers N}
    as its workers will load it, in a C{python -m twsgi --check-config}
    child (the supervisor runs none of the application's code): an
    application that raises while it is imported would otherwise fail in
    every worker once twistd has become a daemon and exited 0.

    @raise SystemExit: with status 1, after writing out what the check
        wrote on standard error (the traceback and the one line), if it
        failed.
    """
    check = subprocess.run(
        [sys.executable, "-m", "twsgi", *commandLine(given), "--check-config"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if check.returncode:
        sys.stderr.write(check.stderr)
        raise SystemExit(1)


def daemonAccessLog(logfile: str | None) -> str:
    """
    Where the access log goes by default under a daemonizing C{twistd}:
    beside its log file (C{--logfile}, by default C{twistd.log}), named
    after it: C{twistd-access.log}, C{/var/log/app-access.log} beside
    C{/var/log/app.log}.
    """
    base = os.path.abspath(logfile or "twistd.log")
    if base.endswith(".log"):
        base = base[: -len(".log")]
    return base + "-access.log"


def _warnNotApplied(
    config: ServerConfig, logApplied: bool, runner: Mapping[str, Any] | None
) -> None:
    """
    Under C{twistd} or C{twist}, warn about the settings that only
    C{twsgi.cli.main} applies.

    @param logApplied: whether C{--log-format} could be applied.
    @param runner: the runner's options, or C{None}.
    """
    # twistd's --logger option holds the factory it named.
    chosen = runner is not None and runner.get("logger") is jsonLogObserver
    if config.log_format != "text" and not logApplied and not chosen:
        # twistd sets up its log before it makes the service.
        _log.warn(
            "--log-format {logFormat} cannot be applied under twistd, which "
            "opened its log before twsgi read its settings: pass twistd "
            "--logger twsgi.logs.serverlog.jsonLogObserver",
            logFormat=config.log_format,
        )
    if config.reload:
        _log.warn(
            "--reload is applied by twsgi and python -m twsgi only: "
            "under twistd or twist, nothing reloads the application"
        )


def makeService(options: Mapping[str, Any], reactor: Any = None) -> TwsgiService:
    """
    The C{twistd} plugin's entry point: resolve the settings (command line,
    then C{TWSGI_*}), load the application and build the service.

    An operator mistake ends the process with one line on standard error and
    exit status 1 (L{SystemExit}); an application's own traceback, if it has
    one, is printed once before that line.
    """
    if reactor is None:
        from twisted.internet import reactor as installed

        reactor = installed
    given = dict(getattr(options, "given", options))
    worker = workerEnvironment(os.environ)
    link = None
    sources: dict[str, str] = {}
    newAccessLog = None
    try:
        if worker is not None:
            fds, pipe, settings = worker
            given = {**settings, **given}
            ignoreSupervisorSignals()
        config, sources = resolveSources(given, os.environ)
        if hasattr(options, "given"):
            # For twsgi.cli.main, which applies --reload.
            options.reloading = config.reload  # type: ignore[attr-defined]
        if worker is None:
            internal = (WORKER_FDS, WORKER_PIPE, WORKER_SETTINGS)
            warnings = unknownVariables(os.environ, internal)
            for line in [*warnings, *inertSettings(config, sources)]:
                if config.check_config or config.print_config:
                    sys.stderr.write(f"twsgi: {line}\n")
                else:
                    _log.warn("{line}", line=line)
        withWorkers = supervised(config, sources)
        if config.reload and withWorkers:
            raise ConfigError(
                "--reload runs one process: it cannot be combined with "
                f"--workers {config.workers}"
            )
        if (
            config.reload
            and config.check_config
            and getattr(options, "twsgiMain", False)
        ):
            # The reload happens after the check (twsgi.cli.main): say here
            # what it would say.
            try:
                import hupper  # noqa: F401
            except ImportError:
                raise ConfigError(NEEDS_HUPPER)
        if config.print_config:
            sys.stdout.write(renderConfig(config, sources))
            sys.stdout.flush()
            raise SystemExit(0)
        runner = getattr(options, "parent", None)
        _checkTwistdFiles(runner, config)
        logApplied = applyLogFormat(runner, config.log_format)
        if runner is not None and _daemonizing(runner) and config.access_log == "-":
            # Standard output is /dev/null once twistd daemonizes.
            path = daemonAccessLog(runner["logfile"])
            given["access_log"] = path
            config = attrs.evolve(config, access_log=path)
            _log.info(
                "twistd runs as a daemon: the access log goes to {path} "
                "(--access-log PATH chooses another file)",
                path=path,
            )
        if config.check_config:
            newAccessLog = newAccessLogPath(config)
        # A CPU this process may not run on is a mistake here already.
        cpusFromConfig(config)
        if worker is None and withWorkers:
            checkApp(config)
            checkShared(config, reactor)
            if _daemonizing(runner) and not config.check_config:
                _checkBeforeDaemon(given)
            if not config.check_config:
                supervisor = _supervisor(config, given, reactor, runner)
                supervisor.startFailureRaises = _daemonizing(runner)
                return supervisor  # type: ignore[return-value]
            # The application is imported below as a worker imports it: a
            # worker (python -m twsgi, started here) has this on its path.
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
        if worker is None:
            loading = ignoredWhileLoading() if runner is not None else nullcontext()
            with loading:
                service = serviceFromConfig(config, reactor)
        else:
            inherited = iter(fds)
            link = workerLinkFromConfig(config, pipe)
            # The worker's log goes to the supervisor's, which adds its pid.
            applyLogFormat(runner, config.log_format, link.logObserver)
            service = serviceFromConfig(
                config,
                reactor,
                endpointFor=lambda r, d, parse: InheritedEndpoint(
                    r, d, next(inherited), parse
                ),
                # Without --max-requests it has nothing to count: no
                # access record is made for it.
                observers=[link] if link.limit else [],
            )
            service.signals = ProcessSignals(reactor, service, Mode.WORKER)
            # Gone supervisor: leave, as when retired, refusing new
            # connections in its place.
            link.watchSupervisor(reactor, service.orphaned)
        if config.check_config:
            sys.stdout.write(f"twsgi: configuration OK (application {config.app})\n")
            sys.stdout.flush()
            raise SystemExit(0)
        pinFromConfig(config)
    except KeyboardInterrupt:
        # Ctrl-C while a large application loads: no traceback.
        sys.stderr.write("twsgi: interrupted while loading the application\n")
        raise SystemExit(128 + signal.SIGINT)
    except (AppLoadError, ConfigError) as e:
        error = withSource(str(e), sources)
        details = getattr(e, "details", None) or ""
        if worker is not None:
            # The supervisor logs it, once for all workers that fail alike.
            WorkerLink(worker[1]).failed(error, details)
            raise SystemExit(1)
        if details:
            sys.stderr.write(details)
        raise SystemExit(f"twsgi: {error}")
    finally:
        if newAccessLog is not None:
            # --check-config opened it to check it: a file it made (as root,
            # say) could keep the server's user from opening it later.
            with contextlib.suppress(OSError):
                if os.path.getsize(newAccessLog) == 0:
                    os.remove(newAccessLog)

    # This process is ours: its signals are twsgi's (see twsgi.lifecycle.signals),
    # and the exit status says whether the drain cut requests off.
    service.handleSignals = True
    # A daemonizing twistd has detached when the service listens: an error
    # raised there reaches the twistd command, which then exits 1 with it.
    service.startFailureRaises = _daemonizing(runner)
    if not getattr(options, "twsgiMain", False):
        _warnNotApplied(config, logApplied, runner)
    watchRequests(service, config, link)
    if link is not None:
        # Ready once the reactor runs: its stop signal handlers are then
        # installed, so that a SIGTERM the supervisor sends as soon as it
        # hears (see Supervisor.stopService) drains this worker.
        service.whenListening.addCallback(
            lambda listening: reactor.callWhenRunning(link.ready, listening)
        )
    # The service logs it and ends the process (handleSignals).
    service.whenListening.addErrback(_sayListenFailed(runner))
    # Everything made until the reactor runs (Twisted, the application and
    # its modules) lives as long as the process: keep it out of the cyclic
    # collector's full passes, which otherwise stop every request for a
    # good part of a second in a large application (and ~0.2 s even in a
    # small one).
    reactor.callWhenRunning(gc.freeze)
    _log.info(
        "twsgi {version} on Twisted {twisted}, Python {python}",
        version=__version__,
        twisted=twisted.__version__,
        python=sys.version.split()[0],
    )
    return service


__all__ = ["Options", "commandLine", "makeService", "serviceFromConfig", "versionLine"]
