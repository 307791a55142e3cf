"""The panes of the workbench, laid out like V ≈ W·H (DESIGN.md §4).

    ┌───────────────┬──────────────────────────────┐
    │ corner        │ H  components × time (s)     │
    ├───────────────┼──────────────────────────────┤
    │ W  Hz × comp. │ V  frequency (Hz) × time (s) │
    └───────────────┴──────────────────────────────┘

Each factor pane is a pyqtgraph ``PlotWidget`` with one ``ImageItem`` placed in data coordinates with
``setRect`` (seconds, Hz, component index), shown in dB through a ``ColorBarItem`` whose handles set the
levels. H shares V's time axis (X-linked), W shares V's frequency axis (Y-linked). With log frequency
on, the rows of V and W are resampled onto a log2(Hz) grid (:class:`~demixer.gui.display.LogFreqMap`)
and the frequency axes label that grid in Hz.

The panes do not read the model on their own: :class:`~demixer.gui.main_window.MainWindow` decides
what they show (the project's factors, or a running job's latest snapshot) and calls their setters.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from demixer.gui.display import DB_FLOOR, LogFreqMap, format_hz

__all__ = [
    "PLOT_BG",
    "PLOT_FG",
    "FreqAxis",
    "ComponentAxis",
    "ImagePane",
    "SpectrogramPane",
    "ActivationPane",
    "TemplatePane",
    "CornerPane",
    "LossPane",
    "SourcesPane",
    "configure_pyqtgraph",
]

PLOT_BG = "#15171a"
PLOT_FG = "#c9ccd1"
COLORMAP = "inferno"
LEFT_AXIS_WIDTH = 64  # H's component axis and V's frequency axis: same width so H and V line up
BOTTOM_AXIS_HEIGHT = 40  # W's component axis and V's time axis: same height so W and V line up
BAR_WIDTH = 12
RUN_COLOURS = ("#ffd166", "#06d6a0", "#ef476f", "#118ab2", "#c77dff", "#ff9f1c", "#8ecae6", "#e9c46a")


def run_colour(index: int) -> str:
    """The colour of the project's run number ``index`` (0-based)."""
    return RUN_COLOURS[int(index) % len(RUN_COLOURS)]


#: Dragging a level handle along the whole bar moves that level by this fraction of the shown range.
LEVEL_DRAG_PER_BAR = 0.5


class LevelsBar(pg.ColorBarItem):
    """pyqtgraph's colour bar with a linear, gentler handle: pyqtgraph squares the drag and scales it by
    the whole span per half bar, so a 125 px drag moved a level by 50 dB (issue 18, item 11). Here a drag
    along the whole bar moves a level by half the span (80 dB shown: ~1 dB per 3 px on a 250 px bar)."""

    def _regionChanging(self):  # noqa: N802 - pyqtgraph's name
        if not self.region_changed_enable:
            return
        bot, top = self.region.getRegion()  # the handles rest at 63 and 191 of the bar's 0…256
        span = max(self.hi_prv - self.lo_prv, self.rounding)
        lo = self.lo_prv + (bot - 63.0) / 256.0 * span * LEVEL_DRAG_PER_BAR
        hi = self.hi_prv + (top - 191.0) / 256.0 * span * LEVEL_DRAG_PER_BAR
        if hi - lo < self.rounding:  # keep at least one step between the levels
            if abs(bot - 63.0) > abs(top - 191.0):
                lo = hi - self.rounding
            else:
                hi = lo + self.rounding
        self.values = (self.rounding * round(lo / self.rounding), self.rounding * round(hi / self.rounding))
        self._update_items()
        self.sigLevelsChanged.emit(self)


def configure_pyqtgraph() -> None:
    pg.setConfigOptions(imageAxisOrder="row-major", background=PLOT_BG, foreground=PLOT_FG, antialias=False)


configure_pyqtgraph()


def _tick_font() -> QFont:
    f = QFont()
    f.setPointSizeF(8.5)
    return f


