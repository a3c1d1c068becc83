# -*- test-case-name: tests.docs.test_examples -*-
"""
The docs tell the truth: every code block of C{README.md} and C{docs/*.rst},
and the C{.tac} examples of C{docs/examples/}, run as written.

The application the docs name (C{myapp:app} and the like) is
L{tests.helpers.docblocks.FIXTURE}, in a temporary directory where the commands
run; the absolute paths they name are replaced as L{tests.helpers.docblocks.PATHS}
says.  Command lines get C{--check-config}, all in one child process; the
commands a newcomer starts first, the socket activation tried by hand and
the C{.tac} files are started for real on port 0.
"""

from __future__ import annotations

import builtins
import codecs
import configparser
import dis
import fnmatch
import json
import os
import re
import runpy
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.docblocks import (
    GENERATED,
    Block,
    Command,
    codeBlocks,
    commands,
    makeFixture,
    pages,
    socketActivation,
    substitute,
)
from tests.helpers.server import (
    LOOPBACK,
    ROOT,
    TWISTD,
    cleanEnviron,
    fetch,
    freePort,
    start,
    temporaryDirectory,
)
from twsgi.server.endpoints import bindEndpoint
from twsgi.testing import ServerProcess

# twistd stops the reactor on SIGTERM, then ends itself with that signal.
_STOPPED = -signal.SIGTERM

_TOML = re.compile(r"^[a-z][a-z0-9_-]* = \S")

_PROGRAMS = {
    "twsgi": "CommandTests (--check-config), LaunchTests",
    "twistd": "CommandTests (--check-config), LaunchTests, TacExampleTests (-y)",
    "twist": "CommandTests (--check-config), LaunchTests",
    "systemd-socket-activate": "SocketActivationTests",
    "curl": "LaunchTests fetch what it fetches",
    "python -m venv": "ReadmeTests; the setup a newcomer runs",
    "pip": "ReadmeTests; the setup a newcomer runs",
    "tox": "ReadmeTests (the pip before it installs it); scripts/test runs tox -e docs",
    "bash": "runs the test suite itself",
}
"""
The programs the docs' shell blocks run, and what checks each.
"""

_NOT_RUN = {
    ("docs/operations.rst", "127.0.0.1 - - [21/Nov/2026"): (
        "a sample access-log line: LogSampleTests"
    ),
    ("docs/operations.rst", '{"time":"2026-11-21T16:00:00.2'): (
        "a sample JSON access-log line: LogSampleTests"
    ),
    ("docs/operations.rst", '{"time":"2026-11-21T16:00:00.1'): (
        "a sample JSON server-log line: LogSampleTests"
    ),
    ("docs/operations.rst", "2026-11-21T16:00:00+0000 [twsgi#info] [worker"): (
        "a sample worker line of the server log: tests/cli/test_main.py, "
        "ServerLogTests.test_workersText"
    ),
    ("docs/operations.rst", "/var/log/myapp/access.log {"): (
        "a logrotate configuration; its USR1 is tested with the signals"
    ),
    ("docs/operations.rst", "twsgi: --threads (from"): (
        "an error message: MessageTests.test_errorSample"
    ),
    ("docs/security.rst", "location / {"): (
        "a fragment of an nginx server block; docs/deploy/nginx.conf runs in "
        "tests/integration/test_nginx.py"
    ),
    ("docs/load-balancers.rst", "server app1 127.0.0.1:8443 ssl"): (
        "a HAProxy server line: tests/integration/test_haproxy.py, "
        "test_sslSendProxy, runs it"
    ),
    ("docs/load-balancers.rst", "server app1 127.0.0.1:8001 proto h2"): (
        "a HAProxy server line: tests/integration/test_h2c.py, test_haproxy, runs it"
    ),
    ("docs/security.rst", "HTTP/1.1 400 Bad Request"): (
        "the answer to plain HTTP on a TLS port: tests/server/test_plainhttp.py, "
        "AnsweringTests.test_documented"
    ),
    ("docs/security.rst", "sslyze --mozilla_config=intermediate"): (
        "sslyze and testssl.sh against a live listener: tests/server/"
        "test_tlsprofile.py runs that sslyze, LiveTests.test_sslyzeRSA"
    ),
    ("docs/security.rst", "python -m venv /tmp/sslyze"): (
        "the setup of that test: tox.ini does the same"
    ),
    ("docs/testing.rst", "import signal\n\nfrom twsgi.testing import spawnServer"): (
        "the SIGUSR1 example: tests/lifecycle/test_signals.py, DocsExampleTests"
    ),
}
"""
Blocks that are no command, configuration or program of the kinds this
module runs, keyed by their file and the start of their text, with
what they are and where they are checked, if anywhere.
"""

_TACS = {"twsgi.tac", "mount.tac", "multiservice.tac"}

