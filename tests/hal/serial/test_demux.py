"""The byte stream's demultiplexer (hal.serial._demux): SMP lines, frames and noise on one
line, by the rule of docs/protocol.md ("The byte stream")."""

from __future__ import annotations

from hal.serial._demux import LineDemux
from hal.serial._frames import FrameType, encode_frame


def test_line_demux_splits_frames_smp_and_noise() -> None:
    frame = encode_frame(FrameType.HEARTBEAT)
    smp1, smp2 = b"\x06\x09QUJD\n", b"\x04\x14REVG\n"
    demux = LineDemux()
    stream = b"\x00" + frame + smp1 + smp2 + b"boot text\n" + smp1 + frame
    out = demux.feed(stream)
    assert [piece for is_smp, piece in out if is_smp] == [smp1, smp2, smp1]
    decoder_bytes = b"".join(piece for is_smp, piece in out if not is_smp)
    assert decoder_bytes == b"\x00" + frame + b"boot text\n\x00" + frame


def test_line_demux_ignores_newlines_inside_frames() -> None:
    # A frame whose encoded bytes hold "\n\x06\x09" is still one frame.
    payload = b"\x01\n\x06\x09\x02\n\x04\x14"
    frame = encode_frame(FrameType.EVENT, payload)
    assert b"\n\x06\x09" in frame
    demux = LineDemux()
    out = demux.feed(b"\x00" + frame)
    assert out == [(False, b"\x00" + frame)]


def test_line_demux_byte_by_byte() -> None:
    frame = encode_frame(FrameType.HEARTBEAT)
    smp = b"\x06\x09QUJD\n"
    stream = b"\x00" + frame + smp + frame + b"noise\x00" + smp
    demux = LineDemux()
    pieces: list[tuple[bool, bytes]] = []
    for i in range(len(stream)):
        pieces.extend(demux.feed(stream[i : i + 1]))
    assert [p for s, p in pieces if s] == [smp, smp]
    assert b"".join(p for s, p in pieces if not s) == b"\x00" + frame + frame + b"noise\x00"
