"""
Names of Python objects, as the tests look them up.
"""

from __future__ import annotations

import importlib


def resolve(name: str) -> object:
    """
    Import the longest importable prefix of a dotted name and look up the rest.

    @return: the object, or L{None} if no prefix imports or a part is missing.
    """
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:i]))
        except Exception:
            continue
        for part in parts[i:]:
            obj = getattr(obj, part, None)
        return obj
    return None


__all__ = ["resolve"]
