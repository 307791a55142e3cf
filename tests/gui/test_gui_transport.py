"""Audition in the window, heard through the real stack: window → Player → sounddevice/PortAudio → ALSA
``file`` plugin (tests/conftest.py) → a capture file, compared sample for sample with what should play.

No wall-clock assumptions: a finite buffer "plays" as fast as the null device takes it, so tests either
play to the end and read the capture, or substitute :class:`SteppedPlayer` (the real Player on a real
stream whose callback waits for the test to release each block) when they must act during playback.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication, QToolBar
from support.stepped_player import SteppedPlayer, wait_until

from demixer.audio import mix_sources, playback_status
from demixer.engine.audition import db_to_gain
from demixer.gui.mixer import MODE_MIXTURE, MODE_SOURCES
from demixer.model.project import Region

TIMEOUT = 20.0  # only protects against hanging, never a timing assertion


def _audio_reason() -> str:
    ok, reason = playback_status()
    return "" if ok else reason


needs_audio = pytest.mark.skipif(bool(_audio_reason()), reason=f"no playback here: {_audio_reason()}")


# ---------------------------------------------------------------------------------------------- helpers
class Capture:
    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.path = tmp_path / "capture.raw"
        monkeypatch.setenv("AUDIO_CAPTURE", str(self.path))

    def read(self, channels: int) -> np.ndarray:
        raw = np.fromfile(self.path, dtype=np.float32)
        assert raw.size % channels == 0
        return raw.reshape(-1, channels)

    def aligned(self, expected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Split the capture into (frames aligned with ``expected`` (channels, n) → (n, channels), the rest).

        The capture starts with the device's priming zeros; ``expected`` may start with zeros of its own,
        so the two are aligned on their first nonzero frames."""
        exp = np.ascontiguousarray(expected.T)
        data = self.read(exp.shape[1])
        c0 = int(np.flatnonzero(np.any(data != 0, axis=1))[0])
        e0 = int(np.flatnonzero(np.any(exp != 0, axis=1))[0])
        start = c0 - e0
        assert start >= 0
        return data[start : start + exp.shape[0]], data[start + exp.shape[0] :]

    def assert_played(self, expected: np.ndarray) -> None:
        got, rest = self.aligned(expected)
        np.testing.assert_array_equal(got, np.ascontiguousarray(expected.T))
        assert not rest.any(), "only silence may follow"

    def played(self, channels: int) -> np.ndarray:
        data = self.read(channels)
        return data[np.any(data != 0, axis=1)]


@pytest.fixture
def capture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Capture:
    return Capture(tmp_path, monkeypatch)


def play_to_end(window, qtbot) -> None:
    a = window.audition
    a.play()
    assert a.player.playing or a.player.position_frames == a.player.frames
    wait_until(lambda: not a.player.playing, "the end of the buffer")
    qtbot.waitUntil(lambda: not a.timer.isActive(), timeout=5000)


def sources_ready(window, qtbot) -> None:
    a = window.audition
    qtbot.waitUntil(a.stems_current, timeout=30_000)


def send_mouse(widget, pos: QPointF, kind: str, button=Qt.MouseButton.LeftButton, mods=Qt.KeyboardModifier.NoModifier):
    types = {"press": QMouseEvent.Type.MouseButtonPress, "move": QMouseEvent.Type.MouseMove,
             "release": QMouseEvent.Type.MouseButtonRelease}
    buttons = Qt.MouseButton.NoButton if kind == "release" else button
    ev = QMouseEvent(types[kind], QPointF(pos), QPointF(widget.mapToGlobal(pos)),
                     button if kind != "move" else Qt.MouseButton.NoButton, buttons, mods)
    QApplication.sendEvent(widget, ev)


def axis_point(pane, axis, t: float) -> QPointF:
    """The viewport point on ``axis`` (a bottom time axis of ``pane``) at time ``t``."""
    x = pane.vb.mapViewToScene(QPointF(t, 0.0)).x()
    y = axis.sceneBoundingRect().center().y()
    return QPointF(pane.mapFromScene(QPointF(x, y)))


def click_axis(pane, axis, t: float) -> None:
    pos = axis_point(pane, axis, t)
    send_mouse(pane.viewport(), pos, "press")
    send_mouse(pane.viewport(), pos, "release")


