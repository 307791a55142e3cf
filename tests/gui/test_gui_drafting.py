"""File → Draft a score from the recording (issue 16): the dialog by keys, the draft in the background,
the drafted notes become the recording's score and the decomposition follows them."""

from __future__ import annotations

from PySide6.QtCore import Qt


def _draft_by_keys(qtbot, window, mode_steps: int, voices: int | None = None):
    ctrl = window.drafting
    assert ctrl.act.isEnabled()
    qtbot.keyClick(window, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: ctrl.dialog is not None and ctrl.dialog.isVisible(), timeout=5000)
    dlg = ctrl.dialog
    dlg.mode.setFocus()
    for _ in range(mode_steps):
        qtbot.keyClick(dlg.mode, Qt.Key.Key_Down)
    if voices is not None:
        assert dlg.voices.isEnabled()
        dlg.voices.setFocus()
        dlg.voices.selectAll()
        qtbot.keyClicks(dlg.voices, str(voices))
    qtbot.keyClick(dlg, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not dlg.isVisible(), timeout=5000)
    assert ctrl.busy() and not ctrl.act.isEnabled()  # one draft at a time, in the background
    qtbot.waitUntil(lambda: not ctrl.busy(), timeout=120_000)


def _components_follow(project):
    have = {(c.pitch, c.source) for c in project.components if c.kind == "pitch"}
    return {(n.pitch, n.group) for n in project.notes} <= have


def test_two_hands_drafted_by_keys_become_the_score_and_its_components(qtbot, window):
    before = window.bench.project
    _draft_by_keys(qtbot, window, mode_steps=2)
    p = window.bench.project
    assert p is not before and window.bench.errors == []
    assert p.score_path is None and len(p.notes) > 20
    assert {n.group for n in p.notes} == {"rh", "lh"}
    assert _components_follow(p)
    assert "drafted" in window.statusBar().currentMessage()
    assert f"score of {len(p.notes)} notes, no file" in window.display.corner.summary.text()
    assert window.drafting.act.isEnabled()


def test_two_voices_drafted_by_keys_are_chosen_again_by_timbre(qtbot, window):
    _draft_by_keys(qtbot, window, mode_steps=1, voices=2)
    p = window.bench.project
    assert window.bench.errors == []
    assert {n.group for n in p.notes} == {"voice1", "voice2"}
    assert _components_follow(p)
    assert "2 voices" in window.statusBar().currentMessage()


def test_a_silent_recording_gets_a_dialog_naming_it_and_keeps_its_project(qtbot, window, tmp_path):
    import numpy as np
    import soundfile as sf

    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(22050 * 3, dtype=np.float32), 22050)
    assert window.open_audio(str(path))
    before = window.bench.project
    window.bench.errors.clear()
    qtbot.keyClick(window, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: window.drafting.dialog is not None and window.drafting.dialog.isVisible(), timeout=5000)
    qtbot.keyClick(window.drafting.dialog, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not window.drafting.busy() and bool(window.bench.errors), timeout=60_000)
    assert window.bench.errors == [f"{path}: no notes found to draft a score from (is the recording silent?)"]
    assert window.bench.last_dialog is not None and str(path) in window.bench.last_dialog.informativeText()
    assert window.bench.project is before
