"""Change notification without Qt (DESIGN.md §3: panes redraw on the model's change signals).

A :class:`Signal` is a list of callbacks. ``emit(*args)`` calls them in connection order, synchronously,
in the emitting thread: the model is only ever changed from one thread (the GUI's), so there is no
locking. The GUI's panes connect their redraw methods; tests connect plain functions or lists' append.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Signal"]


class Signal:
    """A minimal signal: ``connect(fn)``, ``disconnect(fn)``, ``emit(*args)``.

    Connecting the same callback twice has no further effect (bound methods compare equal when they
    are the same method of the same object). A callback may disconnect itself or others while the
    signal is emitting; the current emission still calls the callbacks connected when it started.
    """

    __slots__ = ("name", "_slots", "_blocked")

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._slots: list[Callable[..., Any]] = []
        self._blocked = 0

    def connect(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Call ``fn`` on every emission. Returns ``fn`` (so it can be used as a decorator)."""
        if not callable(fn):
            raise TypeError(f"cannot connect {fn!r}: not callable")
        if fn not in self._slots:
            self._slots.append(fn)
        return fn

    def disconnect(self, fn: Callable[..., Any] | None = None) -> None:
        """Stop calling ``fn``; with no argument, disconnect everything. Unknown callbacks are ignored."""
        if fn is None:
            self._slots.clear()
            return
        try:
            self._slots.remove(fn)
        except ValueError:
            pass

    def emit(self, *args: Any) -> None:
        if self._blocked:
            return
        for fn in tuple(self._slots):
            fn(*args)

    @contextmanager
    def blocked(self) -> Iterator[None]:
        """Suppress emissions inside the ``with`` block (nested blocks are counted)."""
        self._blocked += 1
        try:
            yield
        finally:
            self._blocked -= 1

    def __len__(self) -> int:
        return len(self._slots)

    def __repr__(self) -> str:
        return f"Signal({self.name!r}, {len(self._slots)} connected)"
