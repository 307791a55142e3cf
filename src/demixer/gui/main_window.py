"""The workbench window (DESIGN.md §3, §4): it lays out the panes (like V ≈ W·H), the docks (loss plot,
sources, parameters), the menus, toolbar and status bar, and installs the controllers. It holds no state
of its own: the project, the undo stack, the run state, the view state, the settings and the actions
live in the :class:`~demixer.gui.workbench.Workbench` (``self.bench``); painting is the display's
(gui/factors_view.py), runs the run manager's (gui/runs.py), opening files the file controller's
(gui/files.py). The properties at the end are the window's public API for scripts and tests.
"""

from __future__ import annotations

from functools import partial

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFrame,
    QLabel,
    QMainWindow,
    QProgressBar,
    QScrollArea,
    QSplitter,
    QStyle,
    QToolBar,
    QWidget,
)

from demixer.gui.factors_view import PANE_INTERVAL_MS, FactorView
from demixer.gui.files import FileController
from demixer.gui.panes import (
    PLOT_BG,
    ActivationPane,
    CornerPane,
    LossPane,
    SourcesPane,
    SpectrogramPane,
    TemplatePane,
)
from demixer.gui.params import ParametersPane
from demixer.gui.runs import RunManager
from demixer.gui.workbench import Workbench

__all__ = ["MainWindow", "PANE_INTERVAL_MS"]

DB_RANGES = (40, 60, 80, 100, 120)
CURSOR_READOUT_PX = 400  # the cursor read-out's width in the status bar
RUN_LABEL_MAX_PX = 260


def _keys(*keys) -> list[QKeySequence]:
    """Key sequences without repeats (a sequence given twice to one action is ambiguous: it never fires)."""
    out: list[QKeySequence] = []
    for k in keys:
        for seq in QKeySequence.keyBindings(k) if isinstance(k, QKeySequence.StandardKey) else [QKeySequence(k)]:
            if not seq.isEmpty() and seq not in out:
                out.append(seq)
    return out


