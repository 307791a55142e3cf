"""Playback of a prepared buffer through a sounddevice OutputStream (DESIGN.md §3, audio/).

Threading model
---------------
All public methods are meant to be called from one control thread (the GUI thread). The stream callback
runs on PortAudio's thread and never allocates arrays, locks, logs, prints or touches Qt: it reads plain
attributes, copies slices of the current buffer into ``outdata`` and advances an integer position.

State shared with the callback is exchanged by replacing references, which is atomic in CPython:

* while the stream runs, the callback owns ``_buf``, ``_pos`` and the crossfade state;
* the control thread posts requests by replacing ``_pending`` (a new buffer, with its crossfade ramps and
  scratch space preallocated) or ``_seek_req`` (a new position) with a fresh tuple; the callback takes a
  request by recording the tuple in ``_pending_taken`` / ``_seek_taken`` and never writes the request
  attributes, so a newer request can never be lost;
* ``_loop`` (a tuple of frames, or None) is written only by the control thread.

When the stream is not running the control thread applies outstanding requests itself (``_absorb``).

Playing position
----------------
``position`` counts the frames handed to PortAudio, which run ahead of what is audible by the stream's
output latency; a playhead may subtract ``latency`` if it wants to be exact.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["PlaybackUnavailable", "Player", "playback_status"]

PORTAUDIO_MISSING = "PortAudio library not found (install libportaudio2)"
SOUNDDEVICE_MISSING = "the sounddevice package is not installed"
NO_OUTPUT_DEVICE = "no audio output device"

_MAX_CHANNELS = 64


class PlaybackUnavailable(RuntimeError):
    """Raised when audio playback is impossible on this machine; the message says why."""


class _Finished(Exception):
    """Stands in for ``sounddevice.CallbackStop`` until a stream is opened."""


def _import_sounddevice() -> ModuleType:
    """Import sounddevice (raises OSError when the PortAudio library is missing). Tests replace this."""
    import sounddevice

    return sounddevice


def _load_sounddevice() -> tuple[ModuleType | None, str]:
    try:
        return _import_sounddevice(), ""
    except OSError:
        return None, PORTAUDIO_MISSING
    except ImportError:
        return None, SOUNDDEVICE_MISSING
    except Exception as exc:  # a broken installation must not take the app down
        return None, f"sounddevice failed to load: {exc}"


def playback_status(device: Any = None) -> tuple[bool, str]:
    """Whether playback can work: ``(True, "")`` or ``(False, reason)``. Never raises.

    ``device`` is a sounddevice device id or name; None means the default output device.
    """
    sd, reason = _load_sounddevice()
    if sd is None:
        return False, reason
    try:
        info = sd.query_devices(device, kind="output")
        channels = int(info["max_output_channels"])
    except Exception:
        return False, NO_OUTPUT_DEVICE
    if channels <= 0:
        return False, NO_OUTPUT_DEVICE
    return True, ""


def _as_buffer(samples: np.ndarray) -> np.ndarray:
    """(channels, n) or (n,) floating samples -> a new read-only C-contiguous (n, channels) float32 array."""
    a = np.asarray(samples)
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"samples must be floating point, got {a.dtype}")
    if a.ndim == 1:
        a = a[np.newaxis, :]
    if a.ndim != 2:
        raise ValueError(f"samples must have shape (channels, n), got {a.shape}")
    if not 1 <= a.shape[0] <= _MAX_CHANNELS:
        raise ValueError(
            f"samples must have shape (channels, n) with 1..{_MAX_CHANNELS} channels, got {a.shape}"
        )
    buf = np.array(a.T, dtype=np.float32, order="C", copy=True)
    if not np.isfinite(buf).all():
        raise ValueError("samples contain NaN or infinity")
    buf.flags.writeable = False
    return buf


_EMPTY = _as_buffer(np.zeros((1, 0), dtype=np.float32))


class Player:
    """Plays one prepared buffer (the mixture, or a mix of sources) with transport and loop controls.

    Parameters
    ----------
    device : sounddevice output device (id or name); None for the default device.
    blocksize : frames per callback (0 lets PortAudio choose).
    crossfade_ms : length of the linear crossfade used when ``set_buffer`` swaps buffers during playback.
    """

    def __init__(self, device: Any = None, blocksize: int = 1024, crossfade_ms: float = 10.0) -> None:
        if int(blocksize) != blocksize or blocksize < 0:
            raise ValueError(f"blocksize must be a nonnegative integer, got {blocksize!r}")
        if not (math.isfinite(crossfade_ms) and crossfade_ms >= 0):
            raise ValueError(f"crossfade_ms must be finite and >= 0, got {crossfade_ms!r}")
        self.device = device
        self.blocksize = int(blocksize)
        self.crossfade_ms = float(crossfade_ms)

        self._stream: Any = None
        self._callback_stop: type[BaseException] = _Finished
        self._sr = 0
        self._loop_s: tuple[float, float] | None = None
        # Buffers handed to the callback stay referenced here until the callback no longer can use them,
        # so that freeing a large buffer happens on the control thread, not on the audio thread.
        self._retained: list[object] = []

        # Shared with the callback (see the module docstring).
        self._buf: np.ndarray = _EMPTY
        self._pos = 0
        self._loop: tuple[int, int] | None = None
        self._pending: tuple | None = None
        self._pending_taken: tuple | None = None
        self._seek_req: tuple[int] | None = None
        self._seek_taken: tuple[int] | None = None
        self._xf: tuple | None = None  # the pending tuple whose crossfade is running
        self._xf_old: np.ndarray = _EMPTY  # the buffer fading out
        self._xf_k = 0  # crossfade frames done

    # ------------------------------------------------------------------ properties

    @property
    def samplerate(self) -> int:
        """Sample rate of the current buffer (0 before ``set_buffer``)."""
        return self._sr

    @property
    def channels(self) -> int:
        return self._current_buffer().shape[1]

    @property
    def frames(self) -> int:
        """Length of the current buffer in frames."""
        return self._current_buffer().shape[0]

    @property
    def duration(self) -> float:
        return self.frames / self._sr if self._sr else 0.0

    @property
    def playing(self) -> bool:
        return self._active()

    @property
    def position_frames(self) -> int:
        self._absorb()
        seek = self._seek_req
        if seek is not self._seek_taken:
            return seek[0]
        return self._pos

    @property
    def position(self) -> float:
        """Play position in seconds."""
        return self.position_frames / self._sr if self._sr else 0.0

    @property
    def loop(self) -> tuple[float, float] | None:
        """The loop range in seconds, or None."""
        return self._loop_s

    @property
    def latency(self) -> float:
        """Output latency of the open stream in seconds (0 without a stream)."""
        return float(self._stream.latency) if self._stream is not None else 0.0

    # ------------------------------------------------------------------ buffer

    def set_buffer(self, samples: np.ndarray, sr: int) -> None:
        """Set what to play: ``samples`` (channels, n) floating point at ``sr`` Hz (copied once).

        While playing with the same channel count and rate, the new buffer replaces the old one at the same
        position with a linear crossfade of ``crossfade_ms``, at the start of the next audio block.
        Otherwise a running stream is stopped and reopened for the new layout, at the same time in seconds.
        """
        buf = _as_buffer(samples)
        if int(sr) != sr or sr <= 0:
            raise ValueError(f"sr must be a positive integer, got {sr!r}")
        sr = int(sr)
        stream = self._stream
        if self._active() and int(stream.samplerate) == sr and int(stream.channels) == buf.shape[1]:
            self._post_swap(buf, sr)
            return
        was_playing = self._active()
        if was_playing:
            self._stop_stream(abort=True)
        self._absorb()
        if stream is not None and (int(stream.samplerate) != sr or int(stream.channels) != buf.shape[1]):
            self._close_stream()
        self._install(buf, sr)
        if was_playing:
            self.play()

    def _post_swap(self, buf: np.ndarray, sr: int) -> None:
        xf = round(self.crossfade_ms * sr / 1000.0)
        if xf > 0:
            # Ramps at the full (xf, channels) shape: multiplying by an (xf, 1) column would broadcast,
            # and numpy then allocates a temporary inside the callback.
            ramp = (np.arange(1, xf + 1, dtype=np.float64) / (xf + 1))[:, np.newaxis]
            channels = buf.shape[1]
            fade_in = np.ascontiguousarray(np.broadcast_to(ramp, (xf, channels)), dtype=np.float32)
            fade_out = np.ascontiguousarray(np.broadcast_to(1.0 - ramp, (xf, channels)), dtype=np.float32)
            scratch = np.empty((xf, channels), dtype=np.float32)
            request = (buf, fade_out, fade_in, scratch)
        else:
            request = (buf, None, None, None)
        self._retain(buf, request)
        self._pending = request

    def _install(self, buf: np.ndarray, sr: int) -> None:
        """Make ``buf`` current while the callback is not running."""
        pos = self._pos
        if self._sr and self._sr != sr:
            pos = round(pos * sr / self._sr)
        self._buf = buf
        self._sr = sr
        self._pos = min(pos, buf.shape[0])
        self._pending_taken = self._pending
        self._seek_taken = self._seek_req
        self._xf = None
        self._xf_old = _EMPTY
        self._loop = self._loop_frames()
        self._retained = [buf]

    def _current_buffer(self) -> np.ndarray:
        pending = self._pending
        if pending is not self._pending_taken:
            return pending[0]
        return self._buf

    def _retain(self, *objects: object) -> None:
        """Keep references to what the callback is about to receive; drop those it can no longer reach.

        The callback only ever moves forward (from ``_pending`` to ``_pending_taken``/``_xf``/``_buf`` to
        ``_xf_old``), so anything not referenced by those attributes now is unreachable for it.
        """
        live = (self._buf, self._xf_old, self._pending, self._pending_taken, self._xf)
        self._retained = [x for x in self._retained if any(x is y for y in live)]
        self._retained.extend(objects)

    # ------------------------------------------------------------------ transport

    def play(self) -> None:
        """Start or resume playback. At the end of the buffer, start again from the beginning; with a
        loop set and the position outside it, start at the loop start.

        Raises PlaybackUnavailable when no output stream can be opened.
        """
        self._absorb()
        if self._active() or self._buf.shape[0] == 0:
            return
        pos = self._pos
        loop = self._loop
        if loop is not None and not loop[0] <= pos < loop[1]:
            pos = loop[0]
        elif pos >= self._buf.shape[0]:
            pos = 0
        self._pos = pos
        self._xf = None
        stream = self._ensure_stream()
        if not stream.stopped:  # finished by CallbackStop: must be stopped before it can start again
            stream.stop()
        stream.start()

    def pause(self) -> None:
        """Stop playing and keep the position. Audio already handed to the device is played out first,
        so resuming continues exactly where the sound stopped."""
        self._stop_stream(abort=False)
        self._absorb()

    def stop(self) -> None:
        """Stop playing at once and go back to the start."""
        self._stop_stream(abort=True)
        self._absorb()
        self._pos = 0

    def toggle(self) -> bool:
        """Play if paused, pause if playing; returns whether it is now playing."""
        if self._active():
            self.pause()
        else:
            self.play()
        return self._active()

    def seek(self, seconds: float) -> None:
        """Move the play position (clamped to the buffer); takes effect at the next block when playing."""
        if not math.isfinite(seconds):
            raise ValueError(f"seek position must be finite, got {seconds!r}")
        n = self._current_buffer().shape[0]
        frame = min(max(round(seconds * self._sr), 0), n) if self._sr else 0
        if self._active():
            self._seek_req = (frame,)
        else:
            self._absorb()
            self._pos = frame
            self._xf = None

    def set_loop(self, start_s: float, end_s: float) -> None:
        """Loop the range [start_s, end_s): reaching ``end_s`` jumps back to ``start_s``.

        Playing past the loop end when the loop is set (e.g. the position was after it) plays on to the end.
        """
        if not (math.isfinite(start_s) and math.isfinite(end_s)):
            raise ValueError("loop bounds must be finite")
        if start_s < 0 or end_s <= start_s:
            raise ValueError(f"need 0 <= start < end, got start={start_s}, end={end_s}")
        self._loop_s = (float(start_s), float(end_s))
        self._loop = self._loop_frames()

    def clear_loop(self) -> None:
        self._loop_s = None
        self._loop = None

    def close(self) -> None:
        """Stop and release the audio stream. The player can still be used; ``play`` reopens a stream."""
        self._stop_stream(abort=True)
        self._close_stream()
        self._absorb()

    def __enter__(self) -> Player:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals (control thread)

    def _loop_frames(self) -> tuple[int, int] | None:
        if self._loop_s is None or not self._sr:
            return None
        n = self._current_buffer().shape[0]
        start = min(round(self._loop_s[0] * self._sr), n)
        end = min(round(self._loop_s[1] * self._sr), n)
        return (start, end) if start < end else None

    def _active(self) -> bool:
        stream = self._stream
        return stream is not None and bool(stream.active)

    def _absorb(self) -> None:
        """Apply requests the callback did not take, once it can no longer run."""
        if self._active():
            return
        pending = self._pending
        if pending is not self._pending_taken:
            self._pending_taken = pending
            self._buf = pending[0]
        seek = self._seek_req
        if seek is not self._seek_taken:
            self._seek_taken = seek
            self._pos = seek[0]
        self._pos = min(self._pos, self._buf.shape[0])
        self._xf = None
        self._xf_old = _EMPTY
        self._retained = [self._buf]

    def _ensure_stream(self) -> Any:
        sr, channels = self._sr, self._buf.shape[1]
        stream = self._stream
        if stream is not None:
            if int(stream.samplerate) == sr and int(stream.channels) == channels:
                return stream
            self._close_stream()
        sd, reason = _load_sounddevice()
        if sd is None:
            raise PlaybackUnavailable(reason)
        ok, reason = playback_status(self.device)
        if not ok:
            raise PlaybackUnavailable(reason)
        try:
            stream = sd.OutputStream(
                samplerate=sr,
                channels=channels,
                dtype="float32",
                blocksize=self.blocksize,
                device=self.device,
                callback=self._callback,
            )
        except Exception as exc:  # PortAudioError, or ValueError for a bad device/setting
            raise PlaybackUnavailable(f"cannot open the audio output: {exc}") from exc
        self._callback_stop = sd.CallbackStop
        self._stream = stream
        return stream

    def _stop_stream(self, abort: bool) -> None:
        stream = self._stream
        if stream is not None and not stream.stopped:
            if abort:
                stream.abort()
            else:
                stream.stop()

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close(ignore_errors=True)

    # ------------------------------------------------------------------ audio thread

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio callback: copy the next ``frames`` frames into ``outdata``. No allocation, no locks."""
        buf = self._buf
        pos = self._pos
        seek = self._seek_req
        if seek is not self._seek_taken:
            self._seek_taken = seek
            pos = seek[0]
            self._xf = None
        f = 0
        while f < frames:
            pending = self._pending
            if pending is not self._pending_taken:
                self._pending_taken = pending
                new = pending[0]
                if pending[1] is not None and pos < buf.shape[0] and pos < new.shape[0]:
                    self._xf_old = buf
                    self._xf_k = 0
                    self._xf = pending
                else:
                    self._xf = None
                buf = new
                self._buf = new
            n_buf = buf.shape[0]
            loop_end = -1
            loop = self._loop
            if loop is not None:
                loop_end = loop[1] if loop[1] < n_buf else n_buf
                if loop[0] >= loop_end:
                    loop_end = -1
                elif pos == loop_end:
                    pos = loop[0]
            end = loop_end if pos < loop_end else n_buf
            if pos >= end:
                outdata[f:].fill(0)
                self._pos = end
                self._xf = None
                raise self._callback_stop
            n = frames - f
            if end - pos < n:
                n = end - pos
            xf = self._xf
            if xf is not None:
                fade_out, fade_in, scratch = xf[1], xf[2], xf[3]
                old = self._xf_old
                k = self._xf_k
                m = fade_in.shape[0] - k
                if n < m:
                    m = n
                if old.shape[0] - pos < m:
                    m = old.shape[0] - pos
                if m > 0:
                    out = outdata[f : f + m]
                    np.multiply(buf[pos : pos + m], fade_in[k : k + m], out=out)
                    part = scratch[:m]
                    np.multiply(old[pos : pos + m], fade_out[k : k + m], out=part)
                    np.add(out, part, out=out)
                    k += m
                    self._xf_k = k
                    pos += m
                    f += m
                if m <= 0 or k >= fade_in.shape[0]:
                    self._xf = None
                continue
            outdata[f : f + n] = buf[pos : pos + n]
            pos += n
            f += n
        self._pos = pos
