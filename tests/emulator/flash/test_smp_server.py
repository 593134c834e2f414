"""The SMP server: serial framing, demux, the OS and image groups, refusals, power cuts.

Requests are built and framed with the ``smp`` package (the library real clients
use), so these tests also check that our framing interoperates with it.
"""

from __future__ import annotations

import hashlib
import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import pytest
from smp import header as smphdr
from smp import image_management as smpimg
from smp import os_management as smpos
from smp import packet as smppacket
from smp.error import MGMT_ERR

from emulator.flash import (
    MAX_LINE_BYTES,
    BootPolicy,
    FlashDevice,
    FlashLayout,
    FlashStorage,
    PowerCut,
    SmpFrameDecoder,
    SmpServer,
    encode_smp_frame,
)
from hal.serial import FrameType, LineDemux
from hal.serial._frames import encode_frame
from tests.imaging import ImageFactory, image_factory

LAYOUT = FlashLayout(sector_size_bytes=4096, slot_sectors=8)
IMG = smpimg.IMG_MGMT_ERR


# -- images (imgtool, in-process) ------------------------------------------------------


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> ImageFactory:
    return image_factory(tmp_path_factory.mktemp("images"),
                         {"ec": "ecdsa-p256", "rogue": "ecdsa-p256"})


def _policy(images: ImageFactory) -> BootPolicy:
    return BootPolicy(
        trusted_keys_pem=(images.keys["ec"].read_bytes(),), vendor="printer-emu", board="laser-a"
    )


@pytest.fixture
def device(tmp_path: Path, images: ImageFactory) -> Iterator[FlashDevice]:
    storage = FlashStorage(tmp_path / "flash.bin", LAYOUT, durable=False)
    dev = FlashDevice(tmp_path / "flash.bin", storage=storage, policy=_policy(images))
    dev.provision(images.make("1.0.0"))
    dev.boot()
    yield dev
    dev.close()


# -- a tiny SMP client over the server's feed() ----------------------------------------


def exchange(server: SmpServer, request: Any) -> bytes:
    """Send ``request`` framed by smp.packet; return the reply packet."""
    reply = b""
    for line in smppacket.encode(request.BYTES, line_length=128):
        reply += server.feed(line)
    decoder = smppacket.decode()
    next(decoder)
    for line in reply.splitlines(keepends=True):
        try:
            decoder.send(line)
        except StopIteration as done:
            return bytes(done.value)
    raise AssertionError(f"no complete reply in {reply!r}")


def upload(
    server: SmpServer,
    image: bytes,
    *,
    chunk: int = 1500,
    start: int = 0,
    stop: int | None = None,
    sha: bytes | None = None,
) -> Any:
    """Upload like smpclient: off=0 carries len and sha; follow the offsets replied."""
    offset = start
    sha = sha if sha is not None else hashlib.sha256(image).digest()
    response: Any = None
    while offset < len(image) if stop is None else offset < stop:
        first = offset == 0
        request = smpimg.ImageUploadWriteRequest(
            off=offset,
            data=image[offset : offset + chunk],
            len=len(image) if first else None,
            sha=sha if first else None,
        )
        packet = exchange(server, request)
        try:
            response = smpimg.ImageUploadWriteResponse.loads(packet)
        except ValueError:
            return smpimg.ImageManagementErrorV2.loads(packet)
        assert response.off is not None
        offset = response.off
    return response


def states(server: SmpServer) -> list[smpimg.ImageState]:
    packet = exchange(server, smpimg.ImageStatesReadRequest())
    return list(smpimg.ImageStatesReadResponse.loads(packet).images)


def mark(server: SmpServer, *, confirm: bool = False) -> None:
    """Mark the secondary slot's image for the next boot (test, or permanent)."""
    secondary = next(s for s in states(server) if s.slot == 1)
    request = smpimg.ImageStatesWriteRequest(hash=secondary.hash, confirm=confirm)
    smpimg.ImageStatesWriteResponse.loads(exchange(server, request))


def image_error(packet: bytes) -> IMG:
    return IMG(smpimg.ImageManagementErrorV2.loads(packet).err.rc)


