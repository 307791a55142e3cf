"""Playback tests: real PortAudio -> ALSA ``file`` plugin (conftest.py) -> a capture file per stream.

What the ALSA file plugin does here (measured; DESIGN.md §7):
* it writes the stream's samples unconverted (float32, interleaved, the stream's channel count), bit-exact;
* before the first sample there are leading zero frames from PortAudio priming the device buffer (2048
  frames with a fixed blocksize, about 1000 with blocksize 0), and again after every restart;
* $AUDIO_CAPTURE is read when the stream (the PCM) is opened: each opened stream writes to the file named
  at that moment (``truncate true`` empties it), while stop/start of the same stream appends to it;
* there is no real-time pacing: a free-running stream produces ~10^8 frames/s, so a looping stream left
  running would fill the disk. Tests therefore play finite buffers, and tests that must act *during*
  playback use ``SteppedPlayer``, whose callback waits for the test to release each block before running
  the real callback on the real stream.

Test signals never contain an all-zero frame (sine plus offset), so the frames that were played are exactly
the nonzero frames of the capture.
"""

from __future__ import annotations

import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from support.stepped_player import SteppedPlayer, wait_until

from demixer.audio import PlaybackUnavailable, Player, mix_sources, playback_status
from demixer.audio import player as player_mod

TIMEOUT = 10.0  # seconds; only protects against hanging, never a timing assertion


# ---------------------------------------------------------------------------------------------- helpers


def _audio_reason() -> str:
    ok, reason = playback_status()
    return "" if ok else reason


needs_audio = pytest.mark.skipif(bool(_audio_reason()), reason=f"no playback here: {_audio_reason()}")


def wait_finished(player: Player) -> None:
    wait_until(lambda: not player.playing, "playback to finish")


def signal(channels: int, n: int, sr: int, seed: int = 0) -> np.ndarray:
    """(channels, n) float32, no zero frames: sines at different frequencies plus an offset."""
    t = np.arange(n) / sr
    rows = [
        0.3 + 0.1 * c + 0.2 * np.sin(2 * np.pi * (220.0 * (c + 1) + 17.0 * seed) * t + 0.3 * seed)
        for c in range(channels)
    ]
    return np.array(rows, dtype=np.float32)


def frames_of(x: np.ndarray) -> np.ndarray:
    """(channels, n) -> (n, channels), the layout the stream writes."""
    return np.ascontiguousarray(x.T)