_REPOSITORY_PATH = re.compile(r"`+((?:tests|src|bench|docs|scripts|\.ci)/[^`\s]*)")
"""
A path of the repository as the docs write it: an inline literal (C{``x``}
in reStructuredText, C{`x`} in Markdown) that begins with a top directory;
its first word (C{``bench/run.py --scenarios hello``} names bench/run.py).
"""

_BUILT = ("docs/_build/", "docs/settings.rst", "docs/changelog.rst")
"""
What the docs build makes: the pages generated from the settings table and
from the newsfragments, and the HTML.
"""
"""
The C{.tac} files of C{docs/examples/} that L{TacExampleTests} runs.
"""


def _notRun(block: Block) -> str | None:
    """
    Why C{block} is not run, if it is one of L{_NOT_RUN}.
    """
    for (path, first), reason in _NOT_RUN.items():
        if block.path == path and block.text.startswith(first):
            return reason
    return None


def kind(block: Block) -> str:
    """
    What C{block} is: C{console} (a command after C{$ }, then its
    output), C{python}, C{systemd} (units), C{kubernetes} (a
    container's spec), C{options} (a fragment of a command line), C{shell}
    (command lines of L{_PROGRAMS}), C{toml} (a C{--config} file), or C{""}.
    """
    first = block.firstLine
    if block.language == "toml":
        return "toml"
    if first.startswith("$ "):
        return "console"
    if block.language == "python" or re.fullmatch(r"# [\w/]+\.py", first):
        return "python"
    if block.language == "ini" or first.startswith(("[Unit]", "# /etc/systemd/")):
        return "systemd"
    if first == "containers:":
        return "kubernetes"
    if first.startswith("--"):
        return "options"
    try:
        found = commands(block.text)
    except ValueError:
        found = []
    if found and all(c.argv and c.program in _PROGRAMS for c in found):
        return "shell"
    lines = [line for line in block.text.splitlines() if line.strip()]
    if all(_TOML.match(line) or line.startswith("#") for line in lines):
        return "toml"
    return ""


def blocksOf(name: str) -> list[Block]:
    """
    The code blocks of L{kind} C{name}.
    """
    return [b for b in codeBlocks() if kind(b) == name]


def _unitCommands(block: Block) -> list[Command]:
    """
    The C{ExecStart=} command lines of a block of systemd units.
    """
    text = block.text.replace("\\\n", " ")
    return [commands(m)[0] for m in re.findall(r"^ExecStart=(.*)$", text, re.M)]


def _kubernetesCommand(block: Block) -> Command:
    """
    The command a container spec runs: C{python -m twsgi} (the image's
    entry point) with its C{args}.
    """
    args = json.loads(re.search(r"args: (\[.*?\])", block.text, re.S).group(1))  # type: ignore[union-attr]
    return Command({}, ["python", "-m", "twsgi", *args])


def _deployCommands() -> list[tuple[str, Command]]:
    """
    The twsgi command lines in the comments of C{docs/deploy/*}.
    """
    found = []
    for path in sorted(Path(ROOT, "docs", "deploy").iterdir()):
        text = re.sub(r"\\\n#\s*", " ", path.read_text())
        for line in re.findall(r"^#\s+(twsgi --.*)$", text, re.M):
            found.append((f"docs/deploy/{path.name}", commands(line)[0]))
    return found


def _endpointExamples() -> list[tuple[str, Command]]:
    """
    The endpoint strings that the quickstart lists (a line of their own,
    as the term of a definition), each as C{twsgi --app myapp:app
    --endpoint ENDPOINT}.
    """
    path = Path(ROOT, "docs", "quickstart.rst")
    return [
        (
            f"docs/quickstart.rst:{number}",
            Command({}, ["twsgi", "--app", "myapp:app", "--endpoint", match[1]]),
        )
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if (match := re.fullmatch(r"``((?:tcp6?|unix|ssl|tls|systemd):\S*)``", line))
    ]


def bindExamples() -> list[tuple[int, str, str | None]]:
    """
    The C{--bind} addresses that the quickstart lists (a line of their own,
    as the term of a definition): the line, the address, and the endpoint
    string its definition names first, if any.
    """
    lines = Path(ROOT, "docs", "quickstart.rst").read_text().splitlines()
    found = []
    for number, line in enumerate(lines, 1):
        term = re.fullmatch(r"``--bind (\S+)``", line)
        if term is not None:
            named = re.match(r"\s+``([^`]+)``", lines[number])
            found.append((number, term[1], named[1] if named else None))
    return found