# -- framing and demux -----------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 90, 91, 92, 500, 3000])
def test_frames_are_what_smp_packet_decodes(size: int) -> None:
    packet = random.Random(size).randbytes(size)
    framed = encode_smp_frame(packet)
    lines = framed.splitlines(keepends=True)
    assert all(len(line) <= MAX_LINE_BYTES and line.endswith(b"\n") for line in lines)
    assert lines[0].startswith(b"\x06\x09")
    assert all(line.startswith(b"\x04\x14") for line in lines[1:])
    decoder = smppacket.decode()
    next(decoder)
    with pytest.raises(StopIteration) as done:
        for line in lines:
            decoder.send(line)
    assert bytes(done.value.value) == packet


@pytest.mark.parametrize("line_length", [20, 128, 256])
def test_decoder_reads_what_smp_packet_encodes(line_length: int) -> None:
    packet = random.Random(line_length).randbytes(1000)
    decoder = SmpFrameDecoder()
    results = [decoder.feed_line(line) for line in smppacket.encode(packet, line_length)]
    assert results[-1] == packet
    assert all(r is None for r in results[:-1])


def test_decoder_drops_bad_frames_and_recovers() -> None:
    decoder = SmpFrameDecoder()
    good = list(smppacket.encode(b"hello smp", 128))
    bad_crc = bytearray(good[0])
    bad_crc[5] ^= 0x01
    assert decoder.feed_line(bytes(bad_crc)) is None
    assert decoder.feed_line(b"\x04\x14AAAA\n") is None  # continuation without a start
    assert decoder.feed_line(b"\x06\x09@@@@\n") is None  # not base64
    assert decoder.dropped_frames == 3
    assert decoder.feed_line(good[0]) == b"hello smp"


def test_demux_tells_smp_lines_from_board_frames_at_any_split() -> None:
    # SMP markers and newlines inside a board frame don't count.
    frame = encode_frame(FrameType.EVENT, b"\x06\x09\x04\x14\n\x06\x09")
    heartbeat = encode_frame(FrameType.HEARTBEAT)
    smp_lines = encode_smp_frame(bytes(range(200)))
    stream = frame + smp_lines + heartbeat + smp_lines + frame
    rng = random.Random(7)
    for _trial in range(50):
        demux = LineDemux()
        pieces: list[tuple[bool, bytes]] = []
        position = 0
        while position < len(stream):
            step = rng.randint(1, 9)
            pieces += demux.feed(stream[position : position + step])
            position += step
        smp = [piece for is_smp, piece in pieces if is_smp]
        other = b"".join(piece for is_smp, piece in pieces if not is_smp)
        assert b"".join(smp) == smp_lines * 2
        assert all(line.endswith(b"\n") for line in smp)
        assert other == frame + heartbeat + frame


def test_demux_skips_console_text_before_smp_lines() -> None:
    demux = LineDemux()
    smp_lines = encode_smp_frame(b"x" * 300)
    pieces = demux.feed(b"*** Booting printer-emu ***\r\n" + smp_lines)
    assert b"".join(piece for is_smp, piece in pieces if is_smp) == smp_lines


# -- OS group --------------------------------------------------------------------------


def test_echo_parameters_and_info(device: FlashDevice) -> None:
    server = device.smp_server
    echo = exchange(server, smpos.EchoWriteRequest(d="ping"))
    assert smpos.EchoWriteResponse.loads(echo).r == "ping"
    params = smpos.MCUMgrParametersReadResponse.loads(
        exchange(server, smpos.MCUMgrParametersReadRequest())
    )
    assert params.buf_size == server.buf_size_bytes
    info = smpos.OSApplicationInfoReadResponse.loads(
        exchange(server, smpos.OSApplicationInfoReadRequest(format="i"))
    )
    assert info.output == "laser-a"  # the board the policy checks images against


def test_unknown_command_gets_enotsup_in_the_request_version(device: FlashDevice) -> None:
    server = device.smp_server
    body = cbor2.dumps({})
    for version in (0, 1):
        header = bytes([version << 3, 0, 0, len(body), 0, 0x42, 7, 0x33])
        reply = server.handle_packet(header + body)
        assert reply[0] == (version << 3) | smphdr.OP.READ_RSP
        assert reply[6] == 7  # sequence echoed
        assert cbor2.loads(reply[8:]) == {"rc": MGMT_ERR.ENOTSUP}


