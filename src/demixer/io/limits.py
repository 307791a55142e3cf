"""Checks made before a recording is analysed: is it long enough, and will it fit in memory?

* :func:`probe_audio` reads only the header of a file (length, rate, channels), so that a very long
  recording can be refused or cut *before* it is decoded.
* :func:`estimate_memory` is a rough upper estimate of what analysing and running a model on a
  recording needs: the decoded samples, the analysis STFT, V and its dB image, and a run's working
  copies (a few K × N arrays). It is linear in the length, so :func:`frames_that_fit` inverts it.
* :func:`memory_limit`: above it the GUI asks (analyse everything / only the first part / cancel) and
  the CLI prints a warning line. 2 GiB, or ``$DEMIXER_MEMORY_LIMIT`` (bytes; suffixes K, M, G allowed).
* :func:`check_analysable` refuses audio shorter than one analysis frame (n_fft samples at the
  analysis rate): there is nothing to decompose in it.

Pure Python + soundfile; every problem with a file is an :class:`~demixer.io.errors.InputError`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from demixer.io.errors import InputError

__all__ = [
    "DEFAULT_MEMORY_LIMIT",
    "AudioInfo",
    "audio_warnings",
    "check_analysable",
    "check_fits_machine",
    "machine_memory",
    "estimate_memory",
    "format_bytes",
    "format_duration",
    "frames_that_fit",
    "memory_limit",
    "probe_audio",
]

DEFAULT_MEMORY_LIMIT = 2 * 1024**3
#: K × N float32 arrays alive at the peak of an analysis + run: V, the sparse KL kernel's compact
#: copies of V and of the ratio V / W·H (3.6 × V measured by bench_nmf_sparse), a spare one. The STFTs,
#: masks and stems are made a block of frames at a time (DESIGN.md §5), so they do not grow with N.
_KN_ARRAYS = 6
#: float32 copies of the decoded samples (every channel) and of the analysis-rate downmix held at once:
#: one each (WAV/FLAC/AIFF stems are re-read block-wise; a compressed file stays decoded once).
_SAMPLE_COPIES = 1
#: K × N float32 arrays of a score draft (engine/draft.py, its own finer grid): its whole spectrogram
#: and a spare one; the NMF runs a block of frames at a time. Measured (a 60-minute 22.05 kHz mono
#: recording, `demixer transcribe`): 4.2 GiB beyond the interpreter for a 2.5 GiB spectrogram.
_DRAFT_KN_ARRAYS = 2


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says: ``frames`` sample frames of ``channels`` channels at ``sr`` Hz."""

    path: str
    frames: int
    sr: int
    channels: int
    format: str = ""

    @property
    def duration(self) -> float:
        return self.frames / self.sr if self.sr > 0 else 0.0


def probe_audio(path: str | os.PathLike[str]) -> AudioInfo:
    """Read a file's header only. Raises :class:`InputError` like ``read_audio`` would."""
    import soundfile as sf

    from demixer.io.audio import check_audio_file, decode_failure, quiet_decoder

    shown = os.fspath(path)
    p = check_audio_file(shown)
    try:
        with quiet_decoder(p):
            info = sf.info(os.fspath(p))
    except PermissionError:
        raise InputError(shown, "permission denied") from None
    except Exception as e:  # LibsndfileError, RuntimeError, …
        raise decode_failure(shown, e) from None
    return AudioInfo(shown, max(0, int(info.frames)), int(info.samplerate), int(info.channels), str(info.format))


def _stft_numbers(stft: Any) -> tuple[int, int, int]:
    """(n_fft, hop, sr) of an ``STFTParams`` (defaults when None, without importing scipy)."""
    if stft is None:
        return 2048, 512, 22050
    return int(stft.n_fft), int(stft.hop), int(stft.sr)


