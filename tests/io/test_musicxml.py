"""MusicXML scores (io/musicxml.py through read_score): parts, two-staff piano, ties, grace notes, repeats,
tempo marks, malformed files. The files are written here, small and by hand."""

from __future__ import annotations

import zipfile

import pytest

from demixer.io.errors import InputError
from demixer.io.score import read_score

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE score-partwise PUBLIC "-//Recordare//DTD MusicXML 3.1 Partwise//EN"
  "http://www.musicxml.org/dtds/partwise.dtd">
<score-partwise version="3.1">
"""


def part_list(*parts: tuple[str, str]) -> str:
    items = "".join(f'<score-part id="{pid}"><part-name>{name}</part-name></score-part>' for pid, name in parts)
    return f"<part-list>{items}</part-list>"


def note(step: str, octave: int, dur: int = 1, *, alter: int = 0, chord=False, tie: str | None = None,
         staff: int | None = None, grace=False, voice: int = 1, typ: str = "quarter") -> str:
    alt = f"<alter>{alter}</alter>" if alter else ""
    ch = "<chord/>" if chord else ""
    gr = "<grace/>" if grace else ""
    d = "" if grace else f"<duration>{dur}</duration>"
    ties = f'<tie type="{tie}"/>' if tie else ""
    tied = f'<notations><tied type="{tie}"/></notations>' if tie else ""
    st = f"<staff>{staff}</staff>" if staff else ""
    return (f"<note>{gr}{ch}<pitch><step>{step}</step>{alt}<octave>{octave}</octave></pitch>{d}{ties}"
            f"<voice>{voice}</voice><type>{typ}</type>{st}{tied}</note>")


def measure(number: int, body: str, *, attrs: bool = False, staves: int = 1, extra: str = "") -> str:
    a = ""
    if attrs:
        clefs = "<clef><sign>G</sign><line>2</line></clef>" if staves == 1 else (
            '<clef number="1"><sign>G</sign><line>2</line></clef><clef number="2"><sign>F</sign><line>4</line></clef>')
        st = f"<staves>{staves}</staves>" if staves > 1 else ""
        a = (f"<attributes><divisions>1</divisions><key><fifths>0</fifths></key>"
             f"<time><beats>4</beats><beat-type>4</beat-type></time>{st}{clefs}</attributes>")
    return f'<measure number="{number}">{a}{extra}{body}</measure>'


def write(tmp_path, name: str, parts_xml: str, plist: str) -> object:
    p = tmp_path / name
    p.write_text(HEAD + plist + parts_xml + "</score-partwise>\n", encoding="utf-8")
    return p


def four_quarters(step="C", octave=4) -> str:
    return "".join(note(step, octave) for _ in range(4))


def test_one_group_per_part_named_by_the_part(tmp_path):
    xml = (f'<part id="P1">{measure(1, four_quarters("E", 5), attrs=True)}</part>'
           f'<part id="P2">{measure(1, four_quarters("C", 3), attrs=True)}</part>')
    notes = read_score(write(tmp_path, "duo.musicxml", xml, part_list(("P1", "Flute"), ("P2", "Cello"))))
    assert {n.group for n in notes} == {"Flute", "Cello"}
    assert sorted(n.pitch for n in notes if n.group == "Flute") == [76] * 4
    assert sorted(n.pitch for n in notes if n.group == "Cello") == [48] * 4
    # no tempo mark: 120 quarter notes per minute
    assert sorted({n.onset for n in notes}) == pytest.approx([0.0, 0.5, 1.0, 1.5])
    assert all(n.offset - n.onset == pytest.approx(0.5) for n in notes)


def test_parts_with_the_same_name_stay_apart(tmp_path):
    xml = (f'<part id="P1">{measure(1, four_quarters("E", 5), attrs=True)}</part>'
           f'<part id="P2">{measure(1, four_quarters("C", 5), attrs=True)}</part>')
    notes = read_score(write(tmp_path, "vv.musicxml", xml, part_list(("P1", "Violin"), ("P2", "Violin"))))
    assert {n.group for n in notes} == {"Violin", "Violin 2"}


def test_two_staff_piano_gives_rh_and_lh(tmp_path):
    body = ("".join(note("E", 5, staff=1) for _ in range(4)) + "<backup><duration>4</duration></backup>"
            + note("C", 3, 4, staff=2, voice=2, typ="whole"))
    xml = f'<part id="P1">{measure(1, body, attrs=True, staves=2)}</part>'
    notes = read_score(write(tmp_path, "piano.musicxml", xml, part_list(("P1", "Piano"))))
    assert {n.group for n in notes} == {"rh", "lh"}
    assert [n.pitch for n in notes if n.group == "lh"] == [48]
    lh = next(n for n in notes if n.group == "lh")
    assert (lh.onset, lh.offset) == pytest.approx((0.0, 2.0))
    assert [n.pitch for n in notes if n.group == "rh"] == [76] * 4


def test_ties_are_merged_and_chords_split(tmp_path):
    m1 = (note("G", 4, 2, typ="half") + note("C", 5, 2, tie="start", typ="half")
          + note("E", 5, 2, chord=True, typ="half"))
    m2 = note("C", 5, 2, tie="stop", typ="half") + note("D", 5, 2, typ="half")
    xml = f'<part id="P1">{measure(1, m1, attrs=True)}{measure(2, m2)}</part>'
    notes = read_score(write(tmp_path, "ties.musicxml", xml, part_list(("P1", "Oboe"))))
    c5 = [n for n in notes if n.pitch == 72]
    assert len(c5) == 1 and (c5[0].onset, c5[0].offset) == pytest.approx((1.0, 3.0))  # 2 + 2 beats, one note
    e5 = [n for n in notes if n.pitch == 76]
    assert len(e5) == 1 and e5[0].onset == pytest.approx(1.0)
    assert len(notes) == 4


def test_grace_notes_sound_just_before_their_note(tmp_path):
    body = note("C", 5) + note("D", 5, grace=True, typ="eighth") + note("E", 5) + note("F", 5, 2, typ="half")
    xml = f'<part id="P1">{measure(1, body, attrs=True)}</part>'
    notes = read_score(write(tmp_path, "grace.musicxml", xml, part_list(("P1", "Flute"))))
    grace = next(n for n in notes if n.pitch == 74)
    main = next(n for n in notes if n.pitch == 76)
    assert main.onset == pytest.approx(0.5)
    assert grace.onset < main.onset and grace.offset == pytest.approx(main.onset)
    assert grace.offset - grace.onset == pytest.approx(0.125 * 0.5)  # 1/8 of a quarter at 120 qpm
    assert len(notes) == 4


def test_repeats_are_unfolded(tmp_path):
    fwd = '<barline location="left"><repeat direction="forward"/></barline>'
    back = '<barline location="right"><bar-style>light-heavy</bar-style><repeat direction="backward"/></barline>'
    m1 = measure(1, four_quarters("C", 4), attrs=True, extra=fwd)
    m2 = measure(2, four_quarters("D", 4) + back)
    m3 = measure(3, four_quarters("E", 4))
    xml = f'<part id="P1">{m1}{m2}{m3}</part>'
    notes = read_score(write(tmp_path, "rep.musicxml", xml, part_list(("P1", "Horn"))))
    seq = [n.pitch for n in sorted(notes, key=lambda n: n.onset)]
    assert seq == [60] * 4 + [62] * 4 + [60] * 4 + [62] * 4 + [64] * 4
    assert max(n.offset for n in notes) == pytest.approx(10.0)  # 20 quarters at 120 qpm


def test_tempo_marks_are_honoured(tmp_path):
    m1 = measure(1, four_quarters(), attrs=True,
                 extra='<direction placement="above"><direction-type><metronome><beat-unit>quarter</beat-unit>'
                       '<per-minute>60</per-minute></metronome></direction-type><sound tempo="60"/></direction>')
    m2 = measure(2, four_quarters("D", 4),
                 extra='<direction><direction-type><metronome><beat-unit>quarter</beat-unit>'
                       '<per-minute>240</per-minute></metronome></direction-type><sound tempo="240"/></direction>')
    xml = f'<part id="P1">{m1}{m2}</part>'
    notes = sorted(read_score(write(tmp_path, "tempo.musicxml", xml, part_list(("P1", "Oboe")))),
                   key=lambda n: n.onset)
    assert [n.onset for n in notes[:5]] == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0])  # 60 qpm
    assert [n.onset for n in notes[4:]] == pytest.approx([4.0, 4.25, 4.5, 4.75])  # then 240 qpm


def test_compressed_mxl(tmp_path):
    xml = f'<part id="P1">{measure(1, four_quarters("A", 4), attrs=True)}</part>'
    src = write(tmp_path, "inner.musicxml", xml, part_list(("P1", "Flute")))
    mxl = tmp_path / "score.mxl"
    with zipfile.ZipFile(mxl, "w") as z:
        z.writestr("META-INF/container.xml",
                   '<?xml version="1.0" encoding="UTF-8"?><container><rootfiles>'
                   '<rootfile full-path="score.musicxml"/></rootfiles></container>')
        z.writestr("score.musicxml", src.read_text())
    notes = read_score(mxl)
    assert [n.pitch for n in notes] == [69] * 4 and notes[0].group == "Flute"


@pytest.mark.parametrize(
    "name, text",
    [
        ("broken.musicxml", HEAD + "<part-list><score-part id='P1'>"),  # cut off: not well-formed
        ("notxml.xml", "this is not XML at all\n"),
        ("empty.musicxml", ""),
    ],
)
def test_malformed_files_name_the_file_and_the_reason(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(InputError) as e:
        read_score(p)
    assert str(p) in str(e.value)
    assert e.value.reason and "\n" not in str(e.value)


def test_bad_mxl_zip(tmp_path):
    p = tmp_path / "bad.mxl"
    p.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match="bad.mxl"):
        read_score(p)


def test_dev_performed_musicxml_matches_its_midi(shared_data):
    """The same measures as the CSV score: four named parts for a chorale."""
    d = shared_data / "dev-performed" / "chorale_bwv255"
    if not d.is_dir():
        pytest.skip("dev-performed data not available")
    a = read_score(d / "score.musicxml")
    b = read_score(d / "score.csv")
    assert {n.group for n in a} == {"Soprano", "Alto", "Tenor", "Bass"}
    key = lambda n: (round(n.onset, 3), round(n.offset, 3), n.pitch, n.group.lower())  # noqa: E731
    assert sorted(map(key, a)) == sorted(map(key, b))


def test_a_fresh_process_reads_musicxml_without_running_music21s_unused_parts(tmp_path):
    """music21's own unit tests and ``requests`` are imported lazily (their code never runs when only a file
    is read), and the notes are the same as with music21 imported the ordinary way; the command-line read
    (``read_score_once``: the import, then ``gc.freeze``) gives the same notes too."""
    import json
    import subprocess
    import sys

    m1 = note("C", 4) + note("E", 4) + note("G", 4, 2, tie="start", typ="half")
    m2 = note("G", 4, tie="stop") + note("A", 4, grace=True, typ="eighth") + note("B", 4) + note("C", 5, 2, typ="half")
    xml = f'<part id="P1">{measure(1, m1, attrs=True)}{measure(2, m2)}</part>'
    path = write(tmp_path, "tune.musicxml", xml, part_list(("P1", "Flute")))
    probe = """
