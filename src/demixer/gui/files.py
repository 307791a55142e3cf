"""Opening recordings and scores (File menu): a new project from a recording (and its score), a score
for the current recording, re-analysis with the Parameters dock's settings, the recent-files list.
Bad files end in a dialog naming the file and the reason; the open project stays as it was.
"""

from __future__ import annotations

import dataclasses
import os
from functools import partial
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog

from demixer.gui import settings
from demixer.io.errors import InputError
from demixer.model.project import Project, RunParams

__all__ = ["FileController"]


class FileController(QObject):
    """File → Open audio / score / demo / recent, and Re-analyse, for one workbench."""

    def __init__(self, bench, *, params_pane, recent_menu) -> None:
        super().__init__(bench)
        self.bench = bench
        self.params_pane = params_pane
        self.recent_menu = recent_menu
        self.project_io = None  # gui/project_io.ProjectIO, set once it is installed
        self.aligner = None  # gui/alignment.AlignmentController: aligns an opened score in the background
        self.loading = False  # a recording is being read and analysed on the "open" lane
        recent_menu.aboutToShow.connect(self.rebuild_recent_menu)

    def open_demo(self) -> bool:
        from demixer import demo_paths

        audio, score = demo_paths()
        return self.open_audio(audio, score, align=False)  # the bundled score is aligned

    def open_demo_in_background(self, then=None):
        from demixer import demo_paths

        audio, score = demo_paths()
        return self.open_audio_in_background(audio, score, align=False, then=then)

    def open_audio(
        self, path: str | os.PathLike[str], score: str | os.PathLike[str] | None = None, *, align: bool = True
    ) -> bool:
        """Open a recording (and its score). On a bad file: a dialog, and the current project stays."""
        path = os.fspath(path)
        score = os.fspath(score) if score else None
        if path.lower().endswith(".demix"):  # a project (recent files, command line, drops)
            return self.project_io.open_project(path)
        self.bench.status(f"Opening {Path(path).name}…")
        try:
            audio = self.project_io.read_audio_checked(path)  # very long → asks; too short → InputError
        except InputError as exc:
            self.bench.show_error("Cannot open the recording", exc.path, exc.reason)
            return False
        if audio is None:  # the user cancelled (very long recording)
            return False
        notes = None
        if score:
            notes = self._read_notes(score, audio, clip=not (align and self.aligner is not None))
            if notes is None:
                return False
        try:
            project = self._make_project(audio, notes, score)
        except InputError as exc:
            self.bench.show_error("Cannot open the file", exc.path, exc.reason)
            return False
        except ValueError as exc:
            self.bench.show_error(
                "Cannot analyse the recording", score if score and "note" in str(exc) else path, str(exc)
            )
            return False
        self.bench.set_project(project)
        self.bench.add_recent(path, score)
        self.bench.status(
            f"Opened {Path(path).name}" + (f" with {Path(score).name}" if score else ""), 5000
        )
        if score and align:
            self._align(score, lambda: self._drop_score(project, audio, path))
        return True

    def open_audio_in_background(
        self, path: str | os.PathLike[str], score: str | os.PathLike[str] | None = None, *, align: bool = True,
        then=None,
    ):
        """Open a recording (and its score) like :meth:`open_audio`, but read, check and analyse it on the
        task bridge's ``"open"`` lane: the window stays live and says what it is doing (issue 18, item 13:
        at launch the window is shown first, the piece arrives after). ``then(ok)`` is called on the GUI
        thread once it is open (or failed). A recording that needs asking (very long), a project file or a
        score to align open as :meth:`open_audio` does. Returns the Task, or None when opened at once."""
        path = os.fspath(path)
        score = os.fspath(score) if score else None
        done = then or (lambda ok: None)
        if path.lower().endswith(".demix"):
            ok = self.open_audio(path, score, align=align)
            self.bench.loading_changed.emit("")
            done(ok)
            return None
        name = Path(path).name
        self.loading = True
        self.bench.status(f"Opening {name}…")
        self.bench.loading_changed.emit(f"reading {name}")
        clip = not (align and self.aligner is not None)
        scripted = self.bench.scripted

        def work(task):
            return _read_and_analyse(path, score, clip, scripted, task, self._make_project)

        ended = []

        def finish(ok: bool) -> None:
            if ended:
                return
            ended.append(ok)
            self.loading = False
            self.bench.loading_changed.emit("")
            done(ok)

        def arrived(result) -> None:
            kind = result[0]
            if kind == "ask":  # the user decides (very long recording): the ordinary way, with its dialog
                finish(self.open_audio(path, score, align=align))
                return
            if kind == "error":
                _, title, where, reason = result
                self.bench.status("")
                self.bench.show_error(title, where, reason)
                finish(False)
                return
            _, audio, project, messages = result
            self.bench.set_project(project)
            self.bench.add_recent(path, score)
            self.bench.status(f"Opened {name}" + (f" with {Path(score).name}" if score else ""), 5000)
            if messages:
                self.bench.status(f"{name}: {'; '.join(messages)}", 10000)
            if score and align:
                self._align(score, lambda: self._drop_score(project, audio, path))
            finish(True)

        def failed(message: str, details: str) -> None:
            self.bench.status("")
            self.bench.show_error("Cannot open the recording", path, message, details)
            finish(False)

        return self.bench.tasks.submit(
            "open", work, on_result=arrived, on_error=failed, name=f"open {name}",
            on_progress=lambda text: (self.bench.status(f"{text}…"), self.bench.loading_changed.emit(text)),
            on_done=lambda _task: finish(False),  # dropped: another file was opened meanwhile
        )

    def _align(self, score: str, revert) -> None:
        """Synchronise the score just applied to the recording, in the background (gui/alignment.py):
        kept when aligned already, warped as one undo step, or taken back off (``revert``) with a dialog
        when it does not match."""
        if self.aligner is not None:
            self.aligner.align(score, revert=revert)

    def _drop_score(self, project: Project, audio, path: str) -> None:
        """The score did not match: the recording alone (if that project is still the open one)."""
        if self.bench.project is not project:
            return
        try:
            self.bench.set_project(self._make_project(audio, None, None, stft=project.stft, run=project.run))
        except (InputError, ValueError) as exc:
            self.bench.show_error("Cannot open the recording", path, str(exc))

    def open_score(self, path: str | os.PathLike[str]) -> bool:
        """Re-initialise the current recording from a score."""
        path = os.fspath(path)
        if self.bench.project is None:
            self.bench.show_error("Cannot open the score", path, "open a recording first")
            return False
        notes = self._read_notes(path, self.bench.project.audio, clip=self.aligner is None)
        if notes is None:
            return False
        p = self.bench.project
        # the Parameters dock's tolerances; groups decided by the new score
        score = dataclasses.replace(self.params_pane.score_params(), split_pitch=None)
        try:
            project = self._make_project(p.audio, notes, path, stft=p.stft, score=score, run=p.run)
        except ValueError as exc:
            self.bench.show_error("Cannot use the score", path, str(exc))
            return False
        self.bench.set_project(project)
        if p.audio.path:
            self.bench.add_recent(p.audio.path, path)
        self._align(path, lambda: self.bench.set_project(p) if self.bench.project is project else None)
        return True

    def project_with_notes(self, project: Project, notes: list) -> Project:
        """``project``'s recording and settings initialised from ``notes`` (grouped; e.g. a drafted score)
        with the Parameters dock's tolerances, as an opened score is. Raises ValueError."""
        score = dataclasses.replace(self.params_pane.score_params(), split_pitch=None)
        return self._make_project(project.audio, notes, None, stft=project.stft, score=score, run=project.run)

    def _read_notes(self, score: str, audio, *, clip: bool = True) -> list | None:
        """The score's notes; ``clip``: cut to the recording (not when the score is to be aligned: at
        its notated tempo it may run past the end of the recording)."""
        try:
            notes, message = read_notes(score, audio, clip=clip)
        except InputError as exc:
            self.bench.show_error("Cannot use the score" if exc.reason.startswith("no notes fall") else
                                  "Cannot open the score", exc.path, exc.reason)
            return None
        if message:
            self.bench.status(message, 8000)
        return notes

    def _make_project(
        self, audio, notes, score_path, stft=None, score=None, run: RunParams | None = None
    ) -> Project:
        from demixer.engine.projects import project_from_audio
        from demixer.engine.separation import SeparationSettings

        base = SeparationSettings()
        run = run or RunParams(  # as `demixer separate`: every run default from SeparationSettings
            model=base.model, n_iter=base.n_iter, seed=base.seed, alpha=base.alpha, compress=base.compress,
            normalize=base.normalize,
        )
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
        return project_from_audio(audio, notes, settings, score_path=score_path)

    def reanalyse(self, stft, score) -> bool:
        """New analysis + initialisation of the current recording and score with these settings."""
        p = self.bench.project
        if p is None:
            return False
        try:
            project = self._make_project(
                p.audio, p.notes or None, p.score_path, stft=stft, score=score, run=p.run
            )
        except ValueError as exc:
            self.bench.show_error("Cannot re-analyse", p.audio.path or p.title, str(exc))
            return False
        self.bench.set_project(project)
        return True

    def ask_open_audio(self) -> None:
        if not self.project_io.maybe_save_changes():
            return
        from demixer.io.audio import SUPPORTED_AUDIO_SUFFIXES

        pattern = " ".join(f"*{s}" for s in SUPPORTED_AUDIO_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(self.bench.host, "Open audio", "", f"Audio ({pattern});;All files (*)")
        if path:
            self.open_audio(path)

    def ask_open_score(self) -> None:
        if not self.project_io.maybe_save_changes():
            return
        path, _ = QFileDialog.getOpenFileName(
            self.bench.host, "Open score", "", "Scores (*.mid *.midi *.csv *.musicxml *.xml *.mxl);;All files (*)"
        )
        if path:
            self.open_score(path)

    def ask_screenshot(self) -> None:
        start = os.path.join(settings.save_dir(), "demixer.png")
        path, _ = QFileDialog.getSaveFileName(self.bench.host, "Save window image", start, "PNG (*.png)")
        if not path:
            return
        if not self.bench.host.grab().save(path):
            self.bench.show_error("Cannot save the image", path, "the image could not be written")
        else:
            settings.set_save_dir(os.path.dirname(os.path.abspath(path)))

    def recent_files(self) -> list[tuple[str, str | None]]:
        return settings.recent_files()

    def rebuild_recent_menu(self) -> None:
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
        self.recent_menu.addAction("Clear list", lambda: settings.set_recent_files([]))


def read_notes(score: str, audio, *, clip: bool = True) -> tuple[list, str | None]:
    """A score's notes for ``audio`` and a status message (notes cut at its end), any thread; raises
    InputError (a bad score, or no note within the recording)."""
    from demixer.io.score import clip_notes, read_score

    notes = read_score(score)
    if not clip and notes:
        from demixer.engine.align import too_few_onsets

        if not too_few_onsets(notes):  # it will be aligned; one too small to align is clipped as before
            return notes, None
    notes, n_clipped, n_dropped = clip_notes(notes, audio.duration)
    if not notes:
        raise InputError(score, f"no notes fall within the recording's {audio.duration:.2f} s")
    message = None
    if n_clipped or n_dropped:
        message = (f"{Path(score).name}: runs past the end of the recording: {n_dropped} notes dropped, "
                   f"{n_clipped} shortened")
    return notes, message


def _read_and_analyse(path: str, score: str | None, clip: bool, scripted: bool, task, make_project):
    """The worker half of :meth:`FileController.open_audio_in_background` (no widget touched): ``("ask",)``
    when a very long recording needs the user's answer, ``("error", title, where, reason)`` for a bad
    file, else ``("ok", audio, project, messages)``."""
    import sys

    from demixer.engine.separation import SeparationSettings
    from demixer.io import limits
    from demixer.io.audio import read_audio

    name = Path(path).name
    task.progress(f"reading {name}")
    stft = SeparationSettings().stft  # what _make_project analyses a new recording with
    try:
        info = limits.probe_audio(path)
        if limits.estimate_memory(info.frames, info.sr, info.channels, stft) > limits.memory_limit():
            if not scripted:
                return ("ask",)
            for line in limits.audio_warnings(path, stft, limits.memory_limit()):
                print(f"demixer: warning: {line}", file=sys.stderr)
        audio = read_audio(path)
        limits.check_analysable(audio, stft)
    except InputError as exc:
        return ("error", "Cannot open the recording", exc.path, exc.reason)
    messages = [] if audio.samples.any() else ["the recording is silent"]
    notes = None
    if score:
        try:
            notes, message = read_notes(score, audio, clip=clip)
        except InputError as exc:
            title = "Cannot use the score" if exc.reason.startswith("no notes fall") else "Cannot open the score"
            return ("error", title, exc.path, exc.reason)
        if message:
            messages.append(message)
    if task.cancelled:
        return ("error", "Cannot open the recording", path, "cancelled")
    task.progress(f"analysing {name}")
    try:
        project = make_project(audio, notes, score)
    except InputError as exc:
        return ("error", "Cannot open the file", exc.path, exc.reason)
    except ValueError as exc:
        return ("error", "Cannot analyse the recording", score if score and "note" in str(exc) else path, str(exc))
    return ("ok", audio, project, messages)
