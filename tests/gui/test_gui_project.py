"""Projects in the window: Save / Save As / Open, the unsaved mark, the close prompt, moved audio,
very long and too-short recordings, layout and view restore, shutdown with unsaved changes."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from demixer.io.project_file import load_project, read_project_file
from demixer.model.edits import ArrayPatch, PatchEdit

SR = 8000


def tone(path, seconds=2.0, freqs=(262.0, 392.0), sr=SR):
    t = np.arange(int(sr * seconds)) / sr
    sf.write(path, sum(0.2 * np.sin(2 * np.pi * f * t) for f in freqs).astype(np.float32), sr, subtype="FLOAT")
    return path


class Answers:
    """Stands in for ProjectIO.ask / ask_async: records each question, answers from ``answers[kind]``."""

    def __init__(self, **answers):
        self.answers = answers
        self.asked: list[tuple[str, str, str, str]] = []

    def ask(self, kind, title, text, informative="", buttons=(), default=None):
        self.asked.append((kind, title, text, informative))
        return self.answers[kind]

    def ask_async(self, kind, title, text, informative, buttons, default, then):
        self.asked.append((kind, title, text, informative))
        then(self.answers[kind])

    def kinds(self):
        return [a[0] for a in self.asked]


@pytest.fixture()
def new_window(qtbot, tmp_path, monkeypatch):
    """``new_window()``: a MainWindow (recovery files in tmp_path/recovery), shown; closed at teardown."""
    from demixer.gui.main_window import MainWindow

    monkeypatch.setenv("DEMIXER_RECOVERY_DIR", str(tmp_path / "recovery"))
    made = []

    def make():
        w = MainWindow()
        qtbot.addWidget(w)
        w.show()
        qtbot.waitExposed(w)
        made.append(w)
        return w

    yield make
    for w in made:
        try:
            w.stop_runs()
        except RuntimeError:  # already deleted
            pass


@pytest.fixture()
def win(new_window, tmp_path):
    w = new_window()
    score = tmp_path / "score.csv"
    score.write_text("onset_s,offset_s,pitch,group\n0.0,1.0,60,lh\n0.5,1.8,67,rh\n")
    assert w.open_audio(tone(tmp_path / "piece.wav"), score)
    return w


def edit_H(window, value=0.5, rows=(0, 1), cols=(0, 4)):
    p = window.project
    H = p.H.copy()
    H[rows[0] : rows[1], cols[0] : cols[1]] = value
    window.undo.push(PatchEdit([ArrayPatch.capture(p, "H", H)], text="paint"))


def test_title_shows_the_name_and_an_unsaved_mark_from_the_undo_stack(win, tmp_path):
    io = win.project_io
    assert win.windowTitle() == "piece.wav — Demixer"
    edit_H(win)
    assert win.windowTitle() == "piece.wav* — Demixer" and io.is_dirty()
    win.undo.undo()
    assert win.windowTitle() == "piece.wav — Demixer"  # back at the clean state
    win.undo.redo()
    path = tmp_path / "mine.demix"
    io.ask_save_path = lambda suggested: str(path) if suggested.endswith("piece.demix") else None
    assert io.save()  # no file yet: Save As, suggested next to the recording
    assert win.windowTitle() == "mine.demix (piece.wav) — Demixer"
    assert win.undo.stack.isClean() and path.exists()
    edit_H(win, 0.7)
    assert win.windowTitle().startswith("mine.demix* (piece.wav)")
    assert io.save() and not io.is_dirty()  # Save: same file, no question
    assert np.array_equal(load_project(path).project.H, win.project.H)
    assert win.recent_files()[0] == (str(path), None)


def test_save_and_open_restore_the_project_and_the_view_exactly(win, new_window, tmp_path, run_to_end):
    run_to_end(win, n_iter=3)
    edit_H(win, 0.25)
    win.set_log_frequency(True)
    win.set_db_range(60)
    win.v_pane.setRange(xRange=(0.2, 1.1), yRange=(7.0, 11.0), padding=0.0)
    win.h_pane.setYRange(0.0, 2.0, padding=0.0)
    win.w_pane.setXRange(0.5, 3.0, padding=0.0)
    win.h_pane.bar.setLevels((-70.0, -5.0))
    win.h_pane._on_user_levels()
    tools = getattr(getattr(win, "editing", None), "tools", None)
    if tools is not None:  # the painting tools, when the window has them
        tools.set_tool(sorted(t for t in tools.actions if t != tools.tool)[0])
        tools.set_brush_px(17.0)
    path = tmp_path / "p.demix"
    assert win.project_io.save_to(path)
    view = win.project_io.capture_view()
    assert read_project_file(path).view == view  # view.json: exactly what was captured

    other = new_window()
    assert other.open_audio(path)  # the recent list / command line route
    a, b = win.project, other.project
    for name in ("W", "H", "W_E", "allow_W", "allow_H", "W0", "H0"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None and y is None) or (x.dtype == y.dtype and x.tobytes() == y.tobytes()), name
    assert a.components == b.components and a.sources == b.sources and a.notes == b.notes
    assert (a.stft, a.score, a.run) == (b.stft, b.score, b.run)
    assert [(r.label, r.losses, r.n_iter, r.stopped) for r in a.runs] == [
        (r.label, r.losses, r.n_iter, r.stopped) for r in b.runs
    ]
    assert other.loss_pane.curve_points(b.runs[0].id) == 3
    got = other.project_io.capture_view()
    assert got["log_frequency"] and got["db_range"] == 60.0 and other.act_log.isChecked()
    assert got["levels"] == view["levels"] and got["levels"]["H"] == [-70.0, -5.0]
    for pane in ("V", "H", "W"):
        assert np.allclose(got["ranges"][pane], view["ranges"][pane], rtol=1e-6, atol=1e-6), pane
    if tools is not None:
        assert got["tool"] == view["tool"] == tools.tool and other.editing.tools.tool == tools.tool
        assert got["brush_px"] == 17.0 and other.editing.tools.brush_px == 17.0
    assert not other.project_io.is_dirty()
    assert other.windowTitle() == "p.demix (piece.wav) — Demixer"
    # the next run continues the numbering
    assert b.run_counter == a.run_counter


def test_listen_settings_and_the_loop_are_saved_with_the_view(win, new_window, tmp_path):
    """Mode, per-source gain/mute/solo and the loop go into view.json and come back on open."""
    from demixer.engine.audition import SourceMix
    from demixer.gui.mixer import MODE_SOURCES

    a = win.audition
    names = list(a.panel.rows)
    assert len(names) >= 2
    a.panel.set_source_settings(names[0], SourceMix(-6.5, False, True))
    a.panel.set_source_settings(names[1], SourceMix(3.0, True, False))
    a.set_loop_range(0.4, 1.3)
    path = tmp_path / "listen.demix"
    assert win.project_io.save_to(path)
    saved = read_project_file(path).view["listen"]
    assert saved["mode"] == MODE_SOURCES and saved["loop"] == pytest.approx([0.4, 1.3])
    assert saved["sources"][names[0]] == {"gain_db": -6.5, "mute": False, "solo": True}

    other = new_window()
    assert other.project_io.open_project(path)
    b = other.audition
    assert b.panel.mode == MODE_SOURCES
    assert b.panel.settings()[names[0]] == SourceMix(-6.5, False, True)
    assert b.panel.settings()[names[1]] == SourceMix(3.0, True, False)
    assert b.loop_range == pytest.approx((0.4, 1.3)) and b.bar.act_loop.isChecked()
    assert other.project_io.capture_view()["listen"] == saved


def test_closing_with_unsaved_changes_asks_and_cancel_keeps_the_window(win, qtbot):
    edit_H(win)
    win.close()
    box = win.project_io.prompt
    assert box is not None and box.isVisible() and win.isVisible()
    assert "Save the changes to piece.wav?" in box.text()
    assert {"&Save", "&Discard", "&Cancel"} <= {b.text() for b in box.buttons()}
    box.choice_buttons["cancel"].click()
    qtbot.waitUntil(lambda: win.project_io.prompt is None)
    assert win.isVisible() and win.project_io.is_dirty()
    win.close()
    win.project_io.prompt.choice_buttons["discard"].click()
    qtbot.waitUntil(lambda: not win.isVisible())


def test_closing_with_save_writes_the_file_then_closes(win, qtbot, tmp_path):
    edit_H(win)
    path = tmp_path / "closing.demix"
    win.project_io.ask_save_path = lambda suggested: str(path)
    answers = Answers(unsaved="save")
    win.project_io.ask_async = answers.ask_async
    H = win.project.H.copy()
    win.close()
    assert answers.kinds() == ["unsaved"]
    qtbot.waitUntil(lambda: not win.isVisible())
    assert np.array_equal(load_project(path).project.H, H)


def test_closing_mid_run_with_unsaved_changes_stops_the_run_once_confirmed(win, qtbot, capfd):
    edit_H(win)
    ctrl = win.start_run(n_iter=100_000)
    qtbot.waitUntil(lambda: len(ctrl.losses) > 0, timeout=20_000)
    answers = Answers(unsaved="cancel")
    win.project_io.ask_async = answers.ask_async
    win.close()
    assert win.isVisible() and ctrl.is_running()  # cancelled: the run goes on
    answers.answers["unsaved"] = "discard"
    win.close()
    qtbot.waitUntil(lambda: not win.isVisible())
    assert ctrl.thread.isFinished() and win.run_ctrl is None
    qtbot.wait(20)
    assert "Destroyed while thread" not in capfd.readouterr().err


def test_a_bad_project_gives_a_dialog_and_keeps_the_current_project(win, tmp_path):
    bad = tmp_path / "bad.demix"
    bad.write_bytes(b"PK\x03\x04 but not really")
    before = win.project
    assert not win.project_io.open_project(bad)
    box = win.last_dialog
    assert "bad.demix" in box.text() and str(bad) in box.informativeText()
    assert "not a zip archive" in box.informativeText() and "Traceback" not in box.informativeText()
    assert win.project is before
    box.close()


def test_moved_audio_is_asked_for_and_the_project_is_marked_unsaved(win, tmp_path):
    path = tmp_path / "p.demix"
    edit_H(win)
    assert win.project_io.save_to(path)
    H = win.project.H.copy()
    os.makedirs(tmp_path / "new")
    shutil.move(tmp_path / "piece.wav", tmp_path / "new" / "renamed.wav")
    io = win.project_io
    asked = []
    io.ask_audio_file = lambda project, expected: asked.append(expected) or None  # cancelled
    assert not io.open_project(path)
    assert asked == [str(tmp_path / "piece.wav")]
    assert "not found" in win.errors[-1] and str(path) in win.errors[-1]
    io.ask_audio_file = lambda project, expected: str(tmp_path / "new" / "renamed.wav")
    assert io.open_project(path)
    assert np.array_equal(win.project.H, H)
    assert io.is_dirty() and win.windowTitle() == "p.demix* (renamed.wav) — Demixer"
    assert io.path == str(path)


def test_a_different_recording_is_refused_unless_the_user_insists(win, tmp_path):
    path = tmp_path / "p.demix"
    assert win.project_io.save_to(path)
    tone(tmp_path / "piece.wav", freqs=(300.0, 500.0))  # same length, other content
    io = win.project_io
    answers = Answers(audio_mismatch="cancel")
    io.ask = answers.ask
    assert not io.open_project(path)
    kind, _, text, info = answers.asked[-1]
    assert kind == "audio_mismatch" and "piece.wav" in text and "sha256" in info
    assert "is not the one the project was saved with" in win.errors[-1]
    answers.answers["audio_mismatch"] = "open"
    assert io.open_project(path)
    assert io.is_dirty()  # the project no longer matches its file


def test_a_failed_save_keeps_the_old_file_and_the_unsaved_mark(win, tmp_path, monkeypatch):
    from demixer.io import project_file

    path = tmp_path / "p.demix"
    assert win.project_io.save_to(path)
    before = path.read_bytes()
    edit_H(win)

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(project_file.os, "replace", full_disk)
    assert not win.project_io.save()
    assert "No space left on device" in win.errors[-1] and str(path) in win.errors[-1]
    assert path.read_bytes() == before and win.project_io.is_dirty() and "p.demix*" in win.windowTitle()
    assert sorted(f for f in os.listdir(tmp_path) if f != "recovery") == ["p.demix", "piece.wav", "score.csv"]
    win.last_dialog.close()


def test_a_very_long_recording_asks_and_can_analyse_only_the_first_part(win, tmp_path, monkeypatch):
    from demixer.engine.separation import SeparationSettings
    from demixer.io.limits import estimate_memory

    path = tone(tmp_path / "long.wav", seconds=6.0)
    need = estimate_memory(6 * SR, SR, 1, SeparationSettings().stft)
    monkeypatch.setenv("DEMIXER_MEMORY_LIMIT", str(need // 2))
    io = win.project_io
    answers = Answers(long_audio="cancel")
    io.ask = answers.ask
    before = win.project
    assert not win.open_audio(path) and win.project is before
    kind, _, text, info = answers.asked[-1]
    assert kind == "long_audio" and "long.wav" in text and "MiB" in text and "DEMIXER_MEMORY_LIMIT" in info
    answers.answers["long_audio"] = "range"
    assert win.open_audio(path)
    assert 1.0 <= win.project.duration < 6.0
    assert win.project.audio.n_samples % SR == 0  # whole seconds
    # the project remembers the range: saved and opened again, the same frames are read
    assert io.save_to(tmp_path / "long.demix")
    assert load_project(tmp_path / "long.demix").project.audio.n_samples == win.project.audio.n_samples
    answers.answers["long_audio"] = "all"
    assert win.open_audio(path) and win.project.duration == 6.0


def test_a_recording_shorter_than_one_frame_is_refused_with_the_reason(win, tmp_path):
    path = tmp_path / "blip.wav"
    sf.write(path, np.full(100, 0.1, np.float32), SR)
    before = win.project
    assert not win.open_audio(path)
    assert win.project is before
    box = win.last_dialog
    assert str(path) in box.informativeText() and "too short to analyse" in box.informativeText()
    box.close()


def test_window_geometry_and_docks_are_restored(new_window, qtbot):
    a = new_window()
    a.resize(701, 650)  # the height is bounded below by the docks and above by the (offscreen) screen
    a.loss_dock.hide()
    assert a.width() == 701
    a.close()
    b = new_window()
    assert b.width() == 701
    assert not b.loss_dock.isVisible() and b.sources_dock.isVisible()


def test_menu_has_open_save_and_save_as_with_shortcuts(win):
    io = win.project_io
    file_menu = next(a.menu() for a in win.menuBar().actions() if a.text().replace("&", "") == "File")
    acts = file_menu.actions()
    assert io.act_open_project in acts and io.act_save in acts and io.act_save_as in acts
    assert acts.index(io.act_save) < acts.index(io.act_save_as) < acts.index(win.act_quit)
    assert io.act_save.shortcut().toString() == "Ctrl+S"
    assert io.act_save_as.shortcut().toString() == "Ctrl+Shift+S"


def test_opening_a_project_over_unsaved_changes_asks_first(win, tmp_path):
    path = tmp_path / "p.demix"
    assert win.project_io.save_to(path)
    edit_H(win)
    io = win.project_io
    answers = Answers(unsaved="cancel")
    io.ask = answers.ask
    before = win.project
    assert not io.open_project(path, check_unsaved=True)
    assert answers.kinds() == ["unsaved"] and win.project is before
    answers.answers["unsaved"] = "discard"
    assert io.open_project(path, check_unsaved=True)
    assert win.project is not before and not io.is_dirty()


def test_the_unsaved_prompt_comes_before_playback_shuts_down(win, qtbot):
    """ProjectIO's Close filter runs first: Cancel leaves playback alone; Discard then stops it."""
    audition = getattr(win, "audition", None)
    if audition is None:
        pytest.skip("no playback in this window")
    calls = []
    real = audition.shutdown
    audition.shutdown = lambda: (calls.append("shutdown"), real())[1]
    edit_H(win)
    answers = Answers(unsaved="cancel")
    win.project_io.ask_async = answers.ask_async
    win.close()
    assert win.isVisible() and calls == []
    answers.answers["unsaved"] = "discard"
    win.close()
    qtbot.waitUntil(lambda: not win.isVisible())
    assert calls == ["shutdown"]
