"""Autosave and crash recovery: a recovery file is written after unsaved edits, removed by a clean save
or close, and offered (and restored) at the next launch — also after a real crash of another process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import shiboken6
import soundfile as sf

from demixer.model.edits import ArrayPatch, PatchEdit

SR = 8000


def tone(path, seconds=2.0, sr=SR):
    t = np.arange(int(sr * seconds)) / sr
    sf.write(path, (0.2 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), sr, subtype="FLOAT")
    return path


@pytest.fixture()
def rec_dir(tmp_path, monkeypatch):
    folder = tmp_path / "recovery"
    monkeypatch.setenv("DEMIXER_RECOVERY_DIR", str(folder))
    return folder


@pytest.fixture()
def make_window(qtbot, rec_dir):
    from demixer.gui.main_window import MainWindow

    made = []

    def make(track=True):
        w = MainWindow()
        if track:
            qtbot.addWidget(w)
        w.show()
        qtbot.waitExposed(w)
        made.append(w)
        return w

    yield make
    for w in made:
        if shiboken6.isValid(w):
            w.stop_runs()


def edit(window, value=0.75):
    p = window.project
    H = p.H.copy()
    H[0, :6] = value
    window.undo.push(PatchEdit([ArrayPatch.capture(p, "H", H)], text="paint"))


def recovery_files(folder):
    return sorted(folder.glob("*.demix")) if folder.is_dir() else []


def crash(window):
    """Lose a window without its close: no prompt, no clean-up (as a crash would)."""
    window.stop_runs()
    shiboken6.delete(window)


def test_autosave_writes_a_recovery_file_after_unsaved_edits(make_window, rec_dir, tmp_path, qtbot):
    w = make_window()
    assert w.open_audio(tone(tmp_path / "a.wav"))
    io = w.project_io
    io.set_autosave_interval(0.05)
    assert not io.autosave_timer.isActive()  # nothing to save yet
    edit(w)
    assert io.autosave_timer.isActive()
    qtbot.waitUntil(lambda: io.recovery_path().exists() and not io.autosave_pending(), timeout=10_000)
    assert recovery_files(rec_dir) == [io.recovery_path()]
    from demixer.io.project_file import load_project

    loaded = load_project(io.recovery_path())
    assert np.array_equal(loaded.project.H, w.project.H) and loaded.origin is None
    # a clean save removes it
    io.ask_save_path = lambda suggested: str(tmp_path / "a.demix")
    assert io.save()
    assert recovery_files(rec_dir) == []
    # undo makes the project differ from the file again: a new recovery file; a clean close removes it
    w.undo.undo()
    assert io.is_dirty()
    assert io.autosave_now(wait=True) == io.recovery_path()
    io.ask_async = lambda kind, title, text, info, buttons, default, then: then("discard")
    w.close()
    qtbot.waitUntil(lambda: not w.isVisible())
    assert recovery_files(rec_dir) == []


def test_after_a_crash_the_next_launch_offers_and_restores_the_edits(make_window, rec_dir, tmp_path, qtbot):
    a = make_window(track=False)
    assert a.open_audio(tone(tmp_path / "a.wav"))
    project_file = tmp_path / "saved.demix"
    a.project_io.ask_save_path = lambda suggested: str(project_file)
    assert a.project_io.save()
    edit(a, 0.5)
    H = a.project.H.copy()
    path = a.project_io.autosave_now(wait=True)
    assert path is not None and path.exists()
    crash(a)
    assert recovery_files(rec_dir) == [path]

    b = make_window()
    asked = []

    def ask(kind, title, text, info="", buttons=(), default=None):
        asked.append((kind, info))
        return "restore"

    b.project_io.ask = ask
    assert b.project_io.offer_recovery()
    assert asked[0][0] == "recover" and str(path) in asked[0][1]
    assert np.array_equal(b.project.H, H)
    assert b.project_io.is_dirty() and b.project_io.path == str(project_file)
    assert b.windowTitle() == "saved.demix* (a.wav) — Demixer"
    # the file now belongs to this window: not offered again, deleted by the next clean save
    assert recovery_files(rec_dir) == [b.project_io.recovery_path()]
    assert b.project_io.pending_recoveries() == []
    assert b.project_io.save()
    assert recovery_files(rec_dir) == []
    from demixer.io.project_file import load_project

    assert np.array_equal(load_project(project_file).project.H, H)


def test_declining_the_recovery_deletes_it(make_window, rec_dir, tmp_path):
    a = make_window(track=False)
    assert a.open_audio(tone(tmp_path / "a.wav"))
    edit(a)
    a.project_io.autosave_now(wait=True)
    crash(a)
    b = make_window()
    b.project_io.ask = lambda *args, **kwargs: "discard"
    assert not b.project_io.offer_recovery()
    assert recovery_files(rec_dir) == [] and b.project is None


def test_a_recovery_file_whose_audio_is_gone_is_kept_and_named(make_window, rec_dir, tmp_path):
    a = make_window(track=False)
    assert a.open_audio(tone(tmp_path / "a.wav"))
    edit(a)
    path = a.project_io.autosave_now(wait=True)
    crash(a)
    os.remove(tmp_path / "a.wav")
    b = make_window()
    b.project_io.ask = lambda *args, **kwargs: "restore"
    b.project_io.ask_audio_file = lambda project, expected: None
    assert not b.project_io.offer_recovery()
    assert path.exists() and str(path) in b.errors[-1] and "not found" in b.errors[-1]
    b.last_dialog.close()


def test_recovery_files_of_a_running_demixer_are_left_alone(make_window, rec_dir, tmp_path):
    rec_dir.mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        alive = rec_dir / f"recovery-{other.pid}-abcdef12.demix"
        alive.write_bytes(b"x")
        w = make_window()
        assert w.project_io.pending_recoveries() == []
    finally:
        other.kill()
        other.wait()
    assert w.project_io.pending_recoveries() == [alive]  # its process is gone now


CRASHING = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    from demixer.gui.app import make_application
    app = make_application()
    from demixer.gui.main_window import MainWindow
    from demixer.model.edits import ArrayPatch, PatchEdit
    w = MainWindow()
    w.show()
    assert w.open_audio(sys.argv[1])
    p = w.project
    H = p.H.copy()
    H[1, :10] = 0.125
    w.undo.push(PatchEdit([ArrayPatch.capture(p, "H", H)], text="paint"))
    w.project_io.set_autosave_interval(0.01)
    import time
    t0 = time.time()
    while not w.project_io.recovery_path().exists() or w.project_io.autosave_pending():
        app.processEvents()
        assert time.time() - t0 < 30
    np.save(sys.argv[2], p.H)
    os._exit(9)  # a crash: no close, no clean-up
    """
)

