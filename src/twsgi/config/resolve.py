# -*- test-case-name: tests.config.test_resolve -*-
"""
Resolve settings from their sources into one frozen L{ServerConfig}.

The precedence is: command line, then C{TWSGI_*} environment variables, then
the C{--config} file (L{twsgi.config.toml}), then the defaults in
L{twsgi.config.settings.SETTINGS}.  Every error names the setting
and the source it came from, in one line.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Collection, Mapping
from typing import Any

from twsgi.config.model import ServerConfig
from twsgi.config.settings import SETTINGS, SETTINGS_BY_NAME, Setting


class ConfigError(Exception):
    """
    A setting has a value that cannot be used.  C{str()} of it is one line
    for the operator.
    """


def _convert(setting: Setting, raw: Any, source: str) -> object:
    """
    Convert C{raw} (text, or a list of texts for a repeatable setting) with
    the setting's converter, naming the setting and C{source} on failure.
    """
    try:
        if setting.multiple:
            if isinstance(raw, str):
                raw = raw.split()
            return tuple(setting.convert(item) for item in raw)
        if setting.switch and isinstance(raw, bool):
            return raw
        return setting.convert(raw)
    except ValueError as e:
        raise ConfigError(f"--{setting.flag} (from {source}): {e}")


def resolveConfig(
    commandLine: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> ServerConfig:
    """
    Build a L{ServerConfig} from the command line, the environment and the
    C{--config} file.  See L{resolveSources}.
    """
    return resolveSources(commandLine, environ)[0]


def _configFile(
    commandLine: Mapping[str, Any], environ: Mapping[str, str]
) -> tuple[str | None, dict[str, Any]]:
    """
    The path of the C{--config} file (command line, then C{TWSGI_CONFIG})
    and its raw values.
    """
    from twsgi.config.toml import ConfigFileError, loadConfigFile

    path = commandLine.get("config") or environ.get("TWSGI_CONFIG") or None
    if path is None:
        return None, {}
    try:
        return path, loadConfigFile(path)
    except ConfigFileError as e:
        raise ConfigError(str(e))


def resolveSources(
    commandLine: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> tuple[ServerConfig, dict[str, str]]:
    """
    Build a L{ServerConfig} from the command line, the environment and the
    C{--config} file, and say where each value came from.

    @param commandLine: setting name to raw value, for the settings given on
        the command line only (text, a list of texts for repeatable
        settings, or C{True} for a switch).
    @param environ: the process environment; C{TWSGI_*} variables are read
        from it.
    @return: the config, and setting name to its source (C{"the command
        line"}, C{"$TWSGI_X"}, or the file's path and key) for the settings
        not at their defaults.
    @raise ConfigError: if a value is bad or a name is unknown.
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    environ = environ or {}
    unknown = set(commandLine) - set(SETTINGS_BY_NAME)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    path, fromFile = _configFile(commandLine, environ)
    for setting in SETTINGS:
        if setting.name in commandLine:
            sources[setting.name] = "the command line"
            values[setting.name] = _convert(
                setting, commandLine[setting.name], "the command line"
            )
        elif setting.envvar in environ:
            if setting.multiple and not environ[setting.envvar].split():
                # Whitespace-separated values, none given: not set.
                continue
            sources[setting.name] = f"${setting.envvar}"
            values[setting.name] = _convert(
                setting, environ[setting.envvar], f"${setting.envvar}"
            )
        elif setting.name in fromFile:
            raw, key = fromFile[setting.name]
            sources[setting.name] = f"{path}, key {key!r}"
            values[setting.name] = _convert(setting, raw, sources[setting.name])
    if values.get("bind") and "endpoint" not in values:
        # --bind replaces the default endpoint, as --endpoint does.
        values["endpoint"] = ()
        sources["endpoint"] = "--bind, which replaces the default"
    if values.get("endpoint", True) == () and not values.get("bind"):
        # Only a config file can say "endpoint = []": an empty TWSGI_ENDPOINT
        # is not set, and --endpoint takes no empty string.
        raise ConfigError(
            f"{_flagFrom(SETTINGS_BY_NAME['endpoint'], sources)}: no endpoint "
            "leaves the application listening nowhere: name one, give bind, or "
            f"leave the key out for the default {ServerConfig().endpoint[0]}"
        )
    if values.get("check_config") and values.get("print_config"):
        # Each ends the command; --print-config would win, unchecked.
        raise ConfigError(
            f"{_flagFrom(SETTINGS_BY_NAME['check_config'], sources)} and "
            f"{_flagFrom(SETTINGS_BY_NAME['print_config'], sources)} cannot be "
            "combined: each ends the command (--print-config checks nothing "
            "but the values); give one of them"
        )
    return ServerConfig(**values), sources


def unknownVariables(
    environ: Mapping[str, str], ignore: Collection[str] = ()
) -> list[str]:
    """
    One line for each C{TWSGI_*} variable of C{environ} that is no setting
    (nor in C{ignore}), naming the setting it probably meant: such a
    variable is ignored, and a typo must not go unnoticed.
    """
    known = {setting.envvar for setting in SETTINGS}
    lines = []
    for name in sorted(environ):
        if not name.startswith("TWSGI_") or name in known or name in ignore:
            continue
        # Compared without the common prefix, which would make any two
        # names look alike.
        close = difflib.get_close_matches(
            name[len("TWSGI_") :], [k[len("TWSGI_") :] for k in known], n=1
        )
        hint = f" (did you mean $TWSGI_{close[0]}?)" if close else ""
        lines.append(f"ignoring ${name}: no such setting{hint}")
    return lines


def supervised(config: ServerConfig, sources: Mapping[str, str]) -> bool:
    """
    Whether C{config} runs a supervisor and its workers: C{--workers} given
    at all, even as 1.

    @param sources: as returned by L{resolveSources}.
    """
    return config.workers > 1 or "workers" in sources


_RECYCLING = (
    "max_requests",
    "max_requests_jitter",
    "max_worker_memory",
    "worker_lifetime",
)


def inertSettings(config: ServerConfig, sources: Mapping[str, str]) -> list[str]:
    """
    One line for each setting given a value that nothing uses, so that an
    operator who set it does not believe it works.

    @param sources: as returned by L{resolveSources}.
    """

    def named(name: str) -> str:
        return _flagFrom(SETTINGS_BY_NAME[name], sources)

    lines = []
    if config.access_log_rotate is not None and config.access_log in ("-", "none"):
        where = (
            "goes to standard output, not to a file (--access-log PATH)"
            if config.access_log == "-"
            else "is off (--access-log none)"
        )
        lines.append(
            f"{named('access_log_rotate')} has no effect: the access log {where}"
        )
    health = config.health_endpoint or config.metrics_endpoint or config.health_on_app
    limit = config.ready_queue_limit
    # Given at its default (as --print-config writes it), it asks for nothing.
    if limit != ServerConfig().ready_queue_limit and not health:
        lines.append(
            f"{named('ready_queue_limit')} has no effect: no listener answers "
            "the health paths (add --health-endpoint, --metrics-endpoint or "
            "--health-on-app)"
        )
    elif isinstance(limit, int) and 0 < config.max_pending <= limit:
        lines.append(
            f"{named('ready_queue_limit')} {limit} has no effect: "
            f"{named('max_pending')} {config.max_pending} refuses requests "
            f"before more than {limit} wait (leave it out, and readiness "
            "reports 503 while requests are refused)"
        )
    for entry in config.pythonpath:
        # Read from --chdir, as the application is imported.
        directory = os.path.join(os.getcwd(), config.chdir or "", entry)
        if not os.path.isdir(directory):
            lines.append(
                f"{named('pythonpath')} {entry!r} has no effect: "
                f"{os.path.normpath(directory)!r} is not a directory"
            )
    if not supervised(config, sources):
        for name in _RECYCLING:
            if getattr(config, name):
                lines.append(
                    f"{named(name)} has no effect: it replaces worker processes, "
                    "and without --workers one process serves by itself "
                    "(--workers 1 runs one worker under a supervisor)"
                )
    if config.request_timeout_action == "recycle":
        if not config.request_timeout:
            lines.append(
                f"{named('request_timeout_action')} has no effect: no "
                "--request-timeout is set"
            )
        elif not supervised(config, sources):
            lines.append(
                f"{named('request_timeout_action')} has no effect: recycle needs "
                "a supervisor (--workers N, 1 or more); stuck requests are only "
                "logged"
            )
    return lines


def _flagFrom(setting: Setting, sources: Mapping[str, str]) -> str:
    """
    C{--flag (from SOURCE)}, or C{--flag} for a setting at its default.
    """
    flag = "--" + setting.flag
    source = sources.get(setting.name)
    return f"{flag} (from {source})" if source else flag


_FLAG = re.compile(r"^--([a-z0-9-]+):? (?=['\"])")


def withSource(message: str, sources: Mapping[str, str]) -> str:
    """
    Name the source of the setting an error line begins with, for errors
    found once the settings are resolved (a malformed endpoint, a missing
    directory, an application that does not load): C{--endpoint 'x': why}
    becomes C{--endpoint (from SOURCE): 'x': why}, as L{resolveSources}
    writes its own errors.  A line that does not quote the setting's value
    (the value is not at fault), or whose setting is at its default, is
    returned as it is.

    @param sources: as returned by L{resolveSources}.
    """
    match = _FLAG.match(message)
    if match is None:
        return message
    setting = SETTINGS_BY_NAME.get(match.group(1).replace("-", "_"))
    if setting is None or setting.name not in sources:
        return message
    return f"{_flagFrom(setting, sources)}: {message[match.end() :]}"


__all__ = [
    "ConfigError",
    "inertSettings",
    "resolveConfig",
    "resolveSources",
    "supervised",
    "unknownVariables",
    "withSource",
]
