"""Tests for demixer.io.audio: decoding, errors, downmix, resampling and atomic writing."""

from __future__ import annotations

import dataclasses
import math
import pickle

import numpy as np
import pytest
import soundfile as sf

from demixer.io.audio import (
    SUPPORTED_AUDIO_SUFFIXES,
    Audio,
    analysis_signal,
    read_audio,
    resample,
    to_mono,
    write_audio,
)
from demixer.io.errors import InputError


def sine(freq: float, sr: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(sr * seconds))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * sr / len(x))


# ------------------------------------------------------------------------------------------- errors


def test_input_error_message_and_attributes(tmp_path):
    e = InputError(tmp_path / "a.wav", "file not found")
    assert isinstance(e, ValueError)
    assert str(e) == f"{tmp_path / 'a.wav'}: file not found"
    assert e.path == str(tmp_path / "a.wav")
    assert e.reason == "file not found"
    e2 = pickle.loads(pickle.dumps(e))
    assert (type(e2), str(e2), e2.path, e2.reason) == (InputError, str(e), e.path, e.reason)


# ------------------------------------------------------------------------------------------ reading


def test_wav_float_round_trip_is_exact(tmp_path):
    x = np.stack([sine(440, 44100, 0.5), sine(660, 44100, 0.5, 0.25)])
    path = tmp_path / "a.wav"
    sf.write(path, x.T, 44100, subtype="FLOAT")
    audio = read_audio(path)
    assert audio.sr == 44100
    assert audio.samples.shape == (2, 22050)
    assert audio.samples.dtype == np.float32
    assert audio.samples.flags.c_contiguous
    assert (audio.channels, audio.n_samples) == (2, 22050)
    assert audio.duration == pytest.approx(0.5)
    assert audio.path == str(path)
    np.testing.assert_array_equal(audio.samples, x)


def test_wav_pcm16_mono(tmp_path):
    x = sine(220, 22050, 0.3)
    path = tmp_path / "m.wav"
    sf.write(path, x, 22050, subtype="PCM_16")
    audio = read_audio(str(path))
    assert audio.samples.shape == (1, len(x))
    np.testing.assert_allclose(audio.samples[0], x, atol=1.0 / 32768 + 1e-7)


def test_stereo_channels_stay_separate(tmp_path):
    left = sine(440, 16000, 0.25)
    right = np.zeros_like(left)
    path = tmp_path / "s.wav"
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="PCM_24")
    audio = read_audio(path)
    assert audio.samples.shape == (2, len(left))
    np.testing.assert_allclose(audio.samples[0], left, atol=1e-6)
    assert np.all(audio.samples[1] == 0)


def test_eight_channels(tmp_path):
    n = 1000
    x = np.stack([np.full(n, (k + 1) / 10, np.float32) for k in range(8)])
    path = tmp_path / "8ch.wav"
    sf.write(path, x.T, 48000, subtype="FLOAT")
    audio = read_audio(path)
    assert audio.samples.shape == (8, n)
    np.testing.assert_array_equal(audio.samples[:, 0], np.arange(1, 9, dtype=np.float32) / 10)


def test_flac_round_trip(tmp_path):
    x = np.stack([sine(440, 48000, 0.4), sine(550, 48000, 0.4)])
    path = tmp_path / "a.flac"
    sf.write(path, x.T, 48000, subtype="PCM_24")
    audio = read_audio(path)
    assert (audio.sr, audio.samples.shape) == (48000, x.shape)
    np.testing.assert_allclose(audio.samples, x, atol=2.0**-23 + 1e-7)


def test_ogg_round_trip(tmp_path):
    x = sine(440, 44100, 1.0)
    path = tmp_path / "a.ogg"
    sf.write(path, x, 44100, format="OGG", subtype="VORBIS")
    audio = read_audio(path)
    assert (audio.sr, audio.channels) == (44100, 1)
    assert abs(audio.n_samples - len(x)) <= 2048
    n = min(audio.n_samples, len(x))
    err = np.sqrt(np.mean((audio.samples[0, :n] - x[:n]) ** 2))
    assert err < 0.05 * np.sqrt(np.mean(x**2))
    assert peak_hz(audio.samples[0], 44100) == pytest.approx(440, abs=2)