def write_stereo_piece(folder: Path, sr: int = 44100, dur: float = 2.0) -> tuple[Path, Path]:
    """A stereo 44.1 kHz recording of two 'hands' with a CSV score naming them."""
    n = int(sr * dur)
    t = np.arange(n) / sr
    low = sum(0.15 / m * np.sin(2 * np.pi * m * 130.81 * t) for m in range(1, 5)) * (t < 1.4)
    high = sum(0.12 / m * np.sin(2 * np.pi * m * 659.26 * t) for m in range(1, 4)) * (t >= 0.6)
    x = np.stack([0.8 * low + 0.4 * high, 0.4 * low + 0.8 * high]).T.astype(np.float32)
    audio = folder / "stereo.wav"
    sf.write(audio, x, sr, subtype="FLOAT")
    score = folder / "stereo.csv"
    score.write_text("onset_s,offset_s,pitch,group\n0.0,1.4,48,lh\n0.6,2.0,76,rh\n")
    return audio, score


@pytest.fixture
def stereo_window(window, tmp_path):
    audio, score = write_stereo_piece(tmp_path)
    assert window.open_audio(audio, score)
    p = window.project
    assert (p.audio.sr, p.audio.channels) == (44100, 2) and p.source_names() == ["lh", "rh"]
    return window


# ---------------------------------------------------------------------------------------------- layout
def test_the_window_has_a_transport_bar_a_listen_dock_and_an_export_menu(window):
    a = window.audition
    bars = {tb.objectName() for tb in window.findChildren(QToolBar)}
    assert "toolbar_transport" in bars
    assert a.dock.objectName() == "dock_listen" and a.dock.isVisible()
    assert a.bar.act_play.shortcut().toString() == "Space"
    assert a.bar.act_play in window.actions()  # window-wide
    assert list(a.panel.rows) == ["lh", "rh"]
    file_menu = next(x.menu() for x in window.menuBar().actions() if x.text().replace("&", "") == "File")
    assert any(x.menu() is a.exporter.menu for x in file_menu.actions())
    for pane in (window.v_pane, window.h_pane):
        assert any(item is a.playheads["v_pane" if pane is window.v_pane else "h_pane"]
                   for item in pane.plotItem.items)
    if a.available:
        assert a.bar.act_play.isEnabled() and not a.unavailable_label.isVisible()


# ---------------------------------------------------------------------------------------------- hearing
@needs_audio
def test_plays_the_mixture_bit_exact(window, qtbot, capture):
    a = window.audition
    assert a.panel.mode == MODE_MIXTURE
    play_to_end(window, qtbot)
    capture.assert_played(window.project.audio.samples)
    assert a.playheads["v_pane"].value() == pytest.approx(window.project.duration)


@needs_audio
def test_stereo_44k_mixture_stays_stereo_at_its_rate(stereo_window, qtbot, capture):
    a = stereo_window.audition
    assert (a.player.samplerate, a.player.channels) == (44100, 2)
    play_to_end(stereo_window, qtbot)
    capture.assert_played(stereo_window.project.audio.samples)


@needs_audio
def test_solo_button_plays_one_source(stereo_window, qtbot, capture):
    a = stereo_window.audition
    qtbot.mouseClick(a.panel.rows["rh"].solo, Qt.MouseButton.LeftButton)
    assert a.panel.mode == MODE_SOURCES  # touching a source selects "sources"
    sources_ready(stereo_window, qtbot)
    stems = a.stem_set.as_dict()
    assert set(stems) == {"lh", "rh"}
    play_to_end(stereo_window, qtbot)
    capture.assert_played(stems["rh"])
    # the sources add up to the recording, so rh alone is really not the mixture
    assert not np.allclose(stems["rh"], stereo_window.project.audio.samples, atol=1e-3)


@needs_audio
def test_muted_source_is_absent(stereo_window, qtbot, capture):
    a = stereo_window.audition
    a.panel.set_mode(MODE_SOURCES)
    qtbot.mouseClick(a.panel.rows["lh"].mute, Qt.MouseButton.LeftButton)
    sources_ready(stereo_window, qtbot)
    play_to_end(stereo_window, qtbot)
    s = a.stem_set.as_dict()
    capture.assert_played(mix_sources([s["lh"], s["rh"]], [1, 1], [True, False], [False, False]))


