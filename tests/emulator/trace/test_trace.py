"""The trace recorder (emulator/trace/): what it sees, the VCD and JSONL it writes,
determinism, the ring for failure reports, tracing into a file, and that nothing is
attached when tracing is off."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from vcd.reader import TokenKind, tokenize

from boards import load_board
from emulator.board import EmulatedBoard
from emulator.physics import travel_ns
from emulator.run import Action, JobSpec, Moment, Outcome, PrintRun, TimedAction
from emulator.trace import (
    JsonlSink,
    TraceError,
    TraceRecorder,
    VcdSink,
    open_sink,
    read_trace,
    start_trace,
    trace_run,
)
from hal import Scheduler

S = 1_000_000_000
DEVKIT = load_board("devkit")
SCENARIO = (
    TimedAction(Moment(page=5), Action("jam", "feed")),
    TimedAction(Moment(t_ns=2 * S), Action("cover", "open")),
    TimedAction(Moment(t_ns=2 * S + S // 2), Action("cover", "closed")),
    TimedAction(Moment(page=12), Action("toner_pct", 3.0)),
    TimedAction(Moment(t_ns=4 * S), Action("replace_toner", True)),
)
"""A jam cleared by opening the cover, then toner low and a new cartridge."""


def make_run(seed: int = 7, pages: int = 20,
             actions: Sequence[TimedAction] = SCENARIO) -> PrintRun:
    board = EmulatedBoard(DEVKIT, Scheduler(), seed=seed)
    run = PrintRun(board, seed=seed)
    run.add_job(JobSpec(pages=pages, coverage_pct=5.0))
    run.add_actions(actions)
    return run


def traced_run(tmp_path: Path, tag: str, **kwargs: object) -> tuple[PrintRun, Path, Path]:
    """One run traced to ``tag.vcd`` and ``tag.jsonl`` (two recorders on one run)."""
    run = make_run(**kwargs)  # type: ignore[arg-type]
    vcd_path, jsonl_path = tmp_path / f"{tag}.vcd", tmp_path / f"{tag}.jsonl"
    vcd_rec = start_trace(run, vcd_path)
    jsonl_rec = start_trace(run, jsonl_path)
    run.run()
    jsonl_rec.stop()
    vcd_rec.stop()
    return run, vcd_path, jsonl_path


@pytest.fixture(scope="module")
def scenario_trace(tmp_path_factory: pytest.TempPathFactory) -> tuple[PrintRun, Path, Path]:
    return traced_run(tmp_path_factory.mktemp("trace"), "scenario")


def vcd_declarations(path: Path) -> dict[tuple[str, str], str]:
    """``{(scope, name): var type}`` of a VCD file, read with pyvcd's reader."""
    declared: dict[tuple[str, str], str] = {}
    scopes: list[str] = []
    with path.open("rb") as f:
        for token in tokenize(f):
            if token.kind is TokenKind.SCOPE:
                scopes.append(token.scope.ident)
            elif token.kind is TokenKind.UPSCOPE:
                scopes.pop()
            elif token.kind is TokenKind.VAR:
                declared[(".".join(scopes), token.var.reference)] = token.var.type_.value
            elif token.kind is TokenKind.ENDDEFINITIONS:
                break
    return declared


def changes(events: Sequence[tuple[int, str, str, object]], scope: str,
            name: str) -> list[tuple[int, object]]:
    """The signal's value at the end of each instant it changed in (VCD semantics)."""
    at_end: dict[int, object] = {}
    for t, s, n, v in events:
        if (s, n) == (scope, name):
            at_end[t] = v
    out: list[tuple[int, object]] = []
    for t, v in at_end.items():
        if not out or out[-1][1] != v:
            out.append((t, v))
    return out


# -- determinism -----------------------------------------------------------------------


def test_the_same_run_twice_gives_byte_identical_vcd_and_jsonl(tmp_path: Path) -> None:
    run_a, vcd_a, jsonl_a = traced_run(tmp_path, "a")
    _, vcd_b, jsonl_b = traced_run(tmp_path, "b")
    assert run_a.outcome is Outcome.COMPLETED and run_a.jams == 1
    assert vcd_a.read_bytes() == vcd_b.read_bytes()
    assert jsonl_a.read_bytes() == jsonl_b.read_bytes()
    assert vcd_a.stat().st_size > 10_000


def test_another_seed_still_traces_deterministically(tmp_path: Path) -> None:
    _, vcd_a, jsonl_a = traced_run(tmp_path, "a", seed=11, pages=6, actions=())
    _, vcd_b, jsonl_b = traced_run(tmp_path, "b", seed=11, pages=6, actions=())
    assert vcd_a.read_bytes() == vcd_b.read_bytes()
    assert jsonl_a.read_bytes() == jsonl_b.read_bytes()


