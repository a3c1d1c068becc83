"""
Tests for L{twsgi.http.h2hpack}: the HPACK encoder that sends a header
block it encoded before as the same bytes, checked in step with C{hpack}'s
own encoder and decoder.
"""

from __future__ import annotations

from typing import Any

from hpack import Decoder, Encoder, HPACKError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from twsgi.http.h2hpack import (
    MAX_REMEMBERED,
    MAX_REMEMBERED_BLOCK,
    RememberingDecoder,
    RememberingEncoder,
)

HEAD = [
    (b":status", b"200"),
    (b"content-type", b"text/plain"),
    (b"content-length", b"13"),
    (b"date", b"Sun, 06 Dec 2026 19:00:00 GMT"),
]

Block = list[tuple[bytes, bytes]]

BLOCKS: list[Block] = [
    HEAD,
    [*HEAD[:2], (b"content-length", b"14"), HEAD[3]],
    [(b":status", b"200"), (b"content-type", b"text/plain")],
    [(b":status", b"404"), (b"x-long", b"v" * 40), (b"content-type", b"text/plain")],
    [(b":status", b"201"), (b"x-long", b"w" * 40)],
]
"""
Blocks that share fields, for L{RememberingEncoderTests.test_inStep}.
"""


class Lockstep:
    """
    A L{RememberingEncoder} and C{hpack}'s own encoder fed the same
    blocks, and a decoder for what the first sends.
    """

    def __init__(self, case: SynchronousTestCase) -> None:
        self.case = case
        self.encoder = RememberingEncoder()
        self.plain = Encoder()
        self.decoder = Decoder()

    def send(self, block: Block) -> bytes:
        """
        Encode C{block} with both: the bytes are the same, and they decode
        to C{block}.
        """
        data = self.encoder.encode(block)
        self.case.assertEqual(data, self.plain.encode(block))
        self.case.assertEqual(
            [tuple(field) for field in self.decoder.decode(data, raw=True)], block
        )
        return data

    def resize(self, size: int) -> None:
        """
        The client's SETTINGS_HEADER_TABLE_SIZE: both encoders take it (the
        decoder hears of it from the next block).  A size equal to the
        current one is left out: C{hpack}'s encoder then forgets the
        changes it has not sent yet (so would C{h2}'s, whichever encoder).
        """
        if size == self.plain.header_table_size:
            return
        self.encoder.header_table_size = size
        self.plain.header_table_size = size


