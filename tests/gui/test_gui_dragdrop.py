"""Drag-and-drop of recordings, scores and projects onto the window; recent files across launches."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from demixer.model.edits import ArrayPatch, PatchEdit

SR = 8000


def tone(path, seconds=2.0, sr=SR):
    t = np.arange(int(sr * seconds)) / sr
    sf.write(path, (0.2 * np.sin(2 * np.pi * 262 * t)).astype(np.float32), sr)
    return path


@pytest.fixture()
def files(tmp_path):
    score = tmp_path / "score.csv"
    score.write_text("onset_s,offset_s,pitch,group\n0.0,1.0,60,lh\n0.5,1.5,72,rh\n")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    return {"audio": tone(tmp_path / "tone.wav"), "score": score, "text": notes, "other": tone(tmp_path / "b.flac")}


@pytest.fixture()
def win(qtbot, tmp_path, monkeypatch):
    from demixer.gui.main_window import MainWindow

    monkeypatch.setenv("DEMIXER_RECOVERY_DIR", str(tmp_path / "recovery"))
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.stop_runs()


def mime(*paths) -> QMimeData:
    m = QMimeData()
    m.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return m


def drag_enter(window, *paths) -> bool:
    data = mime(*paths)
    ev = QDragEnterEvent(
        QPoint(50, 50), Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    ev.setAccepted(False)
    QApplication.sendEvent(window, ev)
    return ev.isAccepted()


def drop(window, *paths) -> bool:
    """A whole drag: enter, move, drop (Qt delivers a drop to the widget that took the drag)."""
    data = mime(*paths)
    for cls in (QDragEnterEvent, QDragMoveEvent):
        ev = cls(
            QPoint(50, 50), Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
        )
        QApplication.sendEvent(window, ev)
    ev = QDropEvent(
        QPointF(50, 50), Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    ev.setAccepted(False)
    QApplication.sendEvent(window, ev)
    return ev.isAccepted()


def test_drag_enter_accepts_supported_files_only(win, files, tmp_path):
    assert win.acceptDrops()
    assert drag_enter(win, files["audio"])
    assert drag_enter(win, files["score"])
    assert drag_enter(win, tmp_path / "x.demix")
    assert drag_enter(win, files["text"], files["audio"])  # one usable file is enough
    assert not drag_enter(win, files["text"])
    assert not drag_enter(win, tmp_path)  # a folder


def test_dropping_a_recording_and_its_score_opens_them(win, files, qtbot):
    assert drop(win, files["audio"], files["score"])
    qtbot.waitUntil(lambda: win.project is not None, timeout=10_000)
    p = win.project
    assert p.audio.path == str(files["audio"]) and p.score_path == str(files["score"])
    assert [s.name for s in p.sources] == ["lh", "rh"]


def test_dropping_a_score_reinitialises_the_current_recording(win, files, qtbot):
    assert win.open_audio(files["audio"])
    first = win.project
    assert first.score_path is None
    assert drop(win, files["score"])
    qtbot.waitUntil(lambda: win.project is not first, timeout=10_000)
    assert win.project.audio is first.audio and win.project.score_path == str(files["score"])


def test_dropping_a_score_without_a_recording_says_what_to_do(win, files, qtbot):
    assert drop(win, files["score"])
    qtbot.waitUntil(lambda: bool(win.errors), timeout=10_000)
    assert str(files["score"]) in win.errors[-1] and "open a recording first" in win.errors[-1]


def test_dropping_a_project_opens_it(win, files, qtbot, tmp_path):
    assert win.open_audio(files["audio"], files["score"])
    path = tmp_path / "p.demix"
    assert win.project_io.save_to(path)
    assert win.open_audio(files["other"])
    assert drop(win, path)
    qtbot.waitUntil(lambda: win.project_io.path == str(path), timeout=10_000)
    assert win.project.audio.path == str(files["audio"]) and win.windowTitle().startswith("p.demix")


def test_dropping_an_unsupported_file_is_ignored_and_opening_it_is_explained(win, files):
    assert not drop(win, files["text"])
    assert win.errors == []
    assert not win.project_io.open_paths([str(files["text"])])
    assert str(files["text"]) in win.errors[-1] and "unsupported file type '.txt'" in win.errors[-1]
    win.last_dialog.close()


def test_dropping_onto_unsaved_changes_asks_first(win, files, qtbot):
    assert win.open_audio(files["audio"])
    p = win.project
    H = p.H.copy()
    H[0, :3] = 0.5
    win.undo.push(PatchEdit([ArrayPatch.capture(p, "H", H)], text="paint"))
    asked = []
    win.project_io.ask = lambda kind, *a, **k: asked.append(kind) or "cancel"
    assert not win.project_io.open_paths([str(files["other"])])
    assert asked == ["unsaved"] and win.project is p
    win.project_io.ask = lambda kind, *a, **k: asked.append(kind) or "discard"
    assert win.project_io.open_paths([str(files["other"])])
    assert win.project is not p


def test_recent_files_are_remembered_across_launches(win, files, qtbot, tmp_path):
    from demixer.gui.main_window import MainWindow

    assert drop(win, files["audio"])
    qtbot.waitUntil(lambda: win.project is not None, timeout=10_000)
    path = tmp_path / "p.demix"
    assert win.project_io.save_to(path)
    win.close()
    again = MainWindow()
    qtbot.addWidget(again)
    assert again.recent_files()[:2] == [(str(path), None), (str(files["audio"]), None)]
    again.files.rebuild_recent_menu()
    texts = [a.text() for a in again.recent_menu.actions()]
    assert "p.demix" in texts and "tone.wav" in texts
    action = next(a for a in again.recent_menu.actions() if a.text() == "p.demix")
    action.trigger()  # a project in the recent list opens as a project
    assert again.project_io.path == str(path)
