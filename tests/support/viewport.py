"""Mouse events sent to a pyqtgraph pane's viewport (as pyqtgraph's own tests do: QTest drags are
unreliable in a QGraphicsView), in view coordinates (time, y) of the pane."""

from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

LEFT = Qt.MouseButton.LeftButton
NONE = Qt.MouseButton.NoButton
NO_MODS = Qt.KeyboardModifier.NoModifier


def to_viewport(pane, x: float, y: float) -> QPoint:
    return pane.mapFromScene(pane.vb.mapViewToScene(QPointF(x, y)))


def send(pane, etype, pos: QPoint, button, buttons, mods=NO_MODS) -> None:
    vp = pane.viewport()
    ev = QMouseEvent(etype, QPointF(pos), QPointF(vp.mapToGlobal(pos)), button, buttons, mods)
    QApplication.sendEvent(vp, ev)


def drag(pane, a: QPoint, b: QPoint, mods=NO_MODS, steps: int = 5) -> None:
    """Press at ``a``, move to ``b`` in ``steps`` moves, release at ``b``."""
    send(pane, QEvent.Type.MouseButtonPress, a, LEFT, LEFT, mods)
    for k in range(1, steps + 1):
        p = QPoint(a.x() + (b.x() - a.x()) * k // steps, a.y() + (b.y() - a.y()) * k // steps)
        send(pane, QEvent.Type.MouseMove, p, NONE, LEFT, mods)
    send(pane, QEvent.Type.MouseButtonRelease, b, LEFT, NONE, mods)