def estimate_memory(frames: int, sr: int, channels: int, stft: Any = None, draft_stft: Any = None) -> int:
    """Rough upper estimate, in bytes, of the memory needed, beyond what the process already holds, to
    analyse ``frames`` sample frames of ``channels`` channels at ``sr`` Hz with ``stft`` (an
    ``STFTParams``; defaults when None), run a model on it and write its stems. ``draft_stft``: a
    score is drafted first on that grid (the larger of the two needs: the draft's arrays are gone
    before the separation's are made).

    Measured with ``benchmarks/bench_scale.py`` (44.1 kHz stereo, peak RSS less the ~0.15 GiB of the
    loaded interpreter): 10 min 0.45 GiB, 30 min 1.25 GiB, 60 min 2.65 GiB; this gives 0.84 / 2.5 /
    5.0 GiB (≈ 1.9×: an upper estimate, not a prediction)."""
    n_fft, hop, sr_a = _stft_numbers(stft)
    frames = max(0, int(frames))
    n_a = math.ceil(frames * sr_a / max(1, int(sr)))  # samples at the analysis rate
    n_frames = -(-n_a // hop) + 1
    kn = (n_fft // 2 + 1) * n_frames
    samples = 4 * frames * max(1, int(channels)) * _SAMPLE_COPIES + 4 * n_a * _SAMPLE_COPIES
    need = samples + 4 * kn * _KN_ARRAYS
    if draft_stft is not None:
        d_fft, d_hop, d_sr = _stft_numbers(draft_stft)
        d_frames = -(-math.ceil(frames * d_sr / max(1, int(sr))) // d_hop) + 1
        need = max(need, samples + 4 * (d_fft // 2 + 1) * d_frames * _DRAFT_KN_ARRAYS)
    return int(need)


def frames_that_fit(limit: int, sr: int, channels: int, stft: Any = None, draft_stft: Any = None) -> int:
    """The longest prefix (in sample frames, whole seconds) whose :func:`estimate_memory` is ≤ ``limit``
    (at least one second)."""
    sr = int(sr)

    def need(seconds: int) -> int:
        return estimate_memory(seconds * sr, sr, channels, stft, draft_stft)

    per_second = max(1.0, (need(120) - need(60)) / 60.0)  # the estimate is linear up to rounding
    seconds = max(1, int((limit - (need(60) - 60 * per_second)) // per_second))
    while seconds > 1 and need(seconds) > limit:
        seconds -= 1
    while need(seconds + 1) <= limit:
        seconds += 1
    return seconds * sr


def _parse_bytes(text: str) -> int | None:
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = 1
    for suffix, s in (("K", 1024), ("M", 1024**2), ("G", 1024**3), ("T", 1024**4)):
        if t.endswith(suffix):
            t, scale = t[:-1], s
            break
    try:
        value = float(t)
    except ValueError:
        return None
    return int(value * scale) if math.isfinite(value) and value > 0 else None


def memory_limit() -> int:
    """The memory above which a recording is "very long": ``$DEMIXER_MEMORY_LIMIT`` or 2 GiB."""
    raw = os.environ.get("DEMIXER_MEMORY_LIMIT")
    if raw:
        parsed = _parse_bytes(raw)
        if parsed is not None:
            return parsed
    return DEFAULT_MEMORY_LIMIT


def format_bytes(n: float) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} bytes"


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def audio_warnings(path: str | os.PathLike[str], stft: Any = None, limit: int | None = None) -> list[str]:
    """Warnings (one line each, naming the file) about a recording before it is read: today only
    "very long". Unreadable files give no warning here (reading them gives the error)."""
    try:
        info = probe_audio(path)
    except InputError:
        return []
    limit = memory_limit() if limit is None else int(limit)
    need = estimate_memory(info.frames, info.sr, info.channels, stft)
    if need <= limit:
        return []
    return [
        f"{os.fspath(path)}: very long recording ({format_duration(info.duration)}, {info.channels} channels at "
        f"{info.sr} Hz): analysing it needs about {format_bytes(need)} of memory "
        f"(limit {format_bytes(limit)}, set DEMIXER_MEMORY_LIMIT to change)"
    ]


def check_analysable(audio: Any, stft: Any = None) -> None:
    """Raise :class:`InputError` (naming the file) when ``audio`` is shorter than one analysis frame."""
    n_fft, _, sr_a = _stft_numbers(stft)
    n_a = math.ceil(int(audio.n_samples) * sr_a / int(audio.sr))
    if n_a < n_fft:
        where = audio.path or "audio"
        raise InputError(
            where,
            f"audio is too short to analyse: {audio.n_samples} samples ({audio.duration * 1000:.1f} ms) is "
            f"shorter than one analysis frame ({n_fft} samples, {n_fft / sr_a * 1000:.0f} ms at {sr_a} Hz)",
        )


def machine_memory() -> int:
    """The memory a separation may use on this machine: ``$DEMIXER_MACHINE_MEMORY`` (bytes; K, M, G
    allowed), else the memory the system reports available (``MemAvailable``), else the physical size."""
    raw = os.environ.get("DEMIXER_MACHINE_MEMORY")
    if raw:
        parsed = _parse_bytes(raw)
        if parsed is not None:
            return parsed
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def check_fits_machine(
    path: str | os.PathLike[str], stft: Any = None, frames: int | None = None, draft_stft: Any = None,
    doing: str = "separating",
) -> None:
    """Refuse, before anything is decoded, a recording whose separation (after a draft on ``draft_stft``'s
    grid when given) needs more memory than this machine has (:func:`machine_memory`), naming both and
    the ``--analyse-first`` that would fit. ``frames``: only that many sample frames will be read;
    ``doing``: the message's verb."""
    info = probe_audio(path)
    n = info.frames if frames is None else min(info.frames, int(frames))
    need = estimate_memory(n, info.sr, info.channels, stft, draft_stft)
    have = machine_memory()
    if need <= have:
        return
    fit = frames_that_fit(have, info.sr, info.channels, stft, draft_stft) / max(1, info.sr)
    raise InputError(
        os.fspath(path),
        f"{doing} {format_duration(n / max(1, info.sr))} ({info.channels} channels at {info.sr} Hz) needs "
        f"about {format_bytes(need)} of memory, more than the {format_bytes(have)} this machine has available; "
        f"use --analyse-first {int(fit)} (the first {format_duration(fit)} fit)",
    )
