"""Without PortAudio (or without an output device) the app still works: the transport is disabled and
says why, runs and exports work, and ``demixer separate`` never touches sounddevice."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import demixer.audio.player as player_mod
from demixer.io.audio import read_audio


@pytest.fixture
def no_portaudio(monkeypatch):
    def missing():
        raise OSError("cannot load library 'libportaudio.so.2': no such file")

    monkeypatch.setattr(player_mod, "_import_sounddevice", missing)


@pytest.fixture
def isolated_settings(qapp, tmp_path):
    from PySide6.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "qsettings"))
    qapp.setOrganizationName("DemixerTests")
    qapp.setApplicationName("DemixerTests")


def test_window_without_portaudio_disables_the_transport_and_still_runs(
    no_portaudio, isolated_settings, qtbot, tmp_path
):
    from demixer.gui.main_window import MainWindow
    from demixer.gui.mixer import MODE_SOURCES

    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    assert w.open_demo()
    a = w.audition
    assert not a.available and "PortAudio" in a.reason
    bar = a.bar
    for action in (bar.act_play, bar.act_stop, bar.act_loop):
        assert not action.isEnabled()
        assert "Playback unavailable" in action.toolTip() and "libportaudio2" in action.toolTip()
    assert not bar.slider.isEnabled()
    assert bar.unavailable_action.isVisible() and "PortAudio" in bar.unavailable.text()
    assert a.unavailable_label.isVisible() and "PortAudio" in a.unavailable_label.text()
    # Space does nothing harmful
    w.v_pane.setFocus()
    from PySide6.QtCore import Qt

    qtbot.keyClick(w.v_pane, Qt.Key.Key_Space)
    a.play()
    assert not a.player.playing and a.player._stream is None
    # a run in the window works, and the sources still follow it (for export and the Listen dock)
    a.panel.set_mode(MODE_SOURCES)
    with qtbot.waitSignal(w.run_finished, timeout=60_000) as blocker:
        assert w.start_run(n_iter=10) is not None
    record = blocker.args[0]
    assert record.n_iter == 10 and w.project.runs == [record]
    written = a.exporter.export_stems(tmp_path / "stems")
    back = [read_audio(f) for f in written]
    np.testing.assert_allclose(sum(b.samples for b in back), w.project.audio.samples, atol=2e-5)
    w.close()


def test_playback_failing_at_play_time_disables_the_transport_with_the_reason(isolated_settings, qtbot, monkeypatch):
    from demixer.gui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    assert w.open_demo()
    a = w.audition
    a.set_available(True, "")

    def fail():
        raise player_mod.PlaybackUnavailable("cannot open the audio output: device busy")

    monkeypatch.setattr(a.player, "play", fail)
    a.play()
    assert not a.available and not a.bar.act_play.isEnabled()
    assert "device busy" in a.bar.act_play.toolTip()
    w.close()


_BLOCK_SOUNDDEVICE = textwrap.dedent(
    """
    import sys

    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name == "sounddevice" or name.startswith("sounddevice."):
                raise ImportError("sounddevice is blocked in this test")
            return None

    sys.meta_path.insert(0, _Block())
    from demixer.cli.main import main
    code = main(sys.argv[1:])
    assert "sounddevice" not in sys.modules, "sounddevice was imported"
    assert "PySide6" not in sys.modules, "Qt was imported"
    sys.exit(code)
    """
)


def test_cli_separate_never_needs_sounddevice(tmp_path: Path, demo_audio_path, demo_score_path):
    import soundfile as sf

    audio = read_audio(demo_audio_path)
    crop = tmp_path / "crop.wav"
    sf.write(crop, audio.samples[:, : 3 * audio.sr].T, audio.sr, subtype="FLOAT")
    from demixer.io.score import clip_notes, read_score, write_score_csv

    notes, _, _ = clip_notes(read_score(demo_score_path), 3.0)
    score = tmp_path / "crop.csv"
    write_score_csv(score, notes)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-c", _BLOCK_SOUNDDEVICE, "separate", str(crop), "--score", str(score), "--out", str(out),
         "--iters", "5", "--quiet"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    files = sorted(out.glob("*.wav"))
    assert [f.stem for f in files] == ["lh", "rh"]
    total = sum(read_audio(f).samples for f in files)
    np.testing.assert_allclose(total, read_audio(crop).samples, atol=2e-5)
