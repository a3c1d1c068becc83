# -*- test-case-name: tests.config.test_apploader -*-
"""
Load a WSGI application from a C{module:attr} or C{module:factory(args)} text.

This follows gunicorn's rule: a factory may be called with literal arguments
only (numbers, strings, tuples, lists, dicts, C{True}, C{False}, C{None}),
never with arbitrary expressions.  Every failure is an L{AppLoadError} whose
C{str()} is one line telling the operator what is wrong and, where we can
guess, what to type instead.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import inspect
import os
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any


class AppLoadError(Exception):
    """
    The application could not be loaded.

    @ivar details: the formatted traceback of the application's own error
        (an import error inside the module, or a factory that raised), or
        C{None} when the error is ours to explain in one line.
    """

    def __init__(self, message: str, details: str | None = None) -> None:
        super().__init__(message)
        self.details = details


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _oneLine(error: BaseException) -> str:
    """
    C{type: message} of an exception, cut to its first line (the rest is in
    the traceback kept as L{AppLoadError.details}).
    """
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return text + (" ..." if len(lines) > 1 else "")


def _parseAttribute(
    text: str, spec: str
) -> tuple[str, tuple[object, ...], dict[str, object], bool]:
    """
    Parse the part after the colon: C{attr} or C{factory(literal args)}.

    @return: the name, positional and keyword arguments, and whether it is
        a call.
    """
    try:
        expression = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError):
        raise AppLoadError(
            f"--app {spec!r}: {text!r} is not an attribute name or a call "
            "such as create_app() or create_app('production')"
        )
    if isinstance(expression, ast.Name):
        return expression.id, (), {}, False
    if isinstance(expression, ast.Call) and isinstance(expression.func, ast.Name):
        try:
            args = tuple(ast.literal_eval(a) for a in expression.args)
            kwargs = {
                k.arg: ast.literal_eval(k.value)
                for k in expression.keywords
                if k.arg is not None
            }
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            # literal_eval raises TypeError for {[]: 1}, the others for
            # absurd nesting.
            raise AppLoadError(
                f"--app {spec!r}: the factory's arguments must be literals "
                "(strings, numbers, lists, dicts, True, False, None)"
            )
        if any(k.arg is None for k in expression.keywords):
            raise AppLoadError(f"--app {spec!r}: **kwargs are not allowed")
        return expression.func.id, args, kwargs, True
    raise AppLoadError(
        f"--app {spec!r}: {text!r} is not an attribute name or a call "
        "such as create_app()"
    )


def _suggestion(spec: str) -> str | None:
    """
    Recognise a file name or path given where C{module:attr} was meant, and
    say what to type instead.
    """
    path, _, attr = spec.partition(":")
    if path.endswith(".py") or os.sep in path:
        module = path[:-3] if path.endswith(".py") else path
        directory, _, module = module.rpartition(os.sep)
        hint = f"--app {module}:{attr or 'app'}"
        if directory:
            hint += f" --chdir {directory}"
        return f"--app {spec!r} looks like a file name; use a module name: {hint}"
    return None


def _parseSpec(
    spec: str,
) -> tuple[str, str, tuple[object, ...], dict[str, object], bool]:
    """
    Check and split C{module:attr} or C{module:factory(args)}, importing
    nothing.

    @return: the module name, the attribute name, the factory's positional
        and keyword arguments, and whether the attribute is called.
    @raise AppLoadError: if C{spec} is not of that form.
    """
    hint = _suggestion(spec)
    if hint is not None:
        raise AppLoadError(hint)
    moduleName, _, attribute = spec.partition(":")
    moduleName = moduleName.strip()
    if not moduleName or not all(_NAME.fullmatch(p) for p in moduleName.split(".")):
        raise AppLoadError(
            f"--app {spec!r}: {moduleName!r} is not a module name; "
            "use --app module:attr, for example --app myapp:app"
        )
    return (moduleName, *_parseAttribute(attribute or "application", spec))


def _noModule(spec: str, name: str, directory: str) -> AppLoadError:
    """
    The error for an application module (or a package above it) that is
    not there, searched for from C{directory}.
    """
    return AppLoadError(
        f"--app {spec!r}: no module named {name!r} "
        f"(searched from {directory!r}; --chdir or --pythonpath "
        "can add the right directory)"
    )


def findApp(spec: str, path: Sequence[str], directory: str) -> None:
    """
    Check, without running any of the application's code, that C{spec} is
    well formed and that the top-level package of its module can be found
    on C{path} (or is already imported): what a supervisor can tell before
    its workers load the application, so that a mistyped C{--app} fails at
    once, with status 1, and before C{twistd} becomes a daemon.

    @param path: the directories a worker will import from.
    @param directory: the working directory a worker will have.
    @raise AppLoadError: with a one-line message.
    """
    top = _parseSpec(spec)[0].partition(".")[0]
    if top in sys.modules:
        return
    # As an import asks sys.meta_path, but with the workers' path: a finder
    # other than the path's own (a builtin, a frozen module, setuptools'
    # editable install) finds the same module in a worker.
    for finder in sys.meta_path:
        if finder is importlib.machinery.PathFinder:
            found = finder.find_spec(top, list(path))
        else:
            findSpec = getattr(finder, "find_spec", None)
            found = None if findSpec is None else findSpec(top, None)
        if found is not None:
            return
    raise _noModule(spec, top, directory)


def _checkCallable(
    target: Callable[..., object],
    spec: str,
    what: str,
    factory: str | None,
    calledWith: Sequence[str],
) -> None:
    """
    Refuse a callable that cannot take the arguments it will be called with
    (most often a factory named without its call), at startup rather than
    with a C{TypeError} on the first request.  A callable whose signature
    cannot be read (a builtin) is taken as it is.

    @param factory: C{module:attr()}, to suggest if C{target} can be called
        without arguments (a factory), or C{None}.
    """
    try:
        # Its own signature, not that of what it wraps (webob's wsgify
        # wraps a function of a request, functools.wraps a (*args) wrapper).
        signature = inspect.signature(target, follow_wrapped=False)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*calledWith)
    except TypeError:
        pass
    else:
        return
    hint = ""
    if factory is not None:
        try:
            signature.bind()
        except TypeError:
            pass
        else:
            hint = f"; if it is a factory, call it: {factory!r}"
    raise AppLoadError(
        f"--app {spec!r}: {what}{signature} cannot be called with "
        f"({', '.join(calledWith)}){hint}"
    )


def loadApp(
    spec: str, calledWith: Sequence[str] = ("environ", "start_response")
) -> Callable[..., Any]:
    """
    Import and return the WSGI application named by C{spec}.

    @param spec: C{module}, C{module:attr} or C{module:factory(args)}.  A bare
        C{module} means C{module:application}, as in gunicorn.
    @param calledWith: the names of the arguments the callable will be
        called with: a callable that cannot take that many is refused.
    @raise AppLoadError: with a one-line message.
    """
    moduleName, name, args, kwargs, isCall = _parseSpec(spec)
    try:
        module = importlib.import_module(moduleName)
    except ModuleNotFoundError as e:
        # Only the module itself or one of its parent packages missing is
        # "no module"; anything else was missing for an import inside it.
        if e.name is not None and (moduleName + ".").startswith(e.name + "."):
            raise _noModule(spec, e.name, os.getcwd())
        raise AppLoadError(
            f"--app {spec!r}: importing {moduleName!r} failed: {_oneLine(e)}",
            traceback.format_exc(),
        )
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt):
            raise
        raise AppLoadError(
            f"--app {spec!r}: importing {moduleName!r} raised {_oneLine(e)}",
            traceback.format_exc(),
        )

    try:
        target = getattr(module, name)
    except AttributeError:
        raise AppLoadError(
            f"--app {spec!r}: module {moduleName!r} has no attribute {name!r}"
        )

    if isCall:
        if not callable(target):
            raise AppLoadError(f"--app {spec!r}: {name!r} is not callable")
        try:
            target = target(*args, **kwargs)
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            raise AppLoadError(
                f"--app {spec!r}: the factory raised {_oneLine(e)}",
                traceback.format_exc(),
            )

    if not callable(target):
        what = f"{name}()" if isCall else name
        raise AppLoadError(
            f"--app {spec!r}: {what} is of type {type(target).__name__}, "
            "not a WSGI application (a callable)"
        )
    _checkCallable(
        target,
        spec,
        f"{name}()" if isCall else name,
        None if isCall else f"{moduleName}:{name}()",
        calledWith,
    )
    return target  # type: ignore[no-any-return]


__all__ = ["AppLoadError", "findApp", "loadApp"]