class Capture:
    """The file the ALSA file plugin writes; ``use`` points $AUDIO_CAPTURE at a new file for the next
    stream that is opened."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self._tmp = tmp_path
        self._mp = monkeypatch
        self.path = self.use("capture")

    def use(self, name: str) -> Path:
        path = self._tmp / f"{name}.raw"
        self._mp.setenv("AUDIO_CAPTURE", str(path))
        self.path = path
        return path

    def read(self, channels: int, path: Path | None = None) -> np.ndarray:
        """All captured frames, (frames, channels) float32."""
        raw = np.fromfile(path or self.path, dtype=np.float32)
        assert raw.size % channels == 0, f"{raw.size} samples is not a whole number of {channels}-ch frames"
        return raw.reshape(-1, channels)

    def runs(self, channels: int, path: Path | None = None) -> list[np.ndarray]:
        """The maximal runs of nonzero frames, in order."""
        data = self.read(channels, path)
        nonzero = np.any(data != 0, axis=1).astype(np.int8)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], nonzero, [0]])))
        return [data[a:b] for a, b in zip(edges[::2], edges[1::2], strict=True)]

    def played(self, channels: int, path: Path | None = None) -> np.ndarray:
        """What the callback delivered: the nonzero frames, concatenated."""
        data = self.read(channels, path)
        return data[np.any(data != 0, axis=1)]

    def leading_zeros(self, channels: int, path: Path | None = None) -> int:
        data = self.read(channels, path)
        nonzero = np.flatnonzero(np.any(data != 0, axis=1))
        assert nonzero.size, "nothing was played"
        return int(nonzero[0])


@pytest.fixture
def capture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Capture:
    return Capture(tmp_path, monkeypatch)


def positions_with_loop(n_loop_frames: int, start: int, loop: tuple[int, int], n_total: int) -> np.ndarray:
    """Buffer frame indices played: ``n_loop_frames`` frames from ``start`` with the loop active, then on to
    the end of the buffer with the loop cleared."""
    ls, le = loop
    out = np.empty(n_loop_frames, dtype=np.int64)
    p = start
    for i in range(n_loop_frames):
        if p == le:
            p = ls
        out[i] = p
        p += 1
    return np.concatenate([out, np.arange(p, n_total)])


# ---------------------------------------------------------------------------------------------- status


def test_playback_status_true_here() -> None:
    try:
        import sounddevice  # noqa: F401
    except OSError:
        pytest.skip("libportaudio2 is not installed")
    assert playback_status() == (True, "")


def test_importing_audio_does_not_import_qt_or_sounddevice() -> None:
    code = (
        "import sys, demixer.audio\n"
        "assert 'PySide6' not in sys.modules, 'PySide6 imported'\n"
        "assert 'sounddevice' not in sys.modules, 'sounddevice imported eagerly'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_portaudio_status_false_and_player_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing_library():
        raise OSError("cannot load library 'libportaudio.so.2'")

    monkeypatch.setattr(player_mod, "_import_sounddevice", missing_library)
    ok, reason = playback_status()
    assert not ok
    assert "PortAudio" in reason and "libportaudio2" in reason
    player = Player()
    player.set_buffer(signal(1, 1000, 22050), 22050)
    with pytest.raises(PlaybackUnavailable, match="PortAudio"):
        player.play()
    assert not player.playing
    player.close()


def test_without_sounddevice_module_status_false(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # makes `import sounddevice` fail
    ok, reason = playback_status()
    assert not ok and "sounddevice" in reason
    player = Player()
    player.set_buffer(signal(2, 1000, 22050), 22050)
    with pytest.raises(PlaybackUnavailable):
        player.toggle()


def test_no_output_device_status_false(monkeypatch: pytest.MonkeyPatch) -> None:
    class PortAudioError(Exception):
        pass

    def query_devices(device=None, kind=None):
        raise PortAudioError("Error querying device -1")

    fake = SimpleNamespace(query_devices=query_devices)
    monkeypatch.setattr(player_mod, "_import_sounddevice", lambda: fake)
    assert playback_status() == (False, "no audio output device")
    player = Player()
    player.set_buffer(signal(1, 100, 8000), 8000)
    with pytest.raises(PlaybackUnavailable, match="no audio output device"):
        player.play()


# ---------------------------------------------------------------------------------------------- playback


@needs_audio
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("sr", [44100, 22050])
def test_plays_whole_buffer_bit_exact(capture: Capture, channels: int, sr: int) -> None:
    x = signal(channels, sr // 2 + 123, sr)  # not a whole number of blocks
    with Player() as player:
        player.set_buffer(x, sr)
        assert not player.playing and player.position_frames == 0
        player.play()
        wait_finished(player)
        assert player.position_frames == x.shape[1]
        assert player.position == pytest.approx(x.shape[1] / sr)
    data = capture.read(channels)
    lead = capture.leading_zeros(channels)
    assert 0 < lead < sr // 4  # PortAudio's priming silence (~43 ms)
    np.testing.assert_array_equal(data[lead : lead + x.shape[1]], frames_of(x))
    assert not data[lead + x.shape[1] :].any(), "only silence may follow the buffer"


@needs_audio
def test_each_stream_writes_the_capture_file_named_when_it_opens(capture: Capture) -> None:
    a, b = signal(1, 3000, 22050, seed=1), signal(1, 2000, 22050, seed=2)
    first = capture.path
    with Player() as player:
        player.set_buffer(a, 22050)
        player.play()
        wait_finished(player)
    second = capture.use("second")
    with Player() as player:
        player.set_buffer(b, 22050)
        player.play()
        wait_finished(player)
    np.testing.assert_array_equal(capture.played(1, first), frames_of(a))
    np.testing.assert_array_equal(capture.played(1, second), frames_of(b))


@needs_audio
def test_seek_before_play_starts_at_that_frame(capture: Capture) -> None:
    sr = 22050
    x = signal(2, 2 * sr, sr)
    with Player() as player:
        player.set_buffer(x, sr)
        player.seek(1.0)
        assert player.position_frames == sr
        player.play()
        wait_finished(player)
    np.testing.assert_array_equal(capture.played(2), frames_of(x)[sr:])


@needs_audio
def test_play_again_after_the_end_starts_from_the_beginning(capture: Capture) -> None:
    x = signal(1, 5000, 22050)
    with Player(blocksize=512) as player:
        player.set_buffer(x, 22050)
        player.play()
        wait_finished(player)
        player.play()  # same stream, restarted after it finished by itself
        wait_finished(player)
    runs = capture.runs(1)
    assert len(runs) == 2
    for run in runs:
        np.testing.assert_array_equal(run, frames_of(x))


@needs_audio
def test_buffer_is_copied_once(capture: Capture) -> None:
    x = signal(1, 4000, 22050)
    expected = frames_of(x).copy()
    with Player() as player:
        player.set_buffer(x, 22050)
        x[:] = 0.0  # the caller reuses its array
        player.play()
        wait_finished(player)
    np.testing.assert_array_equal(capture.played(1), expected)


@needs_audio
def test_loop_range_repeats_until_cleared(capture: Capture) -> None:
    sr, bs = 22050, 512
    x = signal(2, sr, sr)  # 1 s
    ls, le = round(0.25 * sr), round(0.4 * sr)
    player = SteppedPlayer(blocksize=bs)
    try:
        player.set_buffer(x, sr)
        player.set_loop(0.25, 0.4)
        assert player.loop == (0.25, 0.4)
        player.play()  # position 0 is outside the loop: starts at the loop start
        blocks = 20  # 10240 frames: 3307 frames of loop = more than 3 repetitions
        player.step(blocks)
        assert ls <= player.position_frames <= le
        player.clear_loop()
        player.run_free()
        wait_finished(player)
        assert player.position_frames == x.shape[1]
    finally:
        player.close()
    positions = positions_with_loop(blocks * bs, ls, (ls, le), x.shape[1])
    played = capture.played(2)
    np.testing.assert_array_equal(played, frames_of(x)[positions])
    assert np.count_nonzero(positions == ls) >= 3  # the loop start was played at least 3 times
    # and the capture really contains the loop range, repeated back to back
    loop_len = le - ls
    np.testing.assert_array_equal(played[:loop_len], played[loop_len : 2 * loop_len])


@needs_audio
def test_loop_entered_from_before_wraps_at_its_end(capture: Capture) -> None:
    sr, bs = 8000, 256
    x = signal(1, sr, sr)
    player = SteppedPlayer(blocksize=bs)
    try:
        player.set_buffer(x, sr)
        player.seek(0.1)
        player.play()
        player.set_loop(0.2, 0.3)  # set while playing, position before the loop
        player.step(10)
        player.clear_loop()
        player.run_free()
        wait_finished(player)
    finally:
        player.close()
    positions = positions_with_loop(10 * bs, round(0.1 * sr), (round(0.2 * sr), round(0.3 * sr)), sr)
    np.testing.assert_array_equal(capture.played(1), frames_of(x)[positions])


@needs_audio
def test_set_buffer_while_playing_crossfades_at_the_same_position(capture: Capture) -> None:
    sr, bs, crossfade_ms = 44100, 512, 10.0
    n = sr // 2
    a = signal(2, n, sr, seed=1)
    b = -signal(2, n, sr, seed=2)  # far from a everywhere, so the mixing weight is well defined
    xf = round(crossfade_ms * sr / 1000)
    player = SteppedPlayer(blocksize=bs, crossfade_ms=crossfade_ms)
    try:
        player.set_buffer(a, sr)
        player.play()
        player.step(4)
        swap_at = player.position_frames
        assert swap_at == 4 * bs
        player.set_buffer(b, sr)  # while playing: swapped in at the next block
        assert player.playing
        player.run_free()
        wait_finished(player)
        assert player.position_frames == n
    finally:
        player.close()
    played = capture.played(2)
    fa, fb = frames_of(a), frames_of(b)
    assert played.shape == fa.shape, "the swap neither skipped nor repeated frames"
    np.testing.assert_array_equal(played[:swap_at], fa[:swap_at])
    np.testing.assert_array_equal(played[swap_at + xf :], fb[swap_at + xf :])
    # in between, a linear crossfade from a to b
    region = slice(swap_at, swap_at + xf)
    weight = (played[region] - fa[region]) / (fb[region] - fa[region])
    ramp = np.arange(1, xf + 1) / (xf + 1)
    np.testing.assert_allclose(weight, np.repeat(ramp[:, None], 2, axis=1), atol=1e-4)


@needs_audio
def test_set_buffer_with_a_new_layout_while_playing_reopens_at_the_same_time(capture: Capture) -> None:
    sr_a, sr_b, bs = 44100, 22050, 1024
    a = signal(1, sr_a, sr_a, seed=1)
    b = signal(2, sr_b, sr_b, seed=2)
    first = capture.path
    player = SteppedPlayer(blocksize=bs)
    try:
        player.set_buffer(a, sr_a)
        player.play()
        player.step(3)
        t = player.position
        second = capture.use("reopened")  # the new stream writes a new file
        player.set_buffer(b, sr_b)  # stereo at another rate: stop, reopen, go on playing
        assert player.playing and player.samplerate == sr_b and player.channels == 2
        player.run_free()
        wait_finished(player)
    finally:
        player.close()
    np.testing.assert_array_equal(capture.played(1, first), frames_of(a)[: 3 * bs])
    resume = round(t * sr_b)
    assert resume == 3 * bs // 2
    np.testing.assert_array_equal(capture.played(2, second), frames_of(b)[resume:])


@needs_audio
def test_pause_stops_advancing_and_play_resumes_exactly(capture: Capture) -> None:
    sr, bs = 22050, 512
    x = signal(2, sr // 2, sr)
    player = SteppedPlayer(blocksize=bs)
    try:
        player.set_buffer(x, sr)
        assert player.toggle() is True
        player.step(5)
        player.pause()
        assert not player.playing
        paused_at = player.position_frames
        assert paused_at == 5 * bs
        time.sleep(0.05)  # nothing may move while paused
        assert player.position_frames == paused_at
        player.mode = "free"
        player.toggle()
        wait_finished(player)
        assert player.position_frames == x.shape[1]
    finally:
        player.close()
    runs = capture.runs(2)
    assert [len(r) for r in runs] == [paused_at, x.shape[1] - paused_at]
    np.testing.assert_array_equal(np.concatenate(runs), frames_of(x))


@needs_audio
def test_seek_while_playing_and_stop(capture: Capture) -> None:
    sr, bs = 22050, 512
    x = signal(1, sr, sr)
    player = SteppedPlayer(blocksize=bs)
    try:
        player.set_buffer(x, sr)
        player.play()
        player.step(2)
        player.seek(0.5)
        assert player.position_frames == sr // 2  # reported at once, applied at the next block
        player.step(2)
        assert player.position_frames == sr // 2 + 2 * bs
        player.stop()
        assert not player.playing and player.position_frames == 0
    finally:
        player.close()
    expected = np.concatenate([frames_of(x)[: 2 * bs], frames_of(x)[sr // 2 : sr // 2 + 2 * bs]])
    np.testing.assert_array_equal(capture.played(1), expected)


# ---------------------------------------------------------------------------------------------- no stream


def test_transport_state_without_a_stream() -> None:
    player = Player()
    assert player.position == 0.0 and player.frames == 0 and not player.playing
    player.play()  # nothing to play: no stream is opened
    assert player._stream is None
    player.set_buffer(signal(2, 1000, 8000), 8000)
    assert (player.channels, player.frames, player.samplerate) == (2, 1000, 8000)
    assert player.duration == pytest.approx(0.125)
    player.seek(0.05)
    assert player.position_frames == 400
    player.seek(-3)
    assert player.position_frames == 0
    player.seek(99)
    assert player.position_frames == 1000
    player.set_buffer(signal(1, 3000, 16000), 16000)  # a new rate keeps the time, clamped to the buffer
    assert player.position_frames == 2000
    player.stop()
    assert player.position_frames == 0
    with pytest.raises(ValueError):
        player.set_loop(0.2, 0.1)
    with pytest.raises(ValueError):
        player.set_loop(-1, 0.1)
    player.set_loop(0.01, 0.02)
    player.clear_loop()
    assert player.loop is None
    with pytest.raises(ValueError):
        player.set_buffer(np.zeros((2, 3, 4), np.float32), 8000)
    with pytest.raises(ValueError):
        player.set_buffer(np.zeros((1000, 2), np.float32), 8000)  # (n, channels) by mistake
    with pytest.raises(TypeError):
        player.set_buffer(np.zeros((1, 10), np.int16), 8000)
    with pytest.raises(ValueError):
        player.set_buffer(np.full((1, 10), np.nan, np.float32), 8000)
    with pytest.raises(ValueError):
        player.set_buffer(np.zeros((1, 10), np.float32), 0)
    player.close()


class _FakeActiveStream:
    """Lets set_buffer take the swap-while-playing path so the callback can be driven directly."""

    def __init__(self, samplerate: int, channels: int) -> None:
        self.samplerate, self.channels = samplerate, channels
        self.active, self.stopped, self.latency = True, False, 0.0

    def abort(self) -> None:
        self.active, self.stopped = False, True

    stop = abort

    def close(self, ignore_errors: bool = True) -> None:
        pass


def test_callback_allocates_no_audio_sized_memory() -> None:
    sr, bs, ch = 48000, 4096, 2  # one block of scratch would be 32 KiB
    player = Player(blocksize=bs, crossfade_ms=50.0)
    player.set_buffer(signal(ch, sr, sr, seed=1), sr)
    player.set_loop(0.1, 0.5)
    player._stream = _FakeActiveStream(sr, ch)
    out = np.empty((bs, ch), np.float32)
    player._callback(out, bs, None, None)  # warm up
    new = signal(ch, sr, sr, seed=2)
    tracemalloc.start()
    try:
        for i in range(40):  # wraps the loop several times
            if i in (3, 17):
                tracemalloc.stop()  # the swap request is built on the control thread
                player.set_buffer(new if i == 3 else -new, sr)
                tracemalloc.start()
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            player._callback(out, bs, None, None)
            peak = tracemalloc.get_traced_memory()[1]
            assert peak - before < 4096, f"block {i} allocated {peak - before} bytes"
    finally:
        tracemalloc.stop()
    assert player._buf is player._pending[0]  # both swaps were taken


def test_callback_at_the_end_outputs_silence_and_stops() -> None:
    player = Player(blocksize=256)
    x = signal(1, 1000, 8000)
    player.set_buffer(x, 8000)
    player._stream = _FakeActiveStream(8000, 1)
    out = np.full((256, 1), 7.0, np.float32)
    for _ in range(3):
        player._callback(out, 256, None, None)
    with pytest.raises(player_mod._Finished):
        player._callback(out, 256, None, None)
    np.testing.assert_array_equal(out[:232], frames_of(x)[768:])
    assert not out[232:].any()
    assert player._pos == 1000


def test_callback_swap_to_a_shorter_buffer_past_its_end_stops() -> None:
    player = Player(blocksize=256, crossfade_ms=5.0)
    player.set_buffer(signal(1, 2000, 8000), 8000)
    player._stream = _FakeActiveStream(8000, 1)
    out = np.empty((256, 1), np.float32)
    for _ in range(4):
        player._callback(out, 256, None, None)
    player.set_buffer(signal(1, 500, 8000, seed=3), 8000)
    with pytest.raises(player_mod._Finished):
        player._callback(out, 256, None, None)
    assert not out.any()
    assert player._pos == 500


def test_callback_swap_without_crossfade_switches_at_the_block_boundary() -> None:
    player = Player(blocksize=128, crossfade_ms=0.0)
    a, b = signal(2, 1000, 8000, seed=1), signal(2, 1000, 8000, seed=2)
    player.set_buffer(a, 8000)
    player._stream = _FakeActiveStream(8000, 2)
    out = np.empty((128, 2), np.float32)
    player._callback(out, 128, None, None)
    np.testing.assert_array_equal(out, frames_of(a)[:128])
    player.set_buffer(b, 8000)
    player._callback(out, 128, None, None)
    np.testing.assert_array_equal(out, frames_of(b)[128:256])


# ---------------------------------------------------------------------------------------------- mixing


def _stems() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal((2, 100)).astype(np.float32) for _ in range(3)]


def test_mix_gain_multiplies_and_sums() -> None:
    s = _stems()
    copies = [x.copy() for x in s]
    out = mix_sources(s, [1.0, 0.5, 2.0], [False] * 3, [False] * 3)
    assert out.dtype == np.float32 and out.shape == (2, 100)
    np.testing.assert_allclose(out, s[0] + 0.5 * s[1] + 2.0 * s[2], rtol=1e-6, atol=1e-6)
    for x, c in zip(s, copies, strict=True):
        np.testing.assert_array_equal(x, c)  # inputs untouched
    assert out is not s[0]


def test_mix_mute_removes() -> None:
    s = _stems()
    out = mix_sources(s, [1.0, 1.0, 1.0], [False, True, False], [False] * 3)
    np.testing.assert_allclose(out, s[0] + s[2], rtol=1e-6)


def test_mix_solo_plays_only_soloed_and_mute_wins() -> None:
    s = _stems()
    out = mix_sources(s, [1.0, 3.0, 1.0], [False] * 3, [False, True, False])
    np.testing.assert_allclose(out, 3.0 * s[1], rtol=1e-6)
    out = mix_sources(s, [1.0, 1.0, 1.0], [False, False, True], [True, False, True])
    np.testing.assert_allclose(out, s[0], rtol=1e-6)


def test_mix_nothing_audible_is_silence() -> None:
    s = _stems()
    out = mix_sources(s, [1.0, 0.0, 1.0], [True, False, True], [False] * 3)
    assert out.shape == (2, 100) and not out.any()
    out = mix_sources([s[0]], [1.0], [False], [False])
    np.testing.assert_array_equal(out, s[0])
    assert out is not s[0]


def test_mix_validates() -> None:
    s = _stems()
    with pytest.raises(ValueError):
        mix_sources([], [], [], [])
    with pytest.raises(ValueError):
        mix_sources(s, [1.0], [False] * 3, [False] * 3)
    with pytest.raises(ValueError):
        mix_sources([s[0], s[1][:, :50]], [1, 1], [False] * 2, [False] * 2)
    with pytest.raises(ValueError):
        mix_sources(s, [1.0, float("nan"), 1.0], [False] * 3, [False] * 3)
    assert mix_sources([x.astype(np.float64) for x in s], [1] * 3, [0] * 3, [0] * 3).dtype == np.float64
