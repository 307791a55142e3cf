"""engine.draft: the keyboard draft's separation-oriented offsets (issue 16, second pass)."""

from __future__ import annotations

import numpy as np
from support.synth import render

from demixer.core.notes import Note
from demixer.core.voices import VoiceParams, assign_voices
from demixer.engine.draft import DraftSettings, draft_from_signal

SR = 22050


def _piano_line():
    """Struck notes (−20 dB/s decay) held 1.2 s each, a melody over a lower line, no two alike."""
    truth = []
    for k, (hi, lo) in enumerate([(72, 55), (76, 52), (74, 57), (79, 50)]):
        t = 0.3 + 1.4 * k
        truth += [Note(t, t + 1.2, hi, "rh", 100), Note(t + 0.7, t + 1.2, lo, "lh", 100)]
    return truth


def _piano_mix(truth):
    """The piano line rendered as struck, slightly inharmonic notes, mixed."""
    stems = render(truth, SR, max(n.offset for n in truth) + 0.5, {},
                   dict(decay_db_s=-20.0, attack=0.003, inharm=0.0004, n_harm=15))
    return sum(stems.values())


def test_keyboard_notes_are_held_until_their_decay_not_cut_at_six_db():
    truth = _piano_line()
    x = _piano_mix(truth)
    wide = draft_from_signal(x, SR, hands=True)
    narrow = draft_from_signal(x, SR, hands=True, settings=DraftSettings(hands_hysteresis_db=6.0))

    def by_onset(notes):
        return {(round(n.onset, 2), n.pitch): n for n in notes}

    def found(notes):  # truth note -> its drafted note (pitch exact, onset within 50 ms)
        return {i: m for i, t in enumerate(truth) for m in notes
                if m.pitch == t.pitch and abs(m.onset - t.onset) <= 0.05}

    fw, fn = found(wide.notes), found(narrow.notes)
    assert len(fw) == len(truth) and len(fn) == len(truth)
    # the onsets and pitches are the same (the F-measure does not move) …
    assert sorted(by_onset(wide.notes)) == sorted(by_onset(narrow.notes))
    # … but the drafted offsets reach further into each struck note's decay: never earlier, and the
    # time by which notes end too early (before the true offset) shrinks by at least 0.3 s in all
    assert np.all([fw[i].offset >= fn[i].offset for i in range(len(truth))])
    short_w = sum(max(0.0, truth[i].offset - fw[i].offset) for i in range(len(truth)))
    short_n = sum(max(0.0, truth[i].offset - fn[i].offset) for i in range(len(truth)))
    assert short_w <= short_n - 0.3, (short_w, short_n)
    # and none runs on far past its true offset (the release and the window's half)
    assert all(fw[i].offset - truth[i].offset <= 0.2 for i in range(len(truth)))


def test_drafted_legato_line_stays_in_its_voice_despite_a_late_offset():
    """A drafted note ends late (window, reverberation): the upper voice's 72 'ends' 0.15 s after its
    next note 71 (a step down) begins, while the lower voice rests. The draft's voice costs keep 71 in
    the upper voice; a score's costs (a note held 0.08 s into the next onset makes the voice busy)
    hand it to the resting lower voice."""
    notes = [Note(0.0, 1.15, 72, ""), Note(0.0, 0.9, 68, ""), Note(1.0, 2.15, 71, "")]
    want = ["voice1", "voice2", "voice1"]
    assert [n.group for n in assign_voices(notes, 2, DraftSettings().voices)] == want
    assert [n.group for n in assign_voices(notes, 2, VoiceParams())] != want  # what the change fixes


def test_support_notes_go_to_the_separation_not_into_the_drafted_score():
    """A rendered four-voice progression (the benchmark's synthetic chorale): the draft's notes are the
    same with or without filling; the support notes (voice names, inside the piece) come only with
    :meth:`Draft.for_separation`."""
    from support.synth import chorale_notes

    from demixer.core.voices import voice_names

    truth = chorale_notes(11)
    voices = {"soprano": dict(decay_db_s=0.0, tilt=1.0, attack=0.04), "alto": dict(decay_db_s=0.0, odd=True),
              "tenor": dict(decay_db_s=-2.0, tilt=0.7), "bass": dict(decay_db_s=0.0, tilt=0.5)}
    end = max(n.offset for n in truth) + 0.5
    x = sum(render(truth, SR, end, voices).values())
    filled = draft_from_signal(x, SR, voices=4)
    plain = draft_from_signal(x, SR, voices=4, settings=DraftSettings(fill_ratio=None))
    assert plain.support == [] and filled.notes == plain.notes
    assert filled.support, "some voice is silent between others in this draft"
    assert {n.group for n in filled.support} <= set(voice_names(4))
    assert all(0.0 <= n.onset < n.offset <= end for n in filled.support)
    both = filled.for_separation()
    assert len(both) == len(filled.notes) + len(filled.support)
    assert [n.onset for n in both] == sorted(n.onset for n in both)


