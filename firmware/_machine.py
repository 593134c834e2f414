"""The ``transitions`` side of an active object: its machine, and the binding of the
callbacks the machine names to the object's methods.

Apart from :mod:`firmware._kernel` because the kernel is compiled where the platform is
(``setup.py``) and this is not: a compiled class cannot subclass ``transitions.Machine``,
and everything ``transitions`` runs stays the interpreted code the firmware benchmark's
floor is made of.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from transitions import Machine

if TYPE_CHECKING:
    from firmware._kernel import ActiveObject


class BoundMachine(Machine):
    """``transitions.Machine`` with its callbacks called directly.

    The stock :meth:`Machine.callbacks` resolves each callback by name and logs each
    call at INFO, per trigger. The kernel binds every callback of an active object to
    the object once (:func:`bind_callbacks`), so here a bound callable is simply
    called, with the event's arguments as the stock ``send_event=False`` path passes
    them; anything else (a name added later) takes the stock path. What runs, and in
    which order, is unchanged.
    """

    def callbacks(self, funcs: Any, event_data: Any) -> None:
        for func in funcs:
            if isinstance(func, str):
                self.callback(func, event_data)
            else:
                func(*event_data.args, **event_data.kwargs)


def bind_callbacks(ao: ActiveObject) -> None:
    """Resolve the callbacks and conditions the machine holds by name to the object's
    bound methods, once, instead of at every trigger (``transitions`` looks a name up on
    the model each time it runs it). What runs, and in which order, is unchanged."""

    def bound(names: list[Any]) -> list[Any]:
        return [getattr(ao, n) if isinstance(n, str) else n for n in names]

    machine = ao.machine
    for event in machine.events.values():
        for transitions in event.transitions.values():
            for t in transitions:
                t.prepare[:] = bound(t.prepare)
                t.before[:] = bound(t.before)
                t.after[:] = bound(t.after)
                for condition in t.conditions:
                    if isinstance(condition.func, str):
                        condition.func = getattr(ao, condition.func)
    for state in machine.states.values():
        state.on_enter[:] = bound(state.on_enter)
        state.on_exit[:] = bound(state.on_exit)
