"""Tests for demixer.io.score: MIDI and CSV scores, note clipping, groups and CSV export."""

from __future__ import annotations

import mido
import pytest

from demixer.core.notes import Note
from demixer.io.errors import InputError
from demixer.io.score import clip_notes, read_score, score_groups, write_score_csv

TPB = 480  # ticks per beat used by the generated files


def track(*events, name: str | None = None) -> mido.MidiTrack:
    """A track from (absolute tick, message) pairs; delta times are computed here."""
    t = mido.MidiTrack()
    if name is not None:
        t.append(mido.MetaMessage("track_name", name=name, time=0))
    now = 0
    for tick, msg in sorted(events, key=lambda e: e[0]):
        t.append(msg.copy(time=tick - now))
        now = tick
    t.append(mido.MetaMessage("end_of_track", time=0))
    return t


def on(tick, pitch, vel=64, ch=0):
    return (tick, mido.Message("note_on", note=pitch, velocity=vel, channel=ch))


def off(tick, pitch, ch=0, zero_velocity_on=False):
    if zero_velocity_on:
        return (tick, mido.Message("note_on", note=pitch, velocity=0, channel=ch))
    return (tick, mido.Message("note_off", note=pitch, velocity=0, channel=ch))


def tempo(tick, bpm):
    return (tick, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))


def program(tick, prog, ch=0):
    return (tick, mido.Message("program_change", program=prog, channel=ch))


def save(path, tracks, type_=1, tpb=TPB):
    mid = mido.MidiFile(type=type_, ticks_per_beat=tpb)
    mid.tracks.extend(tracks)
    mid.save(path)
    return path


def times(notes):
    return [(round(n.onset, 9), round(n.offset, 9), n.pitch) for n in notes]


# --------------------------------------------------------------------------------------------- MIDI


def test_midi_type0_single_channel(tmp_path):
    path = save(tmp_path / "a.mid", [track(on(0, 60, 90), off(480, 60), on(480, 64), off(1440, 64))], type_=0)
    notes = read_score(path)
    assert times(notes) == [(0.0, 0.5, 60), (0.5, 1.5, 64)]
    assert [n.group for n in notes] == ["", ""]
    assert notes[0].velocity == 90 and notes[0].program is None


def test_midi_type0_groups_by_channel(tmp_path):
    path = save(
        tmp_path / "a.mid",
        [track(on(0, 60, ch=0), on(0, 36, ch=9), off(480, 60, ch=0), off(240, 36, ch=9), name="Song")],
        type_=0,
    )
    notes = read_score(path)
    assert [(n.pitch, n.group) for n in notes] == [(36, "ch10"), (60, "ch1")]
    assert score_groups(notes) == ["ch10", "ch1"]


def test_midi_type1_tempo_change_mid_piece(tmp_path):
    conductor = track(tempo(0, 120), tempo(960, 240), tempo(1920, 60), name="tempo")  # only meta messages
    notes_track = track(
        on(0, 60),
        off(480, 60),  # 0.0 .. 0.5 at 120 BPM
        on(480, 62),
        off(1440, 62),  # 0.5 .. 1.0 + 0.25 = 1.25, spans the first change
        on(1440, 64),
        off(1920, 64),  # 1.25 .. 1.5 at 240 BPM
        on(1920, 65),
        off(2400, 65),  # 1.5 .. 2.5 at 60 BPM
        name="melody",
    )
    path = save(tmp_path / "t.mid", [conductor, notes_track])
    notes = read_score(path)
    assert [n.onset for n in notes] == pytest.approx([0.0, 0.5, 1.25, 1.5], abs=1e-12)
    assert [n.offset for n in notes] == pytest.approx([0.5, 1.25, 1.5, 2.5], abs=1e-12)
    assert {n.group for n in notes} == {"melody"}


