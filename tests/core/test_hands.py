"""Hand assignment (core/voices.py, DESIGN.md §2.7): a hand playing a line keeps playing single notes; a
drafted subharmonic two octaves under a hand's chord does not push the chord to the other hand."""

from __future__ import annotations

import dataclasses

from demixer.core.notes import Note
from demixer.core.voices import HandParams, _chord_size, _plays_a_line, assign_hands


def _melody_over_alberti(melody: list[int]) -> list[Note]:
    """An Alberti bass in eighths (C3 G3 E3 G3, one note at a time) under a melody in half notes."""
    q = 0.25
    figure = [48, 55, 52, 55]
    notes = [Note(j * q, (j + 1) * q - 0.02, figure[j % 4], "lh") for j in range(4 * len(melody))]
    notes += [Note(4 * k * q, 4 * (k + 1) * q - 0.05, p, "rh") for k, p in enumerate(melody)]
    return sorted(notes, key=lambda n: (n.onset, -n.pitch))


def _wrong(truth: list[Note], params: HandParams | None = None) -> list[tuple[float, int]]:
    est = assign_hands([dataclasses.replace(n, group="") for n in truth], params)
    return [(n.onset, n.pitch) for n, e in zip(truth, est, strict=True) if n.group != e.group]


def test_a_melody_note_dipping_to_the_bass_line_is_not_taken_by_the_bass():
    """The melody (A4 F4 B3 E4) dips to B3, struck with the bass's C3, a seventh from it and inside
    the range the bass just played in. Without the texture cost the bass's hand takes both (it is
    nearer than the melody's F4); with it the bass, which has been playing one note at a time, keeps
    doing so and B3 stays in the melody."""
    truth = _melody_over_alberti([69, 65, 59, 64])
    assert _wrong(truth) == []
    assert _wrong(truth, HandParams(texture=0.0)) == [(2.0, 59)]


def test_a_line_is_two_onsets_of_one_note_each_an_octave_counting_as_one():
    """Which hands the texture cost applies to: one that played single notes (or octaves, e.g. a bass
    in octaves) at two onsets or more within ``memory``; not one that played a chord, nor one onset."""
    assert _chord_size([36, 48]) == 1 and _chord_size([36, 48, 60]) == 1
    assert _chord_size([48, 52, 55]) == 3 and _chord_size([48, 55, 60]) == 2
    assert _plays_a_line(((48, 0.0), (55, 0.25)))
    assert _plays_a_line(((36, 0.0), (48, 0.0), (43, 0.5), (55, 0.5)))
    assert not _plays_a_line(((48, 0.0),))
    assert not _plays_a_line(((48, 0.0), (52, 0.0), (55, 0.5)))


def _mazurka(ghosts: bool) -> list[Note]:
    """A melody in quarters (G#5 F#5 E5 C#5 D#5 E5 G#5 F#5 E5) over a left hand playing bass (C#3) and
    chord (C#4 E4, twice) per bar; with ``ghosts`` the chords from the second bar on carry a drafted
    C#2 (their subharmonic two octaves down, as the draft adds it), given to the left hand."""
    q = 0.4
    notes = []
    for k, p in enumerate([80, 78, 76, 73, 75, 76, 80, 78, 76]):
        t = k * q
        notes.append(Note(t, t + q - 0.03, p, "rh"))
        if k % 3 == 0:
            notes.append(Note(t, t + q - 0.03, 49, "lh"))
        else:
            notes += [Note(t, t + q - 0.03, 61, "lh"), Note(t, t + q - 0.03, 64, "lh")]
            if ghosts and k > 2:
                notes.append(Note(t, t + q - 0.03, 37, "lh"))
    return sorted(notes, key=lambda n: (n.onset, -n.pitch))


def test_a_subharmonic_two_octaves_under_a_chord_does_not_push_the_chord_to_the_other_hand():
    """C#2 with the left hand's C#4 E4 would stretch the hand over 27 semitones: without ``shadow`` the
    chord goes to the right hand wherever the drafted C#2 is; with it (C#2 counted half an octave under
    C#4, the chord lying where the left hand plays) every note stays in its hand."""
    truth = _mazurka(ghosts=True)
    assert _wrong(truth) == []
    wrong = {(round(o, 2), p) for o, p in _wrong(truth, HandParams(shadow=None))}
    assert {p for _, p in wrong} == {61, 64}
    assert wrong >= {(t, p) for t in (1.6, 2.0, 2.8, 3.2) for p in (61, 64)}  # every chord with a C#2


def test_a_melody_note_two_octaves_over_the_bass_stays_with_the_melody():
    """C#5 of the melody is struck with the bass C#3 two octaves below; far above where the left hand
    plays (C#3–E4), it gets no shadow relief and stays in the right hand. (Relief without that condition
    gave the left hand C#3 and C#5 here.)"""
    assert _wrong(_mazurka(ghosts=False)) == []


def test_a_lone_note_goes_to_the_hand_whose_register_holds_it():
    # A recording of one note (or a hand with no sure notes near) falls back to the usual registers;
    # before, the later passes gave such a note no cost at all and the tie went to the left hand.
    for pitch, hand in ((69, "rh"), (84, "rh"), (62, "rh"), (45, "lh"), (38, "lh")):
        (out,) = assign_hands([Note(0.0, 1.0, pitch)])
        assert out.group == hand, (pitch, out.group)
