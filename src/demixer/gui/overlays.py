"""Overlays on the panes (DESIGN.md §4): constraint masks on W and H, the score's notes on V, the
selected components, a stroke being painted and a time–frequency selection on V.

The mask overlays are not painted into the displayed images: each is an RGBA ``ImageItem`` made a
*child* of the pane's image item, with the displayed image's shape, so it follows the image's placement
(``setRect``) and zoom for free. Forbidden entries are tinted; allowed ones are transparent. The score
outlines are one ``QGraphicsPathItem`` per source (cosmetic pens, in data coordinates).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsRectItem

from demixer.core.notes import Note, pitch_to_hz
from demixer.gui.display import LogFreqMap, to_db

__all__ = [
    "FORBIDDEN_RGBA",
    "PAINTED_ZERO_RGBA",
    "PAINTED_ALLOW_RGBA",
    "MaskOverlay",
    "PreviewOverlay",
    "ScoreOutlines",
    "SelectionHighlight",
    "ContributionOverlay",
    "SelectionRect",
    "log_rows_to_bins",
]

#: Tint of entries forbidden by the score / templates: a cool slate blue apart from the inferno colour map.
FORBIDDEN_RGBA = (70, 130, 190, 120)
#: Entries the user painted "zero" where the score allows them, and painted "allow" where it does not.
PAINTED_ZERO_RGBA = (235, 60, 90, 170)
PAINTED_ALLOW_RGBA = (90, 230, 130, 90)
ZERO_PREVIEW_RGBA = (255, 70, 70, 190)
ALLOW_PREVIEW_RGBA = (90, 255, 140, 190)
HIGHLIGHT_COLOUR = "#f4f4f4"
CONTRIBUTION_RGB = (80, 240, 255)


def dashed_pen(colour, width: float | None = None) -> QPen:
    """The dashed, cosmetic (screen-width) pen of the panes' transient marks: rubber bands, drag ghosts,
    the anchor line, the brush outline. ``colour``: anything QColor takes."""
    pen = QPen(QColor(colour))
    pen.setCosmetic(True)
    if width is not None:
        pen.setWidthF(width)
    pen.setStyle(Qt.PenStyle.DashLine)
    return pen


def _child_image(parent: pg.ImageItem, z: float) -> pg.ImageItem:
    item = pg.ImageItem(axisOrder="row-major")
    item.setParentItem(parent)
    item.setZValue(z)
    return item


def _set_rgba(item: pg.ImageItem, rgba: np.ndarray) -> None:
    item.setImage(rgba, autoLevels=False, levels=(0, 255))


class MaskOverlay:
    """Forbidden entries of a mask, tinted, over a pane's image (``allow`` has the displayed shape).

    With a ``reference`` (what the score / templates alone allow), entries that differ from it — the
    painted ones — get their own tints: red where painted "zero", green where painted "allow"."""

    def __init__(self, pane, colour: Sequence[int] = FORBIDDEN_RGBA) -> None:
        self.pane = pane
        self.colour = np.array(colour, np.uint8)
        self.item = _child_image(pane.image, 5)
        self.allow: np.ndarray | None = None
        self.rgba: np.ndarray | None = None

    def set_allow(
        self,
        allow: np.ndarray | None,
        reference: np.ndarray | None = None,
        box: tuple[int, int, int, int] | None = None,
    ) -> None:
        """Show ``allow`` (displayed shape). ``box = (r0, r1, c0, c1)``: only that block changed since
        the last call (same shape), so only it is recoloured."""
        self.allow = None if allow is None else np.asarray(allow, bool)
        if self.allow is None or self.allow.size == 0:
            self.rgba = None
            self.item.clear()
            return
        ref = None
        if reference is not None and np.shape(reference) == self.allow.shape:
            ref = np.asarray(reference, bool)
        rgba = getattr(self, "rgba", None)
        if box is None or rgba is None or rgba.shape[:2] != self.allow.shape:
            rgba = self.rgba = np.zeros(self.allow.shape + (4,), np.uint8)
            box = (0, self.allow.shape[0], 0, self.allow.shape[1])
        r0, r1, c0, c1 = box
        a = self.allow[r0:r1, c0:c1]
        out = rgba[r0:r1, c0:c1]
        out[...] = 0
        if ref is None:
            out[~a] = self.colour
        else:
            f = ref[r0:r1, c0:c1]
            out[~a & ~f] = self.colour
            out[~a & f] = PAINTED_ZERO_RGBA
            out[a & ~f] = PAINTED_ALLOW_RGBA
        _set_rgba(self.item, rgba)

    def set_visible(self, on: bool) -> None:
        self.item.setVisible(bool(on))

    def is_visible(self) -> bool:
        return self.item.isVisible()


class PreviewOverlay:
    """The cells of a stroke being painted (before it is pushed as one undo step)."""

    def __init__(self, pane) -> None:
        self.pane = pane
        self.item = _child_image(pane.image, 8)
        self.rgba: np.ndarray | None = None

    def begin(self, shape: tuple[int, int], allow: bool) -> None:
        self.rgba = np.zeros(tuple(shape) + (4,), np.uint8)
        self.colour = np.array(ALLOW_PREVIEW_RGBA if allow else ZERO_PREVIEW_RGBA, np.uint8)
        self.item.setVisible(True)

    def show(self, mask: np.ndarray) -> None:
        if self.rgba is None:
            return
        self.rgba[mask] = self.colour
        _set_rgba(self.item, self.rgba)

    def replace(self, mask: np.ndarray) -> None:
        if self.rgba is None:
            return
        self.rgba[...] = 0
        self.show(mask)

    def end(self) -> None:
        self.rgba = None
        self.item.clear()
        self.item.setVisible(False)


def log_rows_to_bins(log_map: LogFreqMap) -> np.ndarray:
    """(n_rows, n_bins) bool: the bins each display row of a log-frequency image shows (those whose
    centre falls in it, or the nearest bin when none does) — as :class:`LogFreqMap` builds its rows."""
    K, M = int(log_map.n_bins), int(log_map.n_rows)
    df = log_map.sr / (2.0 * (K - 1))
    edges = 2.0 ** np.linspace(log_map.y0, log_map.y1, M + 1)
    edges[-1] = log_map.f_hi + df / 2.0
    first = np.clip(np.ceil(edges / df - 1e-9).astype(int), 0, K)
    starts, stops = first[:-1], first[1:]
    centres = 2.0 ** (log_map.y0 + (np.arange(M) + 0.5) * (log_map.y1 - log_map.y0) / M)
    nearest = np.clip(np.rint(centres / df).astype(int), 0, K - 1)
    out = np.zeros((M, K), bool)
    k = np.arange(K)
    nonempty = stops > starts
    out[nonempty] = (k[None, :] >= starts[nonempty, None]) & (k[None, :] < stops[nonempty, None])
    out[np.flatnonzero(~nonempty), nearest[~nonempty]] = True
    return out


class ScoreOutlines:
    """The score's notes as rectangles on V: onset..offset × f0·(1 ± tol), coloured by source."""

    def __init__(self, pane) -> None:
        self.pane = pane
        self.items: list[QGraphicsPathItem] = []
        self.visible = True
        self.n_rects = 0

    def clear(self) -> None:
        for it in self.items:
            self.pane.removeItem(it)
        self.items = []
        self.n_rects = 0

    def set_notes(self, notes: Sequence[Note], colour_of, tol: float, log: bool) -> None:
        """``colour_of(group) -> colour``; ``log``: the y coordinate is log2(Hz)."""
        self.clear()
        paths: dict[str, QPainterPath] = {}
        for n in notes:
            f0 = pitch_to_hz(n.pitch)
            lo, hi = f0 * (1.0 - tol), f0 * (1.0 + tol)
            if log:
                lo, hi = math.log2(max(lo, 1e-3)), math.log2(max(hi, 1e-3))
            colour = colour_of(n.group)
            path = paths.setdefault(colour, QPainterPath())
            path.addRect(QRectF(n.onset, lo, max(n.offset - n.onset, 1e-3), hi - lo))
            self.n_rects += 1
        for colour, path in paths.items():
            item = QGraphicsPathItem(path)
            pen = pg.mkPen(colour, width=1.6)
            pen.setCosmetic(True)
            item.setPen(pen)
            item.setZValue(30)
            item.setVisible(self.visible)
            self.pane.addItem(item, ignoreBounds=True)
            self.items.append(item)

    def set_visible(self, on: bool) -> None:
        self.visible = bool(on)
        for it in self.items:
            it.setVisible(self.visible)


