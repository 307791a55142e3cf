"""The score's synchronisation in the window (DESIGN.md §2.5b, §4; issue 11 item 4).

* **Opening a score** (File → Open score, a drop, the command line, a recent pair) applies it as
  given, then aligns it on the task bridge (lane ``"align"``; progress and a Cancel button in the status
  bar): the recording's features (computed once per recording and cached), the warp
  (:func:`demixer.core.sync.synchronise`) and the note-level refinement (the staged fit's scout). A
  score judged already aligned (:func:`demixer.engine.align.already_aligned`, the same rule as
  ``demixer separate --align auto``) stays as it is; a score that does not match (low confidence) gets a
  dialog naming the file and the reason and is taken back off; otherwise the aligned notes replace the
  given ones as one undo step ("align <score>").
* **The alignment view** (a dock): score time against recording time — the warp path, the notes
  (dots), the anchors (diamonds) and the global tempo (dashed).
* **Correcting it** (the "align" tool, L; or Alt+drag in the notes tool): drag a note of the overlay on
  V — or any moment of the score, e.g. a bar line — to where it sounds. That adds an anchor
  ``(score time, recording time)``; the warp is recomputed through the anchors (the features are
  cached, so this is the DTW alone) and the notes, the components' allowed regions and the overlay
  follow, as one undo step (:class:`~demixer.model.score_edits.ScoreEdit`). Anchors and the score's own
  notes are saved in the project.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QPointF, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QGraphicsLineItem, QLabel, QPushButton, QVBoxLayout, QWidget

from demixer.gui.note_editor import NoteGhost, note_at, view_pos
from demixer.gui.overlays import dashed_pen
from demixer.gui.tools import ALIGN
from demixer.model.score_edits import ScoreAlignment, ScoreEdit, add_anchor, rewarp, to_score_times

__all__ = ["AlignmentController", "AlignmentView", "install_alignment"]

log = logging.getLogger(__name__)

LANE = "align"
MIN_DRAG_PX = 3.0


class AlignmentView(QWidget):
    """Score time (x) against recording time (y): the warp path, the notes, the anchors."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        self.label = QLabel("No aligned score. Open a score (File → Open score) to align it to the recording.")
        self.label.setWordWrap(True)
        lay.addWidget(self.label)
        self.plot = pg.PlotWidget()
        self.plot.setLabel("bottom", "score time", units="s")
        self.plot.setLabel("left", "recording time", units="s")
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        lay.addWidget(self.plot, 1)
        self.tempo = self.plot.plot([], [], pen=pg.mkPen("#888888", width=1, style=Qt.PenStyle.DashLine))
        self.path = self.plot.plot([], [], pen=pg.mkPen("#ffd166", width=2))
        self.notes = pg.ScatterPlotItem(size=4, pen=None, brush=pg.mkBrush(76, 155, 232, 160))
        self.plot.addItem(self.notes)
        self.anchors = pg.ScatterPlotItem(size=13, symbol="d", pen=pg.mkPen("#ffffff", width=1.5),
                                          brush=pg.mkBrush("#e15759"))
        self.plot.addItem(self.anchors)
        self.n_anchors = 0
        self.n_path = 0

    def clear(self, text: str) -> None:
        self.label.setText(text)
        for item in (self.tempo, self.path):
            item.setData([], [])
        self.notes.setData([], [])
        self.anchors.setData([], [])
        self.n_anchors = self.n_path = 0

    def show_alignment(self, state: ScoreAlignment, notes, title: str) -> None:
        al = state.warp
        if al is None:
            self.clear(f"{title}: computing the warp…")
            return
        s, a = np.asarray(al.score_times), np.asarray(al.audio_times)
        self.path.setData(s, a)
        self.n_path = int(s.size)
        if s.size >= 2:
            x = np.array([s[0], s[-1]])
            self.tempo.setData(x, al.to_audio(x))
        sn = np.array([n.onset for n in state.score_notes])
        an = np.array([n.onset for n in notes])
        self.notes.setData(sn, an)
        anc = np.array(state.anchors, float).reshape(-1, 2)
        self.anchors.setData(anc[:, 0], anc[:, 1])
        self.n_anchors = len(anc)
        self.label.setText(
            f"{title}: tempo ratio {al.tempo_ratio:.2f}, lead-in {al.lead_in:.2f} s, match confidence "
            f"{al.confidence:.2f}, {len(anc)} anchor{'s' if len(anc) != 1 else ''}. Drag a note on V with "
            "the Align tool (L) to where it sounds to add an anchor."
        )


