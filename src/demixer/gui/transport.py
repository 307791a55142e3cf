"""Audition in the window: the transport bar, the playhead, seeking and looping, and the controller that
feeds the player (DESIGN.md §3 audio/, §4 Audition).

:func:`install_audition` adds to a :class:`~demixer.gui.main_window.MainWindow`

* a "Transport" tool bar: play/pause (Space, a window-wide shortcut), stop, loop, a position slider and
  the time; when playback is impossible it is disabled and says why (tool tips, a label, the status bar);
* the "Listen" dock (:class:`~demixer.gui.mixer.ListenPanel`): mixture or sources, per-source mute, solo
  and gain;
* a playhead (``pg.InfiniteLine``) on V (whatever V shows: V, W·H or a source) and on H, moved by a
  30 Hz GUI timer that polls ``player.position`` (the audio thread never signals anything);
* seeking by a left click on the time axis of V or of H, or with the slider; Shift+drag on a time axis
  selects a loop range; the Loop button shows the range as a ``LinearRegionItem`` on V and H;
* File → Export (:mod:`demixer.gui.export`).

Threading: the stems (masks from the current W·H, one inverse STFT per source) are computed on the
workbench's task bridge, lane ``"stems"`` (gui/tasks.py; one job at a time; a newer request waits and
replaces any older waiting one; a new project makes a running job stale; results are cached by a
fingerprint of W, H and the source assignment). Requests come from the project's change signals
(debounced) and, during a run, from its snapshots at most every :data:`LIVE_INTERVAL_S`. The mix
(mute/solo/gain) is built in the GUI thread — a few multiply-adds per sample — and handed to
``Player.set_buffer``, which swaps it in by reference at the next audio block with a short crossfade.
"""

from __future__ import annotations

import math
import sys
import time
from functools import partial
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCursor, QKeySequence
from PySide6.QtWidgets import QApplication, QLabel, QSizePolicy, QSlider, QStyle, QToolBar, QWidget

from demixer.audio.player import PlaybackUnavailable, Player, playback_status
from demixer.engine.audition import SourceMix, StemCache, StemRequest, StemSet, build_mix, compute_stems
from demixer.gui.mixer import MODE_MIXTURE, MODE_SOURCES, ListenPanel

MODE_COMPONENTS = "components"  # the player holds the selected components' part alone
SOLO_SOURCE = "selected components"

STEMS_LANE = "stems"  # the TaskBridge lane of the stem jobs

__all__ = [
    "AuditionController",
    "TransportBar",
    "install_audition",
    "format_time",
    "LIVE_INTERVAL_S",
    "PLAYHEAD_INTERVAL_MS",
]

PLAYHEAD_INTERVAL_MS = 33  # ≈ 30 Hz
DEBOUNCE_MS = 250  # edits (brush strokes, undo) → recompute the stems once they pause
LIVE_INTERVAL_S = 1.5  # during a run: new stems from a snapshot at most this often
PLAYHEAD_COLOUR = "#4fc3f7"
LOOP_BRUSH = (176, 190, 197, 38)
LOOP_EDGE = "#b0bec5"


