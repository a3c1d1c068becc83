# -*- test-case-name: tests.docs.test_examples -*-
"""
The code blocks of C{README.md} and C{docs/*.rst}, the commands in them, and
what C{tests.docs.test_examples} needs to run them as a reader would: a
temporary directory holding the application the docs name (C{myapp:app},
C{myproject.wsgi:application}, C{mysite.wsgi:application}) and the files
their commands refer to, and a runner that checks many command lines in one
child process.

L{runCommands} runs in that child: it runs each command through the entry
point of its program (C{twsgi}, C{python -m twsgi}, C{twist}, C{twistd}),
with its C{sys.argv} and environment, and reports the exit status and the
output of each.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import runpy
import shlex
import sys
import traceback
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import attrs

from tests.helpers.certs import makeCertificates

ROOT = Path(__file__).resolve().parent.parent.parent

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
_DIRECTIVE = re.compile(r"^(\s*)\.\. ([\w-]+)::\s*(.*)$")
_CODE_DIRECTIVES = {"code-block", "code", "sourcecode"}


@attrs.frozen
class Block:
    """
    One code block of the docs.

    @ivar path: the file, relative to the checkout.
    @ivar line: the line of the file where the block's text begins.
    @ivar language: the language a C{code-block} or a Markdown fence names,
        else C{""} (an reST literal block).
    @ivar text: the block's text, dedented.
    """

    path: str
    line: int
    language: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def firstLine(self) -> str:
        return self.text.splitlines()[0]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _rstBlocks(path: str, text: str) -> Iterator[Block]:
    """
    The literal blocks (after C{::}) and C{code-block} directives of an reST
    document.  Other directives (C{literalinclude}, C{list-table}...) have no
    code of their own.
    """
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        directive = _DIRECTIVE.match(line)
        if directive is not None:
            if directive.group(2) not in _CODE_DIRECTIVES:
                i += 1
                continue
            language = directive.group(3).strip()
        elif line.rstrip().endswith("::") and line.strip():
            language = ""
        else:
            i += 1
            continue
        # The body is indented further than the line that introduces it.
        outer = _indent(line)
        i += 1
        body: list[tuple[int, str]] = []
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > outer):
            if directive is not None and not body and lines[i].strip().startswith(":"):
                i += 1  # a directive option such as :caption:
                continue
            body.append((i, lines[i]))
            i += 1
        while body and not body[-1][1].strip():
            body.pop()
        while body and not body[0][1].strip():
            body.pop(0)
        if not body:
            continue
        margin = min(_indent(t) for _, t in body if t.strip())
        yield Block(
            path,
            body[0][0] + 1,
            language,
            "\n".join(t[margin:] for _, t in body) + "\n",
        )


GENERATED = ("settings.rst", "changelog.rst")
"""
The pages of C{docs/} that the docs build writes, from the settings table and
from C{newsfragments/}: not the docs' own text, they are absent from a fresh
checkout, and C{scripts/test} builds the docs while the tests run.
"""


def pages() -> list[Path]:
    """
    The pages of C{docs/} written by hand, in order.
    """
    return [p for p in sorted((ROOT / "docs").glob("*.rst")) if p.name not in GENERATED]


def codeBlocks() -> list[Block]:
    """
    Every code block of C{README.md} and C{docs/*.rst}, in order.
    """
    blocks = []
    readme = (ROOT / "README.md").read_text()
    for match in _FENCE.finditer(readme):
        line = readme.count("\n", 0, match.start(2)) + 1
        blocks.append(Block("README.md", line, match.group(1), match.group(2)))
    for path in pages():
        blocks.extend(_rstBlocks(str(path.relative_to(ROOT)), path.read_text()))
    return blocks


@attrs.frozen
class Command:
    """
    One command line of a shell block.

    @ivar env: the variables assigned before the program.
    @ivar argv: the program and its arguments.
    """

    env: Mapping[str, str]
    argv: Sequence[str]

    @property
    def program(self) -> str:
        """
        What runs: C{twsgi} for C{python -m twsgi} too, else the program's
        name without its directory.
        """
        name = os.path.basename(self.argv[0])
        if name.startswith("python") and self.argv[1:2] == ["-m"]:
            module = self.argv[2]
            return "twsgi" if module == "twsgi" else f"python -m {module}"
        return name

    @property
    def args(self) -> list[str]:
        """
        The arguments after the program (and after C{-m twsgi}).
        """
        if os.path.basename(self.argv[0]).startswith("python"):
            return list(self.argv[3:])
        return list(self.argv[1:])


def commands(text: str) -> list[Command]:
    """
    The command lines of a shell block: lines joined where they end with a
    backslash, comments skipped, C{&&} lists split, C{NAME=value}
    assignments before the program taken as its environment.
    """
    found = []
    for line in text.replace("\\\n", " ").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        for part in line.split(" && "):
            words = shlex.split(part)
            env = {}
            while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
                name, _, value = words.pop(0).partition("=")
                env[name] = value
            found.append(Command(env, words))
    return found


FIXTURE = {
    "myapp.py": '''\
from urllib.parse import parse_qs


def app(environ, start_response):
    """
    The application the docs call myapp:app, myproject.wsgi:application and
    mysite.wsgi:application: a POST is answered 303, a GET greets.
    """
    if environ["REQUEST_METHOD"] == "POST":
        environ["wsgi.input"].read()
        start_response("303 See Other", [("Location", "/")])
        return [b""]
    name = parse_qs(environ["QUERY_STRING"]).get("name", [""])[0]
    body = f"Hello, {name}!" if name else "Hello!"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode("utf-8")]


def create_app(environment):
    return app
''',
    "myproject/__init__.py": "",
    "myproject/wsgi.py": "from myapp import app as application\n",
    "mysite/__init__.py": "",
    "mysite/wsgi.py": "from myapp import app as application\n",
}
"""
The application the docs name, as files of the directory the commands run
in.
"""

PATHS = {
    "/srv/mysite/static": "static",
    "/var/log/mysite/access.log": "access.log",
    "/etc/twsgi/certs": "certs",
}
"""
Absolute paths of the docs' examples, and the file or directory of the
fixture that stands in for each (twsgi checks that they exist).
"""


def makeFixture(directory: Path) -> Path:
    """
    Write L{FIXTURE} into C{directory}, with the files the docs' commands
    name: C{key.pem}, C{cert.pem} and C{clients-ca.pem} for C{ssl:}
    endpoints, a C{certs/} directory for C{tls:}, a C{static/} directory.
    """
    for name, content in FIXTURE.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    certificates = makeCertificates(str(directory / "generated"))
    read = lambda name: (Path(certificates) / name).read_text()  # noqa: E731
    (directory / "key.pem").write_text(read("server.key"))
    (directory / "cert.pem").write_text(read("server.pem"))
    (directory / "clients-ca.pem").write_text(read("ca.pem"))
    (directory / "certs").mkdir()
    (directory / "certs" / "localhost.pem").write_text(
        read("server.key") + read("server.pem")
    )
    (directory / "static").mkdir()
    return directory


def substitute(words: Sequence[str], directory: Path) -> list[str]:
    """
    C{words} with each path of L{PATHS} replaced by its stand-in in
    C{directory}.
    """
    replaced = []
    for word in words:
        for path, standIn in PATHS.items():
            word = word.replace(path, str(directory / standIn))
        replaced.append(word)
    return replaced


_ACTIVATE = """\
import os, socket, sys
name, host, *argv = sys.argv[1:]
fd = socket.create_server((host, 0)).detach()
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.set_inheritable(3, True)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="1", LISTEN_FDNAMES=name)
os.execvp(argv[0], argv)
"""


def socketActivation(name: str, host: str = "127.0.0.1") -> list[str]:
    """
    A command prefix that does what C{systemd-socket-activate -l HOST:0
    --fdname=NAME} does: it listens on C{host}, a free port, and runs the
    command that follows with that socket as file descriptor 3 and systemd's
    C{LISTEN_*} variables set.
    """
    return [sys.executable, "-c", _ACTIVATE, name, host]


def _entryPoint(program: str, argv: list[str]) -> None:
    """
    Run C{program} as its console script does, with C{argv}.
    """
    # In place: twist's Twist.main took sys.argv as its default argument.
    sys.argv[:] = argv
    if program == "python":
        runpy.run_path(argv[0], run_name="__main__")
    elif program == "twsgi":
        from twsgi.cli.main import main

        main()
    elif program == "twistd":
        from twisted.scripts.twistd import run

        run()
    elif program == "twist":
        runpy.run_module("twisted", run_name="__main__", alter_sys=False)
    else:
        raise ValueError(f"no entry point for {program!r}")


def runCommands() -> None:
    """
    Read C{[program, argv, env]} triples (JSON) from standard input, run
    each in this process in turn, in the working directory and with
    C{os.environ} plus its C{env}; write C{[status, output]} of each as
    JSON to the file named by the first argument.

    C{program} is C{twsgi} (the C{twsgi} script and C{python -m twsgi}),
    C{twist}, C{twistd}, or C{python} (run the file C{argv[0]} as a
    script).
    """
    todo = json.load(sys.stdin)
    resultPath = sys.argv[1]
    directory = os.getcwd()
    environ = dict(os.environ)
    results: list[tuple[int, str]] = []
    for program, argv, env in todo:
        os.chdir(directory)
        os.environ.clear()
        os.environ.update(environ)
        os.environ.update(env)
        output = io.StringIO()
        status = 0
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            try:
                _entryPoint(program, argv)
            except SystemExit as e:
                if isinstance(e.code, str):
                    output.write(e.code + "\n")
                    status = 1
                else:
                    status = e.code or 0
            except Exception:
                traceback.print_exc(file=output)
                status = 1
        results.append((status, output.getvalue()))
    with open(resultPath, "w") as f:
        json.dump(results, f)


__all__ = [
    "FIXTURE",
    "PATHS",
    "ROOT",
    "Block",
    "Command",
    "codeBlocks",
    "commands",
    "makeFixture",
    "runCommands",
    "socketActivation",
    "substitute",
]