class RememberingEncoderTests(SynchronousTestCase):
    """
    Tests for L{RememberingEncoder}.
    """

    def test_remembered(self) -> None:
        """
        A block whose fields are all in the table is sent, the next time,
        as the bytes made the time before, without searching the table.
        """
        lockstep = Lockstep(self)
        lockstep.send(HEAD)
        second = lockstep.send(HEAD)

        def search(name: bytes, value: bytes) -> None:
            raise AssertionError("searched the table")

        table = lockstep.encoder.header_table
        table.search = search  # type: ignore[method-assign]
        self.assertIs(lockstep.encoder.encode(list(HEAD)), second)

    def test_notRememberedWhileAdding(self) -> None:
        """
        A block that added fields to the table is encoded again the next
        time (its fields are indexed then), not sent as it was.
        """
        lockstep = Lockstep(self)
        first = lockstep.send(HEAD)
        self.assertNotEqual(lockstep.send(HEAD), first)

    def test_tableChangeForgets(self) -> None:
        """
        A block that adds a field to the table makes the encoder forget the
        blocks it remembered: the indices they send have moved.
        """
        lockstep = Lockstep(self)
        lockstep.send(HEAD)
        lockstep.send(HEAD)
        other = [*HEAD[:2], (b"content-length", b"14"), HEAD[3]]
        lockstep.send(other)
        lockstep.send(other)
        lockstep.send(HEAD)
        lockstep.send(other)

    def test_resizeForgets(self) -> None:
        """
        A new table size (the client's SETTINGS) is sent with the next
        block, and the blocks remembered before are not used: the table may
        have lost their fields, even where the size came back to what it was.
        """
        lockstep = Lockstep(self)
        lockstep.send(HEAD)
        lockstep.send(HEAD)
        lockstep.resize(0)
        lockstep.resize(4096)
        lockstep.send(HEAD)
        lockstep.send(HEAD)
        lockstep.resize(64)
        lockstep.send(HEAD)
        lockstep.resize(128)
        lockstep.send(HEAD)

    def test_shrinkForgets(self) -> None:
        """
        A smaller table size that evicts fields of a remembered block makes
        the encoder forget it, even after a block that needed no change.
        """
        lockstep = Lockstep(self)
        lockstep.send(HEAD)
        lockstep.send(HEAD)
        # Only the newest entry, the date, fits.
        lockstep.resize(65)
        lockstep.send([HEAD[3]])
        lockstep.send(HEAD)

    def test_bounded(self) -> None:
        """
        At most L{MAX_REMEMBERED} blocks are remembered.
        """
        lockstep = Lockstep(self)
        blocks = [[(b":status", b"%d" % status)] for status in range(200, 300)]
        for block in blocks:
            lockstep.send(block)
        for block in blocks:
            lockstep.send(block)
        remembered = 0
        for block in blocks:
            data = lockstep.encoder.encode(block)
            remembered += data is lockstep.encoder.encode(block)
            self.assertEqual(data, lockstep.plain.encode(block))
            lockstep.plain.encode(block)
        self.assertEqual(remembered, MAX_REMEMBERED)

    def test_generator(self) -> None:
        """
        The fields may come from any iterable.
        """
        lockstep = Lockstep(self)
        for _ in range(3):
            data = lockstep.encoder.encode(field for field in HEAD)
            self.assertEqual(data, lockstep.plain.encode(HEAD))
            self.assertEqual(lockstep.decoder.decode(data, raw=True), HEAD)

    @settings(
        max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(st.lists(st.sampled_from([*BLOCKS, 0, 60, 100, 256, 4096]), max_size=40))
    def test_inStep(self, steps: list[Block | int]) -> None:
        """
        Whatever blocks are sent and sizes set, in any order, the encoder
        sends what C{hpack}'s own would, and the decoder reads every block.
        """
        lockstep = Lockstep(self)
        for step in steps:
            if isinstance(step, int):
                lockstep.resize(step)
            else:
                lockstep.send(step)


class DecoderLockstep:
    """
    A L{RememberingDecoder} and C{hpack}'s own decoder fed the same blocks,
    made by one encoder.
    """

    def __init__(self, case: SynchronousTestCase) -> None:
        self.case = case
        self.encoder = Encoder()
        self.decoder = RememberingDecoder()
        self.plain = Decoder()

    def read(self, data: bytes) -> list[tuple[bytes, bytes]] | type[HPACKError]:
        """
        Decode C{data} with both: the same fields, or the same error.
        """
        results = []
        for decoder in (self.decoder, self.plain):
            try:
                results.append(decoder.decode(data, raw=True))
            except HPACKError as error:
                results.append(type(error))
        self.case.assertEqual(results[0], results[1])
        return results[0]

    def send(self, block: Block) -> list[tuple[bytes, bytes]] | type[HPACKError]:
        """
        Encode C{block} and decode it with both: they read C{block}.
        """
        fields = self.read(self.encoder.encode(block))
        self.case.assertEqual(fields, block)
        return fields

    def limit(self, size: int) -> None:
        """
        Set the largest header list both decoders take.
        """
        self.decoder.max_header_list_size = size
        self.plain.max_header_list_size = size


class RememberingDecoderTests(SynchronousTestCase):
    """
    Tests for L{RememberingDecoder}.
    """

    def test_remembered(self) -> None:
        """
        A block all of whose fields are in the table is read, the next
        time, as the fields read the time before, without the table.
        """
        lockstep = DecoderLockstep(self)
        lockstep.send(HEAD)
        data = lockstep.encoder.encode(HEAD)
        lockstep.read(data)

        def lookUp(index: int) -> tuple[bytes, bytes]:
            raise AssertionError("read the table")

        table = lockstep.decoder.header_table
        table.get_by_index = lookUp  # type: ignore[method-assign]
        self.assertEqual(lockstep.decoder.decode(data, raw=True), HEAD)

    def test_fresh(self) -> None:
        """
        Each read hands out a list of its own: a caller that changes it
        does not change what the next read hands out.
        """
        lockstep = DecoderLockstep(self)
        lockstep.send(HEAD)
        data = lockstep.encoder.encode(HEAD)
        first = lockstep.decoder.decode(data, raw=True)
        first.clear()
        self.assertEqual(lockstep.decoder.decode(data, raw=True), HEAD)

    def test_tableChangeForgets(self) -> None:
        """
        A block that adds a field to the table makes the decoder forget the
        blocks it remembered: the same bytes now name other entries.
        """
        lockstep = DecoderLockstep(self)
        lockstep.send(HEAD)
        data = lockstep.encoder.encode(HEAD)
        lockstep.read(data)
        lockstep.send([(b"x-new", b"1")])
        lockstep.read(lockstep.encoder.encode([(b"x-new", b"1")]))
        # The same bytes, read again: the indices moved under them.
        lockstep.read(data)
        lockstep.send(HEAD)

    def test_limitForgets(self) -> None:
        """
        A block remembered under one header list limit is checked again
        under a smaller one, and refused as C{hpack}'s decoder refuses it.
        """
        lockstep = DecoderLockstep(self)
        lockstep.send(HEAD)
        data = lockstep.encoder.encode(HEAD)
        lockstep.read(data)
        lockstep.limit(100)
        self.assertIsInstance(lockstep.read(data), type)
        lockstep.limit(4096)
        lockstep.read(data)

    def test_large(self) -> None:
        """
        A block above L{MAX_REMEMBERED_BLOCK} bytes is not remembered.
        """
        lockstep = DecoderLockstep(self)
        block = [(b"x-big", b"v" * MAX_REMEMBERED_BLOCK * 2)]
        data = Encoder().encode(block, huffman=False)
        for _ in range(2):
            self.assertEqual(lockstep.decoder.decode(data, raw=True), block)
        self.assertEqual(lockstep.decoder._blocks, {})

    def test_bounded(self) -> None:
        """
        At most L{MAX_REMEMBERED} blocks are remembered.
        """
        lockstep = DecoderLockstep(self)
        for status in range(200, 300):
            lockstep.send([(b":status", b"%d" % status)])
        blocks = [
            lockstep.encoder.encode([(b":status", b"%d" % status)])
            for status in range(200, 300)
        ]
        for data in blocks:
            lockstep.read(data)
        self.assertEqual(len(lockstep.decoder._blocks), MAX_REMEMBERED)

    @settings(
        max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(
        st.lists(
            st.one_of(
                st.sampled_from([*BLOCKS, 0, 60, 100, 256, 4096]),
                st.tuples(st.just("again"), st.integers(0, 10)),
                st.tuples(st.just("limit"), st.sampled_from([80, 200, 65536])),
            ),
            max_size=40,
        )
    )
    def test_inStep(self, steps: list[Any]) -> None:
        """
        Whatever blocks arrive (again and again), table sizes change and
        limits are set, in any order, the decoder reads what C{hpack}'s own
        reads, or refuses what it refuses.
        """
        lockstep = DecoderLockstep(self)
        sent: list[bytes] = []
        for step in steps:
            if isinstance(step, int):
                if step != lockstep.encoder.header_table_size:
                    lockstep.encoder.header_table_size = step
            elif isinstance(step, tuple):
                if step[0] == "limit":
                    lockstep.limit(step[1])
                elif sent:
                    lockstep.read(sent[step[1] % len(sent)])
            else:
                data = lockstep.encoder.encode(step)
                sent.append(data)
                lockstep.read(data)
