"""
Tests for L{twsgi.http.h2encoder}: the HPACK encoder that sends a header
block it encoded before as the same bytes, checked in step with C{hpack}'s
own encoder and decoder.
"""

from __future__ import annotations

from hpack import Decoder, Encoder
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from twsgi.http.h2encoder import MAX_REMEMBERED, RememberingEncoder

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

    @settings(max_examples=500, deadline=None)
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
