"""A device child run ahead of the host's other work (emulator.device.run_ahead)."""

from __future__ import annotations

import os
import subprocess
import sys

from emulator.device import run_ahead
from emulator.device._ahead import AHEAD_NICE


def _may_lower_niceness() -> bool:
    probe = subprocess.run(
        [sys.executable, "-c", "import os; os.nice(-1)"], capture_output=True, check=False)
    return probe.returncode == 0


def test_a_child_and_every_thread_it_makes_run_at_the_ahead_niceness() -> None:
    # The child makes a thread after it was put ahead, and reports both niceness values.
    script = ("import os, sys, threading\n"
              "sys.stdin.readline()\n"
              "nice = lambda: os.getpriority(os.PRIO_PROCESS, 0)\n"
              "seen = []\n"
              "t = threading.Thread(target=lambda: seen.append(nice()))\n"
              "t.start(); t.join()\n"
              "print(nice(), seen[0], flush=True)\n")
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        done = run_ahead(child)
        out, _ = child.communicate("go\n", timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    main_nice, thread_nice = (int(v) for v in out.split())
    if _may_lower_niceness():
        assert done and main_nice == thread_nice == AHEAD_NICE
    else:  # where the machine does not allow it, the child runs as it was
        assert not done and main_nice == thread_nice == os.getpriority(os.PRIO_PROCESS, 0)


def test_a_child_already_gone_is_no_error() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    child.wait()
    assert run_ahead(child) is False