def documentedCommands() -> list[tuple[str, Command]]:
    """
    Every command line of the docs, with where it is: those of shell blocks,
    of option fragments (after C{twsgi --app myapp:app}), of systemd units'
    C{ExecStart=}, of container specs, of C{docs/deploy/*}'s comments, and
    the quickstart's endpoint strings and C{--bind} addresses.
    """
    found: list[tuple[str, Command]] = []
    for block in codeBlocks():
        what = kind(block)
        if what == "shell":
            found.extend((block.where, c) for c in commands(block.text))
        elif what == "options":
            fragment = "twsgi --app myapp:app " + block.text
            found.extend((block.where, c) for c in commands(fragment))
        elif what == "systemd":
            found.extend((block.where, c) for c in _unitCommands(block))
        elif what == "kubernetes":
            found.append((block.where, _kubernetesCommand(block)))
    binds = [
        (
            f"docs/quickstart.rst:{n}",
            Command({}, ["twsgi", "--app", "myapp:app", "--bind", a]),
        )
        for n, a, _ in bindExamples()
    ]
    return found + _deployCommands() + _endpointExamples() + binds


def _socketActivated(command: Command) -> bool:
    return any(arg.startswith("systemd:") for arg in command.args)


def _servers(program: str) -> bool:
    return program in ("twsgi", "twistd", "twist")


def _fixture(testCase: SynchronousTestCase) -> Path:
    """
    A temporary directory holding L{tests.helpers.docblocks.FIXTURE}, the files the
    docs' commands name, and the modules the docs' Python blocks define
    (those whose first line names their file, as C{# hooks.py}).
    """
    directory = makeFixture(temporaryDirectory(testCase))
    for block in blocksOf("python"):
        named = re.fullmatch(r"# ([\w/]+\.py)", block.firstLine)
        if named is not None:
            (directory / named.group(1)).write_text(block.text)
    return directory


