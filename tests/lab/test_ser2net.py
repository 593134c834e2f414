"""A virtual device exported by ser2net as RFC 2217 (tests/lab/ser2net.py), as a lab
exports a board: the README's configuration is the one that works, the host connects
through it (with ``?ign_set_control``; without it pyserial cannot open a pty's export),
and a devkit job prints through it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import MISSING_TOOL
from tests.lab.ser2net import Ser2NetExport, exported_device, ser2net_config

REPO = Path(__file__).resolve().parents[2]
PAGES = 20


@pytest.fixture(scope="module")
def export() -> Iterator[Ser2NetExport]:
    if shutil.which("ser2net") is None:
        pytest.skip(f"{MISSING_TOOL}ser2net (apt-get install ser2net)")
    with exported_device("devkit") as exported:
        yield exported


def _readme_lab_config() -> str:
    text = (REPO / "README.md").read_text()
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S)
              if "telnet(rfc2217)" in b]
    assert len(blocks) == 1, "the README's lab section shows one ser2net configuration"
    return str(blocks[0])


def test_the_readme_shows_the_configuration_the_lab_writes() -> None:
    assert _readme_lab_config() == ser2net_config("/dev/pts/3", 2217)


def test_the_export_speaks_rfc_2217_and_tells_the_device(export: Ser2NetExport) -> None:
    from boards import load_board
    from hal.serial import SerialBoard

    assert export.config_text == ser2net_config(export.device, export.port)
    assert export.url.endswith("?ign_set_control")
    with SerialBoard(export.url, load_board("devkit")) as board:
        assert board.config.name == "devkit"
        snapshot = board.query("board.snapshot", None, 2.0)
        assert "t_ns" in snapshot


def test_without_ign_set_control_pyserial_cannot_open_a_ptys_export(
    export: Ser2NetExport,
) -> None:
    url = export.url.removesuffix("?ign_set_control")
    done = subprocess.run([sys.executable, "-m", "emulator", "run", "--port", url, "--board",
                           "devkit", "--pages", "1"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "waiting for option 'control'" in done.stderr
    assert done.stderr.count("\n") == 1


def test_a_devkit_job_prints_through_ser2net(export: Ser2NetExport) -> None:
    from boards import load_board
    from emulator.run import JobSpec, PrintRun
    from hal.serial import SerialBoard

    with SerialBoard(export.url, load_board("devkit")) as board:
        board.power_cycle()
        run = PrintRun(board, seed=0)
        run.add_job(JobSpec(pages=PAGES, coverage_pct=5.0))
        outcome = run.run(max_run_ns=60 * 1_000_000_000)
        faults = [e for e in run.events if e["kind"] in ("misfeed", "jam", "fuser_error")]
    assert faults == [], faults
    assert [p["page"] for p in run.page_log] == list(range(1, PAGES + 1))
    assert outcome.value == "completed"