def test_midi_initial_tempo_and_same_tick_changes(tmp_path):
    # tempo at tick 0 replaces the default 120 BPM; of two changes at one tick the later one counts
    t = track(
        tempo(0, 60), on(480, 60), off(960, 60), tempo(960, 30), tempo(960, 240), on(960, 62), off(1440, 62)
    )
    notes = read_score(save(tmp_path / "i.mid", [t], type_=0))
    assert times(notes) == [(1.0, 2.0, 60), (2.0, 2.25, 62)]


def test_midi_tempo_in_any_track_is_merged(tmp_path):
    # the tempo change sits in the second note track but applies to the first one too
    a = track(on(0, 60), off(480, 60), on(960, 62), off(1440, 62), name="a")
    b = track(tempo(480, 60), on(0, 48), off(480, 48), name="b")
    notes = read_score(save(tmp_path / "m.mid", [a, b]))
    a_notes = [n for n in notes if n.group == "a"]
    assert times(a_notes) == [(0.0, 0.5, 60), (1.5, 2.5, 62)]


def test_midi_type1_track_names_and_empty_tracks(tmp_path):
    tracks = [
        track(tempo(0, 120), name="conductor"),
        track(program(0, 40), on(0, 72), off(480, 72), name=" violin "),
        track(name="empty"),  # meta messages only
        track(program(0, 70, ch=1), on(0, 48, ch=1), off(960, 48, ch=1), name="bassoon"),
    ]
    notes = read_score(save(tmp_path / "n.mid", tracks))
    assert [(n.pitch, n.group, n.program) for n in notes] == [(48, "bassoon", 70), (72, "violin", 40)]


def test_midi_single_named_track(tmp_path):
    tracks = [track(tempo(0, 120)), track(on(0, 60), off(480, 60), name="piano")]
    assert [n.group for n in read_score(save(tmp_path / "s.mid", tracks))] == ["piano"]


def test_midi_unnamed_tracks_group_by_channel(tmp_path):
    tracks = [
        track(tempo(0, 120)),
        track(on(0, 60, ch=2), off(480, 60, ch=2)),
        track(on(0, 40, ch=5), off(480, 40, ch=5)),
    ]
    notes = read_score(save(tmp_path / "u.mid", tracks))
    assert [(n.pitch, n.group) for n in notes] == [(40, "ch6"), (60, "ch3")]


def test_midi_velocity_zero_is_note_off_and_fifo_overlaps(tmp_path):
    t = track(
        on(0, 60, 100),
        on(240, 60, 50),
        off(480, 60, zero_velocity_on=True),
        off(960, 60),
        on(960, 62, 70),
        off(1200, 62, zero_velocity_on=True),
    )
    notes = read_score(save(tmp_path / "v.mid", [t], type_=0))
    assert times(notes) == [(0.0, 0.5, 60), (0.25, 1.0, 60), (1.0, 1.25, 62)]
    assert [n.velocity for n in notes] == [100, 50, 70]


def test_midi_unterminated_and_zero_length_notes(tmp_path):
    a = track(on(0, 60), on(480, 61), off(480, 61), name="a")  # 60 never ends, 61 has zero length
    b = track(on(0, 50), off(1920, 50), name="b")  # the last event of the file is at tick 1920
    notes = read_score(save(tmp_path / "z.mid", [a, b]))
    assert times(notes) == [(0.0, 2.0, 50), (0.0, 2.0, 60)]


def test_midi_program_changes(tmp_path):
    t = track(
        program(0, 40),
        on(0, 60),
        off(480, 60),
        program(960, 41),
        on(960, 60),
        off(1440, 60),
        on(0, 70, ch=1),
        off(480, 70, ch=1),  # a channel without program change
        program(1920, 5, ch=1),  # after its note: does not apply
    )
    notes = read_score(save(tmp_path / "p.mid", [t], type_=0))
    by = {(round(n.onset, 6), n.pitch): n for n in notes}
    assert by[(0.0, 60)].program == 40
    assert by[(1.0, 60)].program == 41
    assert by[(0.0, 70)].program is None
    assert {n.group for n in notes} == {"ch1", "ch2"}


