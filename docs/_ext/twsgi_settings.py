"""
Generate the settings reference page from L{twsgi.config.settings.SETTINGS}.

Nothing about a setting is written by hand in the docs: at every build,
L{writeSettingsReference} renders the table into C{docs/settings.rst} (which
is git-ignored), one section per L{Setting.section}, in the table's order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from twsgi.config.settings import SETTINGS, Setting
from twsgi.config.toml import NOT_IN_FILE

_QUOTED = re.compile(r"(?<!\w)'([^']+?)'(?!\w)")
_SPECIAL = re.compile(r"([\\`*_|\[\]<>])")

_INTRO = """\
Settings reference
==================

.. This page is generated from twsgi.config.settings.SETTINGS at every build by
   docs/_ext/twsgi_settings.py.  Change the table, not this file.

.. program:: twsgi

Every setting is an option of ``twistd twsgi``, ``twist twsgi`` and
``python -m twsgi`` (they take the same options), and can also be set through
its ``TWSGI_*`` environment variable and, for most, a key of the TOML file
that :option:`--config` names.  The command line wins over the environment,
the environment over the config file, and the config file over the default.

A repeatable option is given several times on the command line; in its
environment variable, the values are separated by whitespace, and in the
config file they are a list.  An on/off switch takes ``1``/``0``,
``true``/``false``, ``yes``/``no`` or ``on``/``off`` in the environment, and
a boolean in the config file.
"""


def _inline(text: str) -> str:
    """
    Render a help sentence as reStructuredText: text in single quotes becomes
    a literal, and everything else is escaped.
    """
    parts = []
    position = 0
    for match in _QUOTED.finditer(text):
        parts.append(_SPECIAL.sub(r"\\\1", text[position : match.start()]))
        parts.append(f"``{match.group(1)}``")
        position = match.end()
    parts.append(_SPECIAL.sub(r"\\\1", text[position:]))
    return "".join(parts)


def _settingEntry(setting: Setting) -> str:
    signature = f"--{setting.flag}"
    if not setting.switch:
        signature += f" <{setting.metavar}>"
    if setting.switch:
        default = "off"
    elif setting.defaultText is None:
        default = "not set"
    else:
        default = f"``{setting.defaultText}``"
    lines = [
        f".. option:: {signature}",
        "",
        f"   .. envvar:: {setting.envvar}",
        "",
        f"   {_inline(setting.help)}",
        "",
        f"   :Default: {default}",
    ]
    if setting.name not in NOT_IN_FILE:
        lines.append(f"   :Config file key: ``{setting.name}``")
    if setting.multiple:
        lines.append("   :Repeatable: yes")
    if setting.command:
        lines.append(
            "   :Applied by: the twsgi command only (not by a ``TwsgiService`` "
            "made in a ``.tac`` file or a program, which warns that it is set)"
        )
    return "\n".join(lines) + "\n"


def settingsReference(settings: Sequence[Setting] = SETTINGS) -> str:
    """
    The settings reference page, as reStructuredText.

    @param settings: the settings table.
    """
    sections: dict[str, list[Setting]] = {}
    for setting in settings:
        sections.setdefault(setting.section, []).append(setting)
    chunks = [_INTRO]
    for section, members in sections.items():
        chunks.append(f"{section}\n{'-' * len(section)}\n")
        chunks.extend(_settingEntry(setting) for setting in members)
    return "\n".join(chunks)


def writeSettingsReference(path: Path) -> None:
    """
    Write the settings reference to C{path}, unless it already holds exactly
    that text (so that Sphinx does not rebuild it for nothing).
    """
    text = settingsReference()
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _builderInited(app: Any) -> None:
    writeSettingsReference(Path(app.srcdir) / "settings.rst")


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", _builderInited)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
