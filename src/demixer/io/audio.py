"""Reading, writing, downmixing and resampling audio (soundfile + scipy).

Audio is held as float32 arrays of shape (channels, samples), C-contiguous (DESIGN.md §1: the
mixture x is channels × samples). Every problem with a file is raised as :class:`InputError`.
"""

from __future__ import annotations

import os
import sys
import threading
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
    "check_audio_file",
    "sniff_audio",
    "read_audio",
    "BlockReader",
    "block_reader",
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



#: Sample rates a recording may have (Hz): below 1 kHz there is no music to separate (and the STFT
#: parameters scaled to the file's rate break down); above 1 MHz nothing real is recorded.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 1_000_000
#: Samples beyond this magnitude (+60 dBFS) are refused: the STFT of such input overflows float32.
MAX_ABS_SAMPLE = 1000.0
_READ_BLOCK = 1 << 20  # sample frames decoded at a time

#: (magic at offset 0, offset-8 magic or None, format name) of the containers libsndfile reads.
_MAGIC = (
    (b"RIFF", b"WAVE", "WAV"), (b"RIFX", b"WAVE", "WAV"), (b"RF64", b"WAVE", "WAV (RF64)"),
    (b"FORM", b"AIFF", "AIFF"), (b"FORM", b"AIFC", "AIFF"), (b"fLaC", None, "FLAC"), (b"OggS", None, "Ogg"),
    (b"ID3", None, "MP3"), (b".snd", None, "AU"), (b"caff", None, "CAF"), (b"wvpk", None, "WavPack"),
)


def sniff_audio(head: bytes) -> str | None:
    """The container a file's first bytes announce (``"WAV"``, ``"FLAC"``, …), or None."""
    for magic, sub, name in _MAGIC:
        if head.startswith(magic) and (sub is None or head[8:12] == sub):
            return name
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0 and (head[1] & 0x06):
        return "MPEG audio"
    return None


def file_kind(p: Path) -> str | None:
    """None for a regular file (after symlinks), else what it is ("a FIFO", "a device", …)."""
    import stat as st

    mode = os.stat(p).st_mode
    if st.S_ISREG(mode):
        return None
    if st.S_ISDIR(mode):
        return "a folder"
    if st.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if st.S_ISCHR(mode) or st.S_ISBLK(mode):
        return "a device"
    if st.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_audio_file(path: str | os.PathLike[str]) -> Path:
    """The checks made before decoding: exists, a regular file (a FIFO would block, a device never
    end), not empty. Raises :class:`InputError`."""
    p = Path(path)
    try:
        if not p.exists():
            raise InputError(path, "file not found")
        kind = file_kind(p)
        size = p.stat().st_size
    except OSError as e:
        raise InputError(path, f"cannot read the file ({(e.strerror or str(e)).lower()})") from None
    if kind == "a folder":
        raise InputError(path, "is a folder, not an audio file")
    if kind is not None:
        raise InputError(path, f"not a regular file ({kind}); give an audio file")
    if size == 0:
        raise InputError(path, "not an audio file or unsupported format (the file is empty: 0 bytes)")
    return p