def test_mp3_is_decoded(tmp_path):
    if "MP3" not in sf.available_formats():
        pytest.skip("libsndfile without MP3")
    path = tmp_path / "a.mp3"
    sf.write(path, sine(440, 44100, 1.0), 44100, format="MP3", subtype="MPEG_LAYER_III")
    audio = read_audio(path)
    assert (audio.sr, audio.channels) == (44100, 1)
    assert abs(audio.n_samples - 44100) < 4096
    assert peak_hz(audio.samples[0], 44100) == pytest.approx(440, abs=2)


def test_aiff_round_trip(tmp_path):
    x = sine(300, 8000, 0.2)
    path = tmp_path / "a.aiff"
    sf.write(path, x, 8000, subtype="PCM_16")
    audio = read_audio(path)
    assert (audio.sr, audio.samples.shape) == (8000, (1, len(x)))
    assert ".aiff" in SUPPORTED_AUDIO_SUFFIXES and ".mp3" in SUPPORTED_AUDIO_SUFFIXES


def test_missing_file(tmp_path):
    path = tmp_path / "nope.wav"
    with pytest.raises(InputError) as info:
        read_audio(path)
    assert str(info.value) == f"{path}: file not found"
    assert info.value.path == str(path)


def test_directory(tmp_path):
    folder = tmp_path / "dir.wav"
    folder.mkdir()
    with pytest.raises(InputError, match="folder"):
        read_audio(folder)


@pytest.mark.parametrize(
    "content",
    [b"this is not audio at all" * 20, b"RIFF\x24\x00\x00\x00WAVEfmt ", b"", bytes(range(256)) * 4],
    ids=["text", "truncated-header", "zero-bytes", "binary"],
)
def test_garbage_is_input_error(tmp_path, content):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        read_audio(path)
    assert "not an audio file or unsupported format" in info.value.reason
    assert str(info.value).startswith(f"{path}: ")


def test_empty_wav(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros((0, 2), np.float32), 44100, subtype="PCM_16")
    with pytest.raises(InputError) as info:
        read_audio(path)
    assert info.value.reason == "audio is empty (0 samples)"


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(tmp_path, bad):
    x = sine(440, 8000, 0.1)
    x[100] = bad
    path = tmp_path / "nan.wav"
    sf.write(path, x, 8000, subtype="FLOAT")
    with pytest.raises(InputError) as info:
        read_audio(path)
    assert info.value.reason == "audio contains NaN or infinite samples"


# ---------------------------------------------------------------------------------------- the type


def test_audio_type_normalises_and_is_frozen():
    a = Audio(np.arange(6, dtype=np.float64), 100)
    assert a.samples.shape == (1, 6) and a.samples.dtype == np.float32
    assert a.path is None and a.duration == pytest.approx(0.06)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.sr = 5  # type: ignore[misc]
    assert a == a and a != Audio(np.arange(6), 100)  # identity equality, no array truth-value error
    with pytest.raises(ValueError):
        Audio(np.zeros((1, 2, 3)), 100)
    with pytest.raises(ValueError):
        Audio(np.zeros((1, 3)), 0)


# --------------------------------------------------------------------------------- mono, resampling


def test_to_mono_is_channel_mean():
    x = np.array([[1.0, 2.0, 3.0], [3.0, 0.0, -3.0]], np.float32)
    m = to_mono(x)
    assert m.dtype == np.float32 and m.shape == (3,)
    np.testing.assert_array_equal(m, [2.0, 1.0, 0.0])
    one = np.array([0.5, -0.5], np.float64)
    out = to_mono(one)
    assert out.dtype == np.float32 and out is not one
    np.testing.assert_array_equal(out, one)


