"""The workbench window (DESIGN.md §4): panes laid out like V ≈ W·H, docks for the loss plot, the
sources and the parameters, menus, background runs, one undo stack.

Who paints what:

* the project's factors — on the project's ``factors_changed`` signal (load, apply run, undo, redo);
* a running job's factors — from the latest snapshot, at most 10 times a second (a repaint timer
  picks the newest snapshot; snapshots in between only extend the loss curve);
* V — once per project / display change (never per snapshot); the W·H and per-source views are
  recomputed at most twice a second during a run.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections import deque
from functools import partial
from pathlib import Path

import numpy as np
from PySide6.QtCore import QRectF, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QSplitter,
    QStyle,
    QToolBar,
    QWidget,
)

from demixer.engine.job import MODELS, JobSpec
from demixer.gui.display import LogFreqMap, db_top, format_hz, to_db
from demixer.gui.panes import (
    PLOT_BG,
    ActivationPane,
    CornerPane,
    LossPane,
    SourcesPane,
    SpectrogramPane,
    TemplatePane,
    db_or_floor,
)
from demixer.gui.params import ParametersPane
from demixer.gui.undo import UndoAdapter
from demixer.gui.worker import DisplaySnapshot, RunController
from demixer.io.errors import InputError
from demixer.model.edits import ApplyRunResult
from demixer.model.project import RESIDUAL, Project, Region, RunParams, RunRecord

__all__ = ["MainWindow", "PANE_INTERVAL_MS"]

PANE_INTERVAL_MS = 100  # W/H repaint period during a run: ≤ 10 Hz
V_LIVE_INTERVAL_S = 0.5  # W·H / source view refresh period during a run
DB_RANGES = (40, 60, 80, 100, 120)
MAX_RECENT = 8
MODE_V, MODE_WH = "V", "W·H"
SOURCE_PREFIX = "source: "


class MainWindow(QMainWindow):
    """The workbench. ``scripted=True`` (``--screenshot``) reports errors on stderr, not in dialogs."""

    project_changed = Signal()
    run_started = Signal(object)  # RunController
    run_finished = Signal(object)  # RunRecord (finished, converged or cancelled; applied as one undo step)
    run_failed = Signal(str)

    def __init__(self, *, scripted: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.scripted = scripted
        self.project: Project | None = None
        self.undo = UndoAdapter(self)
        self.run_ctrl: RunController | None = None
        self._retired: list[RunController] = []
        self._pending: DisplaySnapshot | None = None
        self._last_v_live = 0.0
        self.log_freq = False
        self.db_range = 80.0
        self.v_mode = MODE_V
        self._log_map: LogFreqMap | None = None
        self._V_db: np.ndarray | None = None
        self._V_top = 0.0
        self._W_db: np.ndarray | None = None
        self._H_db: np.ndarray | None = None
        self._shown_W: np.ndarray | None = None  # linear factors on display (for the cursor read-out)
        self._shown_H: np.ndarray | None = None
        self.errors: list[str] = []
        self.last_dialog: QMessageBox | None = None
        self.stats = {"snapshots": 0, "pane_updates": 0}
        self.pane_update_times: deque[float] = deque(maxlen=100_000)  # perf_counter of each live repaint

        self.setWindowTitle("Demixer")
        self.resize(1400, 900)
        self._build_central()
        self._build_docks()
        self._build_actions()
        self._build_menus_and_toolbar()
        self._build_status_bar()
        self._repaint_timer = QTimer(self)
        self._repaint_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._repaint_timer.setInterval(PANE_INTERVAL_MS)
        self._repaint_timer.timeout.connect(self._paint_pending)
        from demixer.gui.transport import install_audition  # transport, Listen dock, File → Export

        self.audition = install_audition(self)
        from demixer.gui.editing import install_editing  # tools, overlays, Components & History docks

        self.editing = install_editing(self)
        self._update_actions()
        # .demix projects, autosave/recovery, drag-and-drop, layout (gui/project_io.py). Installed last: its
        # Close filter must see a close first, to ask about unsaved changes before anything shuts down.
        from demixer.gui.project_io import install_project_io

        self.project_io = install_project_io(self)

    # ================================================================================ construction
    def _build_central(self) -> None:
        self.v_pane = SpectrogramPane()
        self.h_pane = ActivationPane()
        self.w_pane = TemplatePane()
        self.corner = CornerPane(self.w_pane.bar)
        self.corner.mode_changed.connect(self.set_v_mode)
        self.h_pane.setXLink(self.v_pane)  # H shares V's time axis
        self.w_pane.setYLink(self.v_pane)  # W shares V's frequency axis
        self.v_pane.set_badge("V")
        self.h_pane.set_badge("H")
        self.w_pane.set_badge("W")

        self.top_split = QSplitter(Qt.Orientation.Horizontal)
        self.top_split.addWidget(self.corner)
        self.top_split.addWidget(self.h_pane)
        self.bottom_split = QSplitter(Qt.Orientation.Horizontal)
        self.bottom_split.addWidget(self.w_pane)
        self.bottom_split.addWidget(self.v_pane)
        for s in (self.top_split, self.bottom_split):
            s.setStretchFactor(0, 0)
            s.setStretchFactor(1, 1)
            s.setChildrenCollapsible(False)
            s.setHandleWidth(3)
        self.top_split.splitterMoved.connect(partial(self._sync_splitters, self.top_split, self.bottom_split))
        self.bottom_split.splitterMoved.connect(
            partial(self._sync_splitters, self.bottom_split, self.top_split)
        )
        self.v_split = QSplitter(Qt.Orientation.Vertical)
        self.v_split.addWidget(self.top_split)
        self.v_split.addWidget(self.bottom_split)
        self.v_split.setStretchFactor(0, 1)
        self.v_split.setStretchFactor(1, 2)
        self.v_split.setHandleWidth(3)
        self.v_split.setChildrenCollapsible(False)
        self.v_split.setStyleSheet(f"QSplitter {{ background: {PLOT_BG}; }}")
        self.setCentralWidget(self.v_split)
        self.top_split.setSizes([270, 780])
        self.bottom_split.setSizes([270, 780])
        self.v_split.setSizes([300, 560])

        for pane in (self.v_pane, self.h_pane, self.w_pane):
            pane.scene().sigMouseMoved.connect(partial(self._on_mouse_moved, pane))

    @staticmethod
    def _sync_splitters(src: QSplitter, dst: QSplitter, *_):
        if dst.sizes() != src.sizes():
            dst.blockSignals(True)
            dst.setSizes(src.sizes())
            dst.blockSignals(False)

    def _build_docks(self) -> None:
        self.loss_pane = LossPane()
        self.sources_pane = SourcesPane()
        self.params_pane = ParametersPane()
        self.params_pane.run_params_changed.connect(self._on_run_params_changed)
        self.params_pane.reanalyse_requested.connect(self.reanalyse)
        self.loss_dock = self.make_dock("Loss", self.loss_pane, "loss")
        self.sources_dock = self.make_dock("Sources", self.sources_pane, "sources")
        self.params_dock = self.make_dock("Parameters", self.params_pane, "parameters")
        for d in (self.loss_dock, self.sources_dock, self.params_dock):
            self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, d)
        self.resizeDocks([self.loss_dock], [360], Qt.Orientation.Horizontal)
        self.resizeDocks(
            [self.loss_dock, self.sources_dock, self.params_dock], [290, 110, 420], Qt.Orientation.Vertical
        )

    def make_dock(self, title: str, widget: QWidget, name: str) -> QDockWidget:
        """A movable, floatable, closable dock named ``dock_<name>`` (window state is saved by name)."""
        d = QDockWidget(title, self)
        d.setObjectName(f"dock_{name}")
        d.setWidget(widget)
        d.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        return d

    def _build_actions(self) -> None:
        st = self.style()
        self.act_open = QAction("&Open audio…", self, shortcut=QKeySequence.StandardKey.Open)
        self.act_open.triggered.connect(self._ask_open_audio)
        self.act_open_score = QAction("Open &score…", self, shortcut=QKeySequence("Ctrl+Shift+O"))
        self.act_open_score.triggered.connect(self._ask_open_score)
        self.act_demo = QAction("Open &demo", self)
        self.act_demo.triggered.connect(self.open_demo)
        self.act_screenshot = QAction("Save &window image…", self)
        self.act_screenshot.triggered.connect(self._ask_screenshot)
        self.act_quit = QAction("&Quit", self, shortcut=QKeySequence("Ctrl+Q"))
        self.act_quit.triggered.connect(self.close)
        self.act_undo, self.act_redo = self.undo.make_actions(self)
        self.act_undo.setIcon(st.standardIcon(QStyle.StandardPixmap.SP_ArrowBack))
        self.act_redo.setIcon(st.standardIcon(QStyle.StandardPixmap.SP_ArrowForward))
        self.act_run = QAction("&Run", self, shortcut=QKeySequence("Ctrl+R"))
        self.act_run.setIcon(st.standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self.act_run.setToolTip("Run the model from the current W and H (Ctrl+R)")
        self.act_run.triggered.connect(lambda: self.start_run())
        self.act_cancel = QAction("&Cancel run", self, shortcut=QKeySequence(Qt.Key.Key_Escape))
        self.act_cancel.setIcon(st.standardIcon(QStyle.StandardPixmap.SP_MediaStop))
        self.act_cancel.setToolTip("Stop the run after the current iteration and keep its state (Esc)")
        self.act_cancel.triggered.connect(self.cancel_run)
        self.act_fit = QAction("&Zoom to fit", self, shortcut=QKeySequence("Ctrl+0"))
        self.act_fit.triggered.connect(self.zoom_to_fit)
        self.act_log = QAction("&Log frequency", self, shortcut=QKeySequence("Ctrl+L"), checkable=True)
        self.act_log.toggled.connect(self.set_log_frequency)
        self.db_group = QActionGroup(self)
        self.db_actions: dict[int, QAction] = {}
        for db in DB_RANGES:
            a = QAction(f"{db} dB", self, checkable=True)
            a.setChecked(db == int(self.db_range))
            a.triggered.connect(partial(self.set_db_range, float(db)))
            self.db_group.addAction(a)
            self.db_actions[db] = a

    def _build_menus_and_toolbar(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        m.addAction(self.act_open)
        m.addAction(self.act_open_score)
        m.addAction(self.act_demo)
        self.recent_menu = m.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._rebuild_recent_menu)
        m.addSeparator()
        m.addAction(self.act_screenshot)
        m.addSeparator()
        m.addAction(self.act_quit)
        m = mb.addMenu("&Edit")
        m.addAction(self.act_undo)
        m.addAction(self.act_redo)
        m = mb.addMenu("&Run")
        m.addAction(self.act_run)
        m.addAction(self.act_cancel)
        m = mb.addMenu("&View")
        m.addAction(self.act_fit)
        m.addAction(self.act_log)
        dbm = m.addMenu("&dB range")
        for a in self.db_actions.values():
            dbm.addAction(a)
        m.addSeparator()
        for d in (self.loss_dock, self.sources_dock, self.params_dock):
            m.addAction(d.toggleViewAction())

        tb = QToolBar("Main", self)
        tb.setObjectName("toolbar_main")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tb.addAction(self.act_run)
        tb.addAction(self.act_cancel)
        tb.addSeparator()
        tb.addAction(self.act_undo)
        tb.addAction(self.act_redo)
        for a in (self.act_undo, self.act_redo):  # their text names the edit: too long for a toolbar
            tb.widgetForAction(a).setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        tb.addSeparator()
        tb.addAction(self.act_fit)
        tb.addAction(self.act_log)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
        self.toolbar = tb

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.cursor_label = QLabel("")
        self.cursor_label.setMinimumWidth(520)
        self.run_label = QLabel("")
        self.progress = QProgressBar()
        self.progress.setFixedWidth(160)
        self.progress.setTextVisible(True)
        self.progress.setVisible(False)
        sb.addPermanentWidget(self.cursor_label, 1)
        sb.addPermanentWidget(self.run_label)
        sb.addPermanentWidget(self.progress)

    # ================================================================================ errors
    def show_error(self, title: str, where: str, reason: str, details: str | None = None) -> None:
        """Tell the user: a dialog naming ``where`` (usually the file) and the reason; on stderr when
        scripted. Never a traceback in the main text (it goes to "Show details…")."""
        self.errors.append(f"{where}: {reason}")
        if self.scripted:
            print(f"demixer: error: {where}: {reason}", file=sys.stderr)
            return
        box = QMessageBox(
            QMessageBox.Icon.Warning, title, f"{title}: {Path(where).name or where}", parent=self
        )
        box.setInformativeText(f"{where}\n\n{reason}")
        if details:
            box.setDetailedText(details)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.open()  # not exec(): no nested event loop, the window keeps running
        self.last_dialog = box

    # ================================================================================ files
    def open_demo(self) -> bool:
        from demixer import demo_paths

        audio, score = demo_paths()
        return self.open_audio(audio, score)

    def open_audio(self, path: str | os.PathLike[str], score: str | os.PathLike[str] | None = None) -> bool:
        """Open a recording (and its score). On a bad file: a dialog, and the current project stays."""
        path = os.fspath(path)
        score = os.fspath(score) if score else None
        if path.lower().endswith(".demix"):  # a project (recent files, command line, drops)
            return self.project_io.open_project(path)
        self.statusBar().showMessage(f"Opening {Path(path).name}…")
        try:
            audio = self.project_io.read_audio_checked(path)  # very long → asks; too short → InputError
        except InputError as exc:
            self.show_error("Cannot open the recording", exc.path, exc.reason)
            return False
        if audio is None:  # the user cancelled (very long recording)
            return False
        notes = None
        if score:
            notes = self._read_notes(score, audio)
            if notes is None:
                return False
        try:
            project = self._make_project(audio, notes, score)
        except InputError as exc:
            self.show_error("Cannot open the file", exc.path, exc.reason)
            return False
        except ValueError as exc:
            self.show_error(
                "Cannot analyse the recording", score if score and "note" in str(exc) else path, str(exc)
            )
            return False
        self.set_project(project)
        self._add_recent(path, score)
        self.statusBar().showMessage(
            f"Opened {Path(path).name}" + (f" with {Path(score).name}" if score else ""), 5000
        )
        return True

    def open_score(self, path: str | os.PathLike[str]) -> bool:
        """Re-initialise the current recording from a score."""
        path = os.fspath(path)
        if self.project is None:
            self.show_error("Cannot open the score", path, "open a recording first")
            return False
        notes = self._read_notes(path, self.project.audio)
        if notes is None:
            return False
        p = self.project
        from dataclasses import replace  # the Parameters dock's tolerances; groups decided by the new score

        score = replace(self.params_pane.score_params(), split_pitch=None)
        try:
            project = self._make_project(p.audio, notes, path, stft=p.stft, score=score, run=p.run)
        except ValueError as exc:
            self.show_error("Cannot use the score", path, str(exc))
            return False
        self.set_project(project)
        if p.audio.path:
            self._add_recent(p.audio.path, path)
        return True

    def _read_notes(self, score: str, audio) -> list | None:
        from demixer.io.score import clip_notes, read_score

        try:
            notes = read_score(score)
        except InputError as exc:
            self.show_error("Cannot open the score", exc.path, exc.reason)
            return None
        notes, n_clipped, n_dropped = clip_notes(notes, audio.duration)
        if not notes:
            self.show_error(
                "Cannot use the score", score, f"no notes fall within the recording's {audio.duration:.2f} s"
            )
            return None
        if n_clipped or n_dropped:
            self.statusBar().showMessage(
                f"{Path(score).name}: runs past the end of the recording: {n_dropped} notes dropped, "
                f"{n_clipped} shortened",
                8000,
            )
        return notes

    def _make_project(
        self, audio, notes, score_path, stft=None, score=None, run: RunParams | None = None
    ) -> Project:
        import dataclasses

        from demixer.engine.separation import SeparationSettings

        base = SeparationSettings()
        run = run or RunParams(model=base.model, n_iter=base.n_iter, seed=base.seed)
        settings = base.with_(
            stft=stft or base.stft,
            score=score or base.score,
            model=run.model,
            n_iter=run.n_iter,
            seed=run.seed,
            alpha=run.alpha,
            compress=run.compress,
            normalize=run.normalize,
        )
        if notes and settings.score.split_pitch is None and all(not n.group for n in notes):
            # like `demixer separate`: a score without groups is split at middle C
            settings = settings.with_(score=dataclasses.replace(settings.score, split_pitch=60))
        return Project.from_audio(audio, notes, settings, score_path=score_path)

    def reanalyse(self, stft, score) -> bool:
        """New analysis + initialisation of the current recording and score with these settings."""
        p = self.project
        if p is None:
            return False
        try:
            project = self._make_project(
                p.audio, p.notes or None, p.score_path, stft=stft, score=score, run=p.run
            )
        except ValueError as exc:
            self.show_error("Cannot re-analyse", p.audio.path or p.title, str(exc))
            return False
        self.set_project(project)
        return True

    def _ask_open_audio(self) -> None:
        if not self.project_io.maybe_save_changes():
            return
        from demixer.io.audio import SUPPORTED_AUDIO_SUFFIXES

        pattern = " ".join(f"*{s}" for s in SUPPORTED_AUDIO_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(self, "Open audio", "", f"Audio ({pattern});;All files (*)")
        if path:
            self.open_audio(path)

    def _ask_open_score(self) -> None:
        if not self.project_io.maybe_save_changes():
            return
        path, _ = QFileDialog.getOpenFileName(
            self, "Open score", "", "Scores (*.mid *.midi *.csv *.musicxml *.xml *.mxl);;All files (*)"
        )
        if path:
            self.open_score(path)

    def _ask_screenshot(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save window image", "demixer.png", "PNG (*.png)")
        if path and not self.grab().save(path):
            self.show_error("Cannot save the image", path, "the image could not be written")

    # recent files (QSettings): JSON list of [audio, score or null]
    def recent_files(self) -> list[tuple[str, str | None]]:
        raw = QSettings().value("recent_files", "[]")
        try:
            items = json.loads(raw) if isinstance(raw, str) else []
        except ValueError:
            items = []
        out = []
        for it in items:
            if isinstance(it, list) and len(it) == 2 and isinstance(it[0], str):
                out.append((it[0], it[1] if isinstance(it[1], str) else None))
        return out

    def _add_recent(self, audio: str, score: str | None) -> None:
        from demixer import demo_paths

        if Path(audio).resolve() == Path(demo_paths()[0]).resolve():
            return
        entry = (os.path.abspath(audio), os.path.abspath(score) if score else None)
        items = [entry] + [e for e in self.recent_files() if e != entry]
        QSettings().setValue("recent_files", json.dumps([list(e) for e in items[:MAX_RECENT]]))

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        items = self.recent_files()
        if not items:
            a = self.recent_menu.addAction("(none)")
            a.setEnabled(False)
            return
        for audio, score in items:
            text = Path(audio).name + (f"  +  {Path(score).name}" if score else "")
            a = self.recent_menu.addAction(text)
            a.setToolTip(audio)
            a.triggered.connect(partial(self.open_audio, audio, score))
        self.recent_menu.addSeparator()
        self.recent_menu.addAction("Clear list", lambda: QSettings().setValue("recent_files", "[]"))

    # ================================================================================ project
    def set_project(self, project: Project) -> None:
        self._abandon_run()
        old = self.project
        if old is not None:
            for sig, slot in self._project_connections(old):
                sig.disconnect(slot)
        self.project = project
        self.undo.set_project(project)
        for sig, slot in self._project_connections(project):
            sig.connect(slot)
        self._V_db = to_db(project.V)
        self._V_top = db_top(self._V_db)
        self._log_map = LogFreqMap(project.n_bins, project.sr)
        if self.log_freq:
            self.v_pane.freq_axis.set_log(self._log_map)
            self.w_pane.freq_axis.set_log(self._log_map)
        for pane in (self.v_pane, self.h_pane, self.w_pane):
            pane.manual_levels = False
        self.v_mode = MODE_V
        self.loss_pane.reset()
        self.loss_pane.sync(project.runs)
        self._on_components_changed()
        self.params_pane.set_values(project.stft, project.score, project.run)
        self._refresh_factors_from_project()
        self._show_V()
        self._apply_limits()
        self.zoom_to_fit()
        self._update_summary()
        self.setWindowTitle(f"Demixer — {project.title}")
        self._update_actions()
        self.project_changed.emit()

    def _project_connections(self, p: Project):
        return [
            (p.factors_changed, self._on_factors_changed),
            (p.runs_changed, self._on_runs_changed),
            (p.components_changed, self._on_components_changed),
            (p.sources_changed, self._on_components_changed),
            (p.params_changed, self._on_project_params_changed),
        ]

    def _update_summary(self) -> None:
        p = self.project
        if p is None:
            self.corner.summary.setText("no recording")
            return
        score = f" · score {Path(p.score_path).name}" if p.score_path else " · no score"
        self.corner.summary.setText(
            f"<b>{p.title}</b>{score}<br>{p.duration:.1f} s · {p.sr} Hz · V {p.n_bins}×{p.n_frames} · "
            f"R = {p.n_components}"
        )

    def _on_components_changed(self) -> None:
        p = self.project
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
        if self.v_mode not in modes:
            self.v_mode = MODE_V
        self.corner.set_modes(modes, self.v_mode)

    def _on_runs_changed(self) -> None:
        if self.project is not None:
            self.loss_pane.sync(self.project.runs)

    def _on_project_params_changed(self) -> None:
        p = self.project
        if p is not None:
            self.params_pane.set_values(p.stft, p.score, p.run)

    def _on_run_params_changed(self, run: RunParams) -> None:
        if self.project is not None:
            self.project.set_run_params(run)

    def _on_factors_changed(self, region: Region | None) -> None:
        p = self.project
        if p is None:
            return
        if region is not None and region.target in ("W", "H") and self._W_db is not None:
            rs, cs = region.slices()
            if region.target == "W":
                self._W_db[rs, cs] = to_db(p.W[rs, cs])
            else:
                self._H_db[rs, cs] = to_db(p.H[rs, cs])
            self._show_factors(self._W_db, self._H_db, db_top(self._W_db), db_top(self._H_db), p.W, p.H)
        elif region is None:
            self._refresh_factors_from_project()
        if self.v_mode != MODE_V:
            self._show_V()

    # ================================================================================ painting
    def _y_extent(self) -> tuple[float, float]:
        p = self.project
        if self.log_freq and self._log_map is not None:
            return self._log_map.y0, self._log_map.y1
        return 0.0, p.sr / 2.0

    def _rows(self, a: np.ndarray) -> np.ndarray:
        return self._log_map.apply(a) if self.log_freq and self._log_map is not None else a

    def _refresh_factors_from_project(self) -> None:
        p = self.project
        self._W_db = to_db(p.W)
        self._H_db = to_db(p.H)
        self._show_factors(self._W_db, self._H_db, db_top(self._W_db), db_top(self._H_db), p.W, p.H)

    def _show_factors(self, W_db, H_db, W_top, H_top, W, H) -> None:
        p = self.project
        y0, y1 = self._y_extent()
        R = p.n_components
        self.w_pane.set_image(self._rows(W_db), QRectF(0.0, y0, float(R), y1 - y0), W_top)
        self.h_pane.set_image(H_db, QRectF(0.0, 0.0, p.duration, float(R)), H_top)
        self._shown_W, self._shown_H = W, H

    def _v_data(self, W=None, H=None) -> np.ndarray:
        p = self.project
        if self.v_mode == MODE_V:
            return self._V_db
        W = p.W if W is None else W
        H = p.H if H is None else H
        if self.v_mode == MODE_WH:
            return to_db(W @ H)
        from demixer.engine.separation import masks_for

        name = self.v_mode[len(SOURCE_PREFIX) :]
        names, masks = masks_for(W, H, p.component_infos(), [s.name for s in p.sources], p.run.alpha)
        if name not in names:  # e.g. "residual" when a named source has that name
            name = RESIDUAL if RESIDUAL in names else names[-1]
        return to_db(masks[names.index(name)] * p.V)

    def _show_V(self, W=None, H=None) -> None:
        p = self.project
        if p is None:
            return
        y0, y1 = self._y_extent()
        self.v_pane.set_image(
            self._rows(self._v_data(W, H)), QRectF(0.0, y0, p.duration, y1 - y0), self._V_top
        )
        self.v_pane.set_badge(self.v_mode)

    def _apply_limits(self) -> None:
        p = self.project
        y0, y1 = self._y_extent()
        R = float(p.n_components)
        dur = p.duration
        self.v_pane.vb.setLimits(
            xMin=0.0, xMax=dur, yMin=y0, yMax=y1, minXRange=dur / 2000.0, minYRange=(y1 - y0) / 2000.0
        )
        self.h_pane.vb.setLimits(xMin=0.0, xMax=dur, yMin=0.0, yMax=R, minXRange=dur / 2000.0, minYRange=1.0)
        self.w_pane.vb.setLimits(
            xMin=0.0, xMax=R, yMin=y0, yMax=y1, minXRange=1.0, minYRange=(y1 - y0) / 2000.0
        )

    def _paint_pending(self) -> None:
        ds = self._pending
        if ds is None or self.project is None:
            return
        self._pending = None
        self._show_factors(ds.W_db, ds.H_db, ds.W_top, ds.H_top, ds.snap.W, ds.snap.H)
        self.stats["pane_updates"] += 1
        self.pane_update_times.append(time.perf_counter())
        if self.v_mode != MODE_V:
            now = time.perf_counter()
            if ds.snap.done or now - self._last_v_live >= V_LIVE_INTERVAL_S:
                self._last_v_live = now
                self._show_V(ds.snap.W, ds.snap.H)

    # ================================================================================ view
    def zoom_to_fit(self) -> None:
        p = self.project
        if p is None:
            return
        y0, y1 = self._y_extent()
        self.v_pane.setRange(xRange=(0.0, p.duration), yRange=(y0, y1), padding=0.0)
        self.h_pane.setYRange(0.0, float(p.n_components), padding=0.0)
        self.w_pane.setXRange(0.0, float(p.n_components), padding=0.0)

    def set_log_frequency(self, on: bool) -> None:
        on = bool(on)
        if self.act_log.isChecked() != on:
            self.act_log.setChecked(on)  # re-enters through toggled
            return
        if on == self.log_freq:
            return
        p = self.project
        old = self.v_pane.vb.viewRange()[1] if p is not None else None
        self.log_freq = on
        self.v_pane.freq_axis.set_log(self._log_map if on else None)
        self.w_pane.freq_axis.set_log(self._log_map if on else None)
        if p is None:
            return
        self._apply_limits()
        self._show_V()
        self._show_factors(
            self._W_db if self._pending is None else self._pending.W_db,
            self._H_db,
            db_top(self._W_db),
            db_top(self._H_db),
            p.W,
            p.H,
        )
        m = self._log_map
        y0, y1 = self._y_extent()
        if on:
            lo, hi = (math.log2(max(f, m.f_lo)) for f in old)
        else:
            lo, hi = (2.0**v for v in old)
        lo, hi = max(lo, y0), min(hi, y1)
        if hi - lo < (y1 - y0) * 1e-3:
            lo, hi = y0, y1
        self.v_pane.setYRange(lo, hi, padding=0.0)

    def set_db_range(self, db: float) -> None:
        self.db_range = float(db)
        a = self.db_actions.get(int(db))
        if a is not None and not a.isChecked():
            a.setChecked(True)
        self.v_pane.set_db_range(db, self._V_top)
        if self._W_db is not None:
            self.w_pane.set_db_range(db, db_top(self._W_db))
            self.h_pane.set_db_range(db, db_top(self._H_db))

    def set_v_mode(self, mode: str) -> None:
        if self.project is None or mode == self.v_mode:
            return
        self.v_mode = mode
        if self.corner.mode.currentText() != mode:
            self.corner.set_modes(
                [self.corner.mode.itemText(i) for i in range(self.corner.mode.count())], mode
            )
        W = H = None
        if self._running():
            W, H = self._shown_W, self._shown_H
        self._show_V(W, H)

    # cursor read-out
    def _on_mouse_moved(self, pane, scene_pos) -> None:
        p = self.project
        if p is None or not pane.vb.sceneBoundingRect().contains(scene_pos):
            return
        pt = pane.vb.mapSceneToView(scene_pos)
        x, y = float(pt.x()), float(pt.y())
        hit = pane.value_at(x, y)
        self.cursor_label.setText(self.readout(pane, x, y, hit))

    def readout(self, pane, x: float, y: float, hit=None) -> str:
        """Status-bar text for view point (x, y) of ``pane``: time, frequency, value, component."""
        p = self.project
        if hit is None:
            hit = pane.value_at(x, y)
        parts = []
        freq = (2.0**y if self.log_freq else y) if pane is not self.h_pane else None
        comp = None
        if pane is not self.w_pane:
            parts.append(f"t {x:7.3f} s")
        if freq is not None:
            parts.append(f"f {format_hz(freq) if freq >= 1000 else f'{freq:.1f}'} Hz")
        if pane is self.h_pane:
            r = int(math.floor(y))
            comp = r if 0 <= r < p.n_components else None
        elif pane is self.w_pane:
            r = int(math.floor(x))
            comp = r if 0 <= r < p.n_components else None
        elif self._shown_W is not None:
            k = int(round(freq / (p.sr / 2.0) * (p.n_bins - 1)))
            n = int(x / p.duration * p.n_frames) if p.duration > 0 else 0
            if 0 <= k < p.n_bins and 0 <= n < p.n_frames:
                contrib = self._shown_W[k, :] * self._shown_H[:, n]
                if contrib.size and float(contrib.max()) > 0:
                    comp = int(np.argmax(contrib))
        if hit is not None:
            name = {self.v_pane: self.v_mode, self.h_pane: "H", self.w_pane: "W"}[pane]
            parts.append(f"{name} {db_or_floor(hit[2])}")
        if comp is not None:
            c = p.components[comp]
            parts.append(f"component {c.name}" + (f" [{c.source}]" if c.source else " [residual]"))
        return "   ".join(parts)

    # ================================================================================ runs
    def _running(self) -> bool:
        """A run is going and its result has not been applied yet."""
        c = self.run_ctrl
        return c is not None and c.is_running() and not c.applied

    def start_run(self, model: str | None = None, n_iter: int | None = None) -> RunController | None:
        """Start a run of the project's model (or ``model``) for its iterations (or ``n_iter``) from the
        current W, H. A run already going is cancelled and its result dropped."""
        p = self.project
        if p is None:
            return None
        self._abandon_run()
        inputs = p.run_inputs()
        if model is not None:
            inputs["model"] = model
            if model not in ("nae", "nae-pgd"):
                inputs["W_E0"] = None
        if n_iter is not None:
            inputs["n_iter"] = int(n_iter)
        label = p.next_run_label(MODELS.get(inputs["model"], inputs["model"]))
        try:
            spec = JobSpec(**inputs, label=label)
            ctrl = RunController(spec, self)
        except Exception as exc:  # bad settings: say so, change nothing
            self.show_error("Cannot start the run", p.title, f"{type(exc).__name__}: {exc}")
            return None
        ctrl.snapshot.connect(self._on_run_snapshot)
        ctrl.failed.connect(self._on_run_failed)
        ctrl.finished.connect(self._on_run_thread_finished)
        self.run_ctrl = ctrl
        self._pending = None
        self._last_v_live = 0.0
        self.loss_pane.begin_live(label, spec.n_iter)
        self.progress.setRange(0, max(1, spec.n_iter))
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.run_label.setText(f"{label}: starting…")
        ctrl.start()
        self._repaint_timer.start()
        self._update_actions()
        self.run_started.emit(ctrl)
        return ctrl

    def cancel_run(self) -> None:
        """Stop the run after the current iteration; its last state is applied as one undo step."""
        if self._running():
            self.run_ctrl.cancel()
            self.run_label.setText(f"{self.run_ctrl.spec.label}: cancelling…")

    def _abandon_run(self) -> None:
        """Cancel the current run without applying its result (a new run or a new project replaces it)."""
        ctrl = self.run_ctrl
        if ctrl is None:
            return
        self.run_ctrl = None
        ctrl.cancel()
        if ctrl.is_running():
            self._retired.append(ctrl)
        self._repaint_timer.stop()
        self._pending = None
        self.loss_pane.discard_live()
        self.progress.setVisible(False)
        self.run_label.setText("")
        if self.project is not None and self._W_db is not None:
            p = self.project
            self._show_factors(self._W_db, self._H_db, db_top(self._W_db), db_top(self._H_db), p.W, p.H)
        self._update_actions()

    def _on_run_snapshot(self, ctrl: RunController, ds: DisplaySnapshot) -> None:
        if ctrl is not self.run_ctrl:
            return  # an abandoned run still draining
        self.stats["snapshots"] += 1
        self.loss_pane.extend_live(ds.snap.losses)
        self._pending = ds
        snap = ds.snap
        self.progress.setValue(snap.iteration)
        rate = snap.rate
        eta = (snap.n_iter - snap.iteration) / rate if rate > 0 else float("nan")
        loss = self.loss_pane.live_losses[-1] if self.loss_pane.live_losses else float("nan")
        eta_text = f" · ETA {eta:.1f} s" if math.isfinite(eta) and not snap.done else ""
        self.run_label.setText(
            f"{ctrl.spec.label}: iteration {snap.iteration}/{snap.n_iter} · {rate:.1f} it/s{eta_text}"
            f" · loss {loss:.4g}"
        )
        if snap.done:
            self._finish_run(ctrl, ds)

    def _finish_run(self, ctrl: RunController, ds: DisplaySnapshot) -> None:
        ctrl.applied = True
        self._repaint_timer.stop()
        self._paint_pending()
        snap = ds.snap
        record = RunRecord(
            label=ctrl.spec.label,
            model=ctrl.spec.model,
            losses=list(ctrl.losses),
            n_iter=snap.iteration,
            stopped=snap.stopped or "finished",
            elapsed=snap.elapsed,
        )
        self.loss_pane.end_live(record.id)
        self.undo.push(ApplyRunResult(snap.W, snap.H, snap.W_E, record, text=f"run {record.label}"))
        self.progress.setVisible(False)
        how = {"cancelled": "cancelled after", "converged": "converged after"}.get(snap.stopped, "finished:")
        self.run_label.setText(
            f"{record.label} {how} {snap.iteration} iterations in {snap.elapsed:.1f} s ({snap.rate:.1f} it/s)"
        )
        self._update_actions()
        self.run_finished.emit(record)

    def _on_run_failed(self, ctrl: RunController, message: str, details: str) -> None:
        if ctrl is not self.run_ctrl:
            return
        self._repaint_timer.stop()
        self._pending = None
        self.loss_pane.discard_live()
        self.progress.setVisible(False)
        self.run_label.setText(f"{ctrl.spec.label} failed")
        p = self.project
        if p is not None:  # the project was never touched: show it again
            self._refresh_factors_from_project()
            if self.v_mode != MODE_V:
                self._show_V()
        self.show_error("The run failed", p.title if p else "run", message, details)
        self.run_failed.emit(message)

    def _on_run_thread_finished(self, ctrl: RunController) -> None:
        if ctrl is self.run_ctrl:
            self.run_ctrl = None
            self._repaint_timer.stop()
        if ctrl in self._retired:
            self._retired.remove(ctrl)
        ctrl.setParent(None)
        ctrl.deleteLater()
        self._update_actions()

    def _update_actions(self) -> None:
        has = self.project is not None
        running = self._running()
        self.act_run.setEnabled(has)
        self.act_cancel.setEnabled(running)
        self.act_open_score.setEnabled(has)
        self.act_fit.setEnabled(has)
        self.params_pane.reanalyse.setEnabled(has)

    # ================================================================================ closing
    def stop_runs(self) -> None:
        """Cancel every run and wait for its thread (each stops within one iteration)."""
        self._repaint_timer.stop()
        ctrls = [c for c in [self.run_ctrl, *self._retired] if c is not None]
        self.run_ctrl = None
        for c in ctrls:
            c.stop()
        self._retired = [c for c in self._retired if c.is_running()]

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.stop_runs()
        super().closeEvent(event)