import importlib.util, json, sys
mode = sys.argv[2]
if mode == "eager":
    import music21  # the ordinary import: every module runs
if mode == "cli":
    from functools import partial
    from demixer.cli.align_cmd import read_score_once
    read = partial(read_score_once, freeze=True)
else:
    from demixer.io.score import read_score as read
notes = [[n.onset, n.offset, n.pitch, n.group] for n in read(sys.argv[1])]
ran = lambda m: m in sys.modules and not isinstance(sys.modules[m], importlib.util._LazyModule)
import gc
print(json.dumps({"notes": notes, "requests": ran("requests"), "tests": ran("music21.test.test_base"),
                  "frozen": gc.get_freeze_count()}))
"""
    out = {}
    for mode in ("lazy", "eager", "cli"):
        proc = subprocess.run([sys.executable, "-c", probe, str(path), mode], capture_output=True, text=True,
                              check=True)
        out[mode] = json.loads(proc.stdout)
    assert out["lazy"]["notes"] == out["eager"]["notes"] == out["cli"]["notes"]
    assert sorted(n[2] for n in out["lazy"]["notes"]) == [60, 64, 67, 69, 71, 72]
    assert not out["lazy"]["requests"] and not out["lazy"]["tests"]
    assert not out["cli"]["requests"] and not out["cli"]["tests"]
    assert out["eager"]["requests"] and out["eager"]["tests"]  # what the deferral saves
    assert out["cli"]["frozen"] > 10_000 and out["lazy"]["frozen"] == 0  # only a one-shot command freezes
