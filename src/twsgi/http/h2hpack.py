# -*- test-case-name: tests.http.test_h2hpack -*-
"""
The HPACK encoder and decoder of twsgi's HTTP/2 connections: C{hpack}'s
own, which remember the header blocks they handled without changing their
dynamic table, and hand out the same result again for the same block.

The responses of a WSGI application repeat their heads (the same status,
names and, mostly, values), and a client's requests repeat theirs; once
the fields of a block are in the dynamic table, encoding it (or decoding
it) again finds each of them there and changes nothing, so the result is
the same as long as the table stays as it was.  Any change to the table (a
field added, or its size changed) forgets what was remembered.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Union

from hpack import Decoder, Encoder
from hpack.table import HeaderTable

if TYPE_CHECKING:
    from hpack.struct import HeaderTuple

_Field = Union[
    "HeaderTuple",
    tuple[bytes | str, bytes | str],
    tuple[bytes | str, bytes | str, bool | None],
]
"""
A header field as C{hpack.Encoder.encode} takes it: a name and a value, and
whether it may be indexed.
"""

MAX_REMEMBERED = 64
"""
How many header blocks an encoder or a decoder remembers between two
changes of its dynamic table.
"""

MAX_REMEMBERED_BLOCK = 1024
"""
The largest encoded block a decoder remembers, in bytes (a request block
whose fields are all in the table takes a few dozen).
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
        self._blocks: dict[tuple[_Field, ...], bytes] = {}
        self._changes = 0

    def encode(
        self,
        headers: Iterable[_Field] | dict[bytes | str, bytes | str],
        huffman: bool = True,
    ) -> bytes:
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


class RememberingDecoder(Decoder):
    """
    An HPACK decoder that reads a block it decoded before, without a change
    to its dynamic table meanwhile, as the fields it read then.

    Decoding the block again would read the same fields (from the same
    table) and change nothing; and with the same limits, it would pass or
    fail their checks the same way.
    """

    def __init__(self) -> None:
        Decoder.__init__(self)
        self.header_table: CountingTable = CountingTable()
        self._blocks: dict[tuple[bytes, bool], list[HeaderTuple]] = {}
        self._state: tuple[int, int, int] = (-1, 0, 0)

    def decode(self, data: bytes, raw: bool = False) -> list[HeaderTuple]:
        """
        Decode C{data} (see C{hpack.Decoder.decode}), or read the fields
        remembered for it.
        """
        if len(data) > MAX_REMEMBERED_BLOCK:
            return list(Decoder.decode(self, data, raw))
        key = (bytes(data), raw)
        blocks = self._blocks
        state = (
            self.header_table.changes,
            self.max_header_list_size,
            self.max_allowed_table_size,
        )
        if state != self._state:
            blocks.clear()
            self._state = state
        else:
            fields = blocks.get(key)
            if fields is not None:
                return list(fields)
        fields = list(Decoder.decode(self, data, raw))
        if len(blocks) < MAX_REMEMBERED:
            blocks[key] = fields
        return list(fields)


__all__ = [
    "MAX_REMEMBERED",
    "MAX_REMEMBERED_BLOCK",
    "CountingTable",
    "RememberingDecoder",
    "RememberingEncoder",
]