class MainWindow(QMainWindow):
    """The workbench. ``scripted=True`` (``--screenshot``) reports errors on stderr, not in dialogs."""

    def __init__(self, *, scripted: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bench = Workbench(self, scripted=scripted)
        self.setWindowTitle("Demixer")
        self.resize(1400, 900)
        self._build_central()
        self._build_docks()
        self._build_actions()
        self._build_menus_and_toolbar()
        self._build_status_bar()
        b = self.bench
        b.display = self.display = FactorView(
            b, v_pane=self.v_pane, h_pane=self.h_pane, w_pane=self.w_pane, corner=self.corner,
            loss_pane=self.loss_pane, sources_pane=self.sources_pane, params_pane=self.params_pane,
            cursor_label=self.cursor_label,
        )
        b.runs = self.runs = RunManager(b, loss_pane=self.loss_pane, progress=self.progress, run_label=self.run_label)
        self.files = FileController(b, params_pane=self.params_pane, recent_menu=self.recent_menu)
        b.actions_changed.connect(self._update_actions)
        b.project_changed.connect(self.display.update_summary)
        b.loading_changed.connect(self.display.show_loading)
        from demixer.gui.transport import install_audition  # transport, Listen dock, File → Export

        self.audition = install_audition(self)
        from demixer.gui.editing import install_editing  # tools, overlays, Components & History docks

        self.editing = install_editing(self)
        self._update_actions()
        # .demix projects, autosave/recovery, drag-and-drop, layout (gui/project_io.py). Installed last: its
        # Close filter must see a close first, to ask about unsaved changes before anything shuts down.
        from demixer.gui.project_io import install_project_io

        self.project_io = self.files.project_io = install_project_io(self)
        from demixer.gui.drafting import install_drafting  # File → Draft a score from the recording…

        self.drafting = install_drafting(self)
        from demixer.gui.help import install_help  # Help → shortcuts, About (version, licences)

        self.help = install_help(self)

    # ================================================================================ construction
    def _build_central(self) -> None:
        self.v_pane = SpectrogramPane()
        self.h_pane = ActivationPane()
        self.w_pane = TemplatePane()
        self.corner = CornerPane(self.w_pane.bar)
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

    def show_fitting_the_screen(self) -> None:
        """Show at 1400×900, or maximised when the screen's available area is smaller (a 1366×768
        laptop): the window must never start larger than the screen (issue 18, item 8)."""
        screen = self.screen()
        avail = screen.availableGeometry() if screen is not None else None
        if avail is not None and (avail.width() < self.width() + 40 or avail.height() < self.height() + 60):
            self.showMaximized()
        else:
            self.show()

    @staticmethod
    def _sync_splitters(src: QSplitter, dst: QSplitter, *_):
        if dst.sizes() != src.sizes():
            dst.blockSignals(True)
            dst.setSizes(src.sizes())
            dst.blockSignals(False)

    def _build_docks(self) -> None:
        self.loss_pane = LossPane()
        self.sources_pane = SourcesPane()
        self.params_pane = ParametersPane(tasks=self.bench.tasks)
        self.params_pane.reanalyse_requested.connect(lambda stft, score: self.files.reanalyse(stft, score))
        self.loss_dock = self.make_dock("Loss", self.loss_pane, "loss")
        self.sources_dock = self.make_dock("Sources", self.sources_pane, "sources")
        self.params_dock = self.make_dock("Parameters", self.params_pane, "parameters")
        for d in (self.loss_dock, self.sources_dock, self.params_dock):
            self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, d)
        self.resizeDocks([self.loss_dock], [360], Qt.Orientation.Horizontal)
        self.resizeDocks(
            [self.loss_dock, self.sources_dock, self.params_dock], [210, 230, 330], Qt.Orientation.Vertical
        )

    def make_dock(self, title: str, widget: QWidget, name: str) -> QDockWidget:
        """A movable, floatable, closable dock named ``dock_<name>`` (window state is saved by name). Its
        content sits in a scroll area, so no dock sets the window's minimum height: the window fits a
        1366×768 laptop with every dock open and stays usable at 1024×700 (issue 18, item 8)."""
        d = QDockWidget(title, self)
        d.setObjectName(f"dock_{name}")
        scroll = QScrollArea(d)
        scroll.setObjectName(f"scroll_{name}")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(widget)
        d.setWidget(scroll)
        d.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        return d

    def _build_actions(self) -> None:
        st = self.style()
        self.act_open = QAction("&Open audio…", self, shortcut=QKeySequence.StandardKey.Open)
        self.act_open.triggered.connect(lambda: self.files.ask_open_audio())
        self.act_open_score = QAction("Open &score…", self, shortcut=QKeySequence("Ctrl+Shift+O"))
        self.act_open_score.triggered.connect(lambda: self.files.ask_open_score())
        self.act_demo = QAction("Open &demo", self)
        self.act_demo.triggered.connect(lambda: self.files.open_demo())
        self.act_screenshot = QAction("Save &window image…", self)
        self.act_screenshot.triggered.connect(lambda: self.files.ask_screenshot())
        self.act_quit = QAction("&Quit", self, shortcut=QKeySequence("Ctrl+Q"))
        self.act_quit.triggered.connect(self.close)
        self.act_undo, self.act_redo = self.bench.undo.make_actions(self)
        self.act_undo.setIcon(st.standardIcon(QStyle.StandardPixmap.SP_ArrowBack))
        self.act_redo.setIcon(st.standardIcon(QStyle.StandardPixmap.SP_ArrowForward))
        self.act_run = QAction("&Run", self, shortcut=QKeySequence("Ctrl+R"))
        self.act_run.setIcon(st.standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self.act_run.setToolTip("Run the model (Ctrl+R): with a score, the staged fit of demixer separate, "
                                "with what you painted and edited")
        self.act_run.triggered.connect(lambda: self.runs.start_run())
        self.act_refine = QAction("Re&fine from the current state", self, shortcut=QKeySequence("Ctrl+Shift+R"))
        self.act_refine.setToolTip("More iterations of the model from the current W and H, one joint fit "
                                   "(Ctrl+Shift+R); lowers the loss, not always the separation's error")
        self.act_refine.triggered.connect(lambda: self.runs.start_run(mode="warm"))
        self.act_cancel = QAction("&Cancel run", self, shortcut=QKeySequence(Qt.Key.Key_Escape))
        self.act_cancel.setIcon(st.standardIcon(QStyle.StandardPixmap.SP_MediaStop))
        self.act_cancel.setToolTip("Stop the run after the current iteration and keep its state (Esc)")
        self.act_cancel.triggered.connect(lambda: self.runs.cancel_run())
        self.act_fit = QAction("&Zoom to fit", self, shortcut=QKeySequence("Ctrl+0"))
        self.act_fit.triggered.connect(lambda: self.display.zoom_to_fit())
        self.act_zoom_in = QAction("Zoom &in", self)
        self.act_zoom_in.setShortcuts(_keys("Ctrl+=", "Ctrl++", QKeySequence.StandardKey.ZoomIn))
        self.act_zoom_in.triggered.connect(lambda: self.display.zoom_time(0.5))
        self.act_zoom_out = QAction("Zoom &out", self)
        self.act_zoom_out.setShortcuts(_keys("Ctrl+-", QKeySequence.StandardKey.ZoomOut))
        self.act_zoom_out.triggered.connect(lambda: self.display.zoom_time(2.0))
        self.act_log = QAction("&Log frequency", self, shortcut=QKeySequence("Ctrl+L"), checkable=True)
        self.act_log.toggled.connect(lambda on: self.display.set_log_frequency(on))
        self.db_group = QActionGroup(self)
        self.db_actions: dict[int, QAction] = {}
        for db in DB_RANGES:
            a = QAction(f"{db} dB", self, checkable=True)
            a.setChecked(db == int(self.bench.view.db_range))
            a.triggered.connect(lambda _=False, db=db: self.display.set_db_range(float(db)))
            self.db_group.addAction(a)
            self.db_actions[db] = a
        reg = self.bench.actions
        for name, a in (
            ("file.open", self.act_open), ("file.open_score", self.act_open_score), ("file.demo", self.act_demo),
            ("file.screenshot", self.act_screenshot), ("file.quit", self.act_quit), ("edit.undo", self.act_undo),
            ("edit.redo", self.act_redo), ("run.start", self.act_run), ("run.refine", self.act_refine),
            ("run.cancel", self.act_cancel),
            ("view.fit", self.act_fit), ("view.zoom_in", self.act_zoom_in), ("view.zoom_out", self.act_zoom_out),
            ("view.log", self.act_log),
        ):
            reg.add(name, a)
        for db, a in self.db_actions.items():
            reg.add(f"view.db.{db}", a)

    def _build_menus_and_toolbar(self) -> None:
        mb = self.menuBar()
        m = self.bench.actions.add_menu("file", mb.addMenu("&File"))
        m.addAction(self.act_open)
        m.addAction(self.act_open_score)
        m.addAction(self.act_demo)
        self.recent_menu = m.addMenu("Open &recent")
        m.addSeparator()
        m.addAction(self.act_screenshot)
        m.addSeparator()
        m.addAction(self.act_quit)
        m = self.bench.actions.add_menu("edit", mb.addMenu("&Edit"))
        m.addAction(self.act_undo)
        m.addAction(self.act_redo)
        m = self.bench.actions.add_menu("run", mb.addMenu("&Run"))
        m.addAction(self.act_run)
        m.addAction(self.act_refine)
        m.addAction(self.act_cancel)
        m = self.bench.actions.add_menu("view", mb.addMenu("&View"))
        m.addAction(self.act_fit)
        m.addAction(self.act_zoom_in)
        m.addAction(self.act_zoom_out)
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
        # The cursor read-out and the run line are permanent widgets of a bounded width: the rest of the
        # bar is the message area, where temporary messages ("cannot delete every component", export
        # results, tool hints) must stay visible (issue 18, item 9).
        self.cursor_label = QLabel("")
        self.cursor_label.setObjectName("cursor_readout")
        self.cursor_label.setFixedWidth(CURSOR_READOUT_PX)
        self.run_label = QLabel("")
        self.run_label.setObjectName("run_status")
        self.run_label.setMaximumWidth(RUN_LABEL_MAX_PX)
        self.progress = QProgressBar()
        self.progress.setFixedWidth(160)
        self.progress.setTextVisible(True)
        self.progress.setVisible(False)
        sb.addPermanentWidget(self.cursor_label)
        sb.addPermanentWidget(self.run_label)
        sb.addPermanentWidget(self.progress)

    def _update_actions(self) -> None:
        has = self.bench.project is not None
        running = self.bench.running()
        self.act_run.setEnabled(has)
        self.act_refine.setEnabled(has)
        self.act_cancel.setEnabled(running or self.runs.waiting is not None)
        self.act_open_score.setEnabled(has)
        self.act_fit.setEnabled(has)
        self.act_zoom_in.setEnabled(has)
        self.act_zoom_out.setEnabled(has)
        self.params_pane.reanalyse.setEnabled(has)

    # ================================================================================ closing
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.runs.stop_runs()
        self.editing.shutdown()  # before Qt tears the docks down (issue 18, item 2)
        super().closeEvent(event)

    # ================================================================================ public API
    # (what scripts, the command line and tests call; each forwards to the part that owns it)
    project = property(lambda self: self.bench.project)
    undo = property(lambda self: self.bench.undo)
    scripted = property(lambda self: self.bench.scripted)
    errors = property(lambda self: self.bench.errors)
    last_dialog = property(
        lambda self: self.bench.last_dialog, lambda self, box: setattr(self.bench, "last_dialog", box)
    )
    project_changed = property(lambda self: self.bench.project_changed)
    run_started = property(lambda self: self.bench.run_started)
    run_finished = property(lambda self: self.bench.run_finished)
    run_failed = property(lambda self: self.bench.run_failed)
    run_ctrl = property(lambda self: self.runs.run_ctrl)
    log_freq = property(lambda self: self.bench.view.log_frequency)
    db_range = property(lambda self: self.bench.view.db_range)
    v_mode = property(lambda self: self.bench.view.v_mode)
    stats = property(lambda self: self.display.stats)
    pane_update_times = property(lambda self: self.display.pane_update_times)

    def set_project(self, project) -> None:
        self.bench.set_project(project)

    def show_error(self, title: str, where: str, reason: str, details: str | None = None) -> None:
        self.bench.show_error(title, where, reason, details)

    def open_audio(self, path, score=None) -> bool:
        return self.files.open_audio(path, score)

    def open_score(self, path) -> bool:
        return self.files.open_score(path)

    def open_demo(self) -> bool:
        return self.files.open_demo()

    def reanalyse(self, stft, score) -> bool:
        return self.files.reanalyse(stft, score)

    def recent_files(self) -> list[tuple[str, str | None]]:
        return self.files.recent_files()

    def start_run(self, model: str | None = None, n_iter: int | None = None, mode: str | None = None):
        return self.runs.start_run(model, n_iter, mode)

    def cancel_run(self) -> None:
        self.runs.cancel_run()

    def stop_runs(self) -> None:
        self.runs.stop_runs()

    def zoom_to_fit(self) -> None:
        self.display.zoom_to_fit()

    def set_log_frequency(self, on: bool) -> None:
        self.display.set_log_frequency(on)

    def set_db_range(self, db: float) -> None:
        self.display.set_db_range(db)

    def set_v_mode(self, mode: str) -> None:
        self.display.set_v_mode(mode)

    def readout(self, pane, x: float, y: float, hit=None) -> str:
        return self.display.readout(pane, x, y, hit)
