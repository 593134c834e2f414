"""The device side of flashing: MCUboot's image format and bootloader on an emulated NOR
flash, and the SMP (mcumgr) server that uploads and marks images.

Where each part lives:

- `_image.py`: the image format (header, TLVs, `parse_image`), what ``imgtool sign``
  writes; `_verify.py`: what the device accepts (`BootPolicy`, `verify_image`:
  hash, signature, board).
- `_storage.py`: the flash (`FlashStorage`, NOR rules, power-cut injection) and where
  things are on it (`FlashLayout`).
- `_bootloader.py`: `Bootloader`, MCUboot's boot decision and swap using scratch, on
  the slot trailers (`_trailer.py`), the swap-status sector (`_swap_status.py`) and
  the security counter (`_security_counter.py`).
- `_smp_serial.py`: SMP's serial framing (SMP lines are told from other traffic by
  `hal.serial.LineDemux`); `_smp_server.py`: `SmpServer`, the OS and image groups.
- `_device.py`: `FlashDevice`, bootloader and SMP server behind one port, and its
  standalone loop; `_factory_image.py`: the image a fresh device holds.
- ``python -m emulator.flash``: a flashable device on a pty (`__main__.py`).
- `_recovery_probe.py`: the host's question whether a device that does not speak the
  printer's protocol is in MCUboot's serial recovery (`serial_recovery_message`).

Nothing here knows the printer: no firmware, physics or print run is imported.
"""

from emulator.flash._bootloader import (
    Bootloader,
    BootResult,
    BootStateError,
    RunningImage,
    SlotBusy,
    SlotState,
)
from emulator.flash._device import FlashDevice, open_pty
from emulator.flash._factory_image import FACTORY_VERSION, factory_image
from emulator.flash._image import (
    ImageFlag,
    ImageHeader,
    ImageInfo,
    ImageRejected,
    ImageVersion,
    RejectReason,
    Tlv,
    TlvType,
    image_class_uuids,
    parse_header,
    parse_image,
)
from emulator.flash._recovery_probe import running_image_of, serial_recovery_message
from emulator.flash._smp_serial import MAX_LINE_BYTES, SmpFrameDecoder, encode_smp_frame
from emulator.flash._smp_server import (
    IMAGE_CLASS_QUERY,
    IMAGE_ERROR_FOR_REJECTION,
    DeviceIdentity,
    SmpServer,
)
from emulator.flash._storage import (
    ERASED_BYTE,
    FlashError,
    FlashLayout,
    FlashStorage,
    FlashWriteError,
    PowerCut,
)
from emulator.flash._trailer import SwapType
from emulator.flash._verify import BootPolicy, verify_image

__all__ = [
    "ERASED_BYTE",
    "FACTORY_VERSION",
    "IMAGE_CLASS_QUERY",
    "IMAGE_ERROR_FOR_REJECTION",
    "MAX_LINE_BYTES",
    "BootPolicy",
    "BootResult",
    "BootStateError",
    "Bootloader",
    "DeviceIdentity",
    "FlashDevice",
    "FlashError",
    "FlashLayout",
    "FlashStorage",
    "FlashWriteError",
    "ImageFlag",
    "ImageHeader",
    "ImageInfo",
    "ImageRejected",
    "ImageVersion",
    "PowerCut",
    "RejectReason",
    "RunningImage",
    "SlotBusy",
    "SlotState",
    "SmpFrameDecoder",
    "SmpServer",
    "SwapType",
    "Tlv",
    "TlvType",
    "encode_smp_frame",
    "factory_image",
    "image_class_uuids",
    "open_pty",
    "parse_header",
    "parse_image",
    "running_image_of",
    "serial_recovery_message",
    "verify_image",
]
