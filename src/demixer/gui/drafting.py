"""File → Draft a score from the recording… (Ctrl+Shift+D): the score-free path of ``demixer separate``
in the window (DESIGN.md §2.7, issue 16).

A small dialog asks how the parts are to be found — chosen from the recording, N voices, or two hands —
then the draft is made on the ``"draft"`` lane (the window stays live; the status bar says what it is
doing): ``engine.draft.draft_score`` and, for voices, ``engine.draft.revoice`` (the voices chosen again
by their fitted timbres). The drafted notes, with the support notes and second candidates that
``separate`` without a score uses, become the score of the recording as an opened score does; the
summary line says what was drafted. So Run separates with what ``demixer separate MIX`` separates with,
and the note editor (E) corrects the draft. A recording changed meanwhile drops the draft; a failure is
a dialog naming the recording.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QSpinBox

__all__ = ["DraftController", "install_drafting", "MODES"]

#: the dialog's choices: label → (voices, hands); voices None with hands False: chosen from the audio
MODES = {
    "Choose from the recording": "auto",
    "Voices (soprano … bass for 4)": "voices",
    "Two hands (rh, lh)": "hands",
}


class DraftDialog(QDialog):
    """How to find the parts: a mode and, for voices, how many."""

    def __init__(self, parent) -> None:
        super().__init__(parent)
        self.setObjectName("draft_dialog")
        self.setWindowTitle("Draft a score from the recording")
        self.setMinimumWidth(420)  # the title in full
        form = QFormLayout(self)
        self.mode = QComboBox(self)
        self.mode.setObjectName("draft_mode")
        self.mode.addItems(list(MODES))
        self.voices = QSpinBox(self)
        self.voices.setObjectName("draft_voices")
        self.voices.setRange(1, 6)
        self.voices.setValue(4)
        self.voices.setEnabled(False)
        self.mode.currentIndexChanged.connect(lambda _i: self.voices.setEnabled(self.kind() == "voices"))
        form.addRow("Parts", self.mode)
        form.addRow("Voices", self.voices)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def kind(self) -> str:
        return MODES[self.mode.currentText()]

    def choice(self) -> tuple[int | None, bool]:
        """(voices, hands) for ``draft_score``."""
        kind = self.kind()
        return (int(self.voices.value()) if kind == "voices" else None), kind == "hands"


class DraftController(QObject):
    """The action, its dialog and the background draft for one window."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.bench = window.bench
        self.dialog: DraftDialog | None = None
        self.task = None
        self.act = QAction("&Draft a score from the recording…", window, shortcut=QKeySequence("Ctrl+Shift+D"))
        self.act.setToolTip("No score? Find the notes in the recording and give them to voices or hands "
                            "(as demixer separate without --score); then correct them with the Notes tool (E)")
        self.act.triggered.connect(self.ask)
        self.bench.actions.add("file.draft_score", self.act)
        menu = self.bench.actions.menu("file")
        acts = menu.actions()
        anchor = self.bench.actions.get("file.open_score")
        if anchor is not None and anchor in acts and acts.index(anchor) + 1 < len(acts):
            menu.insertAction(acts[acts.index(anchor) + 1], self.act)
        else:
            menu.addAction(self.act)
        self.bench.actions_changed.connect(self._update)
        self._update()

    def busy(self) -> bool:
        return self.task is not None

    def _update(self) -> None:
        self.act.setEnabled(self.bench.project is not None and not self.bench.running() and not self.busy())

    def ask(self) -> None:
        """The dialog (not modal-blocking: ``open()``); OK drafts."""
        if self.bench.project is None or self.busy():
            return
        io = getattr(self.window, "project_io", None)
        if io is not None and not io.maybe_save_changes():
            return
        self.dialog = DraftDialog(self.window)
        self.dialog.accepted.connect(lambda d=self.dialog: self.draft(*d.choice()))
        self.dialog.open()

    def draft(self, voices: int | None = None, hands: bool = False):
        """Draft a score of the open recording in the background; returns the Task (None: nothing open)."""
        project = self.bench.project
        if project is None:
            return None
        audio = project.audio
        where = audio.path or project.title
        from demixer.engine.separation import SeparationSettings

        settings = SeparationSettings().with_(stft=project.stft)

        def work(task):
            from demixer.engine.draft import draft_score, revoice

            task.progress("drafting a score: finding the notes")
            try:
                draft = draft_score(audio, voices=voices, hands=hands)
            except ValueError as exc:  # e.g. too short to analyse: the reason, not a traceback
                return str(exc)
            if not draft.notes:
                return "no notes found to draft a score from (is the recording silent?)"
            if draft.mode == "voices":
                task.progress("drafting a score: choosing the voices by their timbres")
            return revoice(draft, audio, settings)

        def arrived(draft) -> None:
            self._ended()
            if self.bench.project is not project:  # another recording was opened meanwhile
                return
            if isinstance(draft, str):
                self.bench.status("")
                self.bench.show_error("Cannot draft a score", where, draft)
                return
            self._apply(project, draft, where)

        def failed(message: str, details: str) -> None:
            self._ended()
            self.bench.status("")
            self.bench.show_error("Cannot draft a score", where, message, details)

        self.bench.status("Drafting a score from the recording…")
        self.task = self.bench.tasks.submit(
            "draft", work, on_result=arrived, on_error=failed, name="draft a score",
            on_progress=lambda text: self.bench.status(f"{text}…"),
            on_done=lambda _task: self._ended(),
        )
        self._update()
        return self.task

    def _ended(self) -> None:
        self.task = None
        self._update()

    def _apply(self, project, draft, where: str) -> None:
        try:
            new = self.window.files.project_with_notes(project, draft.for_separation())
        except ValueError as exc:
            self.bench.show_error("Cannot use the drafted score", where, str(exc))
            return
        self.bench.set_project(new)
        extra = len(draft.support) + len(draft.second)
        more = f" + {extra} guesses for the separation" if extra else ""
        self.bench.status(f"{draft.summary()}{more}; correct them with the Notes tool (E), then Run", 15000)


def install_drafting(window: Any) -> DraftController:
    return DraftController(window)
