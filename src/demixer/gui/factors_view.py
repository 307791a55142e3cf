"""The display of V, W and H (DESIGN.md §3, §4): one controller that keeps the dB images and paints
the three factor panes, the corner (summary, legend, V mode), the Sources and Loss docks and the
cursor read-out — from the project's change signals, never pushed by anyone else.

Who paints what:

* the project's factors — on the project's ``factors_changed`` signal (load, apply run, undo, redo);
  a region-only change recomputes only that region's dB values;
* a running job's factors — from the latest snapshot (``pending``), at most 10 times a second (a repaint
  timer picks the newest snapshot; snapshots in between only extend the loss curve);
* V — once per project / display change (never per snapshot); the W·H and per-source views are
  recomputed at most twice a second during a run.

Its public members (``log_map``, ``y_extent()``, ``rows()``, ``show_V()``, ``apply_limits()``,
``update_summary()``) are what the editing tools use to map between view and model coordinates.
"""

from __future__ import annotations

import math
import time
from collections import deque
from functools import partial
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QRectF, Qt, QTimer

from demixer.core.notes import pitch_name
from demixer.gui.display import LogFreqMap, db_top, format_hz, to_db
from demixer.gui.panes import db_or_floor
from demixer.gui.worker import DisplaySnapshot
from demixer.model.project import RESIDUAL, Project, Region, RunParams

__all__ = ["FactorView", "MODE_V", "MODE_WH", "SOURCE_PREFIX", "PANE_INTERVAL_MS", "V_LIVE_INTERVAL_S"]

PANE_INTERVAL_MS = 100  # W/H repaint period during a run: ≤ 10 Hz
V_LIVE_INTERVAL_S = 0.5  # W·H / source view refresh period during a run
MODE_V, MODE_WH = "V", "W·H"
SOURCE_PREFIX = "source: "


def pitch_text(freq: float) -> str:
    """" (A4 +12 cents)": the nearest equal-tempered pitch (A4 = 440 Hz) and the offset from it."""
    if not (freq > 0 and math.isfinite(freq)):
        return ""
    midi = 69.0 + 12.0 * math.log2(freq / 440.0)
    near = int(round(midi))
    if not 0 <= near <= 127:
        return ""
    cents = int(round(100.0 * (midi - near)))
    return f" ({pitch_name(near)} {cents:+d} cents)"


