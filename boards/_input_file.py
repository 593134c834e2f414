"""Reading a user's input file with a bound: a regular file of at most a given size.

Board, scenario and job files come from users; a device (``/dev/zero``), a FIFO or a
huge file must be refused, not read until memory runs out or a writer appears.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

CONFIG_FILE_LIMIT_BYTES = 1 << 20
"""Board and scenario files: 1 MiB (the shipped ones are a few KiB)."""
JOB_FILE_LIMIT_BYTES = 16 << 20
"""Text job files: 16 MiB (some 5,000 pages of dense text)."""


class InputFileError(ValueError):
    """An input file that cannot be read; the message names the path and why, and
    callers put it in their own error (`BoardFileError`, ``ScenarioError``, ...)."""


def read_input_file(path: str | Path, limit_bytes: int, what: str) -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit_bytes``; ``what`` names
    the kind of file in the message ("scenario file"). Raises InputFileError.

    The file is opened non-blocking so that a FIFO is refused instead of waiting for a
    writer, and read only up to the limit so that a file growing meanwhile stays bounded.
    """
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        shown = repr(str(p)) if "\0" in str(p) else str(p)
        raise InputFileError(f"{shown}: cannot read {what}: {reason}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputFileError(f"{p}: not a regular file (a {what} must be one)")
        if info.st_size > limit_bytes:
            raise InputFileError(
                f"{p}: {info.st_size} bytes is over the {what} limit of {limit_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        while size <= limit_bytes:
            chunk = os.read(fd, limit_bytes + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as e:
        raise InputFileError(f"{p}: cannot read {what}: {e.strerror}") from None
    finally:
        os.close(fd)
    if size > limit_bytes:
        raise InputFileError(f"{p}: over the {what} limit of {limit_bytes} bytes")
    return b"".join(chunks)