def test_tracing_does_not_change_the_run(tmp_path: Path) -> None:
    def record(run: PrintRun) -> dict[str, object]:
        result = run.result()
        for machine_dependent in ("wall_time_s", "speedup"):
            result.pop(machine_dependent)
        return result

    untraced = make_run()
    untraced.run()
    traced, _, _ = traced_run(tmp_path, "t")
    assert record(traced) == record(untraced)


# -- the VCD ---------------------------------------------------------------------------


def test_vcd_declares_a_scope_per_model_line_and_active_object(
        scenario_trace: tuple[PrintRun, Path, Path]) -> None:
    run, vcd_path, _ = scenario_trace
    declared = vcd_declarations(vcd_path)
    for line in DEVKIT.irq:
        assert declared[(f"irq.{line}", "level")] == "wire"
        assert declared[(f"irq.{line}", "raised")] == "integer"
        assert declared[(f"irq.{line}", "isr")] == "integer"
    for name in run.printer.states():
        assert declared[(f"firmware.{name}", "state")] == "string"
    assert declared[("toner", "level_pct")] == "real"
    assert declared[("fuser", "temp_c")] == "real"
    assert declared[("tray", "sheets")] == "real"
    assert declared[("paper_path", "feed_sensor")] == "wire"
    assert declared[("board", "heater")] == "wire"
    assert declared[("board", "fault")] == "string"
    assert declared[("io.imaging", "request")] == "string"
    assert declared[("scenario", "action")] == "string"
    # Declared sorted: the same board and firmware always give the same header.
    keys = list(declared)
    assert [k[0] for k in keys] == sorted(k[0] for k in keys)


def test_vcd_header_has_a_1ns_timescale_and_no_date(
        scenario_trace: tuple[PrintRun, Path, Path]) -> None:
    _, vcd_path, _ = scenario_trace
    with vcd_path.open("rb") as f:
        header = []
        for token in tokenize(f):
            if token.kind is TokenKind.ENDDEFINITIONS:
                break
            header.append(token)
    kinds = {t.kind for t in header}
    assert TokenKind.DATE not in kinds
    (timescale,) = [t.timescale for t in header if t.kind is TokenKind.TIMESCALE]
    assert (int(timescale.magnitude), timescale.unit.value) == (1, "ns")


def test_feed_sensor_wire_toggles_at_the_physics_edge_times(
        scenario_trace: tuple[PrintRun, Path, Path]) -> None:
    _, vcd_path, _ = scenario_trace
    events = read_trace(vcd_path)
    speed = DEVKIT.engine.paper_speed_mm_s
    lead = travel_ns(DEVKIT.paper_path.feed_sensor_mm, speed)
    trail = travel_ns(DEVKIT.paper_path.feed_sensor_mm + DEVKIT.engine.sheet_length_mm, speed)
    picks = [t for t, v in changes(events, "paper_path", "picked") if isinstance(v, int) and v]
    # The first four sheets run with the motor on from pickup to past the sensor.
    expected = []
    for t_pick in picks[:4]:
        expected += [(t_pick + lead, True), (t_pick + trail, False)]
    for scope, name in (("paper_path", "feed_sensor"), ("irq.feed_sensor", "level")):
        toggles = [(t, v) for t, v in changes(events, scope, name) if t > 0]
        assert toggles[:8] == expected, (scope, name)
    # Every raise of the line has its ISR run, at the same instant (nothing masked).
    raised = changes(events, "irq.feed_sensor", "raised")
    isr = changes(events, "irq.feed_sensor", "isr")
    assert [t for t, _ in raised] == [t for t, _ in isr]


def test_vcd_and_jsonl_hold_the_same_events(
        scenario_trace: tuple[PrintRun, Path, Path]) -> None:
    _, vcd_path, jsonl_path = scenario_trace
    from_vcd, from_jsonl = read_trace(vcd_path), read_trace(jsonl_path)
    signals = {(s, n) for _, s, n, _ in from_jsonl}
    assert signals == {(s, n) for _, s, n, _ in from_vcd}
    for scope, name in sorted(signals):
        in_vcd, in_jsonl = changes(from_vcd, scope, name), changes(from_jsonl, scope, name)
        # VCD reals carry 16 significant digits (pyvcd's %.16g), JSON all 17.
        assert in_vcd == [(t, pytest.approx(v, rel=1e-15) if isinstance(v, float) else v)
                          for t, v in in_jsonl], (scope, name)


# -- the JSONL -------------------------------------------------------------------------