class SelectionHighlight:
    """Outlines around the selected components: rows of H (``axis="rows"``) or columns of W."""

    def __init__(self, pane, axis: str) -> None:
        self.pane = pane
        self.axis = axis
        self.item = QGraphicsPathItem()
        pen = QPen(QColor(HIGHLIGHT_COLOUR))
        pen.setWidthF(1.6)
        pen.setCosmetic(True)
        self.item.setPen(pen)
        self.item.setZValue(40)
        pane.addItem(self.item, ignoreBounds=True)
        self.selected: list[int] = []

    def set_selection(self, indices: Sequence[int], extent: tuple[float, float]) -> None:
        """``extent``: the other axis' range (time for H, frequency for W) in data coordinates."""
        self.selected = sorted(int(r) for r in indices)
        path = QPainterPath()
        a, b = extent
        # contiguous runs of components as one rectangle each
        runs: list[list[int]] = []
        for r in self.selected:
            if runs and r == runs[-1][1]:
                runs[-1][1] = r + 1
            else:
                runs.append([r, r + 1])
        for r0, r1 in runs:
            if self.axis == "rows":
                path.addRect(QRectF(a, r0, b - a, r1 - r0))
            else:
                path.addRect(QRectF(r0, a, r1 - r0, b - a))
        self.item.setPath(path)