def test_malformed_requests_are_answered_never_fatal(device: FlashDevice) -> None:
    server = device.smp_server
    rng = random.Random(11)
    commands = [(0, 0), (0, 5), (0, 6), (0, 7), (1, 0), (1, 1), (1, 5), (9, 9)]
    for _trial in range(300):
        group, command = rng.choice(commands)
        body = rng.choice(
            [
                rng.randbytes(rng.randint(0, 40)),
                cbor2.dumps([1, 2]),
                cbor2.dumps({"off": "x", "data": 5, "len": -1}),
                cbor2.dumps({"hash": 3, "confirm": "yes", "slot": 7, "d": b"\x00"}),
            ]
        )
        op_byte = rng.choice([0, 2, 8, 10, 16, 26])  # read/write, SMP versions 1..4
        header = bytes([op_byte, 0, 0, len(body), 0, group, rng.randint(0, 255), command])
        reply = server.handle_packet(header + body)
        assert reply[6] == header[6]  # every request gets its answer
    assert device.running_image() is not None


def test_version_1_requests_get_rc_and_reason(device: FlashDevice) -> None:
    request = smpimg.ImageStatesWriteRequest(hash=b"\x01" * 32, version=smphdr.Version.V1)
    reply = cbor2.loads(exchange(device.smp_server, request)[8:])
    assert reply["rc"] == MGMT_ERR.ENOENT
    assert "hash" in reply["rsn"]


def test_reset_replies_then_calls_the_hook(device: FlashDevice) -> None:
    calls: list[bool] = []
    server = device.smp_server
    server.on_reset = lambda: calls.append(True)
    packet = exchange(server, smpos.ResetWriteRequest())
    smpos.ResetWriteResponse.loads(packet)
    assert calls == [True]
    assert device.reset_requested


# -- image group -----------------------------------------------------------------------


def test_upload_test_reset_and_confirm(device: FlashDevice, images: ImageFactory) -> None:
    image = images.make("1.1.0", security_counter=2)
    done = upload(device.smp_server, image)
    assert done.off == len(image) and done.match is True
    slots = {s.slot: s for s in states(device.smp_server)}
    assert slots[1].version == "1.1.0" and not slots[1].pending
    packet = exchange(device.smp_server, smpimg.ImageStatesWriteRequest(hash=slots[1].hash))
    written = {s.slot: s for s in smpimg.ImageStatesWriteResponse.loads(packet).images}
    assert written[1].pending and not written[1].permanent

    result = device.boot()
    assert result.image is not None and str(result.image.version) == "1.1.0"
    running = device.running_image()
    assert running is not None and not running.confirmed
    slots = {s.slot: s for s in states(device.smp_server)}
    assert slots[0].active and not slots[0].confirmed and slots[1].confirmed

    exchange(device.smp_server, smpimg.ImageStatesWriteRequest(confirm=True))
    running = device.running_image()
    assert running is not None and running.confirmed
    device.boot()
    running = device.running_image()
    assert running is not None and str(running.version) == "1.1.0"


def test_upload_resumes_at_the_offset_the_device_holds(
    device: FlashDevice, images: ImageFactory
) -> None:
    image = images.make("1.1.0", payload_bytes=12000)
    partial = upload(device.smp_server, image, stop=6000)
    held = partial.off
    assert 6000 <= held < len(image)
    # A client that starts over (off=0, same sha and len) is told where to go on.
    again = smpimg.ImageUploadWriteRequest(
        off=0, data=image[:1500], len=len(image), sha=hashlib.sha256(image).digest()
    )
    reply = smpimg.ImageUploadWriteResponse.loads(exchange(device.smp_server, again))
    assert reply.off == held
    done = upload(device.smp_server, image, start=held)
    assert done.off == len(image) and done.match is True


def test_unexpected_offset_is_answered_with_the_wanted_one(
    device: FlashDevice, images: ImageFactory
) -> None:
    image = images.make("1.1.0")
    upload(device.smp_server, image, stop=1)
    request = smpimg.ImageUploadWriteRequest(off=4000, data=b"x" * 10)
    reply = smpimg.ImageUploadWriteResponse.loads(exchange(device.smp_server, request))
    assert reply.off == 1500