def test_midi_smpte_division(tmp_path):
    division = ((256 - 25) << 8 | 40) - 0x10000  # 25 frames/s, 40 ticks per frame = 1000 ticks/s
    path = save(tmp_path / "smpte.mid", [track(on(1000, 60), off(1500, 60))], type_=0, tpb=division)
    assert times(read_score(path)) == [(1.0, 1.5, 60)]


def test_midi_sorted_by_onset_pitch_group(tmp_path):
    tracks = [
        track(on(480, 50), off(960, 50), on(0, 70), off(480, 70), name="b"),
        track(on(0, 70, ch=1), off(480, 70, ch=1), on(0, 40, ch=1), off(240, 40, ch=1), name="a"),
    ]
    notes = read_score(save(tmp_path / "o.mid", tracks))
    assert [(n.onset, n.pitch, n.group) for n in notes] == [
        (0.0, 40, "a"),
        (0.0, 70, "a"),
        (0.0, 70, "b"),
        (0.5, 50, "b"),
    ]


@pytest.mark.parametrize(
    "content",
    [b"garbage" * 50, b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\x00\x00\x00\x20\x00\x90", b""],
    ids=["garbage", "truncated", "empty"],
)
def test_midi_garbage(tmp_path, content):
    path = tmp_path / "bad.mid"
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        read_score(path)
    assert "not a valid MIDI file" in info.value.reason
    assert str(info.value).startswith(f"{path}: ")


def test_midi_type2_refused(tmp_path):
    tracks = [track(on(0, 60), off(480, 60)), track(on(0, 62), off(480, 62))]
    path = save(tmp_path / "t2.mid", tracks, type_=2)
    with pytest.raises(InputError, match="type 2"):
        read_score(path)


def test_midi_without_notes(tmp_path):
    path = save(tmp_path / "none.mid", [track(tempo(0, 100), name="x"), track(program(0, 3))])
    with pytest.raises(InputError) as info:
        read_score(path)
    assert info.value.reason == "no notes in score"


def test_score_missing_and_unsupported(tmp_path):
    with pytest.raises(InputError) as info:
        read_score(tmp_path / "gone.mid")
    assert info.value.reason == "file not found"
    (tmp_path / "score.txt").write_text("onset_s,offset_s,pitch\n0,1,60\n")
    with pytest.raises(InputError, match="unsupported score format"):
        read_score(tmp_path / "score.txt")
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(InputError, match="folder"):
        read_score(tmp_path / "d.csv")


# ---------------------------------------------------------------------------------------------- CSV


def write(tmp_path, text, name="s.csv", newline="\n"):
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


def test_csv_onset_style(tmp_path):
    path = write(tmp_path, "onset_s,offset_s,pitch,group\n1.0,1.5,64,rh\n0,0.5,48,lh\n0,2,60.0,rh\n")
    notes = read_score(path)
    assert notes == [
        Note(0.0, 0.5, 48, "lh"),
        Note(0.0, 2.0, 60, "rh"),
        Note(1.0, 1.5, 64, "rh"),
    ]
    assert all(isinstance(n.pitch, int) for n in notes)


def test_csv_optional_and_extra_columns(tmp_path):
    path = write(
        tmp_path,
        "comment,pitch,group,offset_s,onset_s,velocity,program\nhello,60,a,1,0,100,40\nx,62,,2,1,,\n",
    )
    notes = read_score(path)
    assert notes == [Note(0.0, 1.0, 60, "a", 100, 40), Note(1.0, 2.0, 62, "", None, None)]


def test_csv_without_group_column(tmp_path):
    assert read_score(write(tmp_path, "onset_s,offset_s,pitch\n0,1,60\n")) == [Note(0.0, 1.0, 60)]


@pytest.mark.parametrize(
    ("text", "newline"),
    [
        ("ONSET_S , Offset_S,PITCH ,Group\n0,1,60,a\n", "\n"),
        ("\ufeffonset_s,offset_s,pitch,group\n0,1,60,a\n", "\n"),
        ("onset_s,offset_s,pitch,group\n0,1,60,a\n", "\r\n"),
        ("onset_s;offset_s;pitch;group\n0;1;60;a\n", "\n"),
        ("onset_s\toffset_s\tpitch\tgroup\n0\t1\t60\ta\n", "\n"),
        ('"onset_s","offset_s","pitch","group"\n0,1,60,"a"\n', "\n"),
        ("\n\nonset_s,offset_s,pitch,group\n\n0,1,60,a\n\n  \n", "\n"),
        ("onset_s,offset_s,pitch,group\n0,1,60,a,\n", "\n"),  # trailing delimiter
    ],
    ids=["case-space", "bom", "crlf", "semicolon", "tab", "quoted", "blank-lines", "trailing-comma"],
)
def test_csv_header_variants(tmp_path, text, newline):
    assert read_score(write(tmp_path, text, newline=newline)) == [Note(0.0, 1.0, 60, "a")]


def test_csv_fmp_style(tmp_path):
    path = write(tmp_path, "start,duration,pitch,velocity,label\n0.5,0.25,67,80,Soprano\n0,1,48,100,Bass\n")
    notes = read_score(path)
    assert notes == [Note(0.0, 1.0, 48, "Bass", 100), Note(0.5, 0.75, 67, "Soprano", 80)]


def test_csv_libfmp_style_semicolons_and_normalised_velocity(tmp_path):
    path = write(
        tmp_path,
        '"Start";"Duration";"Pitch";"Velocity";"Instrument"\n'
        '0.0;0.5;67;1.0;"Soprano"\n'
        '0.5;0.5;65;0.5;"Alto"\n',
    )
    notes = read_score(path)
    assert [(n.onset, n.offset, n.pitch, n.group, n.velocity) for n in notes] == [
        (0.0, 0.5, 67, "Soprano", 127),
        (0.5, 1.0, 65, "Alto", 64),
    ]


def test_csv_without_recognised_header(tmp_path):
    with pytest.raises(InputError) as info:
        read_score(write(tmp_path, "0,1,60,a\n1,2,62,a\n"))
    assert "onset_s,offset_s,pitch,group" in info.value.reason
    assert "start,duration,pitch,velocity,label" in info.value.reason


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        ("abc,1,60,a", "not a number"),
        ("-0.5,1,60,a", "negative onset"),
        ("1.0,0.5,60,a", "before onset"),
        ("0,1,128,a", "outside 0..127"),
        ("0,1,-1,a", "outside 0..127"),
        ("0,1,60.5,a", "whole MIDI number"),
        ("0,1,60", "expected 4 fields, got 3"),
        ("0,1,60,a,b", "expected 4 fields, got 5"),
        ("nan,1,60,a", "finite"),
        ("0,inf,60,a", "finite"),
        ("0,1,,a", "pitch is empty"),
    ],
)
def test_csv_malformed_row_names_the_line(tmp_path, row, needle):
    text = f"onset_s,offset_s,pitch,group\n0,1,60,a\n\n{row}\n0,1,62,a\n"  # the bad row is line 4
    with pytest.raises(InputError) as info:
        read_score(write(tmp_path, text))
    assert info.value.reason.startswith("malformed CSV row 4: ")
    assert needle in info.value.reason