def _comb(pitch: int, hollow: bool, K: int = 1025, sr: float = SR, n_fft: int = 2048) -> np.ndarray:
    """The first ten harmonics of ``pitch`` falling 3 dB per harmonic; ``hollow``: the even ones 15 dB
    lower (a clarinet-like timbre)."""
    col = np.full(K, 1e-6)
    f0 = 440.0 * 2.0 ** ((pitch - 69) / 12.0)
    for h in range(1, 11):
        col[int(round(f0 * h * n_fft / sr))] = 10.0 ** ((-3.0 * (h - 1) - (15.0 if hollow and h % 2 == 0 else 0)) / 20)
    return col


def _three_voices():
    """Three voices' fitted templates at 55, 60 and 64: voice2 hollow (clarinet-like), voices 1 and 3 full."""
    from demixer.core.constraints import ComponentInfo

    names = ["voice1", "voice2", "voice3"]
    hollow = {"voice1": False, "voice2": True, "voice3": False}
    comps, cols = [], []
    for g in names:
        for p in (55, 60, 64):
            comps.append(ComponentInfo(f"{g} {p}", p, "pitch", g))
            cols.append(_comb(p, hollow[g]))
    return names, np.stack(cols, 1), comps


def test_a_note_whose_timbre_is_a_neighbouring_voices_gets_that_voice_as_second_candidate():
    from demixer.engine.draft import timbre_candidates

    names, W, comps = _three_voices()
    H = np.ones((W.shape[1], 40))
    V = np.concatenate([np.tile(_comb(62, False)[:, None], (1, 20)),  # a full note 0–0.46 s
                        np.tile(_comb(62, True)[:, None], (1, 20))], 1)  # a hollow one after it
    t = 20 * 512 / SR
    full_in_hollow = Note(0.0, t, 62, "voice2")
    hollow_in_hollow = Note(t, 2 * t, 62, "voice2")
    hollow_in_full = Note(t, 2 * t, 62, "voice1")
    full_in_full = Note(0.0, t, 62, "voice3")
    got = timbre_candidates([full_in_hollow, hollow_in_hollow, hollow_in_full, full_in_full], names, V, SR,
                            2048, 512, W, H, comps)
    # the full note in the hollow voice: a full neighbour (the one above, the first on a tie); the notes
    # in the voice that matches them: none; the hollow note in a full voice: the hollow voice
    assert [(n.onset, n.group) for n in got] == [(0.0, "voice1"), (t, "voice2")]


def test_a_voices_fitted_timbre_takes_a_note_that_voice_leading_alone_gives_its_neighbour():
    from demixer.engine.draft import timbre_costs, timbre_matches, voice_envelopes

    names, W, comps = _three_voices()
    env = voice_envelopes(names, W, np.ones((W.shape[1], 10)), comps, SR, 2048)
    assert set(env) == set(names)
    t = 20 * 512 / SR
    # a chord (one note per voice, by rank), then one full-timbre note a minor third over voice2's
    # note and a fourth under voice1's: by voice leading voice2's, by timbre voice1's (or voice3's)
    chord = [Note(0.0, t, 72, "", 80), Note(0.0, t, 64, "", 80), Note(0.0, t, 55, "", 80)]
    late = Note(t, 2 * t, 67, "", 80)
    V = np.concatenate([np.tile((_comb(72, False) + _comb(64, True) + _comb(55, False))[:, None], (1, 20)),
                        np.tile(_comb(67, False)[:, None], (1, 20))], 1)
    notes = chord + [late]
    m = timbre_matches(notes, names, V, SR, 2048, 512, env)
    assert m.shape == (4, 3) and m[3, 0] - m[3, 1] > 0.1  # the full note: voice1's envelope, not voice2's
    costs = timbre_costs(m, 40.0)
    assert np.allclose(costs.min(axis=1), 0.0) and costs[3, 1] > 4.0
    plain = assign_voices(notes, 3)
    timbred = assign_voices(notes, 3, extra=costs.tolist())
    assert [n.group for n in plain] == ["voice1", "voice2", "voice3", "voice2"]
    assert [n.group for n in timbred] == ["voice1", "voice2", "voice3", "voice1"]


def test_timbre_costs_leave_a_note_without_evidence_free():
    from demixer.engine.draft import timbre_costs

    m = np.array([[0.9, 0.5, np.nan], [np.nan, np.nan, np.nan]])
    c = timbre_costs(m, 10.0)
    assert np.allclose(c[0], [0.0, 4.0, 19.0])  # no envelope counts as the worst match (−1)
    assert np.allclose(c[1], 0.0)


def test_hands_drafts_are_separated_as_drafted():
    from demixer.engine.draft import separation_notes
    from demixer.io.audio import Audio

    x = _piano_mix(_piano_line())
    draft = draft_from_signal(x, SR, hands=True)
    audio = Audio(np.asarray(x, dtype=np.float32)[None, :], SR)
    assert separation_notes(draft, audio) == draft.for_separation()
