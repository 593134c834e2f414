"""The byte stream's demultiplexer: SMP (mcumgr) lines and the board protocol's frames
on one line (docs/protocol.md, "The byte stream", is the normative rule).

A device that serves SMP beside the board protocol puts a :class:`LineDemux` in front of
its :class:`~hal.serial.LinkEndpoint`: SMP lines go to its SMP server, everything else to
the link's frame decoder. A host needs none: its frame decoder reports SMP lines as noise.
"""

from __future__ import annotations

from hal.serial._frames import MARKER

SMP_MARKERS = (b"\x06\x09", b"\x04\x14")
"""How an SMP line starts: its first line of a packet, or a continuation."""
MAX_SMP_LINE_BYTES = 4096
"""A line that grows longer without its ``\\n`` is not SMP after all."""

_BOUNDARY, _IN_FRAME, _IN_SMP, _IN_NOISE = range(4)


class LineDemux:
    """Splits the received byte stream into bytes for the frame decoder and SMP lines,
    by the rule of docs/protocol.md ("The byte stream"): at the start, after a 0x00 and
    after the ``\\n`` ending an SMP line or a line of noise, ``06 09`` / ``04 14`` starts
    an SMP line (up to its ``\\n``), ``c A5`` (c >= 2) a frame (up to its 0x00; a ``\\n``
    inside means nothing), anything else noise (up to ``\\n`` or 0x00).

    :meth:`feed` returns ``(is_smp, data)`` pieces in stream order; consecutive bytes for
    the decoder come as one piece. A line of noise ended by ``\\n`` is followed by a 0x00
    of our own, so the decoder reports it at once and does not glue it onto the next
    frame.
    """

    __slots__ = ("_held", "_smp", "_state")

    def __init__(self) -> None:
        self._state = _BOUNDARY
        self._held = b""
        self._smp = bytearray()

    def reset(self) -> None:
        self._state = _BOUNDARY
        self._held = b""
        self._smp.clear()

    def feed(self, data: bytes) -> list[tuple[bool, bytes]]:
        out: list[tuple[bool, bytes]] = []
        if self._held:
            data = self._held + data
            self._held = b""
        n = len(data)
        pos = 0
        start = 0  # first byte of the run of decoder bytes not yet emitted
        state = self._state
        smp = self._smp
        while pos < n:
            if state == _BOUNDARY:
                b0 = data[pos]
                if b0 == 0:
                    pos += 1
                    continue
                if pos + 1 == n:
                    # One byte cannot tell a frame from an SMP line: wait for the next.
                    if start < pos:
                        out.append((False, data[start:pos]))
                    self._held = data[pos:]
                    start = pos = n
                    break
                pair = data[pos : pos + 2]
                if pair in SMP_MARKERS:
                    if start < pos:
                        out.append((False, data[start:pos]))
                    state = _IN_SMP
                    start = pos
                elif b0 >= 2 and data[pos + 1] == MARKER:
                    state = _IN_FRAME
                else:
                    state = _IN_NOISE
            elif state == _IN_FRAME:
                end = data.find(0, pos)
                if end < 0:
                    pos = n
                else:
                    pos = end + 1
                    state = _BOUNDARY
            elif state == _IN_NOISE:
                zero = data.find(0, pos)
                newline = data.find(10, pos, zero if zero >= 0 else n)
                if newline >= 0:
                    pos = newline + 1
                    out.append((False, data[start:pos] + b"\x00"))
                    start = pos
                    state = _BOUNDARY
                elif zero >= 0:
                    pos = zero + 1
                    state = _BOUNDARY
                else:
                    pos = n
            else:  # _IN_SMP
                end = data.find(10, pos)
                stop = n if end < 0 else end + 1
                smp += data[pos:stop]
                pos = stop
                start = pos
                if end >= 0:
                    out.append((True, bytes(smp)))
                    smp.clear()
                    state = _BOUNDARY
                elif len(smp) > MAX_SMP_LINE_BYTES:
                    # Not a line after all: hand it to the decoder, which calls it noise.
                    out.append((False, bytes(smp)))
                    smp.clear()
                    state = _IN_NOISE
        if start < n and state != _IN_SMP:
            out.append((False, data[start:n]))
        self._state = state
        return out