def test_csv_fmp_negative_duration(tmp_path):
    with pytest.raises(InputError, match="row 3: negative duration"):
        read_score(write(tmp_path, "start,duration,pitch,velocity,label\n0,1,60,80,a\n1,-1,60,80,a\n"))


@pytest.mark.parametrize(
    "text", ["", "\n\n", "onset_s,offset_s,pitch,group\n", "onset_s,offset_s,pitch,group\n\n"]
)
def test_csv_without_notes(tmp_path, text):
    with pytest.raises(InputError) as info:
        read_score(write(tmp_path, text))
    assert info.value.reason == "no notes in score"


def test_csv_binary_garbage(tmp_path):
    path = tmp_path / "bin.csv"
    path.write_bytes(bytes(range(256)) * 3)
    with pytest.raises(InputError, match="not a CSV text file"):
        read_score(path)


def test_write_score_csv_round_trip(tmp_path):
    notes = [
        Note(0.0, 1 / 3, 60, "lh", 80),
        Note(0.1, 0.7, 72, 'r,h "x"', None),
        Note(2.5, 2.5, 0, "", 127),
    ]
    path = tmp_path / "out.csv"
    write_score_csv(path, notes)
    assert path.read_text().splitlines()[0] == "onset_s,offset_s,pitch,group,velocity"
    assert read_score(path) == sorted(notes, key=lambda n: (n.onset, n.pitch, n.group))
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    with pytest.raises(InputError, match="does not exist"):
        write_score_csv(tmp_path / "no" / "x.csv", notes)