def _corrupt_body(image: bytes) -> bytes:
    return image[:0x300] + bytes([image[0x300] ^ 0xFF]) + image[0x301:]


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("too-large", IMG.INVALID_IMAGE_TOO_LARGE),
        ("downgrade", IMG.CURRENT_VERSION_IS_NEWER),
        ("security-counter", IMG.CURRENT_VERSION_IS_NEWER),
        ("bad-hash", IMG.INVALID_HASH),
        ("bad-signature", IMG.INVALID_TLV),
        ("wrong-board", IMG.INVALID_FLASH_ADDRESS),
        ("not-an-image", IMG.INVALID_IMAGE_HEADER),
    ],
)
def test_refused_uploads_say_why_and_leave_nothing_behind(
    device: FlashDevice, images: ImageFactory, case: str, code: IMG
) -> None:
    if case == "security-counter":
        device.smp_server.bootloader.confirm_running()
        device.bootloader._counter.raise_to(5)
    image = {
        "too-large": lambda: images.make("2.0.0", payload_bytes=LAYOUT.image_capacity_bytes),
        "downgrade": lambda: images.make("0.9.0"),
        "security-counter": lambda: images.make("2.0.0", security_counter=4),
        "bad-hash": lambda: _corrupt_body(images.make("2.0.0")),
        "bad-signature": lambda: images.make("2.0.0", key="rogue"),
        "wrong-board": lambda: images.make("2.0.0", board="laser-b"),
        "not-an-image": lambda: b"\x00" * 5000,
    }[case]()
    reply = upload(device.smp_server, image)
    assert isinstance(reply, smpimg.ImageManagementErrorV2)
    assert IMG(reply.err.rc) is code
    assert [s.slot for s in states(device.smp_server)] == [0]


def test_upload_whose_data_does_not_match_its_sha_is_refused(
    device: FlashDevice, images: ImageFactory
) -> None:
    image = images.make("1.1.0")
    reply = upload(device.smp_server, image, sha=hashlib.sha256(b"another image").digest())
    assert IMG(reply.err.rc) is IMG.INVALID_HASH
    assert [s.slot for s in states(device.smp_server)] == [0]


def test_state_write_refusals(device: FlashDevice, images: ImageFactory) -> None:
    server = device.smp_server
    running_hash = states(server)[0].hash
    assert running_hash is not None
    packet = exchange(server, smpimg.ImageStatesWriteRequest(hash=running_hash))
    assert image_error(packet) is IMG.IMAGE_SETTING_TEST_TO_ACTIVE_DENIED
    packet = exchange(server, smpimg.ImageStatesWriteRequest(hash=b"\x07" * 32))
    assert image_error(packet) is IMG.HASH_NOT_FOUND


def test_secondary_is_busy_until_the_test_image_is_confirmed(
    device: FlashDevice, images: ImageFactory
) -> None:
    image = images.make("1.1.0")
    upload(device.smp_server, image)
    mark(device.smp_server)
    device.boot()
    assert image_error(exchange(device.smp_server, smpimg.ImageEraseRequest())) is IMG.NO_FREE_SLOT
    reply = upload(device.smp_server, images.make("1.2.0"))
    assert IMG(reply.err.rc) is IMG.NO_FREE_SLOT
    exchange(device.smp_server, smpimg.ImageStatesWriteRequest(confirm=True))
    smpimg.ImageEraseResponse.loads(exchange(device.smp_server, smpimg.ImageEraseRequest()))
    assert [s.slot for s in states(device.smp_server)] == [0]


def test_power_cut_at_every_operation_of_an_upload(tmp_path: Path, images: ImageFactory) -> None:
    path = tmp_path / "flash.bin"
    policy = _policy(images)
    with FlashDevice(path, layout=LAYOUT, policy=policy, durable=False) as factory:
        factory.provision(images.make("1.0.0"))
    snapshot = tmp_path / "factory.bin"
    shutil.copyfile(path, snapshot)
    image = images.make("1.1.0", payload_bytes=9000)

    def run(storage: FlashStorage) -> FlashDevice:
        dev = FlashDevice(path, storage=storage, policy=policy)
        dev.boot()
        upload(dev.smp_server, image)
        mark(dev.smp_server)
        return dev

    probe = FlashStorage(path, LAYOUT, durable=False)
    run(probe).close()
    total = probe.ops_done
    assert total >= 9  # seven chunk writes, then the trailer (flags, magic)
    for ops in range(total):
        shutil.copyfile(snapshot, path)
        storage = FlashStorage(path, LAYOUT, durable=False, power_cut_after_ops=ops)
        with pytest.raises(PowerCut):
            run(storage)
        storage.close()
        with FlashDevice(path, layout=LAYOUT, policy=policy, durable=False) as dev:
            result = dev.boot()
            assert result.image is not None, f"no image after a cut at operation {ops}"
            assert str(result.image.version) in ("1.0.0", "1.1.0")
            # The device is still flashable after the cut.
            if str(result.image.version) == "1.0.0":
                assert upload(dev.smp_server, image).match is True