class ContributionOverlay:
    """The selected components' part of the model, W[:, S]·H[S, :], drawn over V as a translucent tint
    whose opacity follows its level in dB (the top 50 dB)."""

    RANGE_DB = 50.0

    def __init__(self, pane) -> None:
        self.item = _child_image(pane.image, 6)
        self.visible = True

    def clear(self) -> None:
        self.item.clear()

    def set_contribution(self, model: np.ndarray | None) -> None:
        """``model``: the contribution on V's displayed grid (linear magnitude), or None."""
        if model is None or model.size == 0 or not float(np.max(model)) > 0:
            self.clear()  # nothing there: an all-zero contribution sat at the dB floor, i.e. at "top"
            return
        db = to_db(model)
        top = float(db.max())
        alpha = np.clip((db - (top - self.RANGE_DB)) / self.RANGE_DB, 0.0, 1.0)
        alpha[~(model > 0)] = 0.0  # exact zeros (forbidden, outside the allowed region) stay clear
        rgba = np.empty(model.shape + (4,), np.uint8)
        rgba[..., :3] = CONTRIBUTION_RGB
        rgba[..., 3] = (alpha * 200).astype(np.uint8)
        _set_rgba(self.item, rgba)
        self.item.setVisible(self.visible)

    def set_visible(self, on: bool) -> None:
        self.visible = bool(on)
        self.item.setVisible(self.visible)


class SelectionRect:
    """A dashed rectangle in a pane's data coordinates (rubber band, V selection)."""

    def __init__(self, pane, colour: str = "#ffffff") -> None:
        self.pane = pane
        self.item = QGraphicsRectItem()
        self.item.setPen(dashed_pen(colour, 1.5))
        fill = QColor(colour)
        fill.setAlpha(30)
        self.item.setBrush(fill)
        self.item.setZValue(50)
        self.item.setVisible(False)
        pane.addItem(self.item, ignoreBounds=True)

    def set_rect(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.item.setRect(QRectF(min(x0, x1), min(y0, y1), abs(x1 - x0), abs(y1 - y0)))
        self.item.setVisible(True)

    def hide(self) -> None:
        self.item.setVisible(False)

    def is_visible(self) -> bool:
        return self.item.isVisible()