@pytest.mark.parametrize(
    ("sr_from", "sr_to"), [(44100, 22050), (48000, 22050), (22050, 44100), (8000, 22050)]
)
def test_resample_length_and_frequency(sr_from, sr_to):
    x = sine(1000, sr_from, 1.3)
    y = resample(x, sr_from, sr_to)
    assert y.dtype == np.float32 and y.ndim == 1
    assert len(y) == math.ceil(len(x) * sr_to / sr_from)
    assert peak_hz(y, sr_to) == pytest.approx(1000, abs=sr_to / len(y) + 1)
    # amplitude is kept in the pass band
    assert np.max(np.abs(y[len(y) // 4 : -len(y) // 4])) == pytest.approx(0.5, abs=0.02)


def test_resample_along_last_axis_and_identity():
    x = np.stack([sine(500, 16000, 0.5), sine(700, 16000, 0.5)])
    y = resample(x, 16000, 8000)
    assert y.shape == (2, 4000)
    assert peak_hz(y[1], 8000) == pytest.approx(700, abs=3)
    same = resample(x, 16000, 16000)
    assert same is not x and same.dtype == np.float32
    np.testing.assert_array_equal(same, x)
    with pytest.raises(ValueError):
        resample(x, 0, 8000)


def test_analysis_signal_is_mono_at_analysis_rate():
    x = np.stack([sine(440, 44100, 1.0), sine(440, 44100, 1.0)])
    audio = Audio(x, 44100)
    y = analysis_signal(audio)
    assert y.shape == (22050,) and y.dtype == np.float32
    assert peak_hz(y, 22050) == pytest.approx(440, abs=1.5)
    y2 = analysis_signal(audio, sr=11025)
    assert y2.shape == (11025,)


# ------------------------------------------------------------------------------------------ writing


def test_write_wav_is_float_and_exact(tmp_path):
    a = sine(440, 22050, 0.5)
    b = sine(330, 22050, 0.5, 0.7)
    for name, x in (("a.wav", a), ("b.wav", b), ("mix.wav", a + b)):
        write_audio(tmp_path / name, x, 22050)
    assert sf.info(tmp_path / "a.wav").subtype == "FLOAT"
    ra, rb, rmix = (read_audio(tmp_path / n).samples for n in ("a.wav", "b.wav", "mix.wav"))
    assert ra.shape == (1, len(a))
    np.testing.assert_array_equal(ra + rb, rmix)  # stems written as WAV sum exactly to the mixture
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "b.wav", "mix.wav"]  # no temp files


def test_write_flac_is_pcm24_and_clips(tmp_path):
    x = np.stack([sine(440, 44100, 0.2), sine(440, 44100, 0.2)])
    x[0, 10] = 1.7  # out of range: must clip, not wrap around
    x[1, 10] = -3.0
    path = tmp_path / "out.FLAC"
    write_audio(path, x, 44100)
    info = sf.info(path)
    assert (info.format, info.subtype, info.channels) == ("FLAC", "PCM_24", 2)
    back = read_audio(path).samples
    assert back[0, 10] == pytest.approx(1.0, abs=1e-6)
    assert back[1, 10] == pytest.approx(-1.0, abs=1e-6)
    np.testing.assert_allclose(back[:, 20:], x[:, 20:], atol=2.0**-22)


def test_write_format_override_and_overwrite(tmp_path):
    path = tmp_path / "data.bin"
    write_audio(path, np.zeros((3, 100)), 8000, format="wav")
    assert sf.info(path).format == "WAV"
    write_audio(path, np.ones((1, 50)) * 0.25, 8000, format="WAV")
    back = read_audio(path)
    assert back.samples.shape == (1, 50) and np.all(back.samples == 0.25)


def test_write_errors_name_the_path(tmp_path):
    with pytest.raises(InputError, match="suffix"):
        write_audio(tmp_path / "x.xyz", np.zeros(10), 8000)
    with pytest.raises(InputError, match="does not exist"):
        write_audio(tmp_path / "missing" / "x.wav", np.zeros(10), 8000)
    with pytest.raises(InputError, match="NaN"):
        write_audio(tmp_path / "x.wav", np.full(10, np.nan), 8000)
    with pytest.raises(InputError) as info:
        write_audio(tmp_path / "x.wav", np.zeros((2, 3, 4)), 8000)
    assert info.value.path == str(tmp_path / "x.wav")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "keep.wav"
    write_audio(path, np.full(10, 0.5), 8000)

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(sf, "write", boom)
    with pytest.raises(InputError, match="disk full"):
        write_audio(path, np.zeros(10), 8000)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["keep.wav"]
    assert np.all(read_audio(path).samples == 0.5)


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_16"), ("FLAC", "PCM_24"), ("WAV", "FLOAT")])
def test_block_reader_gives_the_samples_read_audio_gave_zero_padded_outside(tmp_path, fmt, subtype):
    """`demixer separate` reads the file again a block at a time for the stems (issue 14: the decoded
    recording is not held through the fit): the same samples as the whole read, zeros outside."""
    from demixer.io.audio import block_reader

    rng = np.random.default_rng(1)
    x = (0.5 * rng.standard_normal((30011, 2))).clip(-1, 1).astype(np.float32)
    path = tmp_path / f"a.{fmt.lower()}"
    sf.write(path, x, 44100, format=fmt, subtype=subtype)
    audio = read_audio(path)
    with block_reader(audio) as reader:
        for s0, s1 in [(-500, 1000), (0, 30011), (12345, 23456), (29000, 31000), (-10, 0), (40000, 40010)]:
            got = reader(s0, s1)
            want = np.zeros((2, s1 - s0), np.float32)
            lo, hi = max(0, s0), min(audio.n_samples, s1)
            if hi > lo:
                want[:, lo - s0 : hi - s0] = audio.samples[:, lo:hi]
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, want)
    part = read_audio(path, frames=1000)  # --analyse-first: zeros past the part, not the rest of the file
    with block_reader(part) as reader:
        assert not reader(900, 1100)[:, 100:].any()
        np.testing.assert_array_equal(reader(900, 1000), audio.samples[:, 900:1000])


def test_block_reader_refuses_what_it_cannot_read_again_exactly(tmp_path):
    from demixer.io.audio import block_reader

    x = np.zeros((4000, 1), np.float32)
    x[::7] = 0.25
    ogg = tmp_path / "a.ogg"
    sf.write(ogg, x, 22050, format="OGG", subtype="VORBIS")
    assert block_reader(read_audio(ogg)) is None  # lossy: seeking is not trusted to the sample
    assert block_reader(Audio(x.T, 22050)) is None  # no file
    wav = tmp_path / "b.wav"
    sf.write(wav, x, 22050)
    audio = read_audio(wav)
    sf.write(wav, np.zeros((10, 1), np.float32), 22050)  # the file is shorter now
    assert block_reader(audio) is None


def test_overlapping_quiet_decoders_in_two_threads_give_stderr_back():
    """Each call saved and restored fd 2 on its own: a decode in a background thread that started while
    another was going saved /dev/null and "restored" it, and the scripted window's error line was lost."""
    import os
    import threading

    from demixer.io.audio import quiet_decoder

    before = os.readlink("/proc/self/fd/2")
    inside, leave = threading.Event(), threading.Event()

    def first():
        with quiet_decoder():
            inside.set()
            leave.wait(5)

    t = threading.Thread(target=first)
    t.start()
    assert inside.wait(5)
    with quiet_decoder():  # the second one enters while the first holds the redirection ...
        assert os.readlink("/proc/self/fd/2") == os.devnull
        leave.set()  # ... and the first leaves before it
        t.join(5)
        assert os.readlink("/proc/self/fd/2") == os.devnull  # still quiet: one decode is going
    assert os.readlink("/proc/self/fd/2") == before
