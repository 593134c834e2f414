"""A bounded fuzz of the C device core under AddressSanitizer and UBSan: the driver
(mcu/tools/fuzz.c) keeps a session up and throws mutated CBOR requests, damaged and
random frames, mutated HELLOs and jumps of the clock at it. It finds nothing: no
sanitizer report, no crash, no malformed frame from the device. Seconds from
``MCU_FUZZ_SECONDS`` (default 30).
"""

from __future__ import annotations

import json
import os
import random
import subprocess

from tests.mcu._mcu import build

FUZZ_SECONDS = float(os.environ.get("MCU_FUZZ_SECONDS", "30"))


def test_sanitized_fuzz_of_frames_and_requests_finds_nothing() -> None:
    fuzz = build("fuzz")
    seed = random.getrandbits(63)
    result = subprocess.run(
        [str(fuzz), str(FUZZ_SECONDS), str(seed)],
        capture_output=True, text=True, timeout=FUZZ_SECONDS + 120, check=False,
    )
    assert result.returncode == 0, f"seed {seed}:\n{result.stderr[-6000:]}"
    counts = json.loads(result.stdout)
    # It went deep: requests were taken, answered and refused, sessions came and went,
    # the device reset and rebooted, damage was met and repaired.
    assert counts["responses"] > 1000 and counts["errors"] > 1000, counts
    assert counts["events"] > 0 and counts["resets"] > 0, counts
