"""The "Listen" dock: what the player plays (the mixture, or the mix of the sources) and, per source,
its colour, name, mute, solo and gain (DESIGN.md §4, Audition).

The panel only holds the listening settings; :class:`~demixer.gui.transport.AuditionController` turns
them into a buffer for the player. Changing mute, solo or gain while "mixture" is selected switches to
"sources" (the user wants to hear the change).
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QDoubleSpinBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from demixer.engine.audition import MAX_GAIN_DB, MIN_GAIN_DB, SourceMix

__all__ = ["ListenPanel", "SourceRow", "MODE_MIXTURE", "MODE_SOURCES"]

MODE_MIXTURE = "mixture"
MODE_SOURCES = "sources"
_SLIDER_STEPS = 2  # slider ticks per dB


class _LetSpaceThrough(QObject):
    """Lets the window's Space shortcut (play/pause) fire while a spin box or slider has the focus."""

    def eventFilter(self, obj, event):  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent):
            if event.key() == Qt.Key.Key_Space and not event.modifiers():
                event.ignore()
                return True
        return False


class SourceRow(QObject):
    """The widgets of one source in the grid: swatch, name, M, S, gain slider and dB spin box."""

    changed = Signal()

    def __init__(self, name: str, colour: str, settings: SourceMix, space_filter: QObject) -> None:
        super().__init__()
        self.name = name
        self.swatch = QLabel()
        self.swatch.setFixedSize(14, 14)
        self.name_label = QLabel(name)
        self.name_label.setMinimumWidth(50)
        self.mute = QToolButton()
        self.mute.setText("M")
        self.mute.setCheckable(True)
        self.mute.setToolTip(f"Mute {name}")
        self.mute.setObjectName(f"mute_{name}")
        self.solo = QToolButton()
        self.solo.setText("S")
        self.solo.setCheckable(True)
        self.solo.setToolTip(f"Solo {name}: play only the soloed sources")
        self.solo.setObjectName(f"solo_{name}")
        for b, checked_colour in ((self.mute, "#c0392b"), (self.solo, "#d4a017")):
            b.setFixedWidth(24)
            b.setStyleSheet(
                f"QToolButton {{ font-weight: 600; }} QToolButton:checked {{ background: {checked_colour};"
                " color: #101010; border-radius: 3px; }"
            )
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(int(MIN_GAIN_DB * _SLIDER_STEPS), int(MAX_GAIN_DB * _SLIDER_STEPS))
        self.slider.setMinimumWidth(70)
        self.slider.setToolTip(f"Gain of {name} (dB)")
        self.slider.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.spin = QDoubleSpinBox()
        self.spin.setRange(MIN_GAIN_DB, MAX_GAIN_DB)
        self.spin.setSingleStep(0.5)
        self.spin.setDecimals(1)
        self.spin.setSuffix(" dB")
        self.spin.setSpecialValueText("−∞ dB")  # shown at the minimum: silence
        self.spin.setKeyboardTracking(False)
        self.spin.setToolTip(f"Gain of {name} in dB ({MIN_GAIN_DB:.0f} dB = silent)")
        self.spin.setFixedWidth(82)
        self.spin.setObjectName(f"gain_{name}")
        for w in (self.spin, self.spin.lineEdit(), self.slider):
            w.installEventFilter(space_filter)
        self.set_colour(colour)
        self.set_settings(settings)
        self.mute.toggled.connect(self._emit)
        self.solo.toggled.connect(self._emit)
        self.slider.valueChanged.connect(self._slider_moved)
        self.spin.valueChanged.connect(self._spin_changed)

    def widgets(self) -> list[QWidget]:
        return [self.swatch, self.name_label, self.mute, self.solo, self.slider, self.spin]

    def set_colour(self, colour: str) -> None:
        self.colour = colour
        c = QColor(colour)
        self.swatch.setStyleSheet(f"background: {c.name()}; border: 1px solid #0b0b0b; border-radius: 2px;")
        self.name_label.setStyleSheet(f"color: {c.name()}; font-weight: 600;")

    def settings(self) -> SourceMix:
        return SourceMix(gain_db=float(self.spin.value()), mute=self.mute.isChecked(), solo=self.solo.isChecked())

    def set_settings(self, s: SourceMix) -> None:
        for w in (self.mute, self.solo, self.slider, self.spin):
            w.blockSignals(True)
        try:
            self.mute.setChecked(bool(s.mute))
            self.solo.setChecked(bool(s.solo))
            self.spin.setValue(float(s.gain_db))
            self.slider.setValue(round(float(s.gain_db) * _SLIDER_STEPS))
        finally:
            for w in (self.mute, self.solo, self.slider, self.spin):
                w.blockSignals(False)

    def _slider_moved(self, v: int) -> None:
        self.spin.blockSignals(True)
        self.spin.setValue(v / _SLIDER_STEPS)
        self.spin.blockSignals(False)
        self._emit()

    def _spin_changed(self, v: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(round(v * _SLIDER_STEPS))
        self.slider.blockSignals(False)
        self._emit()

    def _emit(self, *_) -> None:
        self.changed.emit()


class ListenPanel(QWidget):
    """Mixture / sources selector and one row per source. Emits ``mode_changed(str)`` and
    ``settings_changed()``; read :meth:`settings` and :attr:`mode`."""

    mode_changed = Signal(str)
    settings_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._space = _LetSpaceThrough(self)
        self.rows: dict[str, SourceRow] = {}
        self._saved: dict[str, SourceMix] = {}
        self.mode = MODE_MIXTURE

        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        lay.setSpacing(4)
        top = QHBoxLayout()
        top.addWidget(QLabel("Play"))
        self.mixture_button = QRadioButton("mixture")
        self.mixture_button.setToolTip("Play the recording as it is")
        self.sources_button = QRadioButton("sources")
        self.sources_button.setToolTip(
            "Play the separated sources of the current W·H, mixed with the mute, solo and gain below"
        )
        self.mixture_button.setChecked(True)
        self._group = QButtonGroup(self)
        self._group.addButton(self.mixture_button)
        self._group.addButton(self.sources_button)
        self.mixture_button.toggled.connect(self._mode_toggled)
        top.addWidget(self.mixture_button)
        top.addWidget(self.sources_button)
        top.addStretch(1)
        self.status = QLabel("")
        self.status.setStyleSheet("color: #8b9099; font-size: 8.5pt")
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.status.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        top.addWidget(self.status, 1)
        lay.addLayout(top)

        self._grid_host = QWidget()
        self.grid = QGridLayout(self._grid_host)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setHorizontalSpacing(6)
        self.grid.setVerticalSpacing(3)
        self.grid.setColumnStretch(4, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self._grid_host)
        lay.addWidget(scroll, 1)
        self.setMinimumHeight(64)

    # ------------------------------------------------------------------ sources
    def set_sources(self, rows: Sequence[tuple[str, str]]) -> None:
        """(name, colour) per source, in order. Settings of sources that keep their name are kept."""
        names = [n for n, _ in rows]
        if names == list(self.rows) and all(self.rows[n].colour == c for n, c in rows):
            return
        for name, row in self.rows.items():
            self._saved[name] = row.settings()
            for w in row.widgets():
                self.grid.removeWidget(w)
                w.setParent(None)
                w.deleteLater()
            row.changed.disconnect(self._row_changed)
        before = self.settings()
        self.rows = {}
        for i, (name, colour) in enumerate(rows):
            row = SourceRow(name, colour, self._saved.get(name, SourceMix()), self._space)
            for col, w in enumerate(row.widgets()):
                self.grid.addWidget(w, i, col)
            row.changed.connect(self._row_changed)
            self.rows[name] = row
        self.grid.setRowStretch(len(rows), 1)
        # room for up to four rows without scrolling (the dock shares its column with others)
        self.setMinimumHeight(36 + 28 * min(max(len(rows), 1), 4))
        if self.settings() != before:
            self.settings_changed.emit()

    def reset(self) -> None:
        """Forget all settings (a new recording)."""
        self._saved.clear()
        for row in self.rows.values():
            row.set_settings(SourceMix())
        self.set_mode(MODE_MIXTURE)

    def settings(self) -> dict[str, SourceMix]:
        return {name: row.settings() for name, row in self.rows.items()}

    def set_source_settings(self, name: str, settings: SourceMix) -> None:
        self.rows[name].set_settings(settings)
        self._row_changed()

    def _row_changed(self) -> None:
        if self.mode != MODE_SOURCES:
            self.set_mode(MODE_SOURCES)  # emits mode_changed; the new mix follows from it
        self.settings_changed.emit()

    # ------------------------------------------------------------------ mode
    def set_mode(self, mode: str) -> None:
        if mode not in (MODE_MIXTURE, MODE_SOURCES):
            raise ValueError(f"mode must be {MODE_MIXTURE!r} or {MODE_SOURCES!r}, got {mode!r}")
        (self.mixture_button if mode == MODE_MIXTURE else self.sources_button).setChecked(True)

    def _mode_toggled(self, *_):
        mode = MODE_MIXTURE if self.mixture_button.isChecked() else MODE_SOURCES
        if mode != self.mode:
            self.mode = mode
            self.mode_changed.emit(mode)

    def set_status(self, text: str, tip: str | None = None) -> None:
        self.status.setText(text)
        self.status.setToolTip(tip or text)
