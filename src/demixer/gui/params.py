"""The Parameters dock: STFT, model, iterations, seed, score tolerances (DESIGN.md §4).

Invalid values are refused by the widgets themselves: spin boxes have ranges, the FFT size only accepts
even numbers, the hop cannot exceed half the FFT size. Run settings (model, iterations, seed) apply to the
next run at once; STFT and score settings need a new analysis and initialisation ("Re-analyse"),
which starts a new project from the same recording and score.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from demixer.core.constraints import ScoreParams, default_onset_policy
from demixer.engine.models import ALL_MODELS
from demixer.model.project import MAX_ITER, RunParams  # MAX_ITER: the spin box's and the loader's cap

if TYPE_CHECKING:
    from demixer.core.stft import STFTParams

__all__ = ["EvenSpinBox", "ParametersPane"]


class _Neutral:
    """STFT values for the widgets until the defaults are filled in (never shown as defaults)."""

    n_fft, hop, sr = 4096, 1024, 22050


def _default_settings():
    """SeparationSettings(): what opening a file uses (imports the engine: scipy)."""
    from demixer.engine.separation import SeparationSettings

    return SeparationSettings()


def _form_box(title: str) -> tuple[QGroupBox, QFormLayout]:
    """A titled group box with a compact form layout, as every section of the dock uses."""
    box = QGroupBox(title)
    form = QFormLayout(box)
    form.setContentsMargins(6, 4, 6, 4)
    form.setVerticalSpacing(3)
    return box, form


class EvenSpinBox(QSpinBox):
    """A spin box that accepts even numbers only (typed odd values are completed to the next even one)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSingleStep(2)

    def validate(self, text: str, pos: int):  # noqa: D401 - Qt's signature
        core = text.removeprefix(self.prefix()).removesuffix(self.suffix()).strip()
        if not core:
            return QValidator.State.Intermediate, text, pos
        if not core.isdigit():
            return QValidator.State.Invalid, text, pos
        v = int(core)
        if v > self.maximum():
            return QValidator.State.Invalid, text, pos
        if v % 2 or v < self.minimum():
            return QValidator.State.Intermediate, text, pos
        return QValidator.State.Acceptable, text, pos

    def fixup(self, text: str) -> str:
        core = text.removeprefix(self.prefix()).removesuffix(self.suffix()).strip()
        try:
            v = int(core)
        except ValueError:
            return str(self.value())
        v = min(max(v + (v % 2), self.minimum()), self.maximum() - self.maximum() % 2)
        return str(v)

    def setValue(self, v: int) -> None:  # noqa: N802 - Qt's name
        super().setValue(int(v) + int(v) % 2)


def _spin(lo: int, hi: int, value: int, suffix: str = "", tip: str = "") -> QSpinBox:
    w = QSpinBox()
    w.setRange(lo, hi)
    w.setValue(value)
    if suffix:
        w.setSuffix(suffix)
    w.setToolTip(tip)
    w.setAccelerated(True)
    return w


def _dspin(
    lo: float, hi: float, value: float, step: float, decimals: int, suffix: str = "", tip: str = ""
) -> QDoubleSpinBox:
    w = QDoubleSpinBox()
    w.setRange(lo, hi)
    w.setDecimals(decimals)
    w.setSingleStep(step)
    w.setValue(value)
    if suffix:
        w.setSuffix(suffix)
    w.setToolTip(tip)
    return w


