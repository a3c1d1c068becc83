"""
The C{twsgi-limits} directive: the table of every limit, timeout and
trust setting on the security page, generated from
L{twsgi.config.settings.SETTINGS} at every build, so that it never disagrees with
the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twsgi_settings import _inline

from twsgi.config.settings import SETTINGS, Setting

SECTIONS = ("Limits", "Timeouts", "Proxies")
"""
The settings sections the security page lists.
"""

_UNITS = ((1024**3, "G"), (1024**2, "M"), (1024, "K"))


def _default(setting: Setting) -> str:
    default = setting.default
    if setting.metavar == "BYTES" and isinstance(default, int):
        for size, unit in _UNITS:
            if default >= size and default % size == 0:
                return f"``{default // size}{unit}`` ({default} bytes)"
    if setting.metavar == "SECONDS":
        return f"{default:g} s" if default else "off"
    if default in (0, None) and setting.metavar == "N":
        return "no bound"
    return f"``{setting.defaultText}``"


def limitsTable(settings: Sequence[Setting] = SETTINGS) -> str:
    """
    The limits table, as reStructuredText: one row per setting of
    L{SECTIONS}, with its option, default and environment variable.
    """
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 30 20 50",
        "",
        "   * - Setting",
        "     - Default",
        "     - What it bounds",
    ]
    for setting in settings:
        if setting.section not in SECTIONS:
            continue
        help = _inline(setting.help)
        lines += [
            f"   * - :option:`twsgi --{setting.flag}`",
            f"       (``{setting.envvar}``)",
            f"     - {_default(setting)}",
            f"     - {help}",
        ]
    return "\n".join(lines) + "\n"


def setup(app: Any) -> dict[str, Any]:
    """
    Register C{.. twsgi-limits::}, which renders L{limitsTable}.  (Sphinx is
    imported here only, so that the tests can check the table without it.)
    """
    from docutils import nodes
    from docutils.statemachine import StringList
    from sphinx.util.docutils import SphinxDirective

    class LimitsTable(SphinxDirective):
        def run(self) -> list[nodes.Node]:
            container = nodes.container()
            self.state.nested_parse(
                StringList(limitsTable().splitlines(), source="twsgi.config.settings"),
                self.content_offset,
                container,
            )
            return list(container.children)

    app.add_directive("twsgi-limits", LimitsTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