@needs_audio
def test_gain_change_is_heard(stereo_window, qtbot, capture):
    a = stereo_window.audition
    spin = a.panel.rows["lh"].spin
    spin.setValue(-6.0)  # keyboard tracking is off: a value set is committed at once
    assert a.panel.rows["lh"].slider.value() == -12
    assert a.panel.mode == MODE_SOURCES
    sources_ready(stereo_window, qtbot)
    play_to_end(stereo_window, qtbot)
    s = a.stem_set.as_dict()
    capture.assert_played(mix_sources([s["lh"], s["rh"]], [db_to_gain(-6.0), 1.0], [0, 0], [0, 0]))


@needs_audio
def test_both_sources_at_0_db_add_up_to_the_mixture(stereo_window, qtbot, capture):
    a = stereo_window.audition
    a.panel.set_mode(MODE_SOURCES)
    sources_ready(stereo_window, qtbot)
    play_to_end(stereo_window, qtbot)
    mix = a.expected_buffer()
    capture.assert_played(mix)
    np.testing.assert_allclose(mix, stereo_window.project.audio.samples, atol=2e-5)


@needs_audio
def test_click_on_the_time_axis_seeks_and_playback_starts_there(window, qtbot, capture):
    a = window.audition
    click_axis(window.v_pane, window.v_pane.time_axis, 12.0)
    t = a.player.position
    px = (window.v_pane.vb.viewRange()[0][1] - window.v_pane.vb.viewRange()[0][0]) / window.v_pane.vb.width()
    assert t == pytest.approx(12.0, abs=2 * px)  # within a couple of pixels of where we clicked
    assert a.playheads["v_pane"].value() == pytest.approx(t) and a.playheads["h_pane"].value() == pytest.approx(t)
    assert a.bar.slider.value() == round(t * 1000)
    frame = a.player.position_frames
    play_to_end(window, qtbot)
    capture.assert_played(window.project.audio.samples[:, frame:])


def test_click_on_h_time_axis_seeks_too_and_right_click_does_not(window, qtbot):
    a = window.audition
    click_axis(window.h_pane, window.h_pane.time_axis, 5.0)
    px = window.project.duration / window.h_pane.vb.width()
    assert a.player.position == pytest.approx(5.0, abs=2 * px)
    pos = axis_point(window.v_pane, window.v_pane.time_axis, 9.0)
    send_mouse(window.v_pane.viewport(), pos, "press", Qt.MouseButton.MiddleButton)
    send_mouse(window.v_pane.viewport(), pos, "release", Qt.MouseButton.MiddleButton)
    assert a.player.position == pytest.approx(5.0, abs=2 * px)  # only the left button seeks


def test_position_slider_seeks(window):
    a = window.audition
    a.bar.slider.setValue(7250)
    assert a.player.position_frames == round(7.25 * window.project.audio.sr)
    assert a.bar.time_label.text().strip().startswith("0:07.2")


def test_shift_drag_on_the_time_axis_selects_a_loop_range(window, qtbot):
    a = window.audition
    vp = window.v_pane.viewport()
    p0 = axis_point(window.v_pane, window.v_pane.time_axis, 4.0)
    p1 = axis_point(window.v_pane, window.v_pane.time_axis, 8.0)
    shift = Qt.KeyboardModifier.ShiftModifier
    send_mouse(vp, p0, "press", mods=shift)
    for k in range(1, 11):
        send_mouse(vp, p0 + (p1 - p0) * (k / 10), "move", mods=shift)
    send_mouse(vp, p1, "release", mods=shift)
    assert a.bar.act_loop.isChecked()
    lo, hi = a.loop_range
    px = window.project.duration / window.v_pane.vb.width()
    assert lo == pytest.approx(4.0, abs=3 * px) and hi == pytest.approx(8.0, abs=3 * px)
    assert a.player.loop == (lo, hi)
    for region in a._loop_regions:
        assert region.getRegion() == pytest.approx((lo, hi))
    a.bar.act_loop.setChecked(False)
    assert a.player.loop is None and not a._loop_regions