class ParametersPane(QWidget):
    """Emits ``run_params_changed(RunParams)`` when model/iterations/seed change and
    ``reanalyse_requested(STFTParams, ScoreParams)`` when the user asks for a new analysis."""

    run_params_changed = Signal(object)
    reanalyse_requested = Signal(object, object)

    def __init__(self, parent: QWidget | None = None, *, tasks=None) -> None:
        super().__init__(parent)
        self._updating = False
        # Every default below is what opening a file uses (the engine's SeparationSettings, which is also
        # what `demixer separate` uses), never a literal: the empty start-up state showed Euclidean and
        # 2048/512 while a file opened with KL and 4096/1024 (issue 18, item 12). The widgets are made
        # with neutral values and filled from it: at once when the engine is loaded, else (``tasks``, the
        # window's task bridge, at launch) once it is imported off the GUI thread (issue 18, item 13: the
        # engine's scipy need not delay the first paint). A project's values (set_values) win.
        self._filled = False
        self._run = run0 = RunParams()
        self._score = sc0 = ScoreParams()
        st0 = _Neutral
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.setSpacing(6)

        run_box, f = _form_box("Run")
        self.model = QComboBox()
        for i, m in enumerate(ALL_MODELS):  # the one model list (engine/models.py)
            self.model.addItem(m.label, m.name)
            can = "staged fit from the score on every Run" if m.staged else "no staged fit: every Run refines"
            self.model.setItemData(i, f"{m.summary}; {can}", Qt.ItemDataRole.ToolTipRole)
        self.model.setCurrentIndex(max(0, self.model.findData(run0.model)))
        self.model.setToolTip(
            "NMF by multiplicative updates (Euclidean or KL), or a nonnegative autoencoder. With a score, the "
            "Run is the staged fit (as demixer separate); Run → Refine continues from the current state"
        )
        self.n_iter = _spin(1, MAX_ITER, run0.n_iter, tip="Iterations of the next run")
        self.seed = _spin(0, 2**31 - 1, run0.seed, tip="Seed for random initialisations (recordings without a score)")
        f.addRow("model", self.model)
        f.addRow("iterations", self.n_iter)
        f.addRow("seed", self.seed)
        lay.addWidget(run_box)

        stft_box, f = _form_box("STFT")
        self.n_fft = EvenSpinBox()
        self.n_fft.setRange(16, 32768)
        self.n_fft.setValue(st0.n_fft)
        self.n_fft.setToolTip("FFT size (window length) in samples; even")
        self.hop = _spin(
            1, st0.n_fft // 2, st0.hop, tip="Hop size in samples (at most half the FFT size: frames must overlap)"
        )
        self.sr = _spin(
            1000, 192_000, st0.sr, " Hz", "Analysis sample rate (the recording is resampled to it)"
        )
        self.sr.setSingleStep(50)
        self.n_fft.valueChanged.connect(lambda v: self.hop.setMaximum(max(1, int(v) // 2)))
        f.addRow("FFT size", self.n_fft)
        f.addRow("hop", self.hop)
        f.addRow("sample rate", self.sr)
        lay.addWidget(stft_box)

        score_box, f = _form_box("Score tolerances")
        self.tol_pitch = _dspin(
            0.005, 0.5, sc0.tol_pitch, 0.01, 3, tip="Relative width of each harmonic's band (0.05 ≈ ±50 cents)"
        )
        self.tol_note_pre = _dspin(
            0.0, 5.0, sc0.tol_note_pre, 0.05, 2, " s", "Activation allowed this long before each onset"
        )
        self.tol_note_post = _dspin(0.0, 5.0, sc0.tol_note_post, 0.05, 2, " s", "… and this long after each offset")
        self.tol_onset_pre = _dspin(
            0.0, 2.0, sc0.tol_onset_pre, 0.05, 2, " s", "Onset template allowed before each onset"
        )
        self.tol_onset_post = _dspin(0.0, 2.0, sc0.tol_onset_post, 0.05, 2, " s", "… and after it")
        self.onsets = QComboBox()
        self.onsets.addItems(["by instrument", "on", "off"])
        self.onsets.setToolTip("Onset templates: for struck/plucked instruments (default), always or never")
        f.addRow("pitch band", self.tol_pitch)
        f.addRow("note: before", self.tol_note_pre)
        f.addRow("note: after", self.tol_note_post)
        f.addRow("onset: before", self.tol_onset_pre)
        f.addRow("onset: after", self.tol_onset_post)
        f.addRow("onset templates", self.onsets)
        lay.addWidget(score_box)

        self.reanalyse = QPushButton("Re-analyse")
        self.reanalyse.setToolTip(
            "New analysis and initialisation with these STFT and score settings "
            "(clears the undo history and the run history)"
        )
        self.reanalyse.clicked.connect(self._request_reanalyse)
        lay.addWidget(self.reanalyse)
        lay.addStretch(1)

        self.model.currentIndexChanged.connect(self._run_changed)
        self.n_iter.valueChanged.connect(self._run_changed)
        self.seed.valueChanged.connect(self._run_changed)
        if tasks is None or "demixer.engine.separation" in sys.modules:
            self._fill_defaults()
        else:
            tasks.submit("defaults", lambda _task: _default_settings(), on_result=self._fill_defaults,
                         name="parameter defaults")

    def _fill_defaults(self, s0=None) -> None:
        """The values opening a file uses (SeparationSettings), unless a project's are shown already."""
        if self._filled:
            return
        s0 = s0 if s0 is not None else _default_settings()
        self.set_values(s0.stft, s0.score, RunParams(model=s0.model, n_iter=s0.n_iter, seed=s0.seed))

    def _ensure_filled(self) -> None:
        if not self._filled:
            self._fill_defaults()

    # ------------------------------------------------------------------ values
    def set_values(self, stft: STFTParams, score: ScoreParams, run: RunParams) -> None:
        self._filled = True
        self._updating = True
        try:
            self._run = run
            self._score = score
            i = self.model.findData(run.model)
            self.model.setCurrentIndex(max(0, i))
            self.n_iter.setValue(int(run.n_iter))
            self.seed.setValue(int(run.seed))
            self.sr.setValue(int(stft.sr))
            self.n_fft.setValue(int(stft.n_fft))
            self.hop.setMaximum(max(1, int(stft.n_fft) // 2))
            self.hop.setValue(int(stft.hop))
            self.tol_pitch.setValue(score.tol_pitch)
            self.tol_note_pre.setValue(score.tol_note_pre)
            self.tol_note_post.setValue(score.tol_note_post)
            self.tol_onset_pre.setValue(score.tol_onset_pre)
            self.tol_onset_post.setValue(score.tol_onset_post)
            ot = score.onset_templates
            self.onsets.setCurrentIndex(0 if callable(ot) else (1 if ot is True else 2 if ot is False else 0))
        finally:
            self._updating = False

    def run_params(self) -> RunParams:
        self._ensure_filled()
        return self._run.with_(
            model=self.model.currentData(), n_iter=self.n_iter.value(), seed=self.seed.value()
        )

    def stft_params(self) -> STFTParams:
        from demixer.core.stft import STFTParams  # scipy: imported when needed, not at start-up

        self._ensure_filled()
        n_fft = self.n_fft.value()
        return STFTParams(n_fft=n_fft, hop=max(1, min(self.hop.value(), n_fft // 2)), sr=self.sr.value())

    def score_params(self) -> ScoreParams:
        self._ensure_filled()
        onsets = {0: default_onset_policy, 1: True, 2: False}[self.onsets.currentIndex()]
        return dataclasses.replace(
            self._score,
            tol_pitch=self.tol_pitch.value(),
            tol_note_pre=self.tol_note_pre.value(),
            tol_note_post=self.tol_note_post.value(),
            tol_onset_pre=self.tol_onset_pre.value(),
            tol_onset_post=self.tol_onset_post.value(),
            onset_templates=onsets,
        )

    def _run_changed(self, *_):
        if self._updating:
            return
        self._run = self.run_params()
        self.run_params_changed.emit(self._run)

    def _request_reanalyse(self) -> None:
        self.reanalyse_requested.emit(self.stft_params(), self.score_params())