class AlignmentController(QObject):
    """Aligns opened scores in the background, shows the warp, turns anchor drags into edits."""

    finished = Signal(str)  # "aligned", "kept", "mismatch", "cancelled", "error", "anchor", "warp"

    def __init__(self, window, editing) -> None:
        super().__init__(window)
        self.window = window
        self.bench = window.bench
        self.editing = editing
        self.features: dict[int, tuple[object, object]] = {}  # id(audio) → (audio, Features)
        self.task = None
        self.outcome: str | None = None
        self.project = None
        self._drag = None
        self.view = AlignmentView()
        self.dock = window.make_dock("Alignment", self.view, "alignment")
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        window.tabifyDockWidget(editing.components_dock, self.dock)
        editing.components_dock.raise_()
        # status bar: a cancel button while aligning
        self.cancel_button = QPushButton("Cancel alignment")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel)
        window.statusBar().addPermanentWidget(self.cancel_button)
        self.act_align = QAction("&Align the score to the recording", window)
        self.act_align.setToolTip("Synchronise the score's notes to the recording (even when it looks aligned)")
        self.act_align.triggered.connect(lambda: self.align(force=True))
        self.act_clear_anchors = QAction("Remove the alignment anchors", window)
        self.act_clear_anchors.triggered.connect(self.clear_anchors)
        edit = self.bench.actions.menu("edit")
        if edit is not None:
            edit.addSeparator()
            edit.addAction(self.act_align)
            edit.addAction(self.act_clear_anchors)
        view = self.bench.actions.menu("view")
        if view is not None:
            view.addAction(self.dock.toggleViewAction())
        # the drag ghost on V
        self.ghost = NoteGhost(window.v_pane, "#ffd166")
        self.line = QGraphicsLineItem()
        self.line.setPen(dashed_pen("#ffd166"))
        self.line.setZValue(60)
        self.line.setVisible(False)
        window.v_pane.addItem(self.line, ignoreBounds=True)
        editing.tools.register_v_tool(ALIGN, self)
        files = getattr(window, "files", None)
        if files is not None:
            files.aligner = self
        self.bench.aligner = self
        self.bench.project_changed.connect(self._on_project_changed)
        self._on_project_changed()

    # ================================================================================ project
    def _on_project_changed(self) -> None:
        if self.project is not None:
            self.project.notes_changed.disconnect(self.refresh)
        self.project = p = self.bench.project
        if p is not None:
            p.notes_changed.connect(self.refresh)
            st = p.score_alignment
            if st is not None and st.warp is None:  # loaded: recompute the (deterministic) warp
                self._compute_warp(p)
        self.refresh()

    def refresh(self) -> None:
        p = self.bench.project
        st = None if p is None else p.score_alignment
        self.act_clear_anchors.setEnabled(bool(st and st.anchors))
        self.act_align.setEnabled(p is not None and bool(p.notes))
        if st is None:
            self.view.clear(
                "The score is used as given (not warped)." if p is not None and p.notes else
                "No score. Open a score (File → Open score) to align it to the recording."
            )
            return
        self.view.show_alignment(st, p.notes, Path(p.score_path).name if p.score_path else "score")

    # ================================================================================ features
    def features_for(self, audio):
        """The recording's synchronisation features (cached per recording; thread-safe to call from a
        worker since a dict write is atomic)."""
        hit = self.features.get(id(audio))
        if hit is not None and hit[0] is audio:
            return hit[1]
        from demixer.core.sync import audio_features
        from demixer.engine.align import ANALYSIS_SR
        from demixer.io.audio import analysis_signal

        feats = audio_features(analysis_signal(audio, ANALYSIS_SR), ANALYSIS_SR)
        if len(self.features) > 4:
            self.features.clear()
        self.features[id(audio)] = (audio, feats)
        return feats

    # ================================================================================ aligning
    @property
    def busy(self) -> bool:
        return self.task is not None

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None
            self.cancel_button.setVisible(False)
            self.outcome = "cancelled"
            self.bench.status("Alignment cancelled: the score is used as given", 5000)
            self.finished.emit("cancelled")

    def align(self, score_path: str | None = None, *, force: bool = False, revert=None) -> bool:
        """Align the open project's notes to its recording in the background.

        ``force``: warp even a score that looks aligned already (Edit → Align). ``revert()``: what to do
        when the score does not match (the caller's way to take the score back off)."""
        p = self.bench.project
        if p is None or not p.notes:
            return False
        from demixer.engine.align import too_few_onsets

        notes = list(p.notes)
        score_path = score_path or p.score_path or "the score"
        if too_few_onsets(notes) and not force:
            self.outcome = "kept"
            self.finished.emit("kept")
            return False
        self.cancel()
        audio = p.audio
        name = Path(score_path).name

        def work(task):
            from demixer.engine.align import align_score

            task.progress(0.05)
            feats = self.features_for(audio)
            if task.cancelled:
                return None
            task.progress(0.4)
            res = align_score(audio, notes, features=feats, refine=False, check=False)
            if task.cancelled:
                return None
            task.progress(0.7)
            refined = None
            if res.alignment.matches and len(res.warped) == len(notes):
                from demixer.engine.align import ANALYSIS_SR, scout_refine
                from demixer.io.audio import analysis_signal

                refined = scout_refine(analysis_signal(audio, ANALYSIS_SR), ANALYSIS_SR, res.warped)
            return res, refined

        mine: list = []

        def over() -> None:
            """This alignment is over: not busy any more before anyone hears of its outcome (a Run that
            waits for it starts from the ``finished`` signal and must not find it still busy)."""
            if mine and self.task is mine[0]:
                self.task = None
                self.cancel_button.setVisible(False)

        def on_result(value) -> None:
            over()
            if value is None:
                return
            self._apply(p, notes, score_path, force, revert, *value)

        def on_error(message, details) -> None:
            over()
            self.outcome = "error"
            self.bench.show_error("Cannot align the score", score_path, message, details)
            self.finished.emit("error")

        def on_done(task) -> None:
            if self.task is task:
                self.task = None
                self.cancel_button.setVisible(False)

        self.cancel_button.setVisible(True)
        self.bench.status(f"Aligning {name} to the recording…")
        self.task = self.bench.tasks.submit(
            LANE, work, on_result=on_result, on_error=on_error,
            on_progress=lambda v: self.bench.status(f"Aligning {name} to the recording… {int(v * 100)} %"),
            on_done=on_done, replace=True, name=f"align {name}",
        )
        mine.append(self.task)
        return True

    def _apply(self, p, notes, score_path, force, revert, res, refined) -> None:
        from demixer.engine.align import already_aligned, mismatch_reason

        name = Path(score_path).name
        al = res.alignment
        if self.bench.project is not p or list(p.notes) != notes:
            self.outcome = "stale"
            self.finished.emit("stale")
            return  # another project or the notes were edited meanwhile
        if not al.matches:
            self.outcome = "mismatch"
            self.bench.show_error("The score does not match the recording", score_path, mismatch_reason(al))
            if revert is not None:
                revert()
            self.finished.emit("mismatch")
            return
        if not force and already_aligned(notes, al):
            self.outcome = "kept"
            self.bench.status(f"{name} matches the recording as given (confidence {al.confidence:.2f}): kept", 6000)
            self.finished.emit("kept")
            return
        if len(res.warped) != len(notes):
            self.outcome = "error"
            self.bench.show_error("Cannot align the score", score_path,
                                  f"the recording plays only the score's beginning ({res.n_dropped} notes "
                                  "past its end); open the matching excerpt of the score")
            if revert is not None:
                revert()
            self.finished.emit("error")
            return
        new = refined if refined is not None and len(refined) == len(notes) else res.warped
        state = ScoreAlignment(tuple(notes), (), al)
        new = rewarp(new, state.with_(warp=None), al, p.duration,
                     pinned={i: (n.onset, n.offset) for i, n in enumerate(new)})
        edit = ScoreEdit(p, new, f"align {name}", alignment=state)
        if self.editing.push(edit):
            self.outcome = "aligned"
            self.bench.status(
                f"Aligned {name}: tempo ratio {al.tempo_ratio:.2f}, lead-in {al.lead_in:.2f} s, "
                f"confidence {al.confidence:.2f}", 8000)
            self.finished.emit("aligned")
        else:
            self.outcome = "refused"
            self.finished.emit("refused")

    def _compute_warp(self, p) -> None:
        """A loaded project's warp from its score notes and anchors (not an edit: it is derived)."""
        st = p.score_alignment
        audio = p.audio

        def work(task):
            from demixer.core.sync import synchronise

            return synchronise(list(st.score_notes), self.features_for(audio), st.anchors)

        def on_result(al) -> None:
            if self.bench.project is p and p.score_alignment is st:
                p.score_alignment = st.with_(warp=al)
                self.refresh()
                self.finished.emit("warp")

        self.bench.tasks.submit(LANE, work, on_result=on_result, name="warp of a loaded score")

    # ================================================================================ anchors
    def anchor_to(self, index: int | None, score_time: float, audio_time: float) -> bool:
        """Add the anchor ``(score_time, audio_time)`` (note ``index`` sits exactly there) and re-warp in
        the background; the result is pushed as one undo step."""
        p = self.bench.project
        st = None if p is None else p.score_alignment
        if st is None:
            self.bench.status(
                "The score is used as given (it was not warped): Edit → Align the score to the recording "
                "first, or move notes with the Notes tool", 8000)
            return False
        if self.bench.running():
            self.bench.status("Cancel or wait for the run before editing", 4000)
            return False
        anchors = add_anchor(st.anchors, score_time, audio_time)
        pinned = {}
        if index is not None:
            n = p.notes[index]
            pinned[index] = (audio_time, audio_time + (n.offset - n.onset))
        audio = p.audio
        notes = list(p.notes)

        def work(task):
            from demixer.core.sync import synchronise

            return synchronise(list(st.score_notes), self.features_for(audio), anchors)

        def on_result(al) -> None:
            if self.bench.project is not p or p.score_alignment is not st:
                return
            new = rewarp(notes, st, al, p.duration, pinned)
            text = f"anchor {score_time:.2f} s → {audio_time:.2f} s"
            ok = self.editing.push(ScoreEdit(p, new, text, alignment=st.with_(anchors=tuple(anchors), warp=al)))
            self.outcome = "anchor" if ok else "refused"
            self.finished.emit(self.outcome)

        def on_error(message, details) -> None:
            self.bench.status(f"Cannot re-warp through that anchor: {message}", 8000)
            self.outcome = "error"
            self.finished.emit("error")

        self.task = self.bench.tasks.submit(LANE, work, on_result=on_result, on_error=on_error,
                                            on_done=lambda t: setattr(self, "task", None) if self.task is t else None,
                                            replace=True, name="re-warp through anchors")
        return True

    def clear_anchors(self) -> bool:
        p = self.bench.project
        st = None if p is None else p.score_alignment
        if not st or not st.anchors:
            return False
        audio = p.audio
        notes = list(p.notes)

        def work(task):
            from demixer.core.sync import synchronise

            return synchronise(list(st.score_notes), self.features_for(audio), ())

        def on_result(al) -> None:
            if self.bench.project is p and p.score_alignment is st:
                new = rewarp(notes, st, al, p.duration)
                self.editing.push(ScoreEdit(p, new, "remove the anchors", alignment=st.with_(anchors=(), warp=al)))
                self.finished.emit("anchor")

        self.bench.tasks.submit(LANE, work, on_result=on_result, replace=True, name="warp without anchors")
        return True

    # ================================================================================ the drag on V
    def tool_left(self) -> None:
        self._end_drag()

    def v_event(self, pane, ev) -> bool:
        return self.drag_event(pane, ev)

    def drag_event(self, pane, ev) -> bool:
        """Mouse events on V for the anchor gesture (the align tool, or Alt in the notes tool)."""
        from PySide6.QtCore import QEvent

        t = ev.type()
        p = self.bench.project
        if p is None:
            return False
        if t == QEvent.Type.MouseButtonPress and ev.button() == Qt.MouseButton.LeftButton:
            pos = view_pos(pane, ev.position())
            if pos is None:
                return False
            x, y = pos
            i = note_at(self.window, p, x, y)
            self._drag = (i, x, QPointF(ev.position()))
            if i is not None:
                self.ghost.show(self.window, p.notes[i].onset, p.notes[i].offset, p.notes[i].pitch)
            self._show_line(x)
            return True
        if t == QEvent.Type.MouseMove and self._drag is not None:
            pos = view_pos(pane, ev.position(), clip=False)
            if pos is None:
                return True
            i, x0, _ = self._drag
            dx = pos[0] - x0
            if i is not None:
                n = p.notes[i]
                self.ghost.show(self.window, n.onset + dx, n.offset + dx, n.pitch)
            self._show_line(pos[0])
            return True
        if t == QEvent.Type.MouseButtonRelease and ev.button() == Qt.MouseButton.LeftButton and self._drag is not None:
            i, x0, press = self._drag
            pos = view_pos(pane, ev.position(), clip=False)
            self._end_drag()
            if pos is None or abs(ev.position().x() - press.x()) < MIN_DRAG_PX:
                return True
            dx = pos[0] - x0
            st = p.score_alignment
            if i is not None:
                audio_time = max(p.notes[i].onset + dx, 0.0)
                score_time = st.score_notes[i].onset if st is not None else 0.0
            else:
                audio_time = max(pos[0], 0.0)
                score_time = float(to_score_times(st.warp, x0)) if st is not None and st.warp is not None else 0.0
            self.anchor_to(i, score_time, min(audio_time, p.duration))
            return True
        return False

    def _show_line(self, x: float) -> None:
        (_, _), (y0, y1) = self.window.v_pane.viewRange()
        self.line.setLine(x, y0, x, y1)
        self.line.setVisible(True)

    def _end_drag(self) -> None:
        self._drag = None
        self.ghost.hide()
        self.line.setVisible(False)


def install_alignment(window, editing) -> AlignmentController:
    return AlignmentController(window, editing)
