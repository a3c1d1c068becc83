# -*- test-case-name: tests.http.test_h2encoder -*-
"""
The HPACK encoder of twsgi's HTTP/2 connections: C{hpack}'s own, which
remembers the header blocks it encoded without changing its dynamic table,
and sends them again as they are.

The responses of a WSGI application repeat their heads (the same status,
names and, mostly, values); once the fields of a head are in the dynamic
table, encoding it again finds each of them there and changes nothing, so
the same bytes can be sent while the table stays as it was.  Any change to
the table (a field added, or its size changed by the client's SETTINGS)
forgets what was remembered.
"""

from __future__ import annotations

from typing import Any

from hpack import Encoder
from hpack.table import HeaderTable

MAX_REMEMBERED = 64
"""
How many header blocks an encoder remembers between two changes of its
dynamic table.
"""


class CountingTable(HeaderTable):
    """
    C{hpack}'s header table, counting its changes.

    @ivar changes: how many entries were added, and sizes set, so far.
    """

    def __init__(self) -> None:
        HeaderTable.__init__(self)
        self.changes = 0

    def add(self, name: bytes, value: bytes) -> None:
        self.changes += 1
        HeaderTable.add(self, name, value)

    @property
    def maxsize(self) -> int:
        return HeaderTable.maxsize.fget(self)  # type: ignore[attr-defined,no-any-return]

    @maxsize.setter
    def maxsize(self, newmax: int) -> None:
        self.changes += 1
        HeaderTable.maxsize.fset(self, newmax)  # type: ignore[attr-defined]


class RememberingEncoder(Encoder):
    """
    An HPACK encoder that sends a header block it encoded before, without a
    change to its dynamic table meanwhile, as the bytes it made then.

    Those bytes are what encoding the block again would make (every field
    of it is in the table, so each is sent as its index), and, like them,
    they change nothing; so the client's decoder stays in step.
    """

    def __init__(self) -> None:
        Encoder.__init__(self)
        self.header_table: CountingTable = CountingTable()
        self._blocks: dict[tuple[Any, ...], bytes] = {}
        self._changes = 0

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        """
        Encode C{headers} (see C{hpack.Encoder.encode}), or send the block
        remembered for them.
        """
        table = self.header_table
        if not huffman or isinstance(headers, dict) or table.resized:
            return Encoder.encode(self, headers, huffman)
        key = tuple(headers)
        blocks = self._blocks
        if table.changes != self._changes:
            blocks.clear()
            self._changes = table.changes
        else:
            block = blocks.get(key)
            if block is not None:
                return block
        block = Encoder.encode(self, key, huffman)
        if len(blocks) < MAX_REMEMBERED:
            blocks[key] = block
        return block


__all__ = ["MAX_REMEMBERED", "CountingTable", "RememberingEncoder"]
