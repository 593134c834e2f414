"""The serial-attached board and the wire protocol it speaks (docs/protocol.md)."""

from hal.serial._board import BoardMismatch, NoDeviceAnswer, PortUnavailable, SerialBoard

__all__ = ["BoardMismatch", "NoDeviceAnswer", "PortUnavailable", "SerialBoard"]
