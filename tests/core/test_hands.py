"""Hand assignment (core/voices.py, DESIGN.md §2.7): a hand playing a line keeps playing single notes."""

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
