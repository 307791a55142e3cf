"""Reading scores into note lists: MIDI (mido) and CSV (DESIGN.md §5).

A score becomes a list of :class:`~demixer.core.notes.Note` sorted by (onset, pitch, group), times in
seconds. MIDI: one group per named track, else per channel ("ch1".."ch16"). CSV: header
``onset_s,offset_s,pitch,group`` (optional ``velocity`` and ``program`` columns; others ignored) or FMP
style ``start,duration,pitch,velocity,label``. Every problem with a file is raised as :class:`InputError`.
"""

from __future__ import annotations

import bisect
import csv
import os
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from demixer.core.notes import Note
from demixer.io.errors import InputError

__all__ = [
    "MAX_GROUPS",
    "MAX_NOTES_PER_SECOND",
    "MAX_SCORE_BYTES",
    "MAX_SCORE_NOTES",
    "MAX_TRACKS",
    "SUPPORTED_SCORE_SUFFIXES",
    "check_score_limits",
    "clip_notes",
    "read_score",
    "score_groups",
    "write_score_csv",
]

SUPPORTED_SCORE_SUFFIXES: tuple[str, ...] = (".mid", ".midi", ".csv", ".musicxml", ".xml", ".mxl")

_DEFAULT_TEMPO = 500_000  # µs per quarter note (120 BPM), the MIDI default

#: What a score may hold (beyond it the file is refused with the limit named, before the work starts):
#: a file of at most 64 MiB, at most 1024 MIDI tracks, 500,000 notes, 256 groups (one stem each) and
#: 100 notes per second of audio on average (a dense piano piece has 10–40).
MAX_SCORE_BYTES = 64 * 1024**2
MAX_TRACKS = 1024
MAX_SCORE_NOTES = 500_000
MAX_GROUPS = 256
MAX_NOTES_PER_SECOND = 100


# ---------------------------------------------------------------------------------------------- public


def read_score(path: str | os.PathLike[str]) -> list[Note]:
    """Read a MIDI (.mid/.midi), CSV (.csv) or MusicXML (.musicxml/.xml/.mxl, :mod:`demixer.io.musicxml`)
    score into notes sorted by (onset, pitch, group)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in SUPPORTED_SCORE_SUFFIXES:
        shown_suffix = p.suffix or "(no suffix)"
        raise InputError(
            path, f"unsupported score format {shown_suffix!r}; use .mid, .midi, .csv, .musicxml, .xml or .mxl"
        )
    data = _read_capped(p, path)  # a regular file within the size cap (a FIFO would block)
    if suffix in (".musicxml", ".xml", ".mxl"):
        from demixer.io.musicxml import read_musicxml  # music21 is imported only for MusicXML

        notes = read_musicxml(path)
    else:
        notes = _read_midi(data, path) if suffix in (".mid", ".midi") else _read_csv(data, path)
    if not notes:
        raise InputError(path, "no notes in score")
    if len(notes) > MAX_SCORE_NOTES:
        raise InputError(path, f"{len(notes):,} notes; at most {MAX_SCORE_NOTES:,} are accepted")
    return sorted(notes, key=_sort_key)


def _read_capped(p: Path, shown: str | os.PathLike[str]) -> bytes:
    """The file's bytes, after checking it is a regular file (a FIFO would block, /dev/zero never end)
    of at most :data:`MAX_SCORE_BYTES`; read with that cap, whatever the file says its size is."""
    import stat

    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise InputError(shown, "file not found") from None
    except OSError as e:
        raise InputError(shown, f"cannot read file ({(e.strerror or str(e)).lower()})") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(shown, "is a folder, not a score file")
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else "a device" if (
            stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)) else "not a regular file"
        raise InputError(shown, f"not a regular file ({kind}); give a score file")
    too_big = f"the file is over the limit of {MAX_SCORE_BYTES // 1024**2} MiB for a score"
    if st.st_size > MAX_SCORE_BYTES:
        raise InputError(shown, f"{too_big} ({st.st_size / 1024**2:.0f} MiB)")
    try:
        with open(p, "rb") as f:
            data = f.read(MAX_SCORE_BYTES + 1)
    except OSError as e:
        raise InputError(shown, f"cannot read file ({(e.strerror or str(e)).lower()})") from None
    if len(data) > MAX_SCORE_BYTES:
        raise InputError(shown, too_big)
    return data


def check_score_limits(notes: Sequence[Note], duration: float, path: str | os.PathLike[str]) -> None:
    """Refuse (:class:`InputError` naming the score) what the separation cannot do in reasonable time and
    memory: more than :data:`MAX_GROUPS` groups, or more than :data:`MAX_NOTES_PER_SECOND` notes per
    second of the ``duration`` (s) of the audio."""
    groups = len({n.group for n in notes})
    if groups > MAX_GROUPS:
        raise InputError(path, f"{groups:,} groups; at most {MAX_GROUPS} (each group becomes a stem)")
    seconds = max(1.0, float(duration))
    if len(notes) > MAX_NOTES_PER_SECOND * seconds:
        raise InputError(
            path,
            f"{len(notes):,} notes in {float(duration):.1f} s of audio ({len(notes) / seconds:,.0f} per second); "
            f"at most {MAX_NOTES_PER_SECOND} per second",
        )


def clip_notes(notes: Iterable[Note], duration: float) -> tuple[list[Note], int, int]:
    """Fit notes into [0, duration]: drop those starting at/after it, cut those ending after it.

    Returns (kept notes, number clipped, number dropped). Emits nothing; callers decide to warn.
    """
    kept: list[Note] = []
    n_clipped = n_dropped = 0
    for n in notes:
        if n.onset >= duration:
            n_dropped += 1
        elif n.offset > duration:
            kept.append(replace(n, offset=float(duration)))
            n_clipped += 1
        else:
            kept.append(n)
    return kept, n_clipped, n_dropped


def score_groups(notes: Iterable[Note]) -> list[str]:
    """The notes' group names, each once, in order of first appearance."""
    return list(dict.fromkeys(n.group for n in notes))


