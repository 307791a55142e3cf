"""Opening files: bad files give a dialog naming the file and the reason; scores re-initialise."""

from __future__ import annotations

import numpy as np
import soundfile as sf


def test_a_file_that_is_not_audio_gives_a_dialog_and_keeps_the_project(window, tmp_path):
    before = window.project
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not a wav file")
    assert not window.open_audio(bad)
    box = window.last_dialog
    assert box is not None and box.isVisible()
    assert "notes.wav" in box.text()
    assert str(bad) in box.informativeText() and "not an audio file" in box.informativeText()
    assert "Traceback" not in box.informativeText()
    assert window.project is before
    box.close()


def test_a_missing_file_names_the_file(window, tmp_path):
    missing = tmp_path / "gone.flac"
    assert not window.open_audio(missing)
    assert "file not found" in window.last_dialog.informativeText()
    assert str(missing) in window.last_dialog.informativeText()
    window.last_dialog.close()


def test_a_bad_score_names_the_score(window, tmp_path, demo_audio_path):
    score = tmp_path / "bad.csv"
    score.write_text("onset_s,offset_s,pitch,group\n0.0,1.0,300,lh\n")
    before = window.project
    assert not window.open_audio(demo_audio_path, score)
    assert str(score) in window.last_dialog.informativeText()
    assert window.project is before
    window.last_dialog.close()
    assert not window.open_score(score)
    window.last_dialog.close()


def test_a_score_past_the_end_of_the_audio_is_refused(window, tmp_path):
    score = tmp_path / "late.csv"
    score.write_text("onset_s,offset_s,pitch,group\n100.0,101.0,60,lh\n")
    assert not window.open_score(score)
    assert "no notes fall within" in window.last_dialog.informativeText()
    window.last_dialog.close()


def test_audio_without_a_score_gets_free_components(window, qtbot, tmp_path):
    sr = 8000
    t = np.arange(sr * 2) / sr
    path = tmp_path / "tone.wav"
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr)
    assert window.open_audio(path)
    p = window.project
    assert p.n_components == 16 and all(c.kind == "free" for c in p.components)
    assert p.duration == 2.0
    modes = [window.corner.mode.itemText(i) for i in range(window.corner.mode.count())]
    assert modes == ["V", "W·H", "source: residual"]
    assert window.undo.stack.count() == 0
    assert "tone.wav" in window.windowTitle()
    # recent files remember it
    assert window.recent_files()[0] == (str(path), None)
    window.files.rebuild_recent_menu()
    assert any("tone.wav" in a.text() for a in window.recent_menu.actions())


def test_opening_the_csv_score_reinitialises_the_recording(window, demo_score_path):
    csv = demo_score_path.with_suffix(".csv")
    first = window.project
    assert window.open_score(csv)
    p = window.project
    assert p is not first and p.audio is first.audio
    assert p.score_path == str(csv)
    assert [s.name for s in p.sources] == [s.name for s in first.sources]


def test_scripted_mode_reports_errors_on_stderr(qtbot, tmp_path, capsys):
    from demixer.gui.main_window import MainWindow

    w = MainWindow(scripted=True)
    qtbot.addWidget(w)
    bad = tmp_path / "x.flac"
    bad.write_bytes(b"\0" * 100)
    assert not w.open_audio(bad)
    err = capsys.readouterr().err
    assert err.startswith("demixer: error: ") and str(bad) in err and w.last_dialog is None
    assert len(err.strip().splitlines()) == 1