# ============================================================================================ axes
class FreqAxis(pg.AxisItem):
    """Frequency axis in Hz. Linear: pyqtgraph's ticks with SI prefix (kHz). Log: view coordinate is
    log2(Hz); ticks at 1-2-5 × 10^k Hz (decades only when crowded), labelled in Hz."""

    def __init__(self, orientation: str = "left", **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self.log_map: LogFreqMap | None = None
        self._majors: set[float] = set()
        self.setTickFont(_tick_font())
        self.setLabel("frequency", units="Hz")

    def set_log(self, log_map: LogFreqMap | None) -> None:
        self.log_map = log_map
        if log_map is None:
            self.enableAutoSIPrefix(True)
            self.setLabel("frequency", units="Hz")
        else:
            self.enableAutoSIPrefix(False)
            self.setLabel("frequency (Hz)", units=None)
        self.picture = None
        self.update()

    def tickValues(self, minVal, maxVal, size):  # noqa: N802 - pyqtgraph's name
        if self.log_map is None:
            return super().tickValues(minVal, maxVal, size)
        if maxVal <= minVal or size <= 0:
            return []
        px_per_octave = size / (maxVal - minVal)
        lo, hi = 2.0**minVal, 2.0**maxVal
        decades = range(int(math.floor(math.log10(max(lo, 1e-3)))), int(math.ceil(math.log10(hi))) + 1)
        mults_major = (1, 2, 5) if px_per_octave >= 22 else (1,)
        majors, minors = [], []
        for d in decades:
            for m in range(1, 10):
                f = m * 10.0**d
                if lo <= f <= hi:
                    (majors if m in mults_major else minors).append(math.log2(f))
        self._majors = set(majors)
        return [(None, majors), (None, minors)]

    def tickStrings(self, values, scale, spacing):  # noqa: N802
        if self.log_map is None:
            return super().tickStrings(values, scale, spacing)
        return [format_hz(2.0**v) if v in self._majors else "" for v in values]


class ComponentAxis(pg.AxisItem):
    """Axis over component indices (row r of H / column r of W spans [r, r + 1)). Labels at the centres,
    thinned to a stride that stays legible at the current zoom; each label and a strip along the plot
    edge are drawn in the colour of the component's source."""

    STRIP = 5  # px

    def __init__(self, orientation: str, **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self.labels: list[str] = []
        self.colours: list[QColor] = []
        self._text_colours: list[QColor] = []
        self.setTickFont(_tick_font())
        self.setStyle(tickLength=0, tickTextOffset=self.STRIP + 4)

    def set_components(self, labels: Sequence[str], colours: Sequence[str]) -> None:
        self.labels = list(labels)
        self.colours = [QColor(c) for c in colours]
        self.picture = None
        self.update()

    def tickValues(self, minVal, maxVal, size):  # noqa: N802
        R = len(self.labels)
        if R == 0 or maxVal <= minVal or size <= 0:
            return []
        px_per = size / (maxVal - minVal)
        if self.orientation in ("left", "right"):
            need = 11.0
        else:
            need = 7.0 * max(2, max(len(s) for s in self.labels)) + 6
        stride = max(1, int(math.ceil(need / px_per)))
        lo = max(0, int(math.floor(minVal)))
        hi = min(R - 1, int(math.ceil(maxVal)))
        return [(float(stride), [r + 0.5 for r in range(lo, hi + 1) if r % stride == 0])]

    def tickStrings(self, values, scale, spacing):  # noqa: N802
        out = []
        for v in values:
            r = int(math.floor(v))
            out.append(self.labels[r] if 0 <= r < len(self.labels) else "")
        return out

    # mapping between values and this item's local coordinates (as AxisItem.generateDrawSpecs does it)
    def _to_local(self, v: float) -> float:
        bounds = self.mapRectFromParent(self.geometry())
        lo, hi = self.range
        dif = (hi - lo) or 1.0
        if self.orientation in ("left", "right"):
            return bounds.height() - (v - lo) * bounds.height() / dif
        return (v - lo) * bounds.width() / dif

    def _from_local(self, x: float) -> float:
        bounds = self.mapRectFromParent(self.geometry())
        lo, hi = self.range
        dif = hi - lo
        if self.orientation in ("left", "right"):
            return lo + (bounds.height() - x) * dif / max(bounds.height(), 1e-9)
        return lo + x * dif / max(bounds.width(), 1e-9)

    def generateDrawSpecs(self, p):  # noqa: N802
        specs = super().generateDrawSpecs(p)
        self._text_colours = []
        if specs is None:
            return specs
        vertical = self.orientation in ("left", "right")
        for rect, _flags, _text in specs[2]:
            c = rect.center()
            r = int(math.floor(self._from_local(c.y() if vertical else c.x())))
            self._text_colours.append(self.colours[r] if 0 <= r < len(self.colours) else QColor(PLOT_FG))
        return specs

    def drawPicture(self, p, axisSpec, tickSpecs, textSpecs):  # noqa: N802
        p.setRenderHint(p.RenderHint.Antialiasing, False)
        p.setRenderHint(p.RenderHint.TextAntialiasing, True)
        bounds = self.mapRectFromParent(self.geometry())
        # colour strip along the plot edge, one block per visible component
        R = len(self.colours)
        if R:
            lo, hi = self.range
            r0 = max(0, int(math.floor(min(lo, hi))))
            r1 = min(R, int(math.ceil(max(lo, hi))))
            p.setPen(Qt.PenStyle.NoPen)
            for r in range(r0, r1):
                a, b = self._to_local(r), self._to_local(r + 1)
                if self.orientation == "left":
                    rect = QRectF(bounds.right() - self.STRIP, min(a, b), self.STRIP, abs(b - a))
                elif self.orientation == "right":
                    rect = QRectF(bounds.left(), min(a, b), self.STRIP, abs(b - a))
                elif self.orientation == "bottom":
                    rect = QRectF(min(a, b), bounds.top(), abs(b - a), self.STRIP)
                else:
                    rect = QRectF(min(a, b), bounds.bottom() - self.STRIP, abs(b - a), self.STRIP)
                p.fillRect(rect.intersected(bounds), QBrush(self.colours[r]))
        pen, p1, p2 = axisSpec
        p.setPen(pen)
        p.drawLine(p1, p2)
        if self.style["tickFont"] is not None:
            p.setFont(self.style["tickFont"])
        p.setClipRect(bounds.toAlignedRect())
        for i, (rect, flags, text) in enumerate(textSpecs):
            colour = self._text_colours[i] if i < len(self._text_colours) else QColor(PLOT_FG)
            p.setPen(QPen(colour))
            p.drawText(rect, int(flags), text)


def compact_number(x: float) -> str:
    """1 → "1", 2500 → "2.5k", 3e6 → "3M", 0.002 → "2e-03"."""
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{suffix}"
    if abs(x) >= 0.1 or x == 0:
        return f"{x:.3g}"
    return f"{x:.0e}"


class LossAxis(pg.AxisItem):
    """Log-scale loss axis: labels only at 1, 2 and 5 × 10^k (all ticks when fewer than two of those
    are visible), in compact form (50k, 100k)."""

    def __init__(self, orientation: str = "left", **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self.setTickFont(_tick_font())

    def tickStrings(self, values, scale, spacing):  # noqa: N802
        if not self.logMode:
            return [compact_number(v) for v in values]
        mant = [round(10 ** (v - math.floor(v)), 6) for v in values]
        nice = [m in (1.0, 2.0, 5.0) for m in mant]
        labelled = sum(nice) >= 2
        return [
            compact_number(10**v) if (ok or not labelled) else "" for v, ok in zip(values, nice, strict=True)
        ]


class TimeAxis(pg.AxisItem):
    def __init__(self, orientation: str = "bottom", **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self.setTickFont(_tick_font())
        self.setLabel("time", units="s")


# ============================================================================================ panes
class ImagePane(pg.PlotWidget):
    """A dB image in data coordinates with a colour bar. ``set_image(data_db, rect, top)`` shows it;
    the levels follow ``(top − db_range, top)`` until the user drags the colour bar's handles."""

    levels_changed = Signal()

    def __init__(self, axisItems: dict, bar: str = "right", parent: QWidget | None = None) -> None:
        super().__init__(parent=parent, axisItems=axisItems)
        self.plotItem.hideButtons()
        self.plotItem.setMenuEnabled(True)
        self.vb: pg.ViewBox = self.plotItem.getViewBox()
        self.vb.setDefaultPadding(0.0)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setAutoDownsample(True)
        self.addItem(self.image)
        self.db_range = 80.0
        self.manual_levels = False
        self.data_db: np.ndarray | None = None
        self.rect = QRectF()
        self.bar = LevelsBar(
            colorMap=COLORMAP,
            width=BAR_WIDTH,
            interactive=True,
            rounding=1.0,
            orientation="vertical" if bar == "right" else "horizontal",
            colorMapMenu=False,
        )
        self.bar.setImageItem(self.image, insert_in=self.plotItem if bar == "right" else None)
        self.bar.getAxis("right" if bar == "right" else "bottom").setTickFont(_tick_font())
        if bar == "right":
            self.bar.getAxis("right").setWidth(34)
        self.bar.sigLevelsChanged.connect(self._on_user_levels)
        self.badge = pg.TextItem("", color="#ffffff", anchor=(0, 0), fill=pg.mkBrush(0, 0, 0, 140))
        self.badge.setParentItem(self.vb)  # in the view box's pixels: stays in its corner when zooming
        self.badge.setPos(4, 4)
        self.badge.setZValue(20)
        self.setMinimumSize(80, 60)

    def set_badge(self, text: str) -> None:
        """A label in the pane's top-left corner ("V", "H", "W·H", …)."""
        self.badge.setHtml(f"<span style='font-size:10pt; font-weight:600'>{text}</span>")

    def _on_user_levels(self, *_):
        self.manual_levels = True
        self.levels_changed.emit()

    def auto_levels(self, top: float) -> tuple[float, float]:
        return (round(top - self.db_range), round(top))

    def set_image(self, data_db: np.ndarray, rect: QRectF, top: float) -> None:
        self.data_db = data_db
        if self.manual_levels:
            levels = tuple(self.bar.levels())
        else:
            levels = self.auto_levels(top)
            current = tuple(self.bar.levels())
            # Follow the top with 3 dB of hysteresis: re-laying out the bar's axis ten times a second
            # during a run costs more than the image itself.
            if abs(current[1] - levels[1]) < 3.0 and abs((current[1] - current[0]) - self.db_range) < 0.5:
                levels = current
            else:
                self.bar.setLevels(levels, update_items=False)
        self.image.setImage(data_db, autoLevels=False, levels=levels)
        if self.image.levels is None or tuple(np.asarray(self.image.levels, float)) != tuple(
            map(float, levels)
        ):
            # the colour bar set levels before the first image: pyqtgraph applies those deferred ones last
            self.image.setLevels(levels)
        if rect != self.rect:
            self.image.setRect(rect)
            self.rect = QRectF(rect)

    def set_db_range(self, db: float, top: float | None = None) -> None:
        self.db_range = float(db)
        self.manual_levels = False
        if top is not None and self.data_db is not None:
            levels = self.auto_levels(top)
            self.bar.setLevels(levels)

    def clear_image(self) -> None:
        self.data_db = None
        self.image.clear()

    def value_at(self, x: float, y: float) -> tuple[int, int, float] | None:
        """(row, col, dB) of the displayed image at view point (x, y), or None outside it."""
        if self.data_db is None or not self.rect.contains(QPointF(x, y)):
            return None
        rows, cols = self.data_db.shape[:2]
        c = int((x - self.rect.left()) / self.rect.width() * cols)
        r = int((y - self.rect.top()) / self.rect.height() * rows)
        if not (0 <= r < rows and 0 <= c < cols):
            return None
        return r, c, float(self.data_db[r, c])


class SpectrogramPane(ImagePane):
    """V (or W·H, or a source) — frequency × time."""

    def __init__(self, parent: QWidget | None = None) -> None:
        self.freq_axis = FreqAxis("left")
        self.time_axis = TimeAxis("bottom")
        super().__init__({"left": self.freq_axis, "bottom": self.time_axis}, bar="right", parent=parent)
        self.freq_axis.setWidth(LEFT_AXIS_WIDTH)
        self.time_axis.setHeight(BOTTOM_AXIS_HEIGHT)
        self.bar.getAxis("right").setLabel("dB")


class ActivationPane(ImagePane):
    """H — components × time, sharing V's time axis."""

    def __init__(self, parent: QWidget | None = None) -> None:
        self.comp_axis = ComponentAxis("left")
        self.time_axis = TimeAxis("bottom")
        super().__init__({"left": self.comp_axis, "bottom": self.time_axis}, bar="right", parent=parent)
        self.comp_axis.setWidth(LEFT_AXIS_WIDTH)
        self.time_axis.setStyle(showValues=False)
        self.time_axis.showLabel(False)
        self.time_axis.setHeight(6)
        self.bar.getAxis("right").setLabel("dB")


class TemplatePane(ImagePane):
    """W — frequency × components, sharing V's frequency axis. Its colour bar lives in the corner pane."""

    def __init__(self, parent: QWidget | None = None) -> None:
        self.freq_axis = FreqAxis("left")
        self.comp_axis = ComponentAxis("bottom")
        super().__init__({"left": self.freq_axis, "bottom": self.comp_axis}, bar="horizontal", parent=parent)
        self.comp_axis.setHeight(BOTTOM_AXIS_HEIGHT)
        self.freq_axis.setWidth(58)


class CornerPane(QWidget):
    """Top-left cell: what the V pane shows, the equation, W's colour bar and a summary."""

    mode_changed = Signal(str)

    def __init__(self, w_bar: pg.ColorBarItem, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAutoFillBackground(True)
        pal = self.palette()
        pal.setColor(self.backgroundRole(), QColor(PLOT_BG))
        pal.setColor(self.foregroundRole(), QColor(PLOT_FG))
        self.setPalette(pal)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 8, 10, 4)
        lay.setSpacing(4)
        self.equation = QLabel("<span style='font-size:17pt'><b>V</b> ≈ <b>W</b> · <b>H</b></span>")
        self.equation.setStyleSheet(f"color: {PLOT_FG}")
        lay.addWidget(self.equation)
        self.summary = QLabel("no recording")
        self.summary.setStyleSheet(f"color: {PLOT_FG}; font-size: 8.5pt")
        self.summary.setWordWrap(True)
        lay.addWidget(self.summary)
        row = QHBoxLayout()
        lab = QLabel("Show")
        lab.setStyleSheet(f"color: {PLOT_FG}")
        row.addWidget(lab)
        self.mode = QComboBox()
        self.mode.setToolTip(
            "What the bottom-right pane shows: the spectrogram V, the model W·H, or a source"
        )
        self.mode.currentTextChanged.connect(self._mode_changed)
        row.addWidget(self.mode, 1)
        lay.addLayout(row)
        self.legend = QLabel("")
        self.legend.setStyleSheet(f"color: {PLOT_FG}; font-size: 8.5pt")
        self.legend.setWordWrap(True)
        self.legend.setToolTip("Colours of the sources: the strips along H's and W's component axes")
        lay.addWidget(self.legend)
        lay.addStretch(1)
        self.bar_view = pg.GraphicsLayoutWidget()
        self.bar_view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.bar_view.setFixedHeight(56)
        self.bar_view.ci.setContentsMargins(2, 0, 8, 0)
        self.bar_view.addItem(w_bar)
        w_bar.getAxis("bottom").setLabel("W (dB)")
        w_bar.getAxis("bottom").setHeight(30)
        lay.addWidget(self.bar_view)
        self._updating = False

    def set_legend(self, rows: Sequence[tuple[str, str, int]]) -> None:
        """rows: (source name, colour, number of components)."""
        chips = [
            f"<span style='color:{c}'>■</span>&nbsp;{name}&nbsp;<span style='color:#8b9099'>({n})</span>"
            for name, c, n in rows
        ]
        self.legend.setText("sources&nbsp;&nbsp;" + "&nbsp;&nbsp; ".join(chips))

    def _mode_changed(self, text: str) -> None:
        if not self._updating and text:
            self.mode_changed.emit(text)

    def set_modes(self, modes: Sequence[str], current: str) -> None:
        self._updating = True
        try:
            self.mode.clear()
            self.mode.addItems(list(modes))
            i = self.mode.findText(current)
            self.mode.setCurrentIndex(max(0, i))
        finally:
            self._updating = False


# ============================================================================================ loss plot
class LossPane(QWidget):
    """Loss per iteration, log y: one curve per run (labelled with its model), the running one live.
    Runs can be hidden (tick box) or cleared from the plot; clearing does not change the project."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.setSpacing(3)
        self.plot = pg.PlotWidget(axisItems={"left": LossAxis("left")})
        self.plot.setLogMode(x=False, y=True)
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.plotItem.hideButtons()
        self.plot.getAxis("bottom").setTickFont(_tick_font())
        self.plot.setLabel("bottom", "iteration")
        self.plot.setLabel("left", "loss")
        self.legend = self.plot.addLegend(offset=(-8, 8), labelTextSize="8pt")
        self.plot.setMinimumHeight(120)
        lay.addWidget(self.plot, 1)
        self.runs = QListWidget()
        self.runs.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.runs.setMaximumHeight(56)
        self.runs.itemChanged.connect(self._visibility_changed)
        lay.addWidget(self.runs)
        row = QHBoxLayout()
        self.clear_button = QPushButton("Clear selected")
        self.clear_button.setToolTip(
            "Remove the selected runs' curves from the plot (the run history is kept)"
        )
        self.clear_button.clicked.connect(self.clear_selected)
        self.clear_all_button = QPushButton("Clear all")
        self.clear_all_button.clicked.connect(self.clear_all)
        row.addWidget(self.clear_button)
        row.addWidget(self.clear_all_button)
        row.addStretch(1)
        lay.addLayout(row)
        self.curves: dict[int, pg.PlotDataItem] = {}
        self.cleared: set[int] = set()
        self._labels: dict[int, str] = {}
        self.n_runs = 0  # runs of the project (the next live curve takes colour number n_runs)
        self.live: pg.PlotDataItem | None = None
        self.live_losses: list[float] = []
        self.updates = 0  # setData calls on the live curve (for the GUI benchmark)
        self.update_times: deque[float] = deque(maxlen=100_000)

    # ------------------------------------------------------------------ data

    @staticmethod
    def _xy(losses: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        y = np.asarray(losses, dtype=np.float64)
        y = np.where(np.isfinite(y) & (y > 0), y, np.nan)
        return np.arange(1, y.size + 1, dtype=np.float64), y

    # ------------------------------------------------------------------ live run
    def begin_live(self, label: str, n_iter: int | None = None, index: int | None = None) -> None:
        """Start the running curve of the project's run number ``index`` (0-based; its colour is that
        run's). The x range is fixed to the run's length and the y range only grows when the loss leaves
        it, so the axes are not re-laid out on every update."""
        self.discard_live()
        colour = run_colour(self.n_runs if index is None else index)
        self.live_losses = []
        self.live = self.plot.plot([], [], pen=pg.mkPen(colour, width=2), name=f"{label} (running)")
        self._live_colour = colour
        self._live_y: tuple[float, float] | None = None
        longest = max([len(c.xData) for c in self.curves.values() if c.xData is not None] + [1])
        if n_iter:
            self.plot.plotItem.vb.disableAutoRange()
            self.plot.setXRange(0, max(int(n_iter), longest), padding=0.02)
            # the y range in log10 units from the earlier curves' finite positive losses (yData is the
            # linear data: taking it for log10 gave an axis of 1e+188 … 1e-200 and a flat live curve)
            ys = [np.asarray(c.yData, np.float64) for c in self.curves.values() if c.yData is not None]
            ys = [y[np.isfinite(y) & (y > 0)] for y in ys]
            ys = np.concatenate(ys) if ys else np.zeros(0)
            if ys.size:
                lo, hi = float(np.log10(ys.min())), float(np.log10(ys.max()))
                span = max(hi - lo, 0.05)
                self._live_y = (lo - 0.15 * span, hi + 0.05 * span)
                self.plot.setYRange(*self._live_y, padding=0)

    def extend_live(self, losses: Sequence[float]) -> None:
        if self.live is None or not losses:
            return
        self.live_losses.extend(losses)
        x, y = self._xy(self.live_losses)
        self.live.setData(x, y)
        self.updates += 1
        self.update_times.append(time.perf_counter())
        if not self.plot.plotItem.vb.autoRangeEnabled()[1]:
            ly = np.log10(y[np.isfinite(y)])
            if ly.size:
                lo, hi = float(ly.min()), float(ly.max())
                cur = self._live_y
                if cur is None or lo < cur[0] or hi > cur[1]:
                    lo = min(lo, cur[0]) if cur else lo
                    hi = max(hi, cur[1]) if cur else hi
                    span = max(hi - lo, 0.05)
                    self._live_y = (lo - 0.15 * span, hi + 0.05 * span)
                    self.plot.setYRange(*self._live_y, padding=0)

    def discard_live(self) -> None:
        if self.live is not None:
            self.plot.removeItem(self.live)
            self.live = None
            self.live_losses = []
        self.plot.plotItem.vb.enableAutoRange()

    def end_live(self, run_id: int) -> None:
        """The live curve becomes the curve of run ``run_id`` (added by :meth:`sync`)."""
        self.discard_live()

    # ------------------------------------------------------------------ runs of the project
    def sync(self, runs: Sequence) -> None:
        """Show a curve for each run record not cleared; drop curves of runs no longer in ``runs``."""
        ids = {r.id for r in runs}
        for rid in list(self.curves):
            if rid not in ids:
                self._remove_curve(rid)
        self.n_runs = len(runs)
        for i, rec in enumerate(runs):
            if rec.id in self.cleared or rec.id in self.curves:
                continue
            colour = run_colour(i)  # by the run's place in the project: distinct, the same after reopening
            x, y = self._xy(rec.losses)
            label = f"{rec.label}" + ("" if rec.stopped == "finished" else f" ({rec.stopped})")
            curve = self.plot.plot(x, y, pen=pg.mkPen(colour, width=2), name=label)
            self.curves[rec.id] = curve
            self._labels[rec.id] = label
            item = QListWidgetItem(label)
            item.setData(Qt.ItemDataRole.UserRole, rec.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            item.setForeground(QBrush(QColor(colour)))
            self.runs.blockSignals(True)
            self.runs.addItem(item)
            self.runs.blockSignals(False)

    def reset(self) -> None:
        for rid in list(self.curves):
            self._remove_curve(rid)
        self.discard_live()
        self.cleared.clear()
        self.n_runs = 0
        self.plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)  # not the last project's axes
        self.plot.plotItem.vb.enableAutoRange()

    def _remove_curve(self, rid: int) -> None:
        curve = self.curves.pop(rid, None)
        if curve is not None:
            self.plot.removeItem(curve)
        for i in range(self.runs.count() - 1, -1, -1):
            if self.runs.item(i).data(Qt.ItemDataRole.UserRole) == rid:
                self.runs.takeItem(i)

    def clear_run(self, rid: int) -> None:
        self.cleared.add(rid)
        self._remove_curve(rid)

    def clear_selected(self) -> None:
        for item in self.runs.selectedItems():
            self.clear_run(int(item.data(Qt.ItemDataRole.UserRole)))

    def clear_all(self) -> None:
        for rid in list(self.curves):
            self.clear_run(rid)

    def _visibility_changed(self, item: QListWidgetItem) -> None:
        rid = int(item.data(Qt.ItemDataRole.UserRole))
        curve = self.curves.get(rid)
        if curve is not None:
            curve.setVisible(item.checkState() == Qt.CheckState.Checked)

    def curve_points(self, rid: int | None = None) -> int:
        """Number of points of run ``rid``'s curve (the live curve when None)."""
        curve = self.live if rid is None else self.curves.get(rid)
        if curve is None or curve.xData is None:
            return 0
        return int(len(curve.xData))


# ============================================================================================ sources
class SourcesPane(QTreeWidget):
    """Sources with their colour and number of components (the residual last)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setColumnCount(2)
        self.setHeaderLabels(["source", "components"])
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.header().setStretchLastSection(False)
        self.setColumnWidth(0, 170)

    def set_sources(self, rows: Sequence[tuple[str, str, int]]) -> None:
        """rows: (name, colour, number of components)."""
        self.clear()
        for name, colour, n in rows:
            item = QTreeWidgetItem([name, str(n)])
            pix = QColor(colour)
            item.setForeground(0, QBrush(pix))
            item.setData(0, Qt.ItemDataRole.DecorationRole, pix)
            item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.addTopLevelItem(item)


def db_or_floor(value: float) -> str:
    return "−∞ dB" if value <= DB_FLOOR + 1e-3 else f"{value:.1f} dB"