def test_jsonl_lines_have_fixed_keys_in_time_order(
        scenario_trace: tuple[PrintRun, Path, Path]) -> None:
    _, _, jsonl_path = scenario_trace
    last = 0
    for line in jsonl_path.read_text().splitlines():
        obj = json.loads(line)
        assert list(obj) == ["t_ns", "scope", "signal", "value"]
        assert isinstance(obj["t_ns"], int) and obj["t_ns"] >= last
        last = obj["t_ns"]


def test_trace_sees_faults_states_interrupts_io_and_status(
        scenario_trace: tuple[PrintRun, Path, Path]) -> None:
    run, _, jsonl_path = scenario_trace
    events = read_trace(jsonl_path)
    seen = {(s, n, v) for _, s, n, v in events}
    assert ("scenario", "action", "jam:feed") in seen
    assert ("board", "fault", "jam:feed") in seen
    assert ("board", "fault", "set_cover:open") in seen
    assert ("firmware.engine", "state", "jammed") in seen
    assert ("firmware.cover", "state", "open") in seen
    assert ("firmware.toner", "state", "low") in seen
    assert any(s == "firmware" and n == "status" and str(v).startswith("jam(")
               for s, n, v in seen)
    # Every imaging request is seen from submission to its end.
    requests = [v for _, s, n, v in events if (s, n) == ("io.imaging", "request") and v]
    submitted = {str(v).split(":")[0] for v in requests if str(v).endswith(":submitted")}
    ended = {str(v).split(":")[0] for v in requests
             if str(v).endswith((":done", ":failed", ":cancelled"))}
    assert submitted == ended and len(submitted) >= run.pages_total
    # Each page delivered is counted; the toner curve falls by the page.
    delivered = changes(events, "firmware", "pages_delivered")
    assert delivered[-1][1] == run.pages_delivered
    assert len(changes(events, "toner", "level_pct")) > run.pages_total


