"""Reading, writing, downmixing and resampling audio (soundfile + scipy).

Audio is held as float32 arrays of shape (channels, samples), C-contiguous (DESIGN.md §1: the
mixture x is channels × samples). Every problem with a file is raised as :class:`InputError`.
"""

from __future__ import annotations

import os
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import soundfile as sf

from demixer.core.audio import Audio, analysis_signal, resample, to_mono
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
