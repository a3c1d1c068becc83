# -*- test-case-name: tests.config.test_toml -*-
"""
C{--config twsgi.toml}: settings from a TOML file, read with the standard
library's C{tomllib}, with the same schema as the command line.

Each key is a setting's name (C{access_log}) or its flag (C{access-log});
each value is what the command line would take, as a TOML string, number or
boolean, and a list for a repeatable setting::

    app = "myproject.wsgi:application"
    endpoint = ["tcp:8000:interface=127.0.0.1", "unix:/run/twsgi.sock"]
    threads = "4:32"
    access-log-format = "json"
    health-endpoint = ["tcp:9000:interface=127.0.0.1"]

The precedence is: command line, then C{TWSGI_*}, then this file, then the
defaults.  C{--config} itself comes from the command line or C{TWSGI_CONFIG}.
"""

from __future__ import annotations

import codecs
import difflib
import errno
import os
import sys
from collections.abc import Mapping
from typing import Any

from twsgi.config.model import ServerConfig
from twsgi.config.settings import SETTINGS, SETTINGS_BY_NAME, Setting

NOT_IN_FILE = frozenset({"config", "check_config", "print_config"})
"""
Settings that only the command line or the environment can give.
"""


class ConfigFileError(ValueError):
    """
    A config file cannot be read or holds a bad key; C{str()} is one line.
    """


def _text(
    setting: Setting, key: str, value: object, path: str
) -> str | list[str] | bool:
    """
    The command-line form of a TOML value: text, a list of texts, or a
    boolean for a switch.
    """
    where = f"{path}, key {key!r}"
    if isinstance(value, bool):
        if setting.switch:
            return value
        # Not the text "false": access-log = false would write the access
        # log to a file of that name.
        raise ConfigFileError(
            f"--{setting.flag} (from {where}): expected {setting.metavar}, "
            f"not the boolean {'true' if value else 'false'}"
        )
    if isinstance(value, (int, float, str)):
        return [str(value)] if setting.multiple else str(value)
    if isinstance(value, list) and setting.multiple:
        items = []
        for item in value:
            if not isinstance(item, (int, float, str)) or isinstance(item, bool):
                raise ConfigFileError(
                    f"--{setting.flag} (from {where}): {item!r} is not a string"
                )
            items.append(str(item))
        return items
    kind = "a list" if isinstance(value, list) else type(value).__name__
    raise ConfigFileError(
        f"--{setting.flag} (from {where}): expected "
        + ("a string or a list of strings" if setting.multiple else "one value")
        + f", not {kind}"
    )


def _unknownKeyHint(key: str) -> str:
    """
    The setting an unknown key probably meant, written as the key is (with
    C{_} or C{-}), or else the keys there are.
    """
    inFile = [s for s in SETTINGS if s.name not in NOT_IN_FILE]
    close = difflib.get_close_matches(
        key.replace("-", "_"), [s.name for s in inFile], n=1
    )
    if close:
        meant = close[0] if "_" in key else SETTINGS_BY_NAME[close[0]].flag
        return f"did you mean {meant!r}?"
    return "known: " + ", ".join(s.flag for s in inFile)


def parseConfigFile(data: Mapping[str, Any], path: str) -> dict[str, Any]:
    """
    Pure: turn the TOML table of a config file into raw setting values, as
    the command line would give them.

    @return: setting name to C{(raw value, key)}.
    @raise ConfigFileError: on an unknown key, a key given twice (as name
        and flag), or a value of the wrong shape.
    """
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        setting = SETTINGS_BY_NAME.get(name)
        if setting is None or name in NOT_IN_FILE:
            reason = (
                "can only be given on the command line or in the environment"
                if setting is not None
                else f"is not a setting ({_unknownKeyHint(key)})"
            )
            raise ConfigFileError(f"{path}: key {key!r} {reason}")
        if name in values:
            raise ConfigFileError(f"{path}: key {key!r} is given twice")
        values[name] = (_text(setting, key, value, path), key)
    return values


def loadConfigFile(path: str) -> dict[str, Any]:
    """
    Read a config file.

    @return: as L{parseConfigFile}.
    @raise ConfigFileError: if the file cannot be read or parsed, or holds a
        bad key.
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib  # type: ignore[import-not-found,no-redef]
    try:
        with open(path, "rb") as f:
            raw = f.read()
        data = tomllib.loads(raw.decode())
    except OSError as e:
        where = ""
        if e.errno == errno.ENOENT and not os.path.isabs(path):
            # Read before --chdir, which the file itself may set.
            where = f" (read from {os.getcwd()!r}, before any --chdir)"
        raise ConfigFileError(f"--config {path!r}: {e.strerror}{where}")
    except tomllib.TOMLDecodeError as e:
        if raw.startswith(codecs.BOM_UTF8):
            # Invisible in an editor: tomllib's "at line 1, column 1" shows
            # nothing wrong there.
            raise ConfigFileError(
                f"{path}: not valid TOML: it begins with a byte order mark "
                "(save it as UTF-8 without one)"
            )
        raise ConfigFileError(f"{path}: not valid TOML: {e}")
    except UnicodeDecodeError as e:
        raise ConfigFileError(
            f"{path}: not valid TOML: not UTF-8"
            f" (byte 0x{e.object[e.start]:02x} at offset {e.start})"
        )
    return parseConfigFile(data, path)


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    text = str(value)
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = "".join(c if c.isprintable() else f"\\U{ord(c):08x}" for c in escaped)
    return f'"{escaped}"'


def renderValue(setting: Setting, value: Any) -> str | None:
    """
    The TOML text of a resolved value, in the form the setting takes, or
    C{None} for an unset one.  A value of C{None} away from a default that is
    something (C{--ready-queue-limit none}) was given as C{"none"}, and is
    written so: left unset, the file would give the default.
    """
    if value is None:
        return None if setting.default is None else _toml("none")
    if setting.switch:
        return _toml(bool(value))

    def one(item: object) -> object:
        if isinstance(item, tuple):
            joiner = "=" if any(isinstance(i, str) for i in item) else ":"
            return joiner.join(str(i) for i in item)
        return item

    if setting.multiple:
        return _toml([one(item) for item in value])
    return _toml(one(value))


def renderConfig(config: ServerConfig, sources: Mapping[str, str]) -> str:
    """
    The resolved settings as a TOML config file, each with its source as a
    comment; C{--print-config} prints this.
    """
    lines = []
    for setting in SETTINGS:
        if setting.name in NOT_IN_FILE:
            continue
        text = renderValue(setting, getattr(config, setting.name))
        source = sources.get(setting.name, "default")
        if text is None:
            lines.append(f"# {setting.name} is not set")
        elif setting.name == "workers" and setting.name not in sources:
            # Given at all, even 1, it runs a supervisor (see --workers):
            # the file must not turn one process into a supervised one.
            lines.append(
                f"# workers = {text}  # default: one process; any workers "
                "value runs a supervisor"
            )
        else:
            lines.append(f"{setting.name} = {text}  # {source}")
    return "\n".join(lines) + "\n"


__all__ = [
    "NOT_IN_FILE",
    "ConfigFileError",
    "loadConfigFile",
    "parseConfigFile",
    "renderConfig",
    "renderValue",
]