def runCommands(
    directory: Path, todo: Sequence[tuple[str, Sequence[str], dict[str, str]]]
) -> list[tuple[int, str]]:
    """
    Run C{[program, argv, env]} commands in one child process in
    C{directory} (see L{tests.helpers.docblocks.runCommands}), started as systemd
    starts a socket-activated service: with a socket listening on
    127.0.0.1 (a free port) as its descriptor 3, named C{web}.

    @return: C{(status, output)} of each.
    """
    results = directory / "results.json"
    subprocess.run(
        [
            *socketActivation("web"),
            sys.executable,
            "-c",
            "from tests.helpers.docblocks import runCommands; runCommands()",
            str(results),
        ],
        input=json.dumps(todo),
        cwd=directory,
        env=cleanEnviron({"PYTHONPATH": ROOT}),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [tuple(r) for r in json.loads(results.read_text())]  # type: ignore[misc]


def checkConfig(
    testCase: SynchronousTestCase,
    directory: Path,
    found: Sequence[tuple[str, Command]],
) -> None:
    """
    Assert that each command, with C{--check-config} added, says that its
    configuration is OK.
    """
    todo = [
        (
            c.program,
            [c.argv[0], *substitute(c.args, directory), "--check-config"],
            dict(c.env),
        )
        for _, c in found
    ]
    failed = [
        f"{where}: {' '.join(command.argv)}\n{output}"
        for (where, command), (status, output) in zip(
            found, runCommands(directory, todo), strict=True
        )
        if status != 0 or "twsgi: configuration OK" not in output
    ]
    testCase.assertEqual(failed, [])


def _command(path: str, match: Callable[[Command], bool]) -> Command:
    """
    The one documented command of C{path} that C{match}es.
    """
    [command] = [
        c
        for where, c in documentedCommands()
        if where.startswith(path + ":") and match(c)
    ]
    return command


_RUNNERS = {
    "twsgi": [sys.executable, "-m", "twsgi"],
    "twist": [sys.executable, "-m", "twisted"],
    "twistd": TWISTD,
}


def launch(
    testCase: SynchronousTestCase,
    command: Command,
    extra: Sequence[str] = (),
    prefix: Sequence[str] = (),
    listeners: int = 1,
) -> ServerProcess:
    """
    Start a documented command (its program from this Python's
    environment) with C{extra} arguments, in a fixture directory; it is
    stopped in C{testCase}'s cleanup.
    """
    directory = _fixture(testCase)
    return start(
        testCase,
        [*substitute(command.args, directory), *extra],
        cwd=str(directory),
        command=[*prefix, *_RUNNERS[command.program]],
        env={"PYTHONPATH": str(directory), **command.env},
        listeners=listeners,
    )


class InventoryTests(SynchronousTestCase):
    """
    Every code block of the docs is accounted for.
    """

    def test_everyBlockChecked(self) -> None:
        """
        Every block is a kind that a test of this module runs, or is listed
        with the reason it is not run; every program a shell block runs is
        one this module knows.
        """
        unknown = [
            f"{b.where}: {b.firstLine}"
            for b in codeBlocks()
            if not kind(b) and _notRun(b) is None
        ]
        self.assertEqual(unknown, [])
        listed = {
            (b.path, start)
            for b in codeBlocks()
            for (path, start) in _NOT_RUN
            if b.path == path and b.text.startswith(start)
        }
        self.assertEqual(set(_NOT_RUN) - listed, set())

    def test_tacFilesRun(self) -> None:
        """
        Every C{twistd -y} of the docs names a C{.tac} file of
        C{docs/examples/} that L{TacExampleTests} runs, and that test runs
        every one of them.
        """
        named = {
            os.path.basename(c.args[c.args.index("-y") + 1])
            for _, c in documentedCommands()
            if c.program == "twistd" and "-y" in c.args
        }
        self.assertLessEqual(named, _TACS)
        examples = {p.name for p in Path(ROOT, "docs", "examples").glob("*.tac")}
        self.assertEqual(examples, _TACS)

    def test_generatedPagesLeftOut(self) -> None:
        """
        The pages these tests read are those of the checkout: the ones the
        docs build writes (ignored by git) are left out, even once built
        (C{scripts/test} builds the docs while the tests run).
        """
        with open(os.path.join(ROOT, ".gitignore")) as f:
            ignored = f.read().split()
        self.assertEqual(
            [f"docs/{name}" for name in GENERATED if f"docs/{name}" in ignored],
            [f"docs/{name}" for name in GENERATED],
        )
        self.assertEqual({p.name for p in pages()} & set(GENERATED), set())
        self.assertIn("quickstart.rst", {p.name for p in pages()})

    def test_repositoryPaths(self) -> None:
        """
        Every file or directory of the repository that C{README.md} or a
        page of C{docs/} names as an inline literal exists (a reader who
        looks for it finds it), but for what the docs build makes.
        """
        texts = [("README.md", Path(ROOT, "README.md").read_text())] + [
            (str(p.relative_to(ROOT)), p.read_text()) for p in pages()
        ]
        missing = [
            f"{name}: {path}"
            for name, text in texts
            for path in _REPOSITORY_PATH.findall(text)
            if not path.startswith(_BUILT) and not Path(ROOT, path).exists()
        ]
        self.assertEqual(missing, [])


class CommandTests(SynchronousTestCase):
    """
    Every twsgi command line of the docs resolves its configuration.
    """

    def test_checkConfig(self) -> None:
        """
        Every C{twsgi}, C{python -m twsgi}, C{twist twsgi} and C{twistd
        twsgi} command line (in shell blocks, option fragments, systemd
        units, the container spec, C{docs/deploy/}'s comments and the
        quickstart's lists of endpoints and C{--bind} addresses), and
        C{twsgi --config FILE} for every TOML block, run with
        C{--check-config}, print C{configuration OK}.
        """
        directory = _fixture(self)
        found = [
            (where, c)
            for where, c in documentedCommands()
            if _servers(c.program) and "-y" not in c.args
        ]
        self.assertGreater(len(found), 20)
        self.assertGreater(sum(map(_socketActivated, (c for _, c in found))), 1)
        files = []
        for block in blocksOf("toml"):
            path = directory / f"{block.line}.toml"
            path.write_text(" ".join(substitute([block.text], directory)))
            files.append((block.where, Command({}, ["twsgi", "--config", str(path)])))
        self.assertGreater(len(files), 0)
        checkConfig(self, directory, found + files)


class BindTests(SynchronousTestCase):
    """
    The quickstart's C{--bind} list.
    """

    def test_endpoints(self) -> None:
        """
        Each C{--bind} address of the quickstart becomes the endpoint string
        its definition names.
        """
        named = [(a, e) for _, a, e in bindExamples() if e is not None]
        self.assertGreater(len(named), 2)
        for address, endpoint in named:
            self.assertEqual(bindEndpoint(address), endpoint, address)


class MessageTests(SynchronousTestCase):
    """
    What the docs show twsgi printing.
    """

    def test_errorSample(self) -> None:
        """
        The error a bad value in a config file gets is the one the docs
        show.
        """
        [block] = [
            b for b in codeBlocks() if b.firstLine.startswith("twsgi: --threads (from")
        ]
        sample = " ".join(block.text.split())
        documented = re.search(r"\(from (\S+), key '(\w+)'\): '(\w+)'", sample)
        assert documented is not None
        path, key, value = documented.groups()
        directory = _fixture(self)
        (directory / "twsgi.toml").write_text(f'{key} = "{value}"\n')
        [(status, output)] = runCommands(
            directory,
            [("twsgi", ["twsgi", "--app", "myapp:app", "--config", "twsgi.toml"], {})],
        )
        self.assertEqual(
            (status, output), (1, sample.replace(path, "twsgi.toml") + "\n")
        )

    def test_version(self) -> None:
        """
        C{--version} and C{-V} print the version line in the form the
        quickstart shows, under every runner, with this twsgi's, Twisted's
        and Python's versions.
        """
        text = Path(ROOT, "docs", "quickstart.rst").read_text()
        shown = re.search(r"``(twsgi \S+ \(Twisted \S+, Python \S+\))``", text)
        assert shown is not None
        versions = re.compile(r"\d+(?:\.\w+)*")
        form = versions.sub("V", shown.group(1))
        self.assertEqual(form, "twsgi V (Twisted V, Python V)")
        results = runCommands(
            _fixture(self),
            [
                ("twsgi", ["twsgi", "--version"], {}),
                ("twsgi", ["twsgi", "-V"], {}),
                ("twistd", ["twistd", "twsgi", "--version"], {}),
                ("twist", ["twist", "twsgi", "-V"], {}),
            ],
        )
        python = ".".join(map(str, sys.version_info[:3]))
        for status, output in results:
            self.assertEqual(status, 0, output)
            self.assertEqual(versions.sub("V", output), form + "\n")
            self.assertIn(f"Python {python})", output)


def _halfClose(host: str, port: int, request: bytes) -> list[str]:
    """
    What C{nc -N HOST PORT} prints when given C{request}: it sends it,
    shuts its side down (C{shutdown(SHUT_WR)}), and prints what comes back
    until the server closes.
    """
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode("latin-1").splitlines()


class ConsoleTests(SynchronousTestCase):
    """
    The console sessions of the docs (C{$ command}, then its output).
    """

    def test_halfClose(self) -> None:
        """
        Every C{printf REQUEST | nc -N HOST PORT} session prints what the docs
        show (C{...} stands for any lines), against C{twsgi --app myapp:app}:
        the whole response, and the server closes the connection.
        """
        sessions = blocksOf("console")
        self.assertGreater(len(sessions), 0)
        server = launch(
            self, Command({}, ["twsgi", "--app", "myapp:app"]), ["--endpoint", LOOPBACK]
        )
        for block in sessions:
            [line, *shown] = block.text.splitlines()
            words = shlex.split(line[2:])
            self.assertEqual(
                (words[0], words[2:5]), ("printf", ["|", "nc", "-N"]), block.where
            )
            request = codecs.decode(words[1], "unicode_escape").encode("latin-1")
            printed = _halfClose(server.host, server.port, request)
            self.assertEqual(printed[-1], "Hello!", "the response is whole")
            self.assertEqual(printed[:1], shown[:1], block.where)
            rest = iter(printed[1:])
            for expected in shown[1:]:
                if expected != "...":
                    self.assertIn(expected, rest, block.where)


_COMBINED = re.compile(
    r'^(\S+) - (\S+) \[([^]]+)\] "([^"]*)" (\d+) (\d+|-) "([^"]*)" "([^"]*)" (\d+)$'
)


def _sample(start: str) -> str:
    """
    The sample block of C{docs/operations.rst} that begins with C{start}.
    """
    [block] = [
        b
        for b in codeBlocks()
        if b.path == "docs/operations.rst" and b.firstLine.startswith(start)
    ]
    return block.text


def _shape(event: dict[str, object]) -> list[tuple[str, str]]:
    """
    The keys of a JSON log line, in order, with the type of each value.
    """
    return [(key, type(value).__name__) for key, value in event.items()]


class LogSampleTests(SynchronousTestCase):
    """
    The sample log lines of C{docs/operations.rst} look like the real ones.
    """

    def _served(self, *args: str) -> ServerProcess:
        """
        A C{twsgi --app myapp:app ARGS} server that has answered one request
        as the samples show (C{GET /a?x=1} from C{curl/8}).
        """
        command = Command({}, ["twsgi", "--app", "myapp:app", *args])
        server = launch(self, command, ["--endpoint", LOOPBACK])
        headers = {"User-Agent": "curl/8"}
        fetch(server.host, server.port, path="/a?x=1", headers=headers)
        return server

    def test_combinedAndServerLog(self) -> None:
        """
        The combined access-log sample has the fields of a real line, and
        the JSON server-log sample has the keys, in order, and the types of
        the real C{listening on} event, with a message of the same form.
        """
        server = self._served("--log-format", "json")
        line = server.waitFor(r"curl/8")
        sample = _sample("127.0.0.1 - -").strip()
        documented, real = _COMBINED.match(sample), _COMBINED.match(line)
        assert documented is not None and real is not None, (sample, line)
        self.assertEqual(real.group(4, 8), ("GET /a?x=1 HTTP/1.1", "curl/8"))
        self.assertEqual(documented.group(4, 8), ("GET / HTTP/1.1", "curl/8"))
        self.assertEqual(server.stop(), 0)
        shown = json.loads(_sample('{"time":"2026-11-21T16:00:00.1'))
        [event] = [
            json.loads(raw)
            for raw in server.rawLines
            if raw.startswith("{") and "listening on" in raw
        ]
        self.assertEqual(_shape(event), _shape(shown))
        form = re.compile(r"listening on \S+ \(.+\)$")
        self.assertRegex(shown["message"], form)
        self.assertRegex(event["message"], form)

    def test_jsonAccessLog(self) -> None:
        """
        The JSON access-log sample has the keys, in order, and the types of a
        real line.
        """
        server = self._served("--access-log-format", "json")
        server.waitFor(r"curl/8")
        self.assertEqual(server.stop(), 0)
        [record] = [json.loads(raw) for raw in server.rawLines if '"user_agent"' in raw]
        shown = json.loads(_sample('{"time":"2026-11-21T16:00:00.2'))
        self.assertEqual(_shape(record), _shape(shown))
        self.assertEqual(
            (record["target"], record["path"], record["query"]),
            (shown["target"], shown["path"], shown["query"]),
        )


class SocketActivationTests(SynchronousTestCase):
    """
    The socket activation that the deployment guide tries by hand.
    """

    def test_byHand(self) -> None:
        """
        The command that C{systemd-socket-activate} runs serves on the socket
        it is given, under the name C{--fdname} gives it.
        """
        [command] = [
            c for _, c in documentedCommands() if c.program == "systemd-socket-activate"
        ]
        options = {
            a.split("=")[0]: a.split("=", 1)[-1]
            for a in command.args[:3]
            if a.startswith("--")
        }
        self.assertEqual(command.args[:2], ["-l", "127.0.0.1:8000"])
        served = Command(command.env, command.args[3:])
        server = launch(self, served, prefix=socketActivation(options["--fdname"]))
        self.assertEqual(fetch(server.host, server.port)[0], 200)
        self.assertEqual(server.stop(), 0)


class LaunchTests(SynchronousTestCase):
    """
    The commands a newcomer runs first serve, started as written (on port
    0 where they name a port).
    """

    def test_readme(self) -> None:
        """
        The README's setup command ends by serving the example application.
        """
        command = _command("README.md", lambda c: c.program == "twistd")
        server = launch(self, command, ["--endpoint", LOOPBACK])
        self.assertEqual(fetch(server.host, server.port)[2], b"Hello from twsgi!\n")
        self.assertEqual(server.stop(), 0)

    def test_quickstartPortZero(self) -> None:
        """
        The quickstart's port-0 command, as written, listens on a free port of
        127.0.0.1 and of ::1 and logs both.
        """
        command = _command(
            "docs/quickstart.rst", lambda c: "tcp:0:interface=127.0.0.1" in c.args
        )
        server = launch(self, command, listeners=2)
        self.assertEqual(
            [fetch(host, port)[0] for host, port in server.addresses], [200, 200]
        )
        self.assertEqual(server.stop(), 0)

    def test_quickstartEnvironment(self) -> None:
        """
        The quickstart's command configured by C{TWSGI_*} variables serves
        with those settings.
        """
        command = _command("docs/quickstart.rst", lambda c: bool(c.env))
        server = launch(self, command, ["--endpoint", LOOPBACK])
        self.assertEqual(fetch(server.host, server.port)[0], 200)
        server.waitFor(r"twsgi serving twsgi\.example:app with 2-8 threads")
        self.assertEqual(server.stop(), 0)
        self.assertNotIn('"GET / HTTP/1.1" 200', server.output)


class SnippetTests(SynchronousTestCase):
    """
    The Python blocks of the docs.
    """

    def test_compile(self) -> None:
        """
        Every Python block compiles.
        """
        for block in blocksOf("python"):
            compile(block.text, block.where, "exec")

    def test_modulesDefineTheirNames(self) -> None:
        """
        Every global name that a function of a documented module (a block
        whose first line names its file, as C{# hooks.py}) uses is defined
        by the module or is a builtin.
        """
        directory = _fixture(self)
        undefined = []
        for block in blocksOf("python"):
            named = re.fullmatch(r"# ([\w/]+\.py)", block.firstLine)
            if named is None:
                continue
            namespace = runpy.run_path(str(directory / named.group(1)))
            for value in list(namespace.values()):
                code = getattr(value, "__code__", None)
                if code is None or value.__module__ != "<run_path>":
                    continue
                undefined.extend(
                    f"{block.where}: {value.__name__} uses {i.argval}"
                    for i in dis.get_instructions(code)
                    if i.opname == "LOAD_GLOBAL"
                    and i.argval not in namespace
                    and not hasattr(builtins, i.argval)
                )
        self.assertEqual(undefined, [])

    def _write(self, directory: Path) -> tuple[list[Path], list[str]]:
        """
        Write the Python blocks that are no module into C{directory}: a
        test case as a C{test_*} module, the others as scripts.

        @return: the scripts and the test modules.
        """
        scripts, tests = [], []
        for block in blocksOf("python"):
            if _notRun(block) is not None:
                continue
            if re.fullmatch(r"# ([\w/]+\.py)", block.firstLine):
                continue  # a module, which the fixture holds
            if re.search(r"^class \w+\(\w*TestCase\):", block.text, re.M):
                name = f"test_docs_{block.path.split('/')[-1][:-4]}_{block.line}"
                (directory / f"{name}.py").write_text(block.text)
                tests.append(name)
            else:
                path = directory / f"script_{block.line}.py"
                path.write_text(block.text)
                scripts.append(path)
        return scripts, tests

    def test_scripts(self) -> None:
        """
        Every Python block that is neither a module nor a test case runs to
        its end.
        """
        directory = _fixture(self)
        scripts, _ = self._write(directory)
        self.assertGreater(len(scripts), 1)
        results = runCommands(directory, [("python", [str(p)], {}) for p in scripts])
        self.assertEqual([r for r in results if r[0] != 0], [])

    def test_testCases(self) -> None:
        """
        The docs' test cases pass under C{trial}, testing the docs'
        application.
        """
        directory = _fixture(self)
        _, tests = self._write(directory)
        self.assertGreater(len(tests), 1)
        result = subprocess.run(
            [sys.executable, "-m", "twisted.trial", *tests],
            cwd=directory,
            env=cleanEnviron({"PYTHONPATH": str(directory)}),
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        methods = sum(
            (directory / f"{name}.py").read_text().count("    def test_")
            for name in tests
        )
        self.assertIn(f"PASSED (successes={methods})", result.stdout)


class ReadmeTests(SynchronousTestCase):
    """
    The README's commands run one after another on a fresh checkout.
    """

    def test_programsInstalled(self) -> None:
        """
        Every program a README command runs from C{.venv/bin/} is one the
        setup command installs (as this test's environment has it), or one
        the same line installs first; a program without a directory is one
        a fresh machine has.
        """
        installed = set(os.listdir(os.path.dirname(sys.executable)))
        system = {"python3", "bash"}
        missing = []
        for block in codeBlocks():
            if block.path != "README.md":
                continue
            for line in block.text.replace("\\\n", " ").splitlines():
                added: set[str] = set()
                for c in commands(line):
                    program = c.argv[0]
                    if program.startswith(".venv/bin/"):
                        if os.path.basename(program) not in installed | added:
                            missing.append(f"{block.where}: {program}")
                    elif program not in system:
                        missing.append(f"{block.where}: {program}")
                    if c.program == "pip" and c.args[0] == "install":
                        added.update(a for a in c.args[1:] if not a.startswith("-"))
        self.assertEqual(missing, [])

    def test_parallelRunsShowOutput(self) -> None:
        """
        The environments that C{scripts/test} (so C{.ci/run}) runs side by
        side with C{tox p} show their output when they end, passed or not:
        tox keeps a parallel environment's output to itself unless it fails
        or C{parallel_show_output} is on, and then no pytest C{N passed}
        line reached the log of a passing run.
        """
        tox = configparser.ConfigParser(interpolation=None)
        tox.read(os.path.join(ROOT, "tox.ini"))
        with open(os.path.join(ROOT, "scripts", "test")) as f:
            script = f.read()
        parallel: list[str] = []
        for line in script.splitlines():
            words = shlex.split(line, comments=True)
            if (
                len(words) > 1
                and os.path.basename(words[0]) == "tox"
                and words[1] in ("p", "run-parallel")
            ):
                parallel += words[words.index("-e") + 1].split(",")
        self.assertNotEqual(parallel, [])
        shown = tox.getboolean("testenv", "parallel_show_output", fallback=False)
        hidden = [
            env
            for env in parallel
            if not tox.getboolean(
                f"testenv:{env}", "parallel_show_output", fallback=shown
            )
        ]
        self.assertEqual(hidden, [])

    def test_toxRunsOnlyAllowedPrograms(self) -> None:
        """
        Every program that C{tox.ini} runs by its path (as the sslyze
        virtualenv's C{pip}) is allowed by C{allowlist_externals}: tox refuses
        any other, and the README's test command would fail.
        """
        tox = configparser.ConfigParser(interpolation=None)
        tox.read(os.path.join(ROOT, "tox.ini"))
        reference = re.compile(r"\{\[([^\]]+)\]([a-z_]+)\}")

        def value(section: str, key: str) -> str:
            if tox.has_option(section, key):
                return tox.get(section, key)
            return tox.get("testenv", key, fallback="")

        def lines(section: str, key: str) -> list[str]:
            found = []
            for line in value(section, key).splitlines():
                match = reference.fullmatch(line.strip())
                if match is not None:
                    found += lines(match.group(1), match.group(2))
                elif line.strip():
                    found.append(line.strip())
            return found

        refused = []
        for section in tox.sections():
            if not section.startswith("testenv"):
                continue
            allowed = lines(section, "allowlist_externals")
            for key in ("commands_pre", "commands"):
                for line in lines(section, key):
                    program = shlex.split(line)[0]
                    if "/" in program and not any(
                        fnmatch.fnmatch(program, pattern) for pattern in allowed
                    ):
                        refused.append(f"[{section}] {key}: {program}")
        self.assertEqual(refused, [])


def _twistd(
    testCase: SynchronousTestCase,
    example: str,
    listeners: int = 1,
    env: dict[str, str] | None = None,
) -> ServerProcess:
    """
    A C{twistd -n -y docs/examples/<example>} process on port 0, stopped in
    C{testCase}'s cleanup.
    """
    path = os.path.join(ROOT, "docs", "examples", example)
    return start(
        testCase,
        ["-n", "--pidfile=", "-y", path],
        command=TWISTD,
        env={"TWSGI_TAC_ENDPOINT": LOOPBACK, **(env or {})},
        listeners=listeners,
        checkout=True,
    )


def _twistdExits(endpoint: str) -> subprocess.CompletedProcess[str]:
    """
    Run C{twistd -n -y docs/examples/twsgi.tac} listening on C{endpoint},
    for a start that fails, to its end.
    """
    return subprocess.run(
        [
            *TWISTD,
            "-n",
            "--pidfile=",
            "-y",
            os.path.join(ROOT, "docs", "examples", "twsgi.tac"),
        ],
        env=cleanEnviron({"TWSGI_TAC_ENDPOINT": endpoint, "PYTHONPATH": ROOT}),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


class TacExampleTests(SynchronousTestCase):
    """
    Tests of C{docs/examples/*.tac}.
    """

    def test_twsgiTac(self) -> None:
        """
        C{twsgi.tac} serves the example application through a
        L{twsgi.TwsgiService} with its access log on, and stops cleanly on
        SIGTERM; Twisted's legacy port lines are not in the log.
        """
        server = _twistd(self, "twsgi.tac")
        status, _, body = fetch(server.host, server.port, path="/tac")
        self.assertEqual((status, body), (200, b"Hello from twsgi!\n"))
        server.waitFor(r"twsgi serving twsgi\.example:app with 4-32 threads")
        server.waitFor(r'^127\.0\.0\.1 - - \[.*\] "GET /tac HTTP/1\.1" 200 ')
        # twsgi handles the signals (handleSignals=True): a clean drain is 0.
        self.assertEqual(server.stop(), 0)
        server.waitFor(r"twsgi stopped: every request drained")
        self.assertNotRegex(server.output, r"starting on|Port \S+ Closed")

    def test_twsgiTacCannotListen(self) -> None:
        """
        C{twsgi.tac} on a port in use logs one error line and exits 1.
        """
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        endpoint = f"tcp:{taken.getsockname()[1]}:interface=127.0.0.1"
        result = _twistdExits(endpoint)
        self.assertEqual(result.returncode, 1, result.stdout)
        errors = [line for line in result.stdout.splitlines() if "#error]" in line]
        self.assertEqual(len(errors), 1, result.stdout)
        self.assertIn(f"cannot listen on {endpoint}: Address already in use", errors[0])
        self.assertNotIn("drain", result.stdout)

    def test_twsgiTacBadCertificate(self) -> None:
        """
        C{twsgi.tac} with a certificate that is no certificate prints one
        line naming it, no traceback, and exits 1.
        """
        directory = self.mktemp()
        os.makedirs(directory)
        bad = os.path.abspath(os.path.join(directory, "bad.pem"))
        with open(bad, "w") as f:
            f.write("not a certificate\n")
        endpoint = f"ssl:0:privateKey={bad}:interface=127.0.0.1"
        result = _twistdExits(endpoint)
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 1, output)
        self.assertNotIn("Traceback", output)
        self.assertEqual(
            result.stderr.strip().splitlines(),
            [
                f"twsgi: {endpoint!r} is not a valid endpoint string: "
                f"privateKey={bad} holds no certificate in PEM format (give "
                "the certificate's file as certKey=)"
            ],
        )

    def test_mountTac(self) -> None:
        """
        C{mount.tac} serves the application below C{/app} with that prefix as
        C{SCRIPT_NAME}, and the rest of the site beside it.
        """
        server = _twistd(self, "mount.tac", listeners=0)
        line = server.waitFor(r"Site starting on \d+", timeout=30)
        port = int(line.split("starting on ")[1])
        status, _, body = fetch("127.0.0.1", port, path="/app/hello/world")
        self.assertEqual(
            (status, body), (200, b"SCRIPT_NAME=/app PATH_INFO=/hello/world\n")
        )
        status, _, body = fetch("127.0.0.1", port)
        self.assertEqual((status, body), (200, b"The rest of the site.\n"))
        self.assertEqual(server.stop(), _STOPPED)
        server.waitFor(r"Server Shut Down\.")

    def test_multiserviceTac(self) -> None:
        """
        C{multiservice.tac} serves an application that asks the echo service
        beside it, and stops cleanly on SIGTERM.
        """
        echo = str(freePort())
        server = _twistd(self, "multiservice.tac", env={"TWSGI_TAC_ECHO_PORT": echo})
        status, _, body = fetch(server.host, server.port)
        self.assertEqual((status, body), (200, b"echo said: ping\n"))
        self.assertEqual(server.stop(), _STOPPED)
        server.waitFor(r"Server Shut Down\.")
