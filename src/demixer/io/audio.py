"""Reading, writing, downmixing and resampling audio (soundfile + scipy).

Audio is held as float32 arrays of shape (channels, samples), C-contiguous (DESIGN.md §1: the
mixture x is channels × samples). Every problem with a file is raised as :class:`InputError`.
"""

from __future__ import annotations

import math
import os
import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from demixer.io.errors import InputError

__all__ = [
    "SUPPORTED_AUDIO_SUFFIXES",
    "WRITE_FORMATS",
    "Audio",
    "analysis_signal",
    "read_audio",
    "resample",
    "to_mono",
    "write_audio",
]

SUPPORTED_AUDIO_SUFFIXES: tuple[str, ...] = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")

#: format name → (libsndfile format, subtype, suffix). WAV is 32-bit float so that written stems add
#: up to the mixture exactly; FLAC is 24-bit PCM (FLAC has no float mode).
WRITE_FORMATS: dict[str, tuple[str, str, str]] = {
    "WAV": ("WAV", "FLOAT", ".wav"),
    "FLAC": ("FLAC", "PCM_24", ".flac"),
    "OGG": ("OGG", "VORBIS", ".ogg"),
}
_SUFFIX_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}


@dataclass(frozen=True, eq=False)
class Audio:
    """Decoded audio: ``samples`` float32 (channels, n_samples) C-contiguous, rate ``sr`` in Hz.

    ``path`` is the file it came from, or None. A 1-D ``samples`` is taken as one channel.
    Equality is identity (arrays do not compare as booleans).
    """

    samples: np.ndarray
    sr: int
    path: str | None = None

    def __post_init__(self) -> None:
        x = np.asarray(self.samples)
        if x.ndim == 1:
            x = x[np.newaxis, :]
        if x.ndim != 2:
            raise ValueError(f"audio samples must be (channels, samples), got shape {x.shape}")
        object.__setattr__(self, "samples", np.ascontiguousarray(x, dtype=np.float32))
        if int(self.sr) != self.sr or self.sr <= 0:
            raise ValueError(f"sample rate must be a positive integer, got {self.sr}")
        object.__setattr__(self, "sr", int(self.sr))

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def n_samples(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.n_samples / self.sr


def read_audio(path: str | os.PathLike[str], *, start: int = 0, frames: int | None = None) -> Audio:
    """Decode any file libsndfile can read (WAV, FLAC, OGG, MP3, AIFF, …) into an :class:`Audio`.

    ``start``/``frames`` read only part of the file (sample frames at the file's rate; ``frames`` None:
    to the end), e.g. the first minutes of a recording too long to analyse whole.
    Raises :class:`InputError` for a missing file, a folder, an unreadable / corrupt / unsupported
    file, an empty file and NaN or infinite samples.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(path, "file not found")
    if p.is_dir():
        raise InputError(path, "is a folder, not an audio file")
    if p.stat().st_size == 0:
        raise InputError(path, "not an audio file or unsupported format (the file is empty: 0 bytes)")
    try:
        with quiet_decoder(p):
            data, sr = sf.read(
                p, dtype="float32", always_2d=True, start=int(start), frames=-1 if frames is None else int(frames)
            )
    except PermissionError:
        raise InputError(path, "permission denied") from None
    except Exception as e:  # soundfile raises LibsndfileError / RuntimeError / TypeError, …
        raise InputError(path, f"not an audio file or unsupported format ({_one_line(e)})") from None
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise InputError(path, "audio is empty (0 samples)")
    if not np.isfinite(data).all():
        raise InputError(path, "audio contains NaN or infinite samples")
    return Audio(samples=np.ascontiguousarray(data.T), sr=int(sr), path=os.fspath(path))


@contextmanager
def quiet_decoder(path: str | os.PathLike[str]):
    """Around decoding an MPEG file: libsndfile's MP3 decoder (libmpg123) prints notes about corrupt
    data straight to file descriptor 2, which would add lines to the CLI's one-line errors. They are
    sent to /dev/null for that call only (Python's own stderr is flushed first, then restored)."""
    if Path(path).suffix.lower() not in (".mp3", ".mp2", ".mpeg", ".mpga"):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Downmix (channels, n) → 1-D float32 by the mean over channels; a 1-D input is returned as float32."""
    x = np.asarray(samples)
    if x.ndim == 1:
        return x.astype(np.float32, copy=True)
    if x.ndim != 2:
        raise ValueError(f"samples must be 1-D or (channels, samples), got shape {x.shape}")
    return x.mean(axis=0, dtype=np.float64).astype(np.float32)


def resample(x: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    """Resample along the last axis from ``sr_from`` to ``sr_to`` Hz (polyphase, scipy ``resample_poly``).

    Output length is ``ceil(n * sr_to / sr_from)``; equal rates return a float32 copy.
    """
    for name, rate in (("sr_from", sr_from), ("sr_to", sr_to)):
        if int(rate) != rate or rate <= 0:
            raise ValueError(f"{name} must be a positive integer sample rate, got {rate}")
    sr_from, sr_to = int(sr_from), int(sr_to)
    x = np.asarray(x)
    if sr_from == sr_to:
        return x.astype(np.float32, copy=True)
    from scipy.signal import resample_poly  # only when rates differ: scipy.signal costs ~0.8 s to import

    g = math.gcd(sr_from, sr_to)
    y = resample_poly(x.astype(np.float32, copy=False), sr_to // g, sr_from // g, axis=-1)
    return np.ascontiguousarray(y, dtype=np.float32)


def analysis_signal(audio: Audio, sr: int = 22050) -> np.ndarray:
    """The signal the decomposition analyses: mono downmix resampled to ``sr`` (1-D float32)."""
    return resample(to_mono(audio.samples), audio.sr, sr)


def write_audio(
    path: str | os.PathLike[str],
    samples: np.ndarray,
    sr: int,
    format: str | None = None,
) -> None:
    """Write (channels, n) or 1-D ``samples`` at ``sr`` Hz as WAV (float32), FLAC (24-bit) or OGG.

    ``format`` ("WAV", "FLAC", "OGG") defaults to the one named by the file suffix. FLAC/OGG samples
    are clipped to [-1, 1]. The file is written to a temporary name in the same folder and then renamed
    over ``path``, so a failed write never leaves a half-written file. Problems raise :class:`InputError`.
    """
    p = Path(path)
    fmt = (format or _SUFFIX_FORMATS.get(p.suffix.lower(), "")).upper()
    if fmt not in WRITE_FORMATS:
        wanted = f"format {format!r}" if format else f"suffix {p.suffix or '(none)'!r}"
        raise InputError(path, f"cannot write audio with {wanted}; use .wav, .flac or .ogg")
    sf_format, subtype, _ = WRITE_FORMATS[fmt]
    x = np.asarray(samples)
    if x.ndim == 1:
        x = x[np.newaxis, :]
    if x.ndim != 2 or x.shape[0] == 0:
        raise InputError(path, f"cannot write audio of shape {np.shape(samples)}; need (channels, samples)")
    if int(sr) != sr or sr <= 0:
        raise InputError(path, f"cannot write audio at sample rate {sr}")
    if not np.isfinite(x).all():
        raise InputError(path, "cannot write audio containing NaN or infinite samples")
    frames = np.ascontiguousarray(x.T, dtype=np.float32)
    if fmt != "WAV":
        frames = np.clip(frames, -1.0, 1.0)
    if not p.parent.is_dir():
        raise InputError(path, f"folder {os.fspath(p.parent)!r} does not exist")
    tmp = p.with_name(f".{p.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        sf.write(tmp, frames, int(sr), format=sf_format, subtype=subtype)
        os.replace(tmp, p)
    except Exception as e:
        tmp.unlink(missing_ok=True)
        raise InputError(path, f"cannot write audio ({_one_line(e)})") from None


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text or type(e).__name__
