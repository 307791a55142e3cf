"""Runs of the open project (DESIGN.md §3, §4): start, cancel, show progress, apply the result as one
undo step. A Run is the engine's one fit (:class:`demixer.engine.fit.Fit`, DESIGN.md §2.5c), the same
that ``demixer separate`` runs: every Run of a project with a score asks for the staged fit from the
score and the user's edits (scout and align → templates → activations; it runs warm when it cannot, and
says why); Run → Refine (Ctrl+Shift+R) refines warm from the current state. The fit runs in a
:class:`~demixer.gui.worker.RunController`; the live factors (on the project's grid in every stage) are
painted by the workbench's display from the newest snapshot; the status line and the progress bar show
the mode and the stage.

A run that is replaced (a new run, a new project) is *abandoned*: cancelled, its remaining snapshots
dropped, its thread kept in ``retired`` until it ends. Only the current run's result is applied.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from PySide6.QtCore import QObject, Qt

from demixer.gui.factors_view import MODE_V
from demixer.gui.worker import SNAPSHOT_RATE, DisplaySnapshot, RunController
from demixer.model.edits import ApplyRunResult
from demixer.model.project import RunRecord

__all__ = ["RunManager", "MODE_TEXT", "STAGE_TEXT"]

#: what the status line says a mode does
MODE_TEXT = {"staged": "staged fit from the score", "warm": "refining from the current state"}
#: the stages as the status line and the progress bar name them
STAGE_TEXT = {
    "sync": "synchronising",
    "scout": "scout (finer grid)",
    "templates": "templates",
    "activations": "activations",
    "joint": "W and H",
}

log = logging.getLogger(__name__)


class RunManager(QObject):
    """The run state of one workbench: ``run_ctrl`` (the current run or None) and ``retired`` runs."""

    def __init__(self, bench, *, loss_pane, progress, run_label) -> None:
        super().__init__(bench)
        self.bench = bench
        self.display = bench.display
        self.loss_pane, self.progress, self.run_label = loss_pane, progress, run_label
        self.run_ctrl: RunController | None = None
        self.retired: list[RunController] = []
        #: a Run asked for while the opened score is still being aligned: (model, n_iter, mode, project)
        self.waiting: tuple | None = None
        bench.project_changed.connect(self._on_project_changed)

    def _on_project_changed(self) -> None:
        """Another project: the last project's run line goes (item 12 of issue 18)."""
        if not self.running():
            self.run_label.setText("")
            self.progress.setVisible(False)

    def running(self) -> bool:
        """A run is going and its result has not been applied yet."""
        c = self.run_ctrl
        return c is not None and c.is_running() and not c.applied

    def start_run(
        self, model: str | None = None, n_iter: int | None = None, mode: str | None = None
    ) -> RunController | None:
        """Start a Run of the project's model (or ``model``) for its iterations (or ``n_iter``). ``mode``
        None or ``"staged"``: the staged fit from the score (with the user's edits; it runs warm, saying
        why, without a score or with a model that has none); ``"warm"``: refine from the current W, H
        (Run → Refine). A run already going is cancelled and
        its result dropped."""
        p = self.bench.project
        if p is None:
            return None
        from demixer.engine.fit import Fit, FitState, project_settings  # with the first run (start-up time)
        from demixer.engine.models import model_info

        self.abandon()
        self.cancel_waiting()
        aligner = self.bench.aligner
        if aligner is not None and aligner.busy:
            self._wait_for_alignment(aligner, p, model, n_iter, mode)
            return None
        try:
            changes = {}
            if model is not None:
                changes["model"] = model
            if n_iter is not None:
                changes["n_iter"] = int(n_iter)
            settings = project_settings(p).with_(**changes)
            info = model_info(settings.model)
            if mode is None:
                mode = "staged"  # Fit falls back to warm, with the reason, when it cannot be staged
            fit = Fit(p.analysis, p.notes or None, settings, FitState.from_project(p), mode, max_rate=SNAPSHOT_RATE)
            label = p.next_run_label(info.label + (", staged" if fit.mode == "staged" else ""))
            ctrl = RunController(fit, self, tasks=self.bench.tasks, label=label, model=settings.model,
                                 n_iter=fit.n_iter)
        except Exception as exc:  # bad settings: say so, change nothing
            self.bench.show_error("Cannot start the run", p.title, f"{type(exc).__name__}: {exc}")
            return None
        ctrl.snapshot.connect(self._on_run_snapshot)
        ctrl.failed.connect(self._on_run_failed)
        ctrl.finished.connect(self._on_run_thread_finished)
        self.run_ctrl = ctrl
        self.loss_pane.begin_live(label, ctrl.n_iter, index=len(p.runs))
        self.progress.setRange(0, max(1, ctrl.n_iter))
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self.progress.setVisible(True)
        self.run_label.setText(f"{label}: {self.mode_text(fit)} — starting…")
        self.run_label.setToolTip(self.mode_text(fit))
        log.info("run %s started: %s, %d iterations, %s%s", label, settings.model, ctrl.n_iter, fit.mode,
                 f" ({fit.reason})" if fit.reason else "")
        ctrl.start()
        self.display.begin_live()
        self.bench.actions_changed.emit()
        self.bench.run_started.emit(ctrl)
        return ctrl

    # ------------------------------------------------------------------------------ waiting
    def _wait_for_alignment(self, aligner, p, model, n_iter, mode) -> None:
        """A Run while the score is being aligned would fit the score's nominal timing (the separation
        of a user's downloaded score falls below the mixture) and the alignment would then be refused
        as an edit during a run: the Run starts when the alignment ends instead."""
        first = self.waiting is None
        self.waiting = (model, n_iter, mode, p)
        if first:
            aligner.finished.connect(self._on_alignment_finished, Qt.ConnectionType.SingleShotConnection)
        self.run_label.setText("Run: waiting for the score's alignment…")
        self.bench.status("The run starts when the score is aligned (Cancel run to cancel)", 6000)
        log.info("run waits for the alignment")
        self.bench.actions_changed.emit()

    def _on_alignment_finished(self, outcome: str) -> None:
        waiting, self.waiting = self.waiting, None
        if waiting is None:
            return
        model, n_iter, mode, p = waiting
        if outcome in ("mismatch", "error"):  # the score was taken back off, or could not be placed
            self.run_label.setText("")
            msg = "the run did not start: the score could not be aligned"
            self.bench.status(msg.capitalize(), 8000)
            self.bench.actions_changed.emit()
            self.bench.run_failed.emit(msg)
            return
        if p is not self.bench.project:  # another recording was opened meanwhile: that Run was for the old one
            self.run_label.setText("")
            self.bench.actions_changed.emit()
            return
        self.start_run(model, n_iter, mode)  # the alignment is not busy any more when it says how it ended

    def cancel_waiting(self) -> bool:
        """Drop a Run that waits for the alignment; True when there was one."""
        if self.waiting is None:
            return False
        self.waiting = None
        aligner = self.bench.aligner
        if aligner is not None:
            try:
                aligner.finished.disconnect(self._on_alignment_finished)
            except (RuntimeError, TypeError):
                pass
        self.run_label.setText("")
        self.bench.actions_changed.emit()
        return True

    @staticmethod
    def mode_text(fit) -> str:
        """What a fit does, in words: "staged fit from the score", or "refining from the current state"
        with the reason when a staged fit was asked for and cannot run."""
        text = MODE_TEXT[fit.mode]
        return f"{text} ({fit.reason})" if fit.reason else text

    def cancel_run(self) -> None:
        """Stop the run after the current iteration; its last state is applied as one undo step (a Run
        still waiting for the alignment is dropped)."""
        if self.cancel_waiting():
            self.bench.status("Run cancelled before it started", 5000)
            return
        if self.running():
            self.run_ctrl.cancel()
            self.run_label.setText(f"{self.run_ctrl.label}: cancelling…")

    def abandon(self) -> None:
        """Cancel the current run without applying its result (a new run or a new project replaces it).
        A Run waiting for the alignment stays: the alignment's own outcome decides (a score taken back
        off replaces the project, and that Run then fails with the reason)."""
        ctrl = self.run_ctrl
        if ctrl is None:
            return
        self.run_ctrl = None
        ctrl.cancel()
        if ctrl.is_running():
            self.retired.append(ctrl)
        log.info("run %s abandoned", ctrl.label)
        self.display.end_live()
        self.loss_pane.discard_live()
        self.progress.setVisible(False)
        self.run_label.setText("")
        self.display.show_project_factors()
        self.bench.actions_changed.emit()

    def _on_run_snapshot(self, ctrl: RunController, ds: DisplaySnapshot) -> None:
        if ctrl is not self.run_ctrl:
            return  # an abandoned run still draining
        self.display.stats["snapshots"] += 1
        self.loss_pane.extend_live(ds.snap.losses)
        self.display.pending = ds
        snap = ds.snap
        if snap.n_iter != self.progress.maximum():  # a staged fit may end sooner (no struck group)
            self.progress.setRange(0, max(1, snap.n_iter))
        self.progress.setValue(snap.iteration)
        rate = snap.rate
        eta = (snap.n_iter - snap.iteration) / rate if rate > 0 else float("nan")
        loss = self.loss_pane.live_losses[-1] if self.loss_pane.live_losses else float("nan")
        eta_text = f" · ETA {eta:.1f} s" if math.isfinite(eta) and not snap.done else ""
        stage = STAGE_TEXT.get(snap.stage, snap.stage)
        if snap.n_stages > 1:  # staged: the stage and how far within it (overall: the progress bar)
            self.progress.setFormat(f"{snap.stage_index + 1}/{snap.n_stages} {stage.split(' ')[0]} %p%")
            where = f"{stage} {snap.stage_iteration}/{snap.stage_n_iter}"
        else:
            where = f"iteration {snap.iteration}/{snap.n_iter}"
        self.run_label.setText(f"{ctrl.label}: {where} · {rate:.1f} it/s{eta_text} · loss {loss:.4g}")
        if snap.done:
            self._finish_run(ctrl, ds)

    def _finish_run(self, ctrl: RunController, ds: DisplaySnapshot) -> None:
        ctrl.applied = True
        self.display.repaint_timer.stop()
        self.display.paint_pending()
        snap = ds.snap
        result = ctrl.result
        record = RunRecord(
            label=ctrl.label,
            model=ctrl.model,
            losses=list(ctrl.losses),
            n_iter=snap.iteration,
            stopped=snap.stopped or "finished",
            elapsed=snap.elapsed,
        )
        self.loss_pane.end_live(record.id)
        # One undo step: the factors, the run and — only where a staged fit's aligned notes reach beyond
        # the project's activation mask — that much more mask, so H stays 0 wherever the mask is and a
        # later Run keeps what the alignment found. The mask is never narrowed to the fit's own region:
        # MU keeps zeros at zero, so that would change no later fit, but it would show every cell the
        # aligned notes left out as painted on the H overlay and make later fits read it as a user edit.
        allow_H = None
        if result is not None:
            p = self.bench.project
            grow = (np.asarray(snap.H) > 0) & ~p.allow_H
            if grow.any():
                allow_H = p.allow_H | grow
                log.info("run %s: activation mask grown by %d cells (aligned notes)", ctrl.label, int(grow.sum()))
        self.bench.undo.push(
            ApplyRunResult(snap.W, snap.H, snap.W_E, record, text=f"run {record.label}", allow_H=allow_H)
        )
        self.progress.setVisible(False)
        how = {"cancelled": "cancelled after", "converged": "converged after"}.get(snap.stopped, "finished:")
        where = ""
        if snap.stopped == "cancelled" and snap.n_stages > 1:
            where = f" (in {STAGE_TEXT.get(snap.stage, snap.stage)})"
        self.run_label.setText(
            f"{record.label} {how} {snap.iteration} iterations{where} in {snap.elapsed:.1f} s ({snap.rate:.1f} it/s)"
        )
        log.info("run %s %s after %d iterations", record.label, record.stopped, snap.iteration)
        self.bench.actions_changed.emit()
        self.bench.run_finished.emit(record)

    def _on_run_failed(self, ctrl: RunController, message: str, details: str) -> None:
        if ctrl is not self.run_ctrl:
            return
        log.error("run %s failed: %s\n%s", ctrl.label, message, details)
        self.display.end_live()
        self.loss_pane.discard_live()
        self.progress.setVisible(False)
        self.run_label.setText(f"{ctrl.label} failed")
        p = self.bench.project
        if p is not None:  # the project was never touched: show it again
            self.display.refresh_factors()
            if self.bench.view.v_mode != MODE_V:
                self.display.show_V()
        self.bench.show_error("The run failed", p.title if p else "run", message, details)
        self.bench.run_failed.emit(message)

    def _on_run_thread_finished(self, ctrl: RunController) -> None:
        if ctrl is self.run_ctrl:
            self.run_ctrl = None
            self.display.repaint_timer.stop()
        if ctrl in self.retired:
            self.retired.remove(ctrl)
        ctrl.setParent(None)
        ctrl.deleteLater()
        self.bench.actions_changed.emit()

    def stop_runs(self) -> None:
        """Cancel every run and wait for its thread (each stops within one iteration)."""
        self.display.repaint_timer.stop()
        ctrls = [c for c in [self.run_ctrl, *self.retired] if c is not None]
        self.run_ctrl = None
        for c in ctrls:
            c.stop()
        self.retired = [c for c in self.retired if c.is_running()]
