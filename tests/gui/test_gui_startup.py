"""Start-up (issue 18, item 13): the window is shown first, the piece is read and analysed on the task
bridge and arrives after, with a loading state meanwhile. The time target lives in
benchmarks/bench_gui.py (no timed assertions here)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import QEvent, QObject


@pytest.fixture()
def launched(qapp, qtbot, tmp_path, monkeypatch):
    """``launch(**args)``: what ``demixer [FILE]`` does (gui/app.start_window), in this process; the app's
    theme, exception hook and log handler are put back afterwards."""
    monkeypatch.setenv("DEMIXER_RECOVERY_DIR", str(tmp_path / "recovery"))
    monkeypatch.setenv("DEMIXER_LOG_DIR", str(tmp_path / "logs"))
    from demixer.gui import app as app_mod

    palette, style = qapp.palette(), qapp.style().name()
    made = []

    def launch(**kw):
        args = SimpleNamespace(file=None, score=None, run=False, screenshot=None, export_stems=None)
        for k, v in kw.items():
            setattr(args, k, v)
        paints: list[bool] = []  # per paint of the window: was the piece open?

        win_box = []

        class Watch(QObject):
            def eventFilter(self, obj, ev):  # noqa: N802
                if win_box and obj is win_box[0] and ev.type() == QEvent.Type.Paint:
                    paints.append(win_box[0].project is not None)
                return False

        watch = Watch()
        win, status = app_mod.start_window(args)
        win_box.append(win)
        win.installEventFilter(watch)  # before the first paint: start_window returns before the event loop runs
        qtbot.addWidget(win)
        made.append((win, status, watch))
        return win, status, paints

    yield launch
    for win, status, watch in made:
        win.removeEventFilter(watch)
        win.stop_runs()
        win.bench.tasks.wait()
        status["hook"].uninstall()
    qapp.setStyle(style)
    qapp.setPalette(palette)


def test_the_window_is_shown_before_the_demo_is_loaded_and_the_demo_arrives_after(launched, qtbot):
    win, status, paints = launched()
    # shown at once, empty, saying that it is loading
    assert win.isVisible() and win.project is None
    assert "loading" in win.corner.summary.text()
    assert win.progress.isVisible() and win.progress.maximum() == 0  # busy
    qtbot.waitUntil(lambda: len(paints) > 0, timeout=10_000)
    assert paints[0] is False  # the first paint came before the piece
    assert not win.act_run.isEnabled()
    # the piece arrives on the task bridge: panes filled, title set, loading state gone
    qtbot.waitUntil(lambda: status["loaded"], timeout=120_000)
    p = win.project
    assert p is not None and p.title == "mozart_k545_exposition.flac" and p.notes
    assert win.windowTitle() == f"{p.title} — Demixer"
    img = win.v_pane.image.image
    assert img is not None and img.shape == p.V.shape and np.isfinite(img).all() and img.std() > 0
    assert win.h_pane.image.image.shape == p.H.shape and win.w_pane.image.image.shape == p.W.shape
    assert "loading" not in win.corner.summary.text() and p.title in win.corner.summary.text()
    assert not win.progress.isVisible() and not win.files.loading
    assert win.act_run.isEnabled()
    assert list(win.audition.panel.rows) == ["lh", "rh"]
    # the empty Parameters dock was filled from the project
    assert win.params_pane.stft_params().n_fft == p.stft.n_fft


def test_a_file_opened_while_the_demo_loads_is_not_replaced_by_it(launched, qtbot, tmp_path):
    sr = 22050
    t = np.arange(sr * 2) / sr
    wav = tmp_path / "tone.wav"
    sf.write(wav, (0.2 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), sr)
    win, status, _ = launched()
    assert win.project is None
    qtbot.waitUntil(lambda: win.files.loading, timeout=10_000)  # the demo is being read/analysed
    assert win.open_audio(wav)  # the user opens another file meanwhile (synchronously)
    qtbot.waitUntil(lambda: not win.files.loading, timeout=120_000)
    qtbot.wait(50)
    assert win.project.title == "tone.wav" and not status["loaded"]
    assert not win.progress.isVisible()


def test_a_bad_file_at_launch_gives_a_dialog_and_an_empty_usable_window(launched, qtbot, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all" * 100)
    win, status, _ = launched(file=str(bad))
    qtbot.waitUntil(lambda: win.bench.last_dialog is not None, timeout=60_000)
    box = win.bench.last_dialog
    assert "bad.wav" in box.text() and str(bad) in box.informativeText()
    assert win.project is None and not status["loaded"] and not win.files.loading
    assert "loading" not in win.corner.summary.text() and not win.progress.isVisible()
    box.close()


def test_a_very_long_recording_at_launch_still_asks_first(launched, qtbot, tmp_path, monkeypatch):
    """A recording whose analysis would not fit the memory limit needs the user's answer: the background
    open hands it to the ordinary open, which asks (here: analyse the first part)."""
    from demixer.engine.separation import SeparationSettings
    from demixer.gui.project_io import ProjectIO
    from demixer.io.limits import estimate_memory

    sr = 22050
    path = tmp_path / "long.wav"
    t = np.arange(sr * 6) / sr
    sf.write(path, (0.2 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), sr)
    monkeypatch.setenv("DEMIXER_MEMORY_LIMIT", str(estimate_memory(6 * sr, sr, 1, SeparationSettings().stft) // 2))
    asked = []
    monkeypatch.setattr(ProjectIO, "ask", lambda self, kind, *a, **k: asked.append(kind) or "range")
    win, status, _ = launched(file=str(path))
    qtbot.waitUntil(lambda: status["loaded"], timeout=120_000)
    assert "long_audio" in asked
    assert win.project.title == "long.wav" and 1.0 <= win.project.duration < 6.0
    assert not win.files.loading and not win.progress.isVisible()