class FactorView(QObject):
    """Paints the panes of one workbench (see the module docstring)."""

    def __init__(self, bench, *, v_pane, h_pane, w_pane, corner, loss_pane, sources_pane, params_pane, cursor_label):
        super().__init__(bench)
        self.bench = bench
        self.v_pane, self.h_pane, self.w_pane, self.corner = v_pane, h_pane, w_pane, corner
        self.loss_pane, self.sources_pane, self.params_pane = loss_pane, sources_pane, params_pane
        self.cursor_label = cursor_label
        self.log_map: LogFreqMap | None = None
        self.V_db: np.ndarray | None = None
        self.V_top = 0.0
        self.W_db: np.ndarray | None = None
        self.H_db: np.ndarray | None = None
        self.shown_W: np.ndarray | None = None  # linear factors on display (for the cursor read-out)
        self.shown_H: np.ndarray | None = None
        self.pending: DisplaySnapshot | None = None
        self.last_v_live = 0.0
        self.stats = {"snapshots": 0, "pane_updates": 0}
        self.pane_update_times: deque[float] = deque(maxlen=100_000)  # perf_counter of each live repaint
        self.repaint_timer = QTimer(self)
        self.repaint_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.repaint_timer.setInterval(PANE_INTERVAL_MS)
        self.repaint_timer.timeout.connect(self.paint_pending)
        corner.mode_changed.connect(self.set_v_mode)
        params_pane.run_params_changed.connect(self._on_run_params_changed)
        for pane in (v_pane, h_pane, w_pane):
            pane.scene().sigMouseMoved.connect(partial(self._on_mouse_moved, pane))
        # the empty window (shown while the first piece loads): axes from 0 s and 0 Hz, not pyqtgraph's
        # ±0.5 around 0 (negative frequencies, milliseconds); H and W follow V's axes
        v_pane.setRange(xRange=(0.0, 10.0), yRange=(0.0, 10_000.0), padding=0)

    # ================================================================================ the project
    def attach(self, old: Project | None, project: Project) -> None:
        """Follow ``project`` instead of ``old``: connect to its signals and paint everything once."""
        if old is not None:
            for sig, slot in self._connections(old):
                sig.disconnect(slot)
        for sig, slot in self._connections(project):
            sig.connect(slot)
        self.V_db = to_db(project.V)
        self.V_top = db_top(self.V_db)
        self.log_map = LogFreqMap(project.n_bins, project.sr)
        if self.bench.view.log_frequency:
            self.v_pane.freq_axis.set_log(self.log_map)
            self.w_pane.freq_axis.set_log(self.log_map)
        for pane in (self.v_pane, self.h_pane, self.w_pane):
            pane.manual_levels = False
        self.loss_pane.reset()
        self.loss_pane.sync(project.runs)
        self._on_components_changed()
        self.params_pane.set_values(project.stft, project.score, project.run)
        self.refresh_factors()
        self.show_V()
        self.apply_limits()
        self.zoom_to_fit()
        self.update_summary()

    def _connections(self, p: Project):
        return [
            (p.factors_changed, self._on_factors_changed),
            (p.runs_changed, self._on_runs_changed),
            (p.components_changed, self._on_components_changed),
            (p.sources_changed, self._on_components_changed),
            (p.params_changed, self._on_project_params_changed),
        ]

    def show_project_factors(self) -> None:
        """Back to the project's own factors (a live run was dropped)."""
        p = self.bench.project
        if p is not None and self.W_db is not None:
            self.show_factors(self.W_db, self.H_db, db_top(self.W_db), db_top(self.H_db), p.W, p.H)

    # ================================================================================ live runs
    def begin_live(self) -> None:
        self.pending = None
        self.last_v_live = 0.0
        self.repaint_timer.start()

    def end_live(self) -> None:
        self.repaint_timer.stop()
        self.pending = None

    def update_summary(self) -> None:
        p = self.bench.project
        if p is None:
            self.corner.summary.setText("no recording")
            return
        if p.score_path:
            score = f" · score {Path(p.score_path).name}"
        else:  # notes without a file: a drafted score (File → Draft…), or notes added by hand
            n = len(p.notes)
            score = f" · score of {n} note{'s' if n != 1 else ''}, no file" if n else " · no score"
        self.corner.summary.setText(
            f"<b>{p.title}</b>{score}<br>{p.duration:.1f} s · {p.sr} Hz · V {p.n_bins}×{p.n_frames} · "
            f"R = {p.n_components}"
        )

    def show_loading(self, text: str) -> None:
        """While a recording is read and analysed in the background (issue 18, item 13): say so in the
        corner and keep the status bar's progress bar busy; ``""`` ends it."""
        progress = getattr(self.bench.host, "progress", None)
        if progress is not None and not self.bench.running():
            progress.setRange(0, 0 if text else 100)
            progress.setFormat("loading…" if text else "%p%")
            progress.setVisible(bool(text))
        if text and self.bench.project is None:
            self.corner.summary.setText(f"<b>loading…</b><br>{text}")
        else:
            self.update_summary()

    def _on_components_changed(self) -> None:
        p = self.bench.project
        if p is None:
            return
        labels = [c.label for c in p.components]
        colours = p.component_colours()
        self.h_pane.comp_axis.set_components(labels, colours)
        self.w_pane.comp_axis.set_components(labels, colours)
        rows = []
        for name in p.source_names():
            rows.append((name, p.source_colour(name), len(p.source_components(name))))
        self.sources_pane.set_sources(rows)
        self.corner.set_legend(rows)
        modes = [MODE_V, MODE_WH] + [SOURCE_PREFIX + n for n in p.source_names()]
        if self.bench.view.v_mode not in modes:
            self.bench.view.v_mode = MODE_V
        self.corner.set_modes(modes, self.bench.view.v_mode)

    def _on_runs_changed(self) -> None:
        if self.bench.project is not None:
            self.loss_pane.sync(self.bench.project.runs)

    def _on_project_params_changed(self) -> None:
        p = self.bench.project
        if p is not None:
            self.params_pane.set_values(p.stft, p.score, p.run)

    def _on_run_params_changed(self, run: RunParams) -> None:
        if self.bench.project is not None:
            self.bench.project.set_run_params(run)

    def _on_factors_changed(self, region: Region | None) -> None:
        p = self.bench.project
        if p is None:
            return
        if region is not None and region.target in ("W", "H") and self.W_db is not None:
            rs, cs = region.slices()
            if region.target == "W":
                self.W_db[rs, cs] = to_db(p.W[rs, cs])
            else:
                self.H_db[rs, cs] = to_db(p.H[rs, cs])
            self.show_factors(self.W_db, self.H_db, db_top(self.W_db), db_top(self.H_db), p.W, p.H)
        elif region is None:
            self.refresh_factors()
        if self.bench.view.v_mode != MODE_V:
            self.show_V()

    def y_extent(self) -> tuple[float, float]:
        p = self.bench.project
        if self.bench.view.log_frequency and self.log_map is not None:
            return self.log_map.y0, self.log_map.y1
        return 0.0, p.sr / 2.0

    def rows(self, a: np.ndarray) -> np.ndarray:
        return self.log_map.apply(a) if self.bench.view.log_frequency and self.log_map is not None else a

    def refresh_factors(self) -> None:
        p = self.bench.project
        self.W_db = to_db(p.W)
        self.H_db = to_db(p.H)
        self.show_factors(self.W_db, self.H_db, db_top(self.W_db), db_top(self.H_db), p.W, p.H)

    def show_factors(self, W_db, H_db, W_top, H_top, W, H) -> None:
        p = self.bench.project
        y0, y1 = self.y_extent()
        R = p.n_components
        self.w_pane.set_image(self.rows(W_db), QRectF(0.0, y0, float(R), y1 - y0), W_top)
        self.h_pane.set_image(H_db, QRectF(0.0, 0.0, p.duration, float(R)), H_top)
        self.shown_W, self.shown_H = W, H

    def v_data(self, W=None, H=None) -> np.ndarray:
        p = self.bench.project
        if self.bench.view.v_mode == MODE_V:
            return self.V_db
        W = p.W if W is None else W
        H = p.H if H is None else H
        if self.bench.view.v_mode == MODE_WH:
            return to_db(W @ H)
        from demixer.engine.separation import masks_for

        name = self.bench.view.v_mode[len(SOURCE_PREFIX) :]
        names, masks = masks_for(W, H, p.component_infos(), [s.name for s in p.sources], p.run.alpha)
        if name not in names:  # e.g. "residual" when a named source has that name
            name = RESIDUAL if RESIDUAL in names else names[-1]
        return to_db(masks[names.index(name)] * p.V)

    def show_V(self, W=None, H=None) -> None:
        p = self.bench.project
        if p is None:
            return
        y0, y1 = self.y_extent()
        self.v_pane.set_image(
            self.rows(self.v_data(W, H)), QRectF(0.0, y0, p.duration, y1 - y0), self.V_top
        )
        self.v_pane.set_badge(self.bench.view.v_mode)

    def apply_limits(self) -> None:
        p = self.bench.project
        y0, y1 = self.y_extent()
        R = float(p.n_components)
        dur = p.duration
        self.v_pane.vb.setLimits(
            xMin=0.0, xMax=dur, yMin=y0, yMax=y1, minXRange=dur / 2000.0, minYRange=(y1 - y0) / 2000.0
        )
        self.h_pane.vb.setLimits(xMin=0.0, xMax=dur, yMin=0.0, yMax=R, minXRange=dur / 2000.0, minYRange=1.0)
        self.w_pane.vb.setLimits(
            xMin=0.0, xMax=R, yMin=y0, yMax=y1, minXRange=1.0, minYRange=(y1 - y0) / 2000.0
        )

    def paint_pending(self) -> None:
        ds = self.pending
        if ds is None or self.bench.project is None:
            return
        self.pending = None
        self.show_factors(ds.W_db, ds.H_db, ds.W_top, ds.H_top, ds.snap.W, ds.snap.H)
        self.stats["pane_updates"] += 1
        self.pane_update_times.append(time.perf_counter())
        if self.bench.view.v_mode != MODE_V:
            now = time.perf_counter()
            if ds.snap.done or now - self.last_v_live >= V_LIVE_INTERVAL_S:
                self.last_v_live = now
                self.show_V(ds.snap.W, ds.snap.H)

    def zoom_to_fit(self) -> None:
        p = self.bench.project
        if p is None:
            return
        y0, y1 = self.y_extent()
        self.v_pane.setRange(xRange=(0.0, p.duration), yRange=(y0, y1), padding=0.0)
        self.h_pane.setYRange(0.0, float(p.n_components), padding=0.0)
        self.w_pane.setXRange(0.0, float(p.n_components), padding=0.0)

    def zoom_time(self, factor: float) -> None:
        """Zoom the time axis (V and H) by ``factor`` around the middle of the view (0.5: in, 2: out),
        within the piece."""
        p = self.bench.project
        if p is None:
            return
        (x0, x1), _ = self.v_pane.viewRange()
        mid, half = (x0 + x1) / 2.0, max((x1 - x0) * factor / 2.0, 0.05)
        half = min(half, p.duration / 2.0)
        mid = min(max(mid, half), p.duration - half)
        self.v_pane.setXRange(mid - half, mid + half, padding=0.0)

    def set_log_frequency(self, on: bool) -> None:
        on = bool(on)
        if self.bench.actions.action("view.log").isChecked() != on:
            self.bench.actions.action("view.log").setChecked(on)  # re-enters through toggled
            return
        if on == self.bench.view.log_frequency:
            return
        p = self.bench.project
        old = self.v_pane.vb.viewRange()[1] if p is not None else None
        self.bench.view.log_frequency = on
        self.v_pane.freq_axis.set_log(self.log_map if on else None)
        self.w_pane.freq_axis.set_log(self.log_map if on else None)
        if p is None:
            return
        self.apply_limits()
        self.show_V()
        self.show_factors(
            self.W_db if self.pending is None else self.pending.W_db,
            self.H_db,
            db_top(self.W_db),
            db_top(self.H_db),
            p.W,
            p.H,
        )
        m = self.log_map
        y0, y1 = self.y_extent()
        if on:
            lo, hi = (math.log2(max(f, m.f_lo)) for f in old)
        else:
            lo, hi = (2.0**v for v in old)
        lo, hi = max(lo, y0), min(hi, y1)
        if hi - lo < (y1 - y0) * 1e-3:
            lo, hi = y0, y1
        self.v_pane.setYRange(lo, hi, padding=0.0)

    def set_db_range(self, db: float) -> None:
        self.bench.view.db_range = float(db)
        a = self.bench.actions.get(f"view.db.{int(db)}")
        if a is not None and not a.isChecked():
            a.setChecked(True)
        self.v_pane.set_db_range(db, self.V_top)
        if self.W_db is not None:
            self.w_pane.set_db_range(db, db_top(self.W_db))
            self.h_pane.set_db_range(db, db_top(self.H_db))

    def set_v_mode(self, mode: str) -> None:
        if self.bench.project is None or mode == self.bench.view.v_mode:
            return
        self.bench.view.v_mode = mode
        if self.corner.mode.currentText() != mode:
            self.corner.set_modes(
                [self.corner.mode.itemText(i) for i in range(self.corner.mode.count())], mode
            )
        W = H = None
        if self.bench.running():
            W, H = self.shown_W, self.shown_H
        self.show_V(W, H)

    def _on_mouse_moved(self, pane, scene_pos) -> None:
        p = self.bench.project
        if p is None or not pane.vb.sceneBoundingRect().contains(scene_pos):
            return
        pt = pane.vb.mapSceneToView(scene_pos)
        x, y = float(pt.x()), float(pt.y())
        hit = pane.value_at(x, y)
        self.cursor_label.setText(self.readout(pane, x, y, hit))

    def readout(self, pane, x: float, y: float, hit=None) -> str:
        """Status-bar text for view point (x, y) of ``pane``: time, frequency, value, component."""
        p = self.bench.project
        if hit is None:
            hit = pane.value_at(x, y)
        parts = []
        freq = (2.0**y if self.bench.view.log_frequency else y) if pane is not self.h_pane else None
        comp = None
        if pane is not self.w_pane:
            parts.append(f"t {x:7.3f} s")
        if freq is not None:
            parts.append(f"f {format_hz(freq) if freq >= 1000 else f'{freq:.1f}'} Hz" + pitch_text(freq))
        if pane is self.h_pane:
            r = int(math.floor(y))
            comp = r if 0 <= r < p.n_components else None
        elif pane is self.w_pane:
            r = int(math.floor(x))
            comp = r if 0 <= r < p.n_components else None
        elif self.shown_W is not None:
            k = int(round(freq / (p.sr / 2.0) * (p.n_bins - 1)))
            n = int(x / p.duration * p.n_frames) if p.duration > 0 else 0
            if 0 <= k < p.n_bins and 0 <= n < p.n_frames:
                contrib = self.shown_W[k, :] * self.shown_H[:, n]
                if contrib.size and float(contrib.max()) > 0:
                    comp = int(np.argmax(contrib))
        if hit is not None:
            name = {self.v_pane: self.bench.view.v_mode, self.h_pane: "H", self.w_pane: "W"}[pane]
            parts.append(f"{name} {db_or_floor(hit[2])}")
        if comp is not None:
            c = p.components[comp]
            parts.append(f"component {c.name}" + (f" [{c.source}]" if c.source else " [residual]"))
        return "   ".join(parts)