def decode_failure(path: str | os.PathLike[str], e: BaseException) -> InputError:
    """The :class:`InputError` for a file libsndfile could not open: the true reason, from the file's
    first bytes where libsndfile's own message misleads ("File does not exist or is not a regular file"
    for a file that exists and is one)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        head = b""
    fmt = sniff_audio(head)
    if fmt == "MPEG audio" and Path(path).suffix.lower() not in (".mp3", ".mp2", ".mpga", ".mpeg"):
        fmt = None  # two sync bytes are no evidence in a file not named as MPEG (random data has them)
    message = _one_line(e)
    if "does not exist or is not a regular file" in message or "Format not recognised" in message:
        message = ""
    if fmt is None:
        text = bool(head) and all(32 <= c < 127 or c in (9, 10, 13) for c in head)
        reason = "the file holds text" if text else "no known audio header: not WAV, FLAC, Ogg, MP3 or AIFF data"
    else:
        reason = f"a damaged or unsupported {fmt} file" + (f": {message}" if message else "")
    return InputError(path, f"not an audio file or unsupported format ({reason})")


def read_audio(path: str | os.PathLike[str], *, start: int = 0, frames: int | None = None) -> Audio:
    """Decode any file libsndfile can read (WAV, FLAC, OGG, MP3, AIFF, …) into an :class:`Audio`.

    ``start``/``frames`` read only part of the file (sample frames at the file's rate; ``frames`` None:
    to the end), e.g. the first minutes of a recording too long to analyse whole.
    Raises :class:`InputError` for a missing file, a folder, a FIFO or device, an unreadable / corrupt /
    unsupported file, an empty file, a sample rate outside 1 kHz .. 1 MHz, NaN or infinite samples and
    samples beyond ±1000 (+60 dBFS). The samples are decoded a block at a time into their final
    (channels, n) array: no second copy of a long recording.
    """
    p = check_audio_file(path)
    try:
        with quiet_decoder(p):
            with sf.SoundFile(p) as f:
                sr = int(f.samplerate)
                if not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
                    raise InputError(
                        path, f"sample rate {sr} Hz is outside {MIN_SAMPLE_RATE} Hz .. {MAX_SAMPLE_RATE} Hz"
                    )
                data = _read_blocks(f, path, int(start), frames)
    except InputError:
        raise
    except PermissionError:
        raise InputError(path, "permission denied") from None
    except MemoryError:
        raise InputError(path, "not enough memory to decode the recording") from None
    except Exception as e:  # soundfile raises LibsndfileError / RuntimeError / TypeError, …
        raise decode_failure(path, e) from None
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise InputError(path, "audio is empty (0 samples)")
    return Audio(samples=data, sr=sr, path=os.fspath(path))


def _read_blocks(f, path, start: int, frames: int | None) -> np.ndarray:
    total = max(0, int(f.frames))
    if f.seekable() and start:
        f.seek(min(start, total))
    n = max(0, total - start) if frames is None or frames < 0 else max(0, min(int(frames), total - start))
    out = np.empty((f.channels, n), dtype=np.float32)
    got = 0
    buf = np.empty((min(_READ_BLOCK, max(1, n)), f.channels), dtype=np.float32)
    while got < n:
        k = f.read(min(_READ_BLOCK, n - got), dtype="float32", always_2d=True, out=buf[: min(_READ_BLOCK, n - got)])
        if len(k) == 0:
            break
        block = k.T
        if not np.isfinite(block).all():
            raise InputError(path, "audio contains NaN or infinite samples")
        peak = float(np.abs(block).max())
        if peak > MAX_ABS_SAMPLE:
            raise InputError(
                path, f"samples reach {peak:.3g}, beyond ±{MAX_ABS_SAMPLE:g} (+60 dBFS): not a usable recording"
            )
        out[:, got : got + len(k)] = block
        got += len(k)
    return out[:, :got] if got < n else out


#: libsndfile formats that seek to the exact sample (PCM containers and FLAC): a file of these can be read
#: again a block at a time with the same samples as a whole read. Lossy formats (MP3, Ogg) are not trusted to.
_EXACT_SEEK_FORMATS = frozenset({"WAV", "WAVEX", "RF64", "W64", "AIFF", "AU", "CAF", "FLAC"})


class BlockReader:
    """``reader(s0, s1)`` → the samples ``s0 .. s1`` of a recording read again from its file:
    (channels, s1 − s0) float32, zero outside ``0 .. n_samples`` (as :func:`demixer.core.stft.stft_frames`
    expects of a callable signal). The same values as :func:`read_audio` gave, without holding the whole
    decoded recording (a 60-minute stereo 44.1 kHz file: 1.27 GB). Use as a context manager or
    :meth:`close` it."""

    def __init__(self, path: str | os.PathLike[str], f: sf.SoundFile, n_samples: int) -> None:
        self.path = path
        self._f = f
        self.channels = int(f.channels)
        self.n_samples = int(n_samples)

    def __call__(self, s0: int, s1: int) -> np.ndarray:
        s0, s1 = int(s0), int(s1)
        out = np.zeros((self.channels, max(0, s1 - s0)), dtype=np.float32)
        lo, hi = max(0, s0), min(self.n_samples, s1)
        if hi > lo:
            try:
                self._f.seek(lo)
                block = self._f.read(hi - lo, dtype="float32", always_2d=True)
            except Exception as e:  # soundfile raises LibsndfileError / RuntimeError, …
                raise decode_failure(self.path, e) from None
            if len(block) != hi - lo:
                raise InputError(self.path, "the file changed while it was being separated (it is shorter now)")
            out[:, lo - s0 : hi - s0] = block.T
        return out

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> BlockReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def block_reader(audio: Audio) -> BlockReader | None:
    """A :class:`BlockReader` of the file ``audio`` was read from (its first ``audio.n_samples`` frames),
    or None when the file cannot be read again exactly: no path, a format that does not seek to the
    exact sample (MP3, Ogg), or a file whose rate or channels are no longer those of ``audio``. The
    caller then keeps ``audio.samples``."""
    if audio.path is None:
        return None
    try:
        f = sf.SoundFile(audio.path)
    except Exception:
        return None
    if (f.format not in _EXACT_SEEK_FORMATS or not f.seekable() or int(f.samplerate) != audio.sr
            or int(f.channels) != audio.channels or int(f.frames) < audio.n_samples):
        f.close()
        return None
    return BlockReader(audio.path, f, audio.n_samples)


#: quiet_decoder's state across threads: (depth, the real fd 2 saved by the first entrant)
_QUIET_LOCK = threading.Lock()
_QUIET: list = [0, None]


@contextmanager
def quiet_decoder(path: str | os.PathLike[str] | None = None):
    """Around opening and decoding a file: libsndfile and its decoders (libmpg123, libFLAC, …) print
    notes about corrupt data straight to file descriptor 2, which would add lines to the CLI's one-line
    errors. They are sent to /dev/null while any decode is going (Python's own stderr is flushed first,
    then restored); the reason is given by the error raised instead.

    File descriptor 2 is one per process, so the window's threads share one redirection: the first to
    enter saves the real stderr, the last to leave restores it. (Each saving and restoring its own, two
    overlapping decodes left fd 2 on /dev/null for good: the scripted window's error line was lost.)"""
    with _QUIET_LOCK:
        if _QUIET[0] == 0:
            try:
                sys.stderr.flush()
                saved = os.dup(2)
            except (OSError, ValueError, AttributeError):
                saved = None
            if saved is not None:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 2)
                os.close(devnull)
            _QUIET[1] = saved
        _QUIET[0] += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _QUIET[0] -= 1
            if _QUIET[0] == 0 and _QUIET[1] is not None:
                os.dup2(_QUIET[1], 2)
                os.close(_QUIET[1])
                _QUIET[1] = None


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
    tmp = p.with_name(f".{p.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        sf.write(tmp, frames, int(sr), format=sf_format, subtype=subtype)
        os.replace(tmp, p)
    except Exception as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:  # a read-only file system: nothing was written either
            pass
        from demixer.io.export import _errno_reason

        raise InputError(path, f"cannot write audio ({_errno_reason(e, p.parent)})") from None


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text or type(e).__name__
