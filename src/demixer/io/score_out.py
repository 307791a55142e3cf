"""Writing note lists as scores: MIDI (one named track per group) or CSV (DESIGN.md §5).

What :func:`write_score` writes, :func:`demixer.io.score.read_score` reads back to the same notes
(times to the MIDI file's tick, 1/960 s at its fixed 120 qpm; exactly for CSV).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path

import mido

from demixer.core.notes import Note
from demixer.io.errors import InputError
from demixer.io.score import write_score_csv

__all__ = ["SCORE_OUT_SUFFIXES", "write_score", "write_score_midi"]

SCORE_OUT_SUFFIXES = (".mid", ".midi", ".csv")

_TICKS_PER_BEAT = 480
_TEMPO = 500_000  # µs per quarter note: 120 qpm, so one second is 960 ticks


def write_score(path: str | os.PathLike[str], notes: Iterable[Note]) -> None:
    """Write ``notes`` as MIDI (.mid/.midi) or CSV (.csv, ``onset_s,offset_s,pitch,group,velocity``)."""
    suffix = Path(path).suffix.lower()
    if suffix not in SCORE_OUT_SUFFIXES:
        raise InputError(path, f"unsupported score format {Path(path).suffix or '(no suffix)'!r}; use .mid or .csv")
    if suffix == ".csv":
        write_score_csv(path, notes)
    else:
        write_score_midi(path, notes)


def write_score_midi(path: str | os.PathLike[str], notes: Iterable[Note]) -> None:
    """A type-1 MIDI file at 120 qpm: a tempo track, then one track per group named after it (groups in
    order of first appearance; an unnamed group gets no name), each on its own channel (skipping the
    drum channel 10). Written to a temporary file and renamed, so a failed write leaves nothing."""
    p = Path(path)
    if not p.parent.is_dir():
        raise InputError(path, f"folder {os.fspath(p.parent)!r} does not exist")
    note_list = list(notes)
    groups = list(dict.fromkeys(n.group for n in note_list))
    if len(groups) > 15:
        raise InputError(path, f"{len(groups)} groups do not fit the 15 MIDI channels")
    mid = mido.MidiFile(type=1, ticks_per_beat=_TICKS_PER_BEAT)
    tempo = mido.MidiTrack()
    tempo.append(mido.MetaMessage("set_tempo", tempo=_TEMPO, time=0))
    tempo.append(mido.MetaMessage("end_of_track", time=0))
    mid.tracks.append(tempo)
    per_sec = _TICKS_PER_BEAT * 1_000_000 / _TEMPO
    channels = [c for c in range(16) if c != 9]
    for gi, group in enumerate(groups):
        track = mido.MidiTrack()
        if group:
            track.append(mido.MetaMessage("track_name", name=group, time=0))
        ch = channels[gi]
        events = []  # (tick, order, message): note-offs before note-ons at the same tick
        for n in note_list:
            if n.group != group:
                continue
            on = int(round(n.onset * per_sec))
            off = max(on + 1, int(round(n.offset * per_sec)))
            vel = 64 if n.velocity is None else max(1, min(127, int(n.velocity)))
            if n.program is not None:
                events.append((on, 0, mido.Message("program_change", channel=ch, program=int(n.program))))
            events.append((on, 2, mido.Message("note_on", channel=ch, note=int(n.pitch), velocity=vel)))
            events.append((off, 1, mido.Message("note_off", channel=ch, note=int(n.pitch), velocity=0)))
        events.sort(key=lambda e: (e[0], e[1]))
        now = 0
        for tick, _, msg in events:
            track.append(msg.copy(time=tick - now))
            now = tick
        track.append(mido.MetaMessage("end_of_track", time=0))
        mid.tracks.append(track)
    tmp = p.with_name(f".{p.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        mid.save(os.fspath(tmp))
        os.replace(tmp, p)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise InputError(path, f"cannot write score ({e.strerror or e})") from None
