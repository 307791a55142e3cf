"""demixer.model.signals: a Qt-free signal."""

from __future__ import annotations

import pytest

from demixer.model.signals import Signal


def test_emit_calls_connected_callbacks_in_order_with_arguments():
    s = Signal("x")
    got = []
    s.connect(lambda *a: got.append(("a", a)))
    s.connect(lambda *a: got.append(("b", a)))
    s.emit(1, None)
    assert got == [("a", (1, None)), ("b", (1, None))]
    assert len(s) == 2


def test_connecting_twice_calls_once_and_disconnect_stops_calls():
    s = Signal()
    got = []

    class Obj:
        def slot(self, v):
            got.append(v)

    o = Obj()
    s.connect(o.slot)
    s.connect(o.slot)  # bound methods compare equal
    s.emit(1)
    s.disconnect(o.slot)
    s.emit(2)
    s.disconnect(o.slot)  # unknown: ignored
    assert got == [1]


def test_disconnect_all_and_blocked():
    s = Signal()
    got = []
    s.connect(got.append)
    with s.blocked():
        with s.blocked():
            s.emit(1)
        s.emit(2)
    s.emit(3)
    s.disconnect()
    s.emit(4)
    assert got == [3]


def test_a_callback_may_disconnect_itself_while_emitting():
    s = Signal()
    got = []

    def once(v):
        got.append(("once", v))
        s.disconnect(once)

    s.connect(once)
    s.connect(lambda v: got.append(("always", v)))
    s.emit(1)
    s.emit(2)
    assert got == [("once", 1), ("always", 1), ("always", 2)]


def test_connect_refuses_non_callables():
    with pytest.raises(TypeError):
        Signal().connect(42)