def format_time(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    m, s = divmod(seconds, 60.0)
    return f"{int(m)}:{s:04.1f}"


# ============================================================================================ tool bar
class TransportBar(QToolBar):
    """Play/pause, stop, loop, position slider, time; a label saying why when playback is unavailable."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__("Transport", parent)
        self.setObjectName("toolbar_transport")
        self.setMovable(False)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        st = parent.style()
        self.icon_play = st.standardIcon(QStyle.StandardPixmap.SP_MediaPlay)
        self.icon_pause = st.standardIcon(QStyle.StandardPixmap.SP_MediaPause)
        self.act_play = QAction(self.icon_play, "Play", parent)
        self.act_play.setShortcut(QKeySequence(Qt.Key.Key_Space))
        self.act_play.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.act_play.setObjectName("act_play")
        self.act_stop = QAction(st.standardIcon(QStyle.StandardPixmap.SP_MediaStop), "Stop", parent)
        self.act_stop.setObjectName("act_stop_playback")
        self.act_loop = QAction(st.standardIcon(QStyle.StandardPixmap.SP_BrowserReload), "Loop", parent)
        self.act_loop.setCheckable(True)
        self.act_loop.setObjectName("act_loop")
        self.act_home = QAction(st.standardIcon(QStyle.StandardPixmap.SP_MediaSkipBackward), "Go to the start", parent)
        self.act_home.setShortcut(QKeySequence(Qt.Key.Key_Home))
        self.act_home.setObjectName("act_go_start")
        self.act_end = QAction(st.standardIcon(QStyle.StandardPixmap.SP_MediaSkipForward), "Go to the end", parent)
        self.act_end.setShortcut(QKeySequence(Qt.Key.Key_End))
        self.act_end.setObjectName("act_go_end")
        self.addAction(self.act_home)
        self.addAction(self.act_play)
        self.addAction(self.act_stop)
        self.addAction(self.act_end)
        self.addAction(self.act_loop)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName("position_slider")
        self.slider.setRange(0, 0)
        self.slider.setMinimumWidth(160)
        self.slider.setMaximumWidth(420)
        self.slider.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.addWidget(self.slider)
        self.time_label = QLabel(" 0:00.0 / 0:00.0 ")
        self.time_label.setStyleSheet("font-family: monospace; padding: 0 6px;")
        self.addWidget(self.time_label)
        self.unavailable = QLabel("")
        self.unavailable.setStyleSheet("color: #ff9f7a; padding: 0 6px;")
        self.unavailable_action = self.addWidget(self.unavailable)
        self.unavailable_action.setVisible(False)
        self.set_available(True, "")

    def set_available(self, ok: bool, reason: str) -> None:
        for a in (self.act_play, self.act_stop, self.act_loop):
            a.setEnabled(ok)
        self.slider.setEnabled(ok)
        if ok:
            self.act_play.setToolTip("Play / pause (Space)")
            self.act_stop.setToolTip("Stop and go back to the start")
            self.act_loop.setToolTip(
                "Loop a time range: drag the shaded range on V or H (or Shift+drag on a time axis)"
            )
            self.slider.setToolTip("Play position (or click a time axis to seek)")
            self.unavailable_action.setVisible(False)
        else:
            tip = f"Playback unavailable: {reason}"
            for a in (self.act_play, self.act_stop, self.act_loop):
                a.setToolTip(tip)
            self.slider.setToolTip(tip)
            self.unavailable.setText(f"no playback: {reason}")
            self.unavailable.setToolTip(tip)
            self.unavailable_action.setVisible(True)

    def set_playing(self, playing: bool) -> None:
        self.act_play.setIcon(self.icon_pause if playing else self.icon_play)
        self.act_play.setText("Pause" if playing else "Play")


# ============================================================================================ controller
class AuditionController(QObject):
    """Feeds the window's :class:`~demixer.audio.player.Player` and keeps the transport in step with it.

    ``player`` may be replaced (:meth:`set_player`), e.g. by tests with a stepped player.
    """

    stems_ready = Signal(object)  # StemSet, each time new stems are in use
    buffer_changed = Signal(str)  # "mixture" or "sources": the player got a new buffer
    availability_changed = Signal(bool, str)

    def __init__(self, window: Any, player: Player | None = None, status: tuple[bool, str] | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.bench = window.bench  # the shared state: project, undo, runs, view, tasks, actions
        self.project = None
        self.player = player if player is not None else Player(blocksize=1024, crossfade_ms=10.0)
        probe_later = status is None and "sounddevice" not in sys.modules
        if probe_later:  # PortAudio's start (~0.4 s) after the window is shown: on the "audio" lane
            ok, reason = True, ""
        else:
            ok, reason = playback_status() if status is None else status
        self.available, self.reason = ok, reason
        self.stem_set: StemSet | None = None
        self.cache = StemCache(3)
        self.stem_error = ""
        self.stats = {"stem_jobs": 0, "buffers": 0}
        self._job: StemRequest | None = None  # running
        self._next: StemRequest | None = None  # waiting
        self._wanted_key: str | None = None
        self._buffer_key: tuple | None = None
        self.solo_buffer: np.ndarray | None = None  # what "listen to the selected components" plays
        self._play_when_ready = False
        self._was_playing = False
        self._last_live = 0.0
        self._loop_regions: list[pg.LinearRegionItem] = []
        self._loop_range: tuple[float, float] | None = None
        self._syncing_regions = False
        self._updating_slider = False

        self.tasks = self.bench.tasks  # the stems are computed on its "stems" lane, one job at a time
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self._request_current)
        self.timer = QTimer(self)
        self.timer.setInterval(PLAYHEAD_INTERVAL_MS)
        self.timer.timeout.connect(self.tick)

        self._build_ui()
        self._hook_axes()
        self.bench.project_changed.connect(self._on_window_project_changed)
        self.bench.run_started.connect(self._on_run_started)
        window.installEventFilter(self)
        if probe_later:
            self.tasks.submit("audio", lambda _task: playback_status(), on_result=lambda r: self.set_available(*r),
                              name="audio output probe")
        else:
            self.set_available(ok, reason)
        if self.bench.project is not None:
            self.set_project(self.bench.project)

    # ------------------------------------------------------------------------------ construction
    def _build_ui(self) -> None:
        w = self.window
        self.bar = TransportBar(w)
        w.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.bar)
        w.addAction(self.bar.act_play)  # the Space shortcut works whichever child has the focus
        self.bar.act_play.triggered.connect(self.toggle)
        for a, slot in ((self.bar.act_home, lambda: self.seek(0.0)), (self.bar.act_end, self.seek_end)):
            w.addAction(a)  # Home / End work whichever child has the focus
            a.triggered.connect(slot)
        self.bar.act_stop.triggered.connect(self.stop)
        self.bar.act_loop.toggled.connect(self.set_loop_enabled)
        self.bar.slider.valueChanged.connect(self._slider_changed)

        self.panel = ListenPanel()
        self.panel.mode_changed.connect(self._on_mode_changed)
        self.panel.settings_changed.connect(self._on_settings_changed)
        self.dock = w.make_dock("Listen", self.panel, "listen")
        w.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        anchor = getattr(w, "sources_dock", None)
        if anchor is not None:
            w.splitDockWidget(anchor, self.dock, Qt.Orientation.Vertical)
        w.resizeDocks([self.dock], [130], Qt.Orientation.Vertical)  # with main_window._build_docks: Sources ≥ 6 rows
        view_menu = self.bench.actions.menu("view")
        if view_menu is not None:
            view_menu.addAction(self.dock.toggleViewAction())

        self.unavailable_label = QLabel("")
        self.unavailable_label.setStyleSheet("color: #ff9f7a")
        self.unavailable_label.setVisible(False)
        self.unavailable_label.setMaximumWidth(200)  # the whole reason is in its tooltip and the transport bar
        w.statusBar().addPermanentWidget(self.unavailable_label)

        pen = pg.mkPen(PLAYHEAD_COLOUR, width=2)
        self.playheads: dict[str, pg.InfiniteLine] = {}
        for name in ("v_pane", "h_pane"):
            pane = getattr(w, name)
            line = pg.InfiniteLine(pos=0.0, angle=90, movable=False, pen=pen)
            line.setZValue(60)
            pane.addItem(line, ignoreBounds=True)
            self.playheads[name] = line

    def _hook_axes(self) -> None:
        """Left click on a time axis seeks; Shift+left-drag on it selects a loop range. Other buttons and
        plain drags keep the axis' own behaviour (menu, pan)."""
        for name in ("v_pane", "h_pane"):
            pane = getattr(self.window, name)
            axis = pane.time_axis
            click, drag = axis.mouseClickEvent, axis.mouseDragEvent
            axis.mouseClickEvent = partial(self._axis_click, pane, click)
            axis.mouseDragEvent = partial(self._axis_drag, pane, drag)

    def _axis_time(self, pane, scene_pos) -> float:
        return float(pane.vb.mapSceneToView(scene_pos).x())

    def _axis_click(self, pane, original, ev) -> None:
        if ev.button() == Qt.MouseButton.LeftButton and self.project is not None and self.available:
            ev.accept()
            self.seek(self._axis_time(pane, ev.scenePos()))
            return
        original(ev)

    def _axis_drag(self, pane, original, ev) -> None:
        shift = bool(ev.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if ev.button() == Qt.MouseButton.LeftButton and shift and self.project is not None and self.available:
            ev.accept()
            a = self._axis_time(pane, ev.buttonDownScenePos())
            b = self._axis_time(pane, ev.scenePos())
            lo, hi = sorted((a, b))
            if ev.isFinish() and hi - lo > 0:
                self.set_loop_range(lo, hi)
            elif hi - lo > 0:
                self._show_loop_regions(lo, hi)
            return
        original(ev)

    # ------------------------------------------------------------------------------ availability
    def set_available(self, ok: bool, reason: str = "") -> None:
        self.available, self.reason = bool(ok), reason
        self.bar.set_available(self.available, reason)
        self.unavailable_label.setVisible(not self.available)
        if not self.available:
            text = f"Playback unavailable: {reason}"
            self.unavailable_label.setText(text)
            self.unavailable_label.setToolTip(text)
            self.bench.status(text, 10_000)
            self.panel.set_status("no playback", f"{text}. File → Export still works.")
        self.availability_changed.emit(self.available, reason)

    def set_player(self, player: Player) -> None:
        """Use another player (the old one is closed); the current buffer and loop are handed over."""
        old = self.player
        if old is not None and old is not player:
            old.close()
        self.player = player
        self._buffer_key = None
        if self._loop_range is not None and self.bar.act_loop.isChecked():
            player.set_loop(*self._loop_range)
        self._apply_buffer()

    # ------------------------------------------------------------------------------ project
    def _on_window_project_changed(self) -> None:
        self.set_project(self.bench.project)

    def set_project(self, project) -> None:
        old = self.project
        if old is project:
            return
        if old is not None:
            for sig, slot in self._connections(old):
                sig.disconnect(slot)
        self.tasks.invalidate(STEMS_LANE)  # a job still running for the old project is dropped
        self._job = None
        self._debounce.stop()
        self._next = None
        self._play_when_ready = False
        self.player.stop()
        self.stem_set = None
        self.cache.clear()
        self._buffer_key = None
        self._wanted_key = None
        self.project = project
        if project is None:
            return
        for sig, slot in self._connections(project):
            sig.connect(slot)
        if old is None or old.audio is not project.audio:
            self.panel.reset()
        self.bar.act_loop.setChecked(False)
        self._loop_range = None
        for region in self._loop_regions:
            region.setBounds((0.0, project.duration))
        self._sync_rows()
        self._apply_buffer()
        if self.panel.mode == MODE_SOURCES:
            self._request_current()
        self.tick()

    def _connections(self, p):
        return [
            (p.factors_changed, self._on_factors_changed),
            (p.components_changed, self._on_assignment_changed),
            (p.sources_changed, self._on_assignment_changed),
        ]

    def _sync_rows(self) -> None:
        p = self.project
        self.panel.set_sources([(n, p.source_colour(n)) for n in p.source_names()])

    def _on_factors_changed(self, *_):
        self._stale()

    def _on_assignment_changed(self, *_):
        self._sync_rows()
        self._stale()

    def _stale(self) -> None:
        if self.panel.mode == MODE_SOURCES:
            self.panel.set_status("updating…", "W·H changed: recomputing the sources")
            self._debounce.start()

    # ------------------------------------------------------------------------------ stems
    def _request_current(self) -> None:
        """Ask for the stems of what the window shows: the running job's latest factors, else the project's."""
        p = self.project
        if p is None:
            return
        ctrl = getattr(self.window, "run_ctrl", None)
        running = self.bench.running()
        if running and ctrl is not None and ctrl.last is not None:
            self.request_stems(ctrl.last.snap.W, ctrl.last.snap.H)
        else:
            self.request_stems(p.W, p.H)

    def make_request(self, W=None, H=None) -> StemRequest:
        p = self.project
        return StemRequest.make(
            p.audio, p.analysis, p.W if W is None else W, p.H if H is None else H, p.component_infos(),
            [s.name for s in p.sources], p.run.alpha,
        )

    def request_stems(self, W, H) -> None:
        req = self.make_request(W, H)
        self._wanted_key = req.key
        if self.stem_set is not None and self.stem_set.key == req.key:
            self._stems_in_use(self.stem_set)
            return
        cached = self.cache.get(req.key)
        if cached is not None:
            self._next = None
            self._use_stems(cached)
            return
        if self._job is not None:
            # a newer request replaces an older waiting one; asking again for the running one drops it
            self._next = req if self._job.key != req.key else None
            return
        self._start_job(req)

    def _start_job(self, req: StemRequest) -> None:
        self._job = req
        self.stats["stem_jobs"] += 1
        self.panel.set_status("computing…", "computing the sources of the current W·H")
        self.tasks.submit(
            STEMS_LANE,
            lambda task: compute_stems(req),  # worker thread: reads only the frozen request
            on_result=self._on_stems_done,
            on_error=self._on_stems_failed,
            name=f"stems {req.key[:8]}",
        )

    def _on_stems_done(self, stem_set: StemSet) -> None:
        self._job = None
        self.cache.put(stem_set)
        nxt, self._next = self._next, None
        if nxt is not None and nxt.key != stem_set.key:
            self._start_job(nxt)
        if self.stem_set is not None and self.stem_set.key == self._wanted_key:
            return  # what is wanted is already in use (e.g. undo came back to cached stems meanwhile)
        self._use_stems(stem_set)  # the wanted one, or a step towards it (live runs: hear it improve)

    def _on_stems_failed(self, message: str, _details: str) -> None:
        self._job = None
        self.stem_error = message
        self.panel.set_status(f"cannot compute the sources: {message}")
        nxt, self._next = self._next, None
        if nxt is not None:
            self._start_job(nxt)

    def _use_stems(self, stem_set: StemSet) -> None:
        self.stem_set = stem_set
        self._stems_in_use(stem_set)
        self._apply_buffer()
        self.stems_ready.emit(stem_set)

    def _stems_in_use(self, stem_set: StemSet) -> None:
        if self._job is None and self._next is None:
            self.panel.set_status("up to date", f"the {len(stem_set.names)} sources of the current W·H are ready")

    def stems_current(self) -> bool:
        """The stems in use are those of the latest request."""
        return self.stem_set is not None and self.stem_set.key == self._wanted_key and self._job is None

    def current_stems(self) -> StemSet:
        """The stems of the project's W·H now (computed here if needed): what File → Export writes."""
        req = self.make_request()
        if self.stem_set is not None and self.stem_set.key == req.key:
            return self.stem_set
        cached = self.cache.get(req.key)
        if cached is not None:
            return cached
        result = compute_stems(req)
        self.cache.put(result)
        return result

    # ------------------------------------------------------------------------------ live runs
    def _on_run_started(self, ctrl) -> None:
        self._last_live = 0.0
        ctrl.snapshot.connect(self._on_run_snapshot)

    def _on_run_snapshot(self, ctrl, ds) -> None:
        if ctrl is not getattr(self.window, "run_ctrl", None) or self.panel.mode != MODE_SOURCES:
            return
        now = time.perf_counter()
        if ds.snap.done or now - self._last_live >= LIVE_INTERVAL_S:
            self._last_live = now
            self.request_stems(ds.snap.W, ds.snap.H)

    # ------------------------------------------------------------------------------ buffer
    def _on_mode_changed(self, mode: str) -> None:
        if mode == MODE_SOURCES:
            self._request_current()
        else:
            self.panel.set_status("")
        self._apply_buffer()

    def _on_settings_changed(self) -> None:
        self._apply_buffer()

    def _apply_buffer(self) -> None:
        """Give the player what the Listen dock asks for (if it changed): the recording, or the mix."""
        p = self.project
        if p is None:
            return
        if self.panel.mode == MODE_MIXTURE or self.stem_set is None:
            if self.panel.mode == MODE_SOURCES and self._buffer_key is not None:
                return  # keep playing what plays until the sources are ready
            key: tuple = ("mixture", id(p.audio))
            if key != self._buffer_key:
                self.player.set_buffer(p.audio.samples, p.audio.sr)
                self._buffer_key = key
                self.stats["buffers"] += 1
                self.buffer_changed.emit(MODE_MIXTURE)
            if self.panel.mode == MODE_SOURCES:
                return
        else:
            settings = self.panel.settings()
            key = ("sources", self.stem_set.key, tuple(sorted(settings.items())))
            if key != self._buffer_key:
                samples = build_mix(self.stem_set, settings)
                self.player.set_buffer(samples, self.stem_set.sr)
                self._buffer_key = key
                self.stats["buffers"] += 1
                self.buffer_changed.emit(MODE_SOURCES)
        if self._play_when_ready:
            self._play_when_ready = False
            self.play()

    def listen_to_components(self, rows) -> bool:
        """Play only what components ``rows`` contribute — their soft mask of the recording, as if they
        were a source of their own (hear what one template does). It plays until the Listen dock's mode
        or settings change or the sources are recomputed; then the dock's choice plays again."""
        p = self.project
        sel = sorted({int(r) for r in rows if 0 <= int(r) < (p.n_components if p is not None else 0)})
        if p is None or not sel:
            return False
        import dataclasses

        from demixer.engine.separation import stems as separation_stems

        picked = set(sel)
        infos = [dataclasses.replace(c, source=SOLO_SOURCE if r in picked else "")
                 for r, c in enumerate(p.component_infos())]
        QApplication.setOverrideCursor(QCursor(Qt.CursorShape.WaitCursor))
        try:
            out = separation_stems(p.audio, p.analysis, p.W, p.H, infos, [SOLO_SOURCE], p.run.alpha)
        finally:
            QApplication.restoreOverrideCursor()
        self.solo_buffer = out[SOLO_SOURCE]
        self.player.set_buffer(self.solo_buffer, p.audio.sr)
        self._buffer_key = ("components", tuple(sel), id(p.W), id(p.H))
        self.stats["buffers"] += 1
        names = ", ".join(p.components[r].name for r in sel[:3]) + ("…" if len(sel) > 3 else "")
        self.bench.status(f"Listening to {names} alone", 5000)
        self.buffer_changed.emit(MODE_COMPONENTS)
        if self.available:
            try:
                self.player.play()
            except PlaybackUnavailable as exc:
                self.set_available(False, str(exc))
                return True
            self._start_ticking()
        return True

    def expected_buffer(self) -> np.ndarray:
        """What the player should hold now, (channels, n) float32 (for tests and checks)."""
        p = self.project
        if self._buffer_key is not None and self._buffer_key[0] == MODE_COMPONENTS:
            return self.solo_buffer
        if self.panel.mode == MODE_MIXTURE or self.stem_set is None:
            return p.audio.samples
        return build_mix(self.stem_set, self.panel.settings())

    # ------------------------------------------------------------------------------ transport
    def play(self) -> None:
        if self.project is None or not self.available:
            return
        if self.panel.mode == MODE_SOURCES and self.stem_set is None:
            self._play_when_ready = True  # starts when the sources are ready
            self._request_current()
            return
        try:
            self.player.play()
        except PlaybackUnavailable as exc:
            self.set_available(False, str(exc))
            return
        self._start_ticking()

    def pause(self) -> None:
        self._play_when_ready = False
        self.player.pause()
        self.tick()

    def toggle(self) -> None:
        if self.player.playing:
            self.pause()
        else:
            self.play()

    def stop(self) -> None:
        self._play_when_ready = False
        self.player.stop()
        self.tick()

    def seek(self, seconds: float) -> None:
        p = self.project
        if p is None or not math.isfinite(seconds):
            return
        t = min(max(float(seconds), 0.0), p.duration)
        self.player.seek(t)
        self.tick()

    def seek_end(self) -> None:
        if self.project is not None:
            self.seek(self.project.duration)

    def _start_ticking(self) -> None:
        self.tick()
        if not self.timer.isActive():
            self.timer.start()

    def playhead_time(self) -> float:
        """Where the playhead is drawn: the player's position, less the output latency while playing
        (what is being heard rather than what was handed to the device)."""
        pos = self.player.position
        if self.player.playing:
            pos = max(0.0, pos - self.player.latency)
        return pos

    def tick(self) -> None:
        """Move the playhead and the slider to the player's position (GUI timer, ≈ 30 Hz while playing)."""
        playing = self.player.playing
        t = self.playhead_time()
        for line in self.playheads.values():
            line.setValue(t)
        dur = self.project.duration if self.project is not None else 0.0
        self._updating_slider = True
        try:
            self.bar.slider.setMaximum(int(round(dur * 1000)))
            self.bar.slider.setValue(int(round(t * 1000)))
        finally:
            self._updating_slider = False
        self.bar.time_label.setText(f" {format_time(t)} / {format_time(dur)} ")
        if playing != self._was_playing:
            self._was_playing = playing
            self.bar.set_playing(playing)
        if not playing and self.timer.isActive():
            self.timer.stop()

    def _slider_changed(self, value: int) -> None:
        if not self._updating_slider:
            self.seek(value / 1000.0)

    # ------------------------------------------------------------------------------ loop
    def set_loop_enabled(self, on: bool) -> None:
        if self.bar.act_loop.isChecked() != bool(on):
            self.bar.act_loop.setChecked(bool(on))  # re-enters through toggled
            return
        p = self.project
        if not on or p is None:
            self._remove_loop_regions()
            self.player.clear_loop()
            return
        if self._loop_range is None:
            x0, x1 = self.window.v_pane.vb.viewRange()[0]
            x0, x1 = max(0.0, x0), min(p.duration, x1)
            w = x1 - x0
            self._loop_range = (x0 + 0.25 * w, x0 + 0.75 * w)
        self._show_loop_regions(*self._loop_range)
        self.player.set_loop(*self._loop_range)

    def set_loop_range(self, start: float, end: float) -> None:
        """Loop [start, end) seconds (clamped to the recording) and switch looping on."""
        p = self.project
        if p is None:
            return
        start = min(max(0.0, float(start)), p.duration)
        end = min(max(0.0, float(end)), p.duration)
        if end <= start:
            return
        self._loop_range = (start, end)
        if self.bar.act_loop.isChecked():
            self._show_loop_regions(start, end)
            self.player.set_loop(start, end)
        else:
            self.set_loop_enabled(True)

    @property
    def loop_range(self) -> tuple[float, float] | None:
        return self._loop_range if self.bar.act_loop.isChecked() else None

    # ------------------------------------------------------------------------------ saved with the view
    def listen_state(self) -> dict:
        """The Listen settings for the project file's view state: mode, per-source gain/mute/solo, loop."""
        return {
            "mode": self.panel.mode,
            "sources": {
                name: {"gain_db": float(m.gain_db), "mute": bool(m.mute), "solo": bool(m.solo)}
                for name, m in self.panel.settings().items()
            },
            "loop": list(self.loop_range) if self.loop_range is not None else None,
        }

    def restore_listen_state(self, state: dict) -> list[str]:
        """Apply a :meth:`listen_state` dict; anything malformed is skipped and named in the result."""
        problems: list[str] = []
        if not isinstance(state, dict):
            return ["view listen settings not restored (not a mapping)"]
        sources = state.get("sources") if isinstance(state.get("sources"), dict) else {}
        for name, m in sources.items():
            ok = (
                name in self.panel.rows
                and isinstance(m, dict)
                and isinstance(m.get("gain_db"), (int, float))
                and not isinstance(m.get("gain_db"), bool)
                and math.isfinite(m["gain_db"])
                and isinstance(m.get("mute"), bool)
                and isinstance(m.get("solo"), bool)
            )
            if ok:
                self.panel.set_source_settings(name, SourceMix(float(m["gain_db"]), m["mute"], m["solo"]))
            else:
                problems.append(f"view listen settings of {name!r} not restored")
        mode = state.get("mode")
        if mode in (MODE_MIXTURE, MODE_SOURCES):
            self.panel.set_mode(mode)  # after the rows: setting a row switches to "sources"
        elif mode is not None:
            problems.append("view listen mode not restored")
        loop = state.get("loop")
        if (
            isinstance(loop, list)
            and len(loop) == 2
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in loop)
            and loop[0] < loop[1]
        ):
            self.set_loop_range(float(loop[0]), float(loop[1]))
        elif loop is not None:
            problems.append("view loop not restored")
        return problems

    def _show_loop_regions(self, start: float, end: float) -> None:
        if not self._loop_regions:
            for name in ("v_pane", "h_pane"):
                pane = getattr(self.window, name)
                region = pg.LinearRegionItem(
                    values=(start, end), orientation="vertical", brush=pg.mkBrush(*LOOP_BRUSH),
                    pen=pg.mkPen(LOOP_EDGE, width=1), movable=True,
                )
                if self.project is not None:
                    region.setBounds((0.0, self.project.duration))
                region.setZValue(40)
                pane.addItem(region, ignoreBounds=True)
                region.sigRegionChanged.connect(self._region_moved)
                region.sigRegionChangeFinished.connect(self._region_finished)
                self._loop_regions.append(region)
        self._syncing_regions = True
        try:
            for region in self._loop_regions:
                region.setRegion((start, end))
        finally:
            self._syncing_regions = False

    def _remove_loop_regions(self) -> None:
        for region, name in zip(self._loop_regions, ("v_pane", "h_pane"), strict=False):
            getattr(self.window, name).removeItem(region)
        self._loop_regions = []

    def _region_moved(self, region) -> None:
        if self._syncing_regions:
            return
        self._syncing_regions = True
        try:
            for other in self._loop_regions:
                if other is not region:
                    other.setRegion(region.getRegion())
        finally:
            self._syncing_regions = False

    def _region_finished(self, region) -> None:
        if self._syncing_regions:
            return
        lo, hi = region.getRegion()
        if hi > lo:
            self._loop_range = (float(lo), float(hi))
            self.player.set_loop(*self._loop_range)

    # ------------------------------------------------------------------------------ closing
    def shutdown(self) -> None:
        """Stop playing, release the audio stream, wait for a stem job (the window is closing)."""
        self.timer.stop()
        self._debounce.stop()
        self.tasks.invalidate(STEMS_LANE)
        self._next = None
        self.player.close()
        self.tasks.wait(STEMS_LANE, 10_000)

    def eventFilter(self, obj, event):  # noqa: N802 - Qt's name
        if obj is self.window and event.type() == QEvent.Type.Close:
            self.shutdown()
        return False


def install_audition(window) -> AuditionController:
    """Add the transport, the Listen dock, the playhead and File → Export to ``window``."""
    from demixer.gui.export import install_export_menu

    ctrl = AuditionController(window)
    ctrl.exporter = install_export_menu(window, ctrl)
    return ctrl
