# -*- test-case-name: tests.docs.test_settings -*-
"""
The settings reference in the docs is generated from the settings table and
lists every setting.
"""

from __future__ import annotations

import importlib.util
import os
from types import ModuleType

from twisted.trial.unittest import SynchronousTestCase

from twsgi.config.settings import SETTINGS, Setting
from twsgi.config.toml import NOT_IN_FILE

_EXTENSION = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "docs",
    "_ext",
    "twsgi_settings.py",
)


def _loadExtension() -> ModuleType:
    spec = importlib.util.spec_from_file_location("twsgi_settings", _EXTENSION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class SettingsReferenceTests(SynchronousTestCase):
    """
    Tests of C{docs/_ext/twsgi_settings.py}.
    """

    def setUp(self) -> None:
        self.extension = _loadExtension()

    def test_everySettingListed(self) -> None:
        """
        Every setting of the table appears with its flag, its environment
        variable and (unless it cannot be there) its config file key, under a
        heading for its section.
        """
        page = self.extension.settingsReference()

        def entry(setting: Setting) -> str:
            start = page.index(f"\n.. option:: --{setting.flag}")
            end = page.find("\n.. option:: ", start + 1)
            return page[start : end if end != -1 else len(page)]

        for setting in SETTINGS:
            self.assertIn(f"\n.. option:: --{setting.flag}", page)
            self.assertIn(f"\n   .. envvar:: {setting.envvar}\n", entry(setting))
            inFile = f":Config file key: ``{setting.name}``" in entry(setting)
            self.assertEqual(inFile, setting.name not in NOT_IN_FILE, setting.name)
            heading = f"\n{setting.section}\n{'-' * len(setting.section)}\n"
            self.assertIn(heading, page)
        self.assertEqual(page.count(".. option:: "), len(SETTINGS))

    def test_newSettingListed(self) -> None:
        """
        A setting added to the table shows up on the page with its metavar,
        its help, its default and whether it repeats; its section is listed
        once, after the sections already seen.
        """
        extra = Setting(
            name="frobnicate_level",
            flag="frobnicate-level",
            convert=str,
            default=("a", "b"),
            help="How much to frobnicate.",
            metavar="LEVEL",
            multiple=True,
            section="Frobnication",
        )
        page = self.extension.settingsReference([*SETTINGS, extra])
        entry = page[page.index(".. option:: --frobnicate-level") :]
        self.assertEqual(
            entry,
            ".. option:: --frobnicate-level <LEVEL>\n\n"
            "   .. envvar:: TWSGI_FROBNICATE_LEVEL\n\n"
            "   How much to frobnicate.\n\n"
            "   :Default: ``a b``\n"
            "   :Config file key: ``frobnicate_level``\n"
            "   :Repeatable: yes\n",
        )
        self.assertEqual(page.count("\nFrobnication\n------------\n"), 1)

    def test_helpEscaped(self) -> None:
        """
        Quoted words in a help sentence become literals, and characters that
        reStructuredText would read as markup are escaped.
        """
        self.assertEqual(
            self.extension._inline("Use 'a|b' or *x* | y_ (the server's)."),
            "Use ``a|b`` or \\*x\\* \\| y\\_ (the server's).",
        )

    def test_switchAndUnsetDefaults(self) -> None:
        """
        A switch has no metavar and is off by default; a setting without a
        default says it is not set.
        """
        switch = Setting(
            name="loud",
            flag="loud",
            convert=str,
            default=False,
            help="Be loud.",
            switch=True,
        )
        unset = Setting(
            name="where", flag="where", convert=str, default=None, help="Where."
        )
        page = self.extension.settingsReference([switch, unset])
        self.assertIn(".. option:: --loud\n", page)
        self.assertIn(":Default: off\n", page)
        self.assertIn(".. option:: --where <VALUE>\n", page)
        self.assertIn(":Default: not set\n", page)

    def test_defaultTextConverts(self) -> None:
        """
        The default the docs and C{--help} show, typed back in, gives the
        default value itself.
        """
        for setting in SETTINGS:
            text = setting.defaultText
            if text is None:
                continue
            if setting.multiple:
                value = tuple(setting.convert(item) for item in text.split())
            else:
                value = setting.convert(text)
            self.assertEqual(value, setting.default, setting.name)