# ---------------------------------------------------------------------------------------------- during playback
@needs_audio
def test_space_toggles_play_and_pause_whatever_pane_has_focus(window, qtbot, capture):
    a = window.audition
    player = SteppedPlayer(blocksize=512)
    a.set_player(player)
    try:
        for widget in (window.v_pane, window.h_pane, a.panel.rows["lh"].spin):
            widget.setFocus()
            qtbot.keyClick(widget, Qt.Key.Key_Space)
            assert player.playing, widget
            assert a.timer.isActive() and a.bar.act_play.text() == "Pause"
            player.step(2)
            qtbot.keyClick(widget, Qt.Key.Key_Space)
            assert not player.playing, widget
            a.tick()
            assert a.bar.act_play.text() == "Play"
        assert player.position_frames == 6 * 512
    finally:
        player.close()
    x = window.project.audio.samples[0, : 6 * 512]
    got = capture.played(1)[:, 0]
    np.testing.assert_array_equal(got, x[x != 0])  # three runs of two blocks each, back to back


@needs_audio
def test_playhead_is_drawn_where_the_player_says(window, qtbot, capture):
    a = window.audition
    player = SteppedPlayer(blocksize=1024)
    a.set_player(player)
    try:
        a.seek(3.0)
        a.play()
        for _ in range(3):
            player.step(5)
            qtbot.waitUntil(lambda: a.playheads["v_pane"].value() == pytest.approx(a.playhead_time()), timeout=2000)
            expected = max(0.0, player.position - player.latency)
            for line in a.playheads.values():
                assert line.value() == pytest.approx(expected)
            assert a.playhead_time() == pytest.approx(expected)
        a.pause()
        paused = player.position
        for line in a.playheads.values():
            assert line.value() == pytest.approx(paused)  # paused: the device has played out what it had
        assert paused == pytest.approx(3.0 + 15 * 1024 / window.project.audio.sr)
    finally:
        player.close()


@needs_audio
def test_loop_range_repeats(window, qtbot, capture):
    a = window.audition
    sr = window.project.audio.sr
    bs = 512
    player = SteppedPlayer(blocksize=bs)
    a.set_player(player)
    x = window.project.audio.samples
    try:
        a.set_loop_range(2.0, 2.3)
        assert a.bar.act_loop.isChecked() and player.loop == (2.0, 2.3)
        a.play()  # position 0 is outside the loop: starts at the loop start
        blocks = 40  # 20480 frames > 3 repetitions of 6615
        player.step(blocks)
        a.bar.act_loop.setChecked(False)  # the Loop button clears it
        assert player.loop is None
        a.seek(18.5)
        player.run_free()
        wait_until(lambda: not player.playing, "the end")
    finally:
        player.close()
    ls, le = round(2.0 * sr), round(2.3 * sr)
    pos, out = ls, []
    for _ in range(blocks * bs):
        if pos == le:
            pos = ls
        out.append(pos)
        pos += 1
    positions = np.concatenate([np.array(out), np.arange(round(18.5 * sr), x.shape[1])])
    expected = x[:, positions]
    got, _ = capture.aligned(expected)
    np.testing.assert_array_equal(got, expected.T)
    assert np.count_nonzero(positions == ls) >= 3


@needs_audio
def test_solo_while_playing_switches_within_one_block_without_a_gap(stereo_window, qtbot, capture):
    a = stereo_window.audition
    bs = 512
    player = SteppedPlayer(blocksize=bs, crossfade_ms=10.0)
    a.set_player(player)
    a.panel.set_mode(MODE_SOURCES)
    sources_ready(stereo_window, qtbot)
    s = a.stem_set.as_dict()
    full = mix_sources([s["lh"], s["rh"]], [1, 1], [0, 0], [0, 0])
    try:
        a.play()
        player.step(8)
        swap_at = player.position_frames
        assert swap_at == 8 * bs
        qtbot.mouseClick(a.panel.rows["lh"].solo, Qt.MouseButton.LeftButton)
        assert player.playing  # swapped by reference, no restart
        player.step(1)  # the very next block already fades to the solo
        player.run_free()
        wait_until(lambda: not player.playing, "the end")
    finally:
        player.close()
    solo = s["lh"]
    n = full.shape[1]
    got, _ = capture.aligned(full)
    assert got.shape == (n, 2)  # nothing skipped or repeated
    np.testing.assert_array_equal(got[:swap_at], full.T[:swap_at])
    xf = round(10.0 * 44100 / 1000)
    np.testing.assert_array_equal(got[swap_at + xf :], solo.T[swap_at + xf :])
    # in between, a crossfade: every sample lies between the two buffers
    mid = slice(swap_at, swap_at + xf)
    lo = np.minimum(full.T[mid], solo.T[mid]) - 1e-6
    hi = np.maximum(full.T[mid], solo.T[mid]) + 1e-6
    assert np.all((got[mid] >= lo) & (got[mid] <= hi))