# ------------------------------------------------------------------------------------- clip, groups


def test_clip_notes():
    notes = [
        Note(0.0, 1.0, 60, "a"),
        Note(1.5, 3.0, 62, "a"),  # clipped to 2.0
        Note(2.0, 2.5, 64, "b"),  # onset at the end: dropped
        Note(3.0, 4.0, 65, "b", 90),  # dropped
        Note(1.0, 2.0, 67, "b"),  # ends exactly at the end: kept as is
    ]
    kept, n_clipped, n_dropped = clip_notes(notes, 2.0)
    assert (n_clipped, n_dropped) == (1, 2)
    assert kept == [Note(0.0, 1.0, 60, "a"), Note(1.5, 2.0, 62, "a"), Note(1.0, 2.0, 67, "b")]
    assert clip_notes([], 1.0) == ([], 0, 0)


def test_score_groups_first_appearance_order():
    notes = [Note(0, 1, 60, "rh"), Note(0, 1, 40, "lh"), Note(1, 2, 62, "rh"), Note(1, 2, 30, "")]
    assert score_groups(notes) == ["rh", "lh", ""]


# --------------------------------------------------------------------------------------- real data


@pytest.mark.parametrize("piece", ["piano_mozart_k545", "chorale_bwv255"])
def test_dev_midi_matches_csv(shared_data, piece):
    folder = shared_data / "dev" / piece
    from_midi = read_score(folder / "score.mid")
    from_csv = read_score(folder / "score.csv")
    assert len(from_midi) == len(from_csv) > 50
    assert [n.pitch for n in from_midi] == [n.pitch for n in from_csv]
    assert [n.group for n in from_midi] == [n.group for n in from_csv]
    assert max(abs(a.onset - b.onset) for a, b in zip(from_midi, from_csv, strict=True)) < 1e-3
    assert max(abs(a.offset - b.offset) for a, b in zip(from_midi, from_csv, strict=True)) < 1e-3
    expected = {"piano_mozart_k545": {"lh", "rh"}, "chorale_bwv255": {"soprano", "alto", "tenor", "bass"}}
    assert set(score_groups(from_midi)) == expected[piece]
    assert all(n.program is not None for n in from_midi)
    exact = read_score(folder / "score_exact.csv")
    assert all(n.velocity is not None and 0 < n.velocity <= 127 for n in exact)


def test_csv_score_does_not_import_mido(tmp_path):
    """mido is imported for MIDI files only: `demixer separate` with a CSV score does not pay for it."""
    import subprocess
    import sys

    path = tmp_path / "s.csv"
    path.write_text("onset_s,offset_s,pitch,group\n0.0,0.5,60,rh\n")
    code = ("import sys; from demixer.io.score import read_score; "
            f"assert len(read_score({str(path)!r})) == 1; print('mido' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
