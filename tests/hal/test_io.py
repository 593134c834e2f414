"""IoHandle's contract (hal/_io.py): PENDING → exactly one of DONE / FAILED / CANCELLED,
terminal states never change, on_done is an upcall that runs exactly once, progress
events are kept in order, and cancel() asks the owner first."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hal import IoError, IoEvent, IoHandle, IoState

Finish = Callable[[IoHandle], object]

FINISHES: dict[str, tuple[Finish, IoState]] = {
    "complete": (lambda h: h.complete("result"), IoState.DONE),
    "fail": (lambda h: h.fail(IoError("paper jam at the fuser")), IoState.FAILED),
    "cancel": (lambda h: h.cancel(), IoState.CANCELLED),
}


def test_a_new_handle_is_pending() -> None:
    handle = IoHandle("page-1")
    assert handle.state is IoState.PENDING
    assert not handle.done
    assert handle.result is None
    assert handle.error is None
    assert handle.events == []
    assert handle.request == "page-1"
    assert "pending" in repr(handle)


def test_complete_carries_the_result_and_upcalls_in_order() -> None:
    handle = IoHandle("page-1")
    calls: list[tuple[str, IoState]] = []
    handle.on_done(lambda h: calls.append(("first", h.state)))
    handle.on_done(lambda h: calls.append(("second", h.state)))
    handle.complete({"pages": 1})
    assert handle.state is IoState.DONE
    assert handle.done
    assert handle.result == {"pages": 1}
    assert calls == [("first", IoState.DONE), ("second", IoState.DONE)]


def test_fail_carries_the_error_as_a_value() -> None:
    handle = IoHandle("page-1")
    seen: list[IoHandle] = []
    handle.on_done(seen.append)
    error = IoError("paper jam at the fuser")
    handle.fail(error)  # does not raise: a failed request is an outcome
    assert handle.state is IoState.FAILED
    assert handle.error is error
    assert handle.result is None
    assert seen == [handle]


@pytest.mark.parametrize("first", list(FINISHES))
@pytest.mark.parametrize("then", list(FINISHES))
def test_terminal_states_never_change(first: str, then: str) -> None:
    hook_calls: list[IoHandle] = []
    handle = IoHandle("page-1", cancel_hook=hook_calls.append)
    done_calls: list[IoHandle] = []
    handle.on_done(done_calls.append)
    finish, state = FINISHES[first]
    finish(handle)
    result, error = handle.result, handle.error
    later, _ = FINISHES[then]
    later(handle)
    assert handle.state is state
    assert (handle.result, handle.error) == (result, error)
    assert done_calls == [handle]  # the upcall ran once, for the first finish only
    assert len(hook_calls) == (1 if first == "cancel" else 0)


@pytest.mark.parametrize("finish_name", list(FINISHES))
def test_on_done_after_completion_runs_at_once_and_once(finish_name: str) -> None:
    handle = IoHandle("page-1")
    finish, _ = FINISHES[finish_name]
    finish(handle)
    calls: list[IoHandle] = []
    handle.on_done(calls.append)
    assert calls == [handle]
    finish(handle)
    assert calls == [handle]


def test_on_done_added_from_an_on_done_callback_runs_at_once() -> None:
    handle = IoHandle("page-1")
    calls: list[str] = []

    def first(h: IoHandle) -> None:
        calls.append("first")
        h.on_done(lambda _: calls.append("nested"))

    handle.on_done(first)
    handle.on_done(lambda _: calls.append("second"))
    handle.complete()
    assert calls == ["first", "nested", "second"]


def test_events_are_kept_in_order_and_each_listener_sees_each_once() -> None:
    handle = IoHandle("page-1")
    early: list[IoEvent] = []
    late: list[IoEvent] = []
    handle.on_event(lambda h, e: early.append(e))
    first = IoEvent(10, "picked")
    second = IoEvent(20, "imaged", detail={"line": 7})
    third = IoEvent(30, "fused")
    handle.post(first)
    handle.on_event(lambda h, e: late.append(e))
    handle.post(second)
    handle.post(third)
    assert handle.events == [first, second, third]
    assert early == [first, second, third]
    assert late == [second, third]  # from the moment it was added


def test_events_after_the_handle_finished_are_ignored() -> None:
    handle = IoHandle("page-1")
    seen: list[IoEvent] = []
    handle.on_event(lambda h, e: seen.append(e))
    handle.post(IoEvent(1, "picked"))
    handle.complete()
    handle.post(IoEvent(2, "stray"))
    assert [e.kind for e in handle.events] == ["picked"]
    assert [e.kind for e in seen] == ["picked"]


def test_cancel_runs_the_owners_hook_first_then_completes_as_cancelled() -> None:
    order: list[str] = []

    def hook(h: IoHandle) -> None:
        order.append(f"hook sees {h.state.value}")

    handle = IoHandle("page-1", cancel_hook=hook)
    handle.on_done(lambda h: order.append(f"on_done sees {h.state.value}"))
    assert handle.cancel() is True
    assert handle.state is IoState.CANCELLED
    assert order == ["hook sees pending", "on_done sees cancelled"]
    assert handle.cancel() is False
    assert order == ["hook sees pending", "on_done sees cancelled"]


def test_cancel_without_a_hook() -> None:
    handle = IoHandle("page-1")
    assert handle.cancel() is True
    assert handle.state is IoState.CANCELLED


@pytest.mark.parametrize("finish_name", ["complete", "fail"])
def test_cancel_on_a_finished_handle_does_nothing(finish_name: str) -> None:
    hook_calls: list[IoHandle] = []
    handle = IoHandle("page-1", cancel_hook=hook_calls.append)
    finish, state = FINISHES[finish_name]
    finish(handle)
    assert handle.cancel() is False
    assert handle.state is state
    assert hook_calls == []


def test_a_cancel_hook_that_finishes_the_handle_wins() -> None:
    # An owner whose work had in fact finished completes the handle from its hook.
    handle = IoHandle("page-1", cancel_hook=lambda h: h.complete("already printed"))
    calls: list[IoState] = []
    handle.on_done(lambda h: calls.append(h.state))
    handle.cancel()
    assert handle.state is IoState.DONE
    assert handle.result == "already printed"
    assert calls == [IoState.DONE]