RESTORING = textwrap.dedent(
    """
    import sys
    from types import SimpleNamespace
    import numpy as np
    from PySide6.QtCore import QTimer
    from demixer.gui import app
    from demixer.gui.project_io import ProjectIO
    asked = []
    ProjectIO.ask = lambda self, kind, *a, **k: asked.append(kind) or "restore"
    offer = ProjectIO.offer_recovery

    def offer_and_check(self):
        restored = offer(self)
        w = self.win
        ok = restored and asked == ["recover"] and np.array_equal(w.project.H, np.load(sys.argv[1]))
        print("restored" if ok and self.is_dirty() else f"NOT restored {asked}")
        self.ask_async = lambda kind, title, text, info, buttons, default, then: then("discard")
        QTimer.singleShot(0, w.close)
        return restored

    ProjectIO.offer_recovery = offer_and_check
    sys.exit(app.run_app(SimpleNamespace(file=None, score=None, run=False, screenshot=None)))
    """
)


def test_a_real_crash_then_a_launch_restores_the_edits(tmp_path, rec_dir):
    audio = tone(tmp_path / "a.wav")
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "DEMIXER_RECOVERY_DIR": str(rec_dir),
    }
    expected = tmp_path / "H.npy"
    proc = subprocess.run(
        [sys.executable, "-c", CRASHING, str(audio), str(expected)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 9, proc.stderr[-2000:]
    assert len(recovery_files(rec_dir)) == 1
    proc = subprocess.run(
        [sys.executable, "-c", RESTORING, str(expected)], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "restored" in proc.stdout and "NOT" not in proc.stdout, proc.stdout + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert recovery_files(rec_dir) == []  # the launch took it over and its close (Discard) removed it