def write_score_csv(path: str | os.PathLike[str], notes: Iterable[Note]) -> None:
    """Write notes as CSV ``onset_s,offset_s,pitch,group,velocity`` (atomically: temp file + rename).

    Times are written with ``repr`` so reading the file back gives the same floats.
    """
    p = Path(path)
    if not p.parent.is_dir():
        raise InputError(path, f"folder {os.fspath(p.parent)!r} does not exist")
    tmp = p.with_name(f".{p.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["onset_s", "offset_s", "pitch", "group", "velocity"])
            for n in notes:
                vel = "" if n.velocity is None else str(int(n.velocity))
                w.writerow([repr(float(n.onset)), repr(float(n.offset)), int(n.pitch), n.group, vel])
        os.replace(tmp, p)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise InputError(path, f"cannot write score ({e.strerror or e})") from None


def _sort_key(n: Note) -> tuple[float, int, str]:
    return (n.onset, n.pitch, n.group)


# ------------------------------------------------------------------------------------------------ MIDI


class _TempoMap:
    """Ticks → seconds, from ticks_per_beat and every set_tempo event of the file (merged)."""

    def __init__(self, division: int, tempos: Sequence[tuple[int, int]]) -> None:
        self._ticks: list[int] = [0]
        self._secs: list[float] = [0.0]
        smpte = _smpte(division)
        if smpte is not None:  # SMPTE time division: frames per second × ticks per frame; no tempo
            fps, tpf = smpte
            self._rates: list[float] = [1.0 / (fps * tpf)]
            return
        self._rates = [_DEFAULT_TEMPO * 1e-6 / division]
        for tick, tempo in sorted(tempos, key=lambda t: t[0]):  # stable: file order within a tick
            rate = tempo * 1e-6 / division
            if tick == self._ticks[-1]:
                self._rates[-1] = rate
            else:
                self._secs.append(self.seconds(tick))
                self._ticks.append(tick)
                self._rates.append(rate)

    def seconds(self, tick: int) -> float:
        i = bisect.bisect_right(self._ticks, tick) - 1
        return self._secs[i] + (tick - self._ticks[i]) * self._rates[i]


@dataclass
class _RawNote:
    track: int
    channel: int
    pitch: int
    on: int
    off: int
    velocity: int
    program: int | None


_SMPTE_RATES = {24: 24.0, 25: 25.0, 29: 29.97, 30: 30.0}


def _smpte(division: int) -> tuple[float, int] | None:
    """(frames per second, ticks per frame) of an SMPTE time division (top bit set), else None."""
    raw = int(division) & 0xFFFF
    if not raw & 0x8000:
        return None
    return _SMPTE_RATES.get(256 - (raw >> 8), 0.0), raw & 0xFF


def _read_midi(data: bytes, shown: str | os.PathLike[str]) -> list[Note]:
    import io
    import struct

    import mido  # only for MIDI scores: a CSV score does not pay its import

    # The header first: a division that cannot be timed and absurd track counts are refused before
    # mido parses (and a file with 20,000 tracks would take minutes to group).
    if data[:4] == b"MThd" and len(data) >= 14:
        _, n_tracks, division = struct.unpack(">hHh", data[8:14])
        if n_tracks > MAX_TRACKS:
            raise InputError(shown, f"{n_tracks:,} tracks; at most {MAX_TRACKS:,} are accepted")
        smpte = _smpte(division)
        if smpte is not None and (smpte[0] == 0 or smpte[1] == 0):
            raise InputError(
                shown,
                f"not a valid MIDI file (SMPTE time division 0x{division & 0xFFFF:04X}: "
                f"{256 - ((division & 0xFFFF) >> 8)} frames per second, {division & 0xFF} ticks per frame; "
                "needs 24, 25, 29 or 30 frames per second and at least 1 tick per frame)",
            )
    try:
        mid = mido.MidiFile(file=io.BytesIO(data))
    except Exception as e:  # mido raises OSError, EOFError, ValueError, KeyError, IndexError, …
        raise InputError(shown, f"not a valid MIDI file ({_one_line(e)})") from None
    if mid.type == 2:
        raise InputError(shown, "MIDI type 2 (independent sequences) is not supported; use type 0 or 1")
    if len(mid.tracks) > MAX_TRACKS:
        raise InputError(shown, f"{len(mid.tracks):,} tracks; at most {MAX_TRACKS:,} are accepted")
    division = int(mid.ticks_per_beat)
    if division == 0:
        raise InputError(shown, "not a valid MIDI file (0 ticks per beat)")

    # All events of all tracks with absolute ticks. Program changes are global per channel, so they
    # are processed in time order across tracks, before note events at the same tick.
    events: list[tuple[int, int, int, int, mido.Message]] = []
    tempos: list[tuple[int, int]] = []
    names: dict[int, str] = {}
    end_tick = 0
    for ti, track in enumerate(mid.tracks):
        tick = 0
        for k, msg in enumerate(track):
            tick += int(msg.time)
            if msg.type == "set_tempo":
                tempos.append((tick, int(msg.tempo)))
            elif msg.type == "track_name" and ti not in names:
                names[ti] = str(msg.name).strip()
            elif msg.type == "program_change":
                events.append((tick, 0, ti, k, msg))
            elif msg.type in ("note_on", "note_off"):
                events.append((tick, 1, ti, k, msg))
                if len(events) > 2 * MAX_SCORE_NOTES + 1000:
                    raise InputError(shown, f"more than {MAX_SCORE_NOTES:,} notes; at most that many are accepted")
        end_tick = max(end_tick, tick)
    events.sort(key=lambda e: e[:4])

    programs: dict[int, int] = {}
    sounding: dict[tuple[int, int, int], deque[tuple[int, int, int | None]]] = defaultdict(deque)
    raw: list[_RawNote] = []
    for tick, _, ti, _, msg in events:
        if msg.type == "program_change":
            programs[msg.channel] = int(msg.program)
            continue
        key = (ti, msg.channel, int(msg.note))
        if msg.type == "note_on" and msg.velocity > 0:
            sounding[key].append((tick, int(msg.velocity), programs.get(msg.channel)))
        elif sounding[key]:  # note_off, or note_on with velocity 0; first in, first out
            on, vel, prog = sounding[key].popleft()
            raw.append(_RawNote(ti, msg.channel, key[2], on, tick, vel, prog))
    for key, queue in sounding.items():  # still sounding at the end: close at the last event
        for on, vel, prog in queue:
            raw.append(_RawNote(key[0], key[1], key[2], on, end_tick, vel, prog))
    raw = [r for r in raw if r.off > r.on]

    tmap = _TempoMap(division, tempos)
    group_of = _midi_groups(raw, names)
    return [
        Note(
            onset=tmap.seconds(r.on),
            offset=tmap.seconds(r.off),
            pitch=r.pitch,
            group=group_of(r),
            velocity=r.velocity,
            program=r.program,
        )
        for r in raw
    ]


def _midi_groups(raw: Sequence[_RawNote], names: dict[int, str]) -> Callable[[_RawNote], str]:
    """How notes are grouped: by track name when several tracks (or one named track) hold notes,
    else by channel ("ch1".."ch16") when more than one channel is used, else a single group ""."""
    tracks = sorted({r.track for r in raw})
    if len(tracks) == 1:  # one note track (always so for type 0): channels if several, else its name
        channels = {r.channel for r in raw}
        if len(channels) > 1:
            return lambda r: f"ch{r.channel + 1}"
        name = names.get(tracks[0], "")
        return lambda r: name
    unnamed_channels = {r.channel for r in raw if not names.get(r.track)}
    by_channel = len(unnamed_channels) > 1
    return lambda r: names.get(r.track) or (f"ch{r.channel + 1}" if by_channel else "")


# ------------------------------------------------------------------------------------------------- CSV

_ONSET_STYLE = ("onset_s", "offset_s", "pitch")
_FMP_STYLE = ("start", "duration", "pitch")
_EXPECTED = "'onset_s,offset_s,pitch,group' or 'start,duration,pitch,velocity,label'"


@dataclass
class _CsvRow:
    line: int
    onset: float
    offset: float
    pitch: int
    group: str
    velocity: float | None
    program: int | None


def _read_csv(data: bytes, shown: str | os.PathLike[str]) -> list[Note]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(shown, "not a CSV text file (not UTF-8 text)") from None
    if "\x00" in text:
        raise InputError(shown, "not a CSV text file (contains NUL bytes)")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    header_index = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_index is None:
        raise InputError(shown, "no notes in score")
    found = _parse_header(lines[header_index])
    if found is None:
        raise InputError(shown, f"no recognised CSV header (expected {_EXPECTED}) on line {header_index + 1}")
    delimiter, columns = found
    fmp = "start" in columns and "onset_s" not in columns

    if len(lines) - header_index - 1 > MAX_SCORE_NOTES and sum(1 for x in lines if x.strip()) > MAX_SCORE_NOTES + 1:
        raise InputError(shown, f"more than {MAX_SCORE_NOTES:,} notes; at most that many are accepted")
    rows: list[_CsvRow] = []
    n_fields = len(columns)
    for i in range(header_index + 1, len(lines)):
        line_no = i + 1
        try:
            fields = next(csv.reader([lines[i]], delimiter=delimiter), [])
        except csv.Error as e:
            raise InputError(shown, f"malformed CSV row {line_no}: {e}") from None
        if not any(f.strip() for f in fields):
            continue
        if len(fields) > n_fields and not any(f.strip() for f in fields[n_fields:]):
            fields = fields[:n_fields]  # tolerate trailing empty fields (e.g. a trailing delimiter)
        if len(fields) != n_fields:
            reason = f"expected {n_fields} fields, got {len(fields)}"
            raise InputError(shown, f"malformed CSV row {line_no}: {reason}")
        try:
            rows.append(_parse_row(line_no, dict(zip(columns, fields, strict=True)), fmp))
        except ValueError as e:
            raise InputError(shown, f"malformed CSV row {line_no}: {e}") from None

    # Velocities all within [0, 1] (as libfmp writes them) are normalised: scale to MIDI 0..127.
    given = [r.velocity for r in rows if r.velocity is not None]
    scale = 127.0 if given and max(given) <= 1.0 else 1.0
    return [
        Note(
            onset=r.onset,
            offset=r.offset,
            pitch=r.pitch,
            group=r.group,
            velocity=None if r.velocity is None else int(round(r.velocity * scale)),
            program=r.program,
        )
        for r in rows
    ]


def _parse_header(line: str) -> tuple[str, list[str]] | None:
    """(delimiter, lower-cased column names) if ``line`` is a recognised header, else None."""
    for delimiter in (",", ";", "\t"):
        try:
            fields = next(csv.reader([line], delimiter=delimiter))
        except (csv.Error, StopIteration):
            continue
        columns = [f.strip().lower() for f in fields]
        for required in (_ONSET_STYLE, _FMP_STYLE):
            if all(c in columns for c in required):
                return delimiter, columns
    return None


def _parse_row(line_no: int, row: dict[str, str], fmp: bool) -> _CsvRow:
    if fmp:
        onset = _number(row, "start")
        duration = _number(row, "duration")
        if duration < 0:
            raise ValueError(f"negative duration {duration:g}")
        offset = onset + duration
        group = (row.get("label") or row.get("instrument") or "").strip()
    else:
        onset = _number(row, "onset_s")
        offset = _number(row, "offset_s")
        group = (row.get("group") or "").strip()
    if onset < 0:
        raise ValueError(f"negative onset {onset:g}")
    if offset < onset:
        raise ValueError(f"offset {offset:g} is before onset {onset:g}")
    pitch = _midi_number(row, "pitch")
    if pitch is None:
        raise ValueError("pitch is empty")
    velocity: float | None = None
    if (row.get("velocity") or "").strip():
        velocity = _number(row, "velocity")
        if not 0 <= velocity <= 127:
            raise ValueError(f"velocity {velocity:g} is outside 0..127")
    program = _midi_number(row, "program")
    return _CsvRow(line_no, onset, offset, pitch, group, velocity, program)


def _number(row: dict[str, str], column: str) -> float:
    text = (row.get(column) or "").strip()
    if not text:
        raise ValueError(f"{column} is empty")
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{column} {text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{column} {text!r} is not a finite number")
    return value


def _midi_number(row: dict[str, str], column: str) -> int | None:
    """A whole number 0..127 (``"60"`` or ``"60.0"``), or None if the column is absent or blank."""
    if not (row.get(column) or "").strip():
        return None
    value = _number(row, column)
    if value != int(value):
        raise ValueError(f"{column} {value:g} is not a whole MIDI number")
    if not 0 <= value <= 127:
        raise ValueError(f"{column} {value:g} is outside 0..127")
    return int(value)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text or type(e).__name__