def test_a_watchdog_reset_puts_the_objects_back_in_their_initial_states(
        tmp_path: Path) -> None:
    def hung_run() -> PrintRun:
        run = make_run(seed=3, pages=8, actions=())
        run.scheduler.call_at(S * 6 // 10, lambda: run.printer.hang("engine"))
        return run

    untraced, run = hung_run(), hung_run()
    untraced.run()
    recorder = start_trace(run, tmp_path / "reset.jsonl")
    run.run()
    recorder.stop()
    assert run.board.resets == 1 and run.events == untraced.events  # type: ignore[attr-defined]
    events = read_trace(tmp_path / "reset.jsonl")
    (t_reset,) = [t for t, s, n, v in events if (s, n, v) == ("board", "reset", "watchdog")]
    assert (t_reset, "firmware", "boots", 2) in events
    engine = changes(events, "firmware.engine", "state")
    assert (t_reset, "standby") not in engine  # at the end of the instant it is warming
    at_reset = [v for t, s, n, v in events
                if t == t_reset and (s, n) == ("firmware.engine", "state")]
    assert at_reset[0] == "standby"


# -- the recorder's API -----------------------------------------------------------------


def test_nothing_is_attached_unless_tracing_and_all_is_detached_after() -> None:
    run = make_run(pages=3, actions=())
    board = run.board
    assert isinstance(board, EmulatedBoard)

    def attached() -> list[object]:
        return [board.irq._listeners, board._probes, board.paper_path.observer,
                board.fuser.observer, board._imaging_listeners, run._action_listeners]

    untouched = attached()
    assert untouched == [[], [], None, None, (), []]
    listeners = list(run.printer._listeners)
    recorder = TraceRecorder()
    recorder.add_sink(JsonlSink(io.StringIO()))
    recorder.attach_run(run)
    recorder.start()
    assert attached() != untouched
    run.run()
    recorder.stop()
    assert attached() == untouched
    assert run.printer._listeners == listeners
    events = recorder.events
    run.printer.submit(1, 5.0)
    run.scheduler.run_until(run.scheduler.now_ns + S)
    assert recorder.events == events  # stopped: records nothing more


def test_tail_keeps_the_last_events_for_a_failure_report(tmp_path: Path) -> None:
    run = make_run(pages=4, actions=())
    out = io.StringIO()
    recorder = TraceRecorder(ring_size=50)
    recorder.add_sink(JsonlSink(out))
    recorder.attach_run(run)
    recorder.start()
    run.run()
    recorder.stop()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert recorder.events > 50
    assert recorder.tail() == lines[-50:]
    assert recorder.tail(5) == lines[-5:]
    assert recorder.tail(0) == []
    report = io.StringIO()
    assert recorder.write_tail(report, 3) == 3
    assert [json.loads(x) for x in report.getvalue().splitlines()] == lines[-3:]


def test_tail_works_while_running_with_no_sink() -> None:
    run = make_run(pages=2, actions=())
    recorder = TraceRecorder(ring_size=20)
    recorder.attach_run(run)
    recorder.start()
    run.scheduler.run_until(S // 2)
    tail = recorder.tail()
    assert 0 < len(tail) <= 20
    assert all(e["t_ns"] <= S // 2 for e in tail)
    recorder.stop()


def test_record_writes_declared_signals_and_keeps_undeclared_ones() -> None:
    scheduler = Scheduler()
    board = EmulatedBoard(DEVKIT, scheduler)
    vcd_out, jsonl_out = io.StringIO(), io.StringIO()
    recorder = TraceRecorder()
    recorder.add_sink(VcdSink(vcd_out))
    recorder.add_sink(JsonlSink(jsonl_out))
    recorder.attach_board(board)
    recorder.declare("link", "tx", "string", "")
    recorder.start()
    with pytest.raises(TraceError):
        recorder.declare("link", "rx", "string")
    recorder.record(10, "link", "tx", "HELLO seq=1 cafe")
    recorder.record(20, "link", "rx", "ACK 1")
    recorder.record(5, "link", "tx", "late")  # earlier than the last: clamped to 20
    recorder.stop()
    lines = [json.loads(x) for x in jsonl_out.getvalue().splitlines()]
    assert {"t_ns": 10, "scope": "link", "signal": "tx", "value": "HELLO seq=1 cafe"} in lines
    assert {"t_ns": 20, "scope": "link", "signal": "rx", "value": "ACK 1"} in lines
    assert {"t_ns": 20, "scope": "link", "signal": "tx", "value": "late"} in lines
    assert (recorder.undeclared, recorder.clamped) == (1, 1)
    tokens = list(tokenize(io.BytesIO(vcd_out.getvalue().encode())))
    strings = [t.string_change.value for t in tokens if t.kind is TokenKind.CHANGE_STRING]
    assert any(s.startswith("HELLO") for s in strings)
    assert any("link.rx=ACK" in s for s in strings)


def test_strings_survive_the_vcd_round_trip(tmp_path: Path) -> None:
    board = EmulatedBoard(DEVKIT, Scheduler())
    recorder = TraceRecorder()
    recorder.add_sink(open_sink(tmp_path / "s.vcd"))
    recorder.attach_board(board)
    recorder.declare("link", "tx", "string", "")
    recorder.start()
    text = "a b\\c\tçé"
    recorder.record(1, "link", "tx", text)
    recorder.stop()
    assert (1, "link", "tx", text) in read_trace(tmp_path / "s.vcd")


def test_a_recorder_is_used_in_order() -> None:
    run = make_run(pages=1, actions=())
    recorder = TraceRecorder()
    recorder.attach_run(run)
    recorder.start()
    with pytest.raises(TraceError):
        recorder.start()
    with pytest.raises(TraceError):
        recorder.attach_board(run.board)
    with pytest.raises(TraceError):
        recorder.add_sink(JsonlSink(io.StringIO()))
    recorder.stop()
    recorder.stop()  # idempotent


# -- tracing into a file ------------------------------------------------------------------


def test_open_sink_rejects_other_suffixes(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match=r"\.vcd or \.jsonl"):
        open_sink(tmp_path / "x.csv")
    with pytest.raises(TraceError, match="cannot write"):
        open_sink(tmp_path / "missing" / "x.vcd")


def test_trace_run_does_nothing_without_a_path_and_finishes_the_file_on_error(
        tmp_path: Path) -> None:
    run = make_run(pages=2, actions=())
    with trace_run(run, None) as recorder:
        assert recorder is None
    path = tmp_path / "broken.vcd"
    with pytest.raises(RuntimeError), trace_run(run, path) as recorder:
        assert recorder is not None
        run.scheduler.run_until(S // 2)
        raise RuntimeError("the run broke")
    assert read_trace(path)[-1][0] <= S // 2
    assert run.board._imaging_listeners == ()  # type: ignore[attr-defined]


# -- the benchmark's plumbing (no timing asserted) ----------------------------------------


def test_trace_benchmark_returns_its_figures() -> None:
    from benchmarks._trace import run as bench

    result = bench(scale=0.003)
    assert result["name"] == "trace" and result["pages"] == 3
    assert result["off_pages_per_s"] > 0 and result["vcd_pages_per_s"] > 0
    assert result["events_per_page"] > 10
    table = result["table"]
    assert all(len(row) == len(table["columns"]) for row in table["rows"])
    json.dumps(result, allow_nan=False)
