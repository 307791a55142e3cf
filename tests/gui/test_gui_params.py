"""The Parameters dock refuses invalid values and drives the project."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QValidator

from demixer.gui.params import MAX_ITER, EvenSpinBox, ParametersPane


def test_even_spin_box_refuses_odd_values(qtbot):
    box = EvenSpinBox()
    qtbot.addWidget(box)
    box.setRange(16, 4096)
    box.setValue(2048)
    assert box.validate("2047", 4)[0] == QValidator.State.Intermediate
    assert box.validate("2048", 4)[0] == QValidator.State.Acceptable
    assert box.validate("abc", 1)[0] == QValidator.State.Invalid
    assert box.validate("99999", 5)[0] == QValidator.State.Invalid
    assert box.validate("8", 1)[0] == QValidator.State.Intermediate  # below the minimum
    assert box.fixup("1023") == "1024"
    box.setValue(1023)
    assert box.value() == 1024
    box.show()
    box.lineEdit().selectAll()
    qtbot.keyClicks(box, "511")
    qtbot.keyClick(box, Qt.Key.Key_Return)
    assert box.value() % 2 == 0 and box.value() == 512


def test_ranges_and_hop_bounded_by_fft_size(qtbot):
    pane = ParametersPane()
    qtbot.addWidget(pane)
    assert pane.n_iter.minimum() == 1 and pane.n_iter.maximum() == MAX_ITER
    assert pane.seed.minimum() == 0
    assert pane.sr.minimum() >= 1000
    assert pane.tol_pitch.minimum() > 0 and pane.tol_pitch.maximum() < 1
    pane.hop.setValue(512)
    pane.n_fft.setValue(256)
    assert pane.hop.maximum() == 128 and pane.hop.value() == 128
    stft = pane.stft_params()
    assert (stft.n_fft, stft.hop) == (256, 128)
    models = [pane.model.itemData(i) for i in range(pane.model.count())]
    assert models == ["nmf", "nmf-kl", "nae", "nae-pgd"]
    assert pane.model.itemText(0) == "NMF (Euclidean)"


def test_run_settings_go_to_the_project(window):
    pane = window.params_pane
    assert pane.model.currentData() == window.project.run.model
    pane.model.setCurrentIndex(pane.model.findData("nae"))
    pane.n_iter.setValue(7)
    pane.seed.setValue(11)
    run = window.project.run
    assert (run.model, run.n_iter, run.seed) == ("nae", 7, 11)


def test_reanalyse_with_a_new_fft_size(window):
    pane = window.params_pane
    pane.n_fft.setValue(1024)
    pane.hop.setValue(256)
    pane.tol_note_post.setValue(0.25)
    pane.onsets.setCurrentIndex(2)  # off
    old = window.project
    pane.reanalyse.click()
    p = window.project
    assert p is not old and p.V.shape[0] == 513 and p.stft.hop == 256
    assert p.score.tol_note_post == 0.25 and p.score.onset_templates is False
    assert all(c.kind == "pitch" for c in p.components)
    assert window.v_pane.image.image.shape == p.V.shape
    assert pane.n_fft.value() == 1024  # the dock shows the new project's values


def test_a_fresh_dock_shows_the_dataclass_defaults(qtbot):
    """The defaults live in one place, the engine's SeparationSettings (what opening a file and
    `demixer separate` use): the dock reads them. The empty start-up state showed Euclidean and 2048/512
    while a file opened with KL and 4096/1024 (issue 18, item 12)."""
    from demixer.engine.separation import SeparationSettings
    from demixer.gui.params import ParametersPane

    pane = ParametersPane()
    qtbot.addWidget(pane)
    s0 = SeparationSettings()
    d, got = s0.score, pane.score_params()
    for name in ("tol_pitch", "tol_note_pre", "tol_note_post", "tol_onset_pre", "tol_onset_post"):
        assert getattr(got, name) == pytest.approx(getattr(d, name)), name
    st = pane.stft_params()
    assert (st.n_fft, st.hop, st.sr) == (s0.stft.n_fft, s0.stft.hop, s0.stft.sr)
    r = pane.run_params()
    assert (r.model, r.n_iter, r.seed) == (s0.model, s0.n_iter, s0.seed)
    assert pane.model.currentData() == s0.model
