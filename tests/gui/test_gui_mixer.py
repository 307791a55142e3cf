"""The Listen dock: one row per source (colour, name, mute, solo, gain), mixture/sources, and what the
player is given when the real buttons are clicked."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from demixer.audio import Player, mix_sources
from demixer.engine.audition import MIN_GAIN_DB, SourceMix, db_to_gain
from demixer.gui.mixer import MODE_MIXTURE, MODE_SOURCES, ListenPanel
from demixer.model.project import RESIDUAL_COLOUR


class SpyPlayer(Player):
    """The real Player (no stream is opened unless it plays), recording every buffer it is given."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.buffers: list[tuple[np.ndarray, int]] = []

    def set_buffer(self, samples, sr):
        self.buffers.append((np.array(samples, copy=True), int(sr)))
        super().set_buffer(samples, sr)


@pytest.fixture
def spy(window):
    player = SpyPlayer()
    window.audition.set_player(player)
    assert player.buffers, "the current buffer is handed to a new player"
    return player


def _ready(window, qtbot):
    qtbot.waitUntil(window.audition.stems_current, timeout=30_000)


def _last(spy) -> np.ndarray:
    return spy.buffers[-1][0]


def test_a_row_per_source_with_its_colour_and_name(window):
    panel = window.audition.panel
    p = window.project
    assert list(panel.rows) == p.source_names() == ["lh", "rh"]
    for name, row in panel.rows.items():
        assert row.name_label.text() == name
        assert row.colour == p.source_colour(name)
        assert p.source_colour(name).lower() in row.swatch.styleSheet().lower()
        assert row.settings() == SourceMix()
    assert panel.mode == MODE_MIXTURE and panel.mixture_button.isChecked()


def test_an_unassigned_component_adds_a_residual_row_and_settings_survive(window, qtbot):
    panel = window.audition.panel
    p = window.project
    qtbot.mouseClick(panel.rows["rh"].mute, Qt.MouseButton.LeftButton)
    p.components[0].source = ""
    p.components_changed.emit()
    assert list(panel.rows) == ["lh", "rh", "residual"]
    assert panel.rows["residual"].colour == RESIDUAL_COLOUR
    assert panel.rows["rh"].mute.isChecked()  # kept across the rebuild


def test_mixture_plays_the_recording_as_it_is(window, spy):
    samples, sr = spy.buffers[-1]
    np.testing.assert_array_equal(samples, window.project.audio.samples)
    assert sr == window.project.audio.sr


def test_solo_and_mute_buttons_change_what_the_player_mixes(window, qtbot, spy):
    panel = window.audition.panel
    qtbot.mouseClick(panel.rows["lh"].solo, Qt.MouseButton.LeftButton)
    assert panel.mode == MODE_SOURCES and panel.sources_button.isChecked()
    _ready(window, qtbot)
    s = window.audition.stem_set.as_dict()
    np.testing.assert_array_equal(_last(spy), s["lh"])
    # solo both: both play
    qtbot.mouseClick(panel.rows["rh"].solo, Qt.MouseButton.LeftButton)
    np.testing.assert_array_equal(_last(spy), mix_sources([s["lh"], s["rh"]], [1, 1], [0, 0], [1, 1]))
    # mute wins over solo
    qtbot.mouseClick(panel.rows["lh"].mute, Qt.MouseButton.LeftButton)
    np.testing.assert_array_equal(_last(spy), s["rh"])
    # un-solo everything: rh only (lh still muted)
    qtbot.mouseClick(panel.rows["lh"].solo, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.rows["rh"].solo, Qt.MouseButton.LeftButton)
    np.testing.assert_array_equal(_last(spy), s["rh"])
    n = len(spy.buffers)
    # back to the mixture
    qtbot.mouseClick(panel.mixture_button, Qt.MouseButton.LeftButton)
    assert panel.mode == MODE_MIXTURE
    np.testing.assert_array_equal(_last(spy), window.project.audio.samples)
    assert len(spy.buffers) == n + 1


def test_gain_slider_and_spin_box_agree_and_set_the_gain(window, qtbot, spy):
    panel = window.audition.panel
    panel.set_mode(MODE_SOURCES)
    _ready(window, qtbot)
    s = window.audition.stem_set.as_dict()
    row = panel.rows["rh"]
    row.slider.setValue(-24)  # half-dB steps: −12 dB
    assert row.spin.value() == -12.0
    np.testing.assert_array_equal(
        _last(spy), mix_sources([s["lh"], s["rh"]], [1.0, db_to_gain(-12.0)], [0, 0], [0, 0])
    )
    row.spin.setValue(MIN_GAIN_DB)
    assert row.spin.text() == "−∞ dB" and row.slider.value() == MIN_GAIN_DB * 2
    np.testing.assert_array_equal(_last(spy), s["lh"])


def test_unchanged_settings_give_the_player_nothing_new(window, qtbot, spy):
    panel = window.audition.panel
    panel.set_mode(MODE_SOURCES)
    _ready(window, qtbot)
    n = len(spy.buffers)
    panel.settings_changed.emit()
    panel.set_sources([(name, row.colour) for name, row in panel.rows.items()])
    assert len(spy.buffers) == n


def test_sources_play_only_once_ready_and_play_waits_for_them(window, qtbot, spy, monkeypatch):
    a = window.audition
    started = []
    monkeypatch.setattr(spy, "play", lambda: started.append(True))
    a.panel.set_mode(MODE_SOURCES)
    a.play()  # the sources are being computed: playback starts when they are ready
    assert started == [] and a.stem_set is None  # delivered through the event loop, not yet
    _ready(window, qtbot)
    assert started == [True]
    np.testing.assert_array_equal(_last(spy), a.stem_set.stems[0] + a.stem_set.stems[1])


def test_panel_alone(qtbot):
    panel = ListenPanel()
    qtbot.addWidget(panel)
    modes, changes = [], []
    panel.mode_changed.connect(modes.append)
    panel.settings_changed.connect(lambda: changes.append(panel.settings()))
    panel.set_sources([("a", "#ff0000"), ("b", "#00ff00")])
    panel.set_source_settings("b", SourceMix(gain_db=-3.0, solo=True))
    assert modes == [MODE_SOURCES]
    assert changes[-1] == {"a": SourceMix(), "b": SourceMix(-3.0, False, True)}
    panel.reset()
    assert panel.mode == MODE_MIXTURE and panel.settings()["b"] == SourceMix()
    with pytest.raises(ValueError):
        panel.set_mode("stems")