# ---------------------------------------------------------------------------------------------- stems follow W·H
def test_sources_follow_edits_and_live_runs(window, qtbot, run_to_end):
    a = window.audition
    a.panel.set_mode(MODE_SOURCES)
    sources_ready(window, qtbot)
    first = a.stem_set
    seen = []
    a.stems_ready.connect(lambda s: seen.append(s.key))
    ctrl, record = run_to_end(window, n_iter=30)
    sources_ready(window, qtbot)
    assert seen, "stems were recomputed for the run"
    assert a.stem_set.key != first.key
    assert a.stem_set.key == a.make_request().key  # the applied result's stems are in use
    # an edit of the factors (e.g. undo) is followed, debounced
    window.act_undo.trigger()
    qtbot.waitUntil(lambda: a.stem_set.key == first.key, timeout=10_000)  # back to the first stems
    sources_ready(window, qtbot)
    jobs = a.stats["stem_jobs"]
    window.project.write_region(Region("H", (0, 1), (0, 10)), np.full((1, 10), 5.0, np.float32))
    qtbot.waitUntil(lambda: a.stats["stem_jobs"] == jobs + 1, timeout=5000)
    sources_ready(window, qtbot)
    assert a.stem_set.key == a.make_request().key


def test_live_snapshots_request_stems_at_most_every_interval(window, qtbot, monkeypatch):
    import demixer.gui.transport as transport

    a = window.audition
    a.panel.set_mode(MODE_SOURCES)
    sources_ready(window, qtbot)
    requests = []
    real = a.request_stems
    monkeypatch.setattr(a, "request_stems", lambda W, H: (requests.append(time.perf_counter()), real(W, H)))
    monkeypatch.setattr(transport, "LIVE_INTERVAL_S", 0.3)
    with qtbot.waitSignal(window.run_finished, timeout=60_000):
        window.start_run(n_iter=200)
    requests = list(requests)  # those of the snapshots (the final one included), not the later debounce
    assert len(requests) >= 2  # at least the first snapshot and the final one
    gaps = np.diff(requests[:-1])  # the final snapshot always asks
    assert np.all(gaps >= 0.3 - 1e-3)
    a.panel.set_mode(MODE_MIXTURE)


def test_stem_requests_coalesce_one_job_at_a_time(window, qtbot):
    a = window.audition
    a.panel.set_mode(MODE_SOURCES)
    sources_ready(window, qtbot)
    p = window.project
    jobs = a.stats["stem_jobs"]
    H1 = p.H * 0.5
    H2, H3 = p.H * 0.25, p.H * 0.125
    a.request_stems(p.W, H1)  # starts a job
    a.request_stems(p.W, H2)  # waits
    a.request_stems(p.W, H3)  # replaces the waiting one
    assert a._next is not None and a._next.key == a.make_request(H=H3).key
    qtbot.waitUntil(a.stems_current, timeout=30_000)
    assert a.stats["stem_jobs"] == jobs + 2  # H1 and H3; H2 was never computed
    assert a.stem_set.key == a.make_request(H=H3).key
    # asking again for the running job drops a waiting request: the result wanted last is the one kept
    a.request_stems(p.W, H1 * 3)
    a.request_stems(p.W, H2 * 3)
    a.request_stems(p.W, H1 * 3)
    assert a._next is None
    qtbot.waitUntil(a.stems_current, timeout=30_000)
    assert a.stem_set.key == a.make_request(H=H1 * 3).key
