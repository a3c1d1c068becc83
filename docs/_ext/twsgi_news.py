"""
Generate the changelog page: the unreleased changes drafted by towncrier from
C{newsfragments/}, then the released history in C{NEWS.rst} if there is one.

The page is written to C{docs/changelog.rst} (git-ignored) at every build.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

_TITLE = """\
Changelog
=========

.. This page is generated at every build by docs/_ext/twsgi_news.py.

"""

# towncrier's reStructuredText uses "=" for a release and "-" for a kind of
# change; on this page they sit one level lower, under the page title.
_DEMOTE = {"=": "-", "-": "~", "~": "^"}


def demoteHeadings(text: str) -> str:
    """
    Move every section heading of C{text} (underlined with C{=}, C{-} or
    C{~}) one level down.
    """
    lines = text.splitlines()
    for index in range(1, len(lines)):
        line = lines[index]
        above = lines[index - 1].strip()
        if (
            above
            and line
            and len(set(line)) == 1
            and line[0] in _DEMOTE
            and len(line) >= len(above)
        ):
            lines[index] = _DEMOTE[line[0]] * len(line)
    return "\n".join(lines) + "\n"


def unreleasedDraft(root: Path) -> str:
    """
    What towncrier would add to C{NEWS.rst} for the fragments in
    C{root/newsfragments}, under the title "Unreleased".

    @raise RuntimeError: if towncrier fails.
    """
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "towncrier",
            "build",
            "--draft",
            "--dir",
            str(root),
            "--name",
            "twsgi",
            "--version",
            "unreleased",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"towncrier build --draft failed:\n{result.stderr}")
    lines = result.stdout.strip("\n").splitlines()
    if len(lines) > 1 and set(lines[1]) == {"="}:
        lines[:2] = ["Unreleased", "=========="]
    return "\n".join(lines) + "\n"


def changelog(root: Path) -> str:
    """
    The changelog page, as reStructuredText.
    """
    parts = [_TITLE, demoteHeadings(unreleasedDraft(root))]
    news = root / "NEWS.rst"
    if news.exists():
        parts.append(demoteHeadings(news.read_text(encoding="utf-8")))
    return "\n".join(parts)


def _builderInited(app: Any) -> None:
    source = Path(app.srcdir)
    text = changelog(source.parent)
    path = source / "changelog.rst"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", _builderInited)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
